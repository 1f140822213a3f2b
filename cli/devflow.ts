// The `devflow` command line.
import { Command } from 'commander';
import { runMain } from '../lib/main.ts';
import { up } from './stack/up.ts';

const program = new Command()
  .name('devflow')
  .description('Run AI coding agents through reviewed, multi-phase development work.')
  .showHelpAfterError();

program
  .command('up')
  .description('start the local stack: embedded Postgres, Temporal dev server with Web UI, worker and API')
  .action(async () => {
    await runMain('up', () => up());
  });

await program.parseAsync(process.argv);
