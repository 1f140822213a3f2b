// Pictures of what people and operators see, from a running stack (npm start): devflow's inbox,
// a run's page, and the run's execution in the Temporal Web UI, taken with Debian's Chromium.
//   npm run screenshots -- [runId] [--out folder]
// Default: the newest run, into $DEVFLOW_HOME/screenshots. DEVFLOW_API_URL and DEVFLOW_API_TOKEN
// are used as the CLI uses them.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { DevflowApi } from '../cli/api-client.ts';
import { CHROMIUM_ARGS, ensureChromium } from '../lib/chromium.ts';
import { loadConfig } from '../lib/env.ts';

const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
const config = loadConfig();
const api = new DevflowApi();
const out = path.resolve(values.out ?? path.join(config.home, 'screenshots'));
mkdirSync(out, { recursive: true });

let runId = positionals[0];
if (!runId) {
  const { runs } = await api.get<{ runs: { id: string }[] }>('/v1/runs?limit=1');
  runId = runs[0]?.id;
}
const browser = await chromium.launch({ executablePath: ensureChromium((line) => console.log(line)), args: CHROMIUM_ARGS });
const written: string[] = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const token = config.api.token;
  if (token) await page.addInitScript(`sessionStorage.setItem('devflow-api-token', ${JSON.stringify(token)})`);

  await page.goto(api.baseUrl);
  await page.locator('#runs-title').waitFor({ timeout: 15_000 });
  await page.waitForTimeout(500); // the first poll fills the tables
  written.push(path.join(out, 'inbox.png'));
  await page.screenshot({ path: written.at(-1)!, fullPage: true });

  if (runId) {
    await page.goto(`${api.baseUrl}/#/runs/${runId}`);
    await page.locator('table.phases').waitFor({ timeout: 15_000 });
    await page.waitForTimeout(500);
    written.push(path.join(out, `run-${runId.slice(0, 8)}.png`));
    await page.screenshot({ path: written.at(-1)!, fullPage: true });

    if (config.temporal.webUiUrl) {
      // The Web UI never goes idle (it polls): wait for the run's id on the page, not for the network.
      await page.goto(`${config.temporal.webUiUrl}/namespaces/${config.temporal.namespace}/workflows/devflow-run:${runId}`);
      await page.getByText(`devflow-run:${runId}`).first().waitFor({ timeout: 20_000 }).catch(() => console.log('the Web UI did not show the run within 20 s; taking the picture anyway'));
      await page.waitForTimeout(1_000);
      written.push(path.join(out, `temporal-${runId.slice(0, 8)}.png`));
      await page.screenshot({ path: written.at(-1)! });
    }
  } else {
    console.log('no run yet: only the inbox');
  }
} finally {
  await browser.close();
}
for (const file of written) console.log(file);
process.exit(0);
