// The people's page: a small Preact app (ui/), served by the API from the project's own files,
// nothing fetched from the internet. It is a thin client of the public API: every call it makes
// is one any client could, with the same bearer token.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { App } from './context.ts';

const UI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'ui');
const require = createRequire(import.meta.url);
const vendor = (specifier: string) => require.resolve(specifier);

/** Every file the page loads, by URL: nothing else is served from disk. */
const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/': { file: () => path.join(UI_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: () => path.join(UI_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: () => path.join(UI_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/ui/vendor/preact.mjs': { file: () => vendor('preact'), type: 'text/javascript; charset=utf-8' },
  '/ui/vendor/hooks.mjs': { file: () => vendor('preact/hooks'), type: 'text/javascript; charset=utf-8' },
  '/ui/vendor/htm.mjs': { file: () => path.join(path.dirname(vendor('htm')), 'htm.mjs'), type: 'text/javascript; charset=utf-8' },
};

export function isUiAsset(url: string): boolean {
  const pathname = url.split('?')[0]!;
  return pathname in ASSETS || pathname === '/ui/config.json';
}

export function registerUi(app: App, options: { temporalWebUi: string | undefined; namespace: string; tokenRequired: boolean }): void {
  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) => {
      const body = await readFile(asset.file());
      return reply.type(asset.type).header('cache-control', 'no-cache').send(body);
    });
  }
  // What the page needs before it can call the API: whether to ask for the token, where the Web UI is.
  app.get('/ui/config.json', { schema: { hide: true } }, async () => ({
    tokenRequired: options.tokenRequired,
    temporalWebUi: options.temporalWebUi ?? null,
    namespace: options.namespace,
  }));
}
