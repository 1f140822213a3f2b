// Opens a run's page in the Temporal Web UI with headless Chromium (Debian's `chromium`) and
// saves a screenshot: a quick look at what an operator sees.
//   npm run webui:screenshot -- <runId> [out.png]
// Needs: apt-get install -y chromium; the stack running (npm start). DEVFLOW_WEB_UI_URL and
// CHROMIUM_PATH override the defaults.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../lib/env.ts';

const [runId, out = `devflow-run-${process.argv[2]?.slice(0, 8)}.png`] = process.argv.slice(2);
if (!runId) {
  console.error('usage: npm run webui:screenshot -- <runId> [out.png]');
  process.exit(2);
}
const config = loadConfig();
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  console.error(`no Chromium at ${chromium}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  process.exit(3);
}
const ui = process.env.DEVFLOW_WEB_UI_URL ?? `http://127.0.0.1:${config.temporal.uiPort}`;
const url = `${ui}/namespaces/${config.temporal.namespace}/workflows/devflow-run:${runId}`;
const profile = mkdtempSync(path.join(os.tmpdir(), 'devflow-chromium-'));
try {
  execFileSync(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, '--window-size=1440,1000', '--hide-scrollbars',
    // The UI is a single-page app: give it time to load the workflow before the picture.
    '--virtual-time-budget=15000', `--screenshot=${path.resolve(out)}`, url,
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
} finally {
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${url}\n-> ${path.resolve(out)}`);
process.exit(0);
