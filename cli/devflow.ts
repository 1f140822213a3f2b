// The `devflow` command line. It talks to the HTTP API (DEVFLOW_API_URL, default from
// DEVFLOW_API_HOST/PORT; DEVFLOW_API_TOKEN when set). Exit codes: see cli/api-client.ts EXIT.
import { Command } from 'commander';
import { runMain } from '../lib/main.ts';
import { printable } from '../lib/text.ts';
import { DevflowApi, EXIT } from './api-client.ts';
import { createInterface } from 'node:readline';
import { abort, decide, listRuns, report, show, start, status, watch, withApiErrors } from './commands.ts';
import { REAL_AGENTS } from '../sessions/agent-cli.ts';
import { DEFAULT_TEMPLATE } from '../schemas/api.ts';
import { installAgents, listAgents } from './agents.ts';
import { checkDefinitions, reloadDefinitions } from './definitions.ts';
import { runDemo } from './demo.ts';
import { changeSchedule, createSchedule, listSchedules, showSchedule } from './schedules.ts';
import { up } from './stack/up.ts';

// Everything printed passes here: stored text (requirements, artifacts, reasons, screens) may hold
// ESC sequences that must not drive the user's terminal; they are shown as `\x1b`.
const say = (line: string) => process.stdout.write(`${printable(line)}\n`);
const api = () => new DevflowApi();
const run = (name: string, command: () => Promise<number>) => runMain(name, () => withApiErrors(say, command));

const program = new Command()
  .name('devflow')
  .description('Run AI coding agents through reviewed, multi-phase development work.')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.badInput));

program
  .command('up')
  .description('start the local stack: embedded Postgres, Temporal dev server with Web UI, worker and API')
  .action(() => runMain('up', () => up()));

program
  .command('start')
  .description('start a run')
  .requiredOption('--repo <path>', 'git repository to work on')
  .requiredOption('--base <branch>', 'branch to start from')
  .requiredOption('--requirements <file>', 'requirements document (markdown)')
  .option('--template <id>', `template name@version (default ${DEFAULT_TEMPLATE})`)
  .option('--agent <[role=]name...>', 'claude-code | codex | scripted, for every role or one role (repeatable); default: persona, then DEVFLOW_AGENT_PRESET')
  .option('--backend <backend>', 'every role: scripted | tmux (the configured real agent) | fake')
  .option('--playback', "real agents talk to devflow's local playback model (offline, plays --scenario)")
  .option('--scenario <phase=name...>', 'scenario a phase plays (scripted agent or playback model; repeatable)')
  .option('--run-id <uuid>', 'choose the run id (starting the same id again is harmless)')
  .option('--dry-run', 'write nothing: print, per phase, the role, agent, artifact and the exact prompt the agent would receive')
  .action((options) => run('start', () => start(api(), options, say)));

program
  .command('runs')
  .description('list runs, newest first')
  .option('--state <state>', 'only runs in this state')
  .option('--limit <n>', 'how many', '20')
  .action((options) => run('runs', () => listRuns(api(), options, say)));

program.command('status <runId>').description("a run's phases, gates and report").action((runId) => run('status', () => status(api(), runId, say)));

program
  .command('watch <runId>')
  .description('follow a run live; exits 0 completed, 1 failed/aborted, 10 waiting at a gate')
  .option('--until-end', 'keep watching through gates')
  .action((runId, options) => run('watch', () => watch(api(), runId, say, options)));

/** In a terminal, a yes/no question; elsewhere (scripts) no question is asked. */
async function confirmInTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

for (const action of ['approve', 'reject'] as const) {
  program
    .command(`${action} <runId>`)
    .description(`${action} the run's pending gate (in a terminal: shows the gate and its artifact, and asks)`)
    .option('--gate <key>', 'the gate, when several are pending')
    .option('--comment <text>', 'why')
    .option('--client-token <token>', 'idempotency token (repeat it to retry safely)')
    .option('-y, --yes', 'do not ask (scripts)')
    .action((runId, options) => run(action, () => decide(api(), runId, action, { ...options, ...(process.stdin.isTTY ? { confirm: confirmInTerminal } : {}) }, say)));
}

