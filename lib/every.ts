// A background round repeated on a timer: run now, then every `intervalMs`, never two rounds at
// once; a failed round is reported and the next one tries again. Stopping waits for the round
// in flight.
export function every(intervalMs: number, round: () => Promise<unknown>, onError: (error: unknown) => void): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const tick = () => {
    if (running) return; // the last round is still going
    running = round()
      .catch(onError)
      .finally(() => (running = undefined));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
