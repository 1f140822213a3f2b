// Measures `devflow up`: time from launch to "devflow is up" and /readyz 200, on a fresh
// DEVFLOW_HOME (cold: initdb, new SQLite file) and again on the same home (warm), and the time
// Ctrl-C takes to stop everything. Prints figures; asserts nothing.
//   npm run bench:startup [-- --rounds 3]
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, stopStarted, track } from './stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;

async function once(env: NodeJS.ProcessEnv, apiPort: number): Promise<{ up: number; ready: number; stop: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/devflow.ts', 'up'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  track('devflow up', async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  });
  let up = 0;
  while (!up) {
    if (child.exitCode !== null) throw new Error(`devflow up exited:\n${output}`);
    if (output.includes('devflow is up')) up = performance.now() - started;
    else await new Promise((r) => setTimeout(r, 50));
  }
  for (;;) {
    const response = await fetch(`http://127.0.0.1:${apiPort}/readyz`).catch(() => undefined);
    if (response?.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = performance.now() - started;
  const stopping = performance.now();
  process.kill(-child.pid!, 'SIGINT');
  await exited;
  return { up, ready, stop: performance.now() - stopping };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const results: { kind: string; up: number; ready: number; stop: number }[] = [];
for (let round = 1; round <= rounds; round++) {
  const home = await mkdtemp(path.join(os.tmpdir(), 'devflow-bench-'));
  await chmod(home, 0o755);
  track('its home folder', () => rm(home, { recursive: true, force: true }));
  const [api, pg, temporal, ui] = (await freePorts(4)) as [number, number, number, number];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEVFLOW_HOME: home,
    DEVFLOW_API_PORT: String(api),
    DEVFLOW_PG_PORT: String(pg),
    DEVFLOW_TEMPORAL_PORT: String(temporal),
    DEVFLOW_TEMPORAL_UI_PORT: String(ui),
  };
  delete env.DATABASE_URL;
  delete env.TEMPORAL_ADDRESS;
  for (const kind of ['cold', 'warm']) {
    const r = await once(env, api);
    results.push({ kind, ...r });
    console.log(`round ${round} ${kind}: up ${seconds(r.up)}, /readyz 200 ${seconds(r.ready)}, Ctrl-C to exit ${seconds(r.stop)}`);
  }
}
await stopStarted();
for (const kind of ['cold', 'warm']) {
  const rows = results.filter((r) => r.kind === kind).map((r) => r.ready).sort((a, b) => a - b);
  console.log(`${kind}: start to /readyz 200, median ${seconds(rows[Math.floor(rows.length / 2)]!)} (min ${seconds(rows[0]!)}, max ${seconds(rows.at(-1)!)}) over ${rows.length} runs`);
}
process.exit(0);