program
  .command('show <runId> [phase]')
  .description("print a phase's artifact readably (default: the one a gate waits on, else the newest)")
  .action((runId, phase) => run('show', () => show(api(), runId, phase, say)));

program
  .command('abort <runId>')
  .description('abort a run')
  .option('--reason <text>', 'why')
  .action((runId, options) => run('abort', () => abort(api(), runId, options, say)));

program.command('report <runId>').description("print a run's final report").action((runId) => run('report', () => report(api(), runId, say)));

program
  .command('demo')
  .description(`a ${DEFAULT_TEMPLATE} run end to end through the API: the scripted agent, or a real one on the playback model`)
  .option('--agent <name>', 'scripted | claude-code | codex (installed into devflow\'s cache when missing)', 'scripted')
  .option('--stop', 'stop the stack afterwards if the demo started it')
  .action((options) => run('demo', () => runDemo({ stopAfter: Boolean(options.stop), agent: options.agent, say })));

const definitions = program.command('definitions').description('templates, personas and artifact schemas: check a folder, reload the running stack');
definitions
  .command('check [dir]')
  .description('check a definitions folder (default DEVFLOW_DEFINITIONS_DIR) with the built-ins; exit 2 on any problem')
  .action((dir: string | undefined) => runMain('definitions', () => checkDefinitions(dir, say)));
definitions
  .command('reload')
  .description("have the API read its definitions folder again (no restart)")
  .action(() => run('definitions', () => reloadDefinitions(api(), say)));

const schedule = program.command('schedule').description('recurring runs on Temporal Schedules: create, list, show, pause, resume, trigger, delete');
schedule
  .command('create <id>')
  .description('repeat a run request on a cron or interval spec')
  .option('--cron <expression>', 'five-field cron, in UTC (e.g. "0 3 * * 1-5")')
  .option('--every <interval>', 'a whole number and s, m, h or d (e.g. 6h)')
  .option('--overlap <policy>', 'skip (default): a fire while the last run is active starts nothing; allow: it starts one anyway')
  .option('--catchup <interval>', 'fires missed while Temporal was down are made up within this window (default 5m)')
  .option('--paused', 'create it paused')
  .option('--note <text>', 'a note shown with the schedule')
  .requiredOption('--repo <path>', 'git repository to work on')
  .requiredOption('--base <branch>', 'branch to start from')
  .requiredOption('--requirements <file>', 'requirements document (markdown)')
  .option('--template <id>', `template name@version (default ${DEFAULT_TEMPLATE})`)
  .option('--agent <[role=]name...>', 'claude-code | codex | scripted, for every role or one role (repeatable)')
  .option('--backend <backend>', 'every role: scripted | tmux (the configured real agent) | fake')
  .option('--playback', "real agents talk to devflow's local playback model")
  .option('--scenario <phase=name...>', 'scenario a phase plays (repeatable)')
  .action((id, options) => run('schedule', () => createSchedule(api(), id, options, say)));
schedule.command('list', { isDefault: true }).description('every schedule, its next fire and its last').action(() => run('schedule', () => listSchedules(api(), say)));
schedule.command('show <id>').description('a schedule and its latest fires: the run each started, or why none').action((id) => run('schedule', () => showSchedule(api(), id, say)));
for (const action of ['pause', 'resume'] as const) {
  schedule.command(`${action} <id>`).description(`${action} a schedule`).option('--note <text>', 'why').action((id, options) => run('schedule', () => changeSchedule(api(), id, action, say, options.note)));
}
schedule.command('trigger <id>').description('fire a schedule now (its overlap rule still applies)').action((id) => run('schedule', () => changeSchedule(api(), id, 'trigger', say)));
schedule.command('delete <id>').description('delete a schedule; its runs and fires are kept').action((id) => run('schedule', () => changeSchedule(api(), id, 'delete', say)));

const agents = program.command('agents').description('the real agent CLIs devflow drives: where they are found, and installing them');
agents
  .command('list', { isDefault: true })
  .description('show each agent: installed where, which version, which version devflow pins')
  .action(() => runMain('agents', () => listAgents(say)));
agents
  .command('install [agent...]')
  .description(`install the pinned version into devflow's cache (default: ${REAL_AGENTS.join(' and ')})`)
  .action((names: string[]) => runMain('agents', () => installAgents(names, say)));

await program.parseAsync(process.argv);
