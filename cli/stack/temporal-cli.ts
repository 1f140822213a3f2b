// Finds a Temporal CLI (which contains the dev server and Web UI), in this order:
//   1. TEMPORAL_CLI_PATH
//   2. `temporal` on PATH
//   3. devflow's per-user cache ($XDG_CACHE_HOME/devflow/bin, default ~/.cache/devflow/bin)
//   4. the Temporal SDK's own download (needs internet)
//   5. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into that cache, when Go is present
// Later CLI versions carry a `replace` directive that `go install` refuses, hence the pin.
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { DevflowError } from '../../lib/errors.ts';
import { devflowCacheDir, findOnPath, isExecutable, versionOf } from '../../lib/executables.ts';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

export type TemporalCliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'sdk-download' | 'go-install';

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress lines for long work (the Go build takes minutes the first time). */
  log?: (line: string) => void;
  /** Step 4; injectable so tests do not reach the network. */
  sdkDownload?: (downloadDir: string) => Promise<string | undefined>;
}

export function temporalCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(devflowCacheDir(env), 'bin');
}

/** A binary that cannot even print its version (truncated download, wrong arch) is not used. */
function answersVersion(file: string): boolean {
  return versionOf(file) !== undefined;
}

export async function resolveTemporalCli(options: ResolveOptions = {}): Promise<ResolvedTemporalCli> {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => undefined);

  const explicit = env.TEMPORAL_CLI_PATH?.trim();
  if (explicit) {
    if (!(await isExecutable(explicit))) {
      throw new DevflowError({
        code: 'temporal_cli_not_found',
        message: `TEMPORAL_CLI_PATH: ${explicit} is not an executable file`,
        recoveryHint: 'point TEMPORAL_CLI_PATH at a Temporal CLI binary, or unset it to let devflow find or build one',
      });
    }
    return { path: explicit, source: 'TEMPORAL_CLI_PATH' };
  }

  const onPath = await findOnPath('temporal', env);
  if (onPath && answersVersion(onPath)) return { path: onPath, source: 'PATH' };

  const cacheDir = temporalCacheDir(env);
  const cached = path.join(cacheDir, 'temporal');
  if ((await isExecutable(cached)) && answersVersion(cached)) return { path: cached, source: 'cache' };

  const downloaded = await trySdkDownload(cacheDir, cached, options.sdkDownload ?? sdkDownload, log);
  if (downloaded) return { path: downloaded, source: 'sdk-download' };

  const go = await findOnPath('go', env);
  if (go) {
    await goInstall(go, cacheDir, env, log);
    return { path: cached, source: 'go-install' };
  }

  throw new DevflowError({
    code: 'temporal_cli_not_found',
    message: 'no Temporal CLI found: not in TEMPORAL_CLI_PATH, not on PATH, not in ' + cacheDir + ', the SDK download failed, and Go is not installed',
    recoveryHint: [
      'do one of:',
      '  - install the Temporal CLI (https://docs.temporal.io/cli) and put `temporal` on PATH;',
      '  - set TEMPORAL_CLI_PATH to an existing Temporal CLI binary;',
      `  - install Go (https://go.dev/dl/) and re-run: devflow builds it with \`go install ${TEMPORAL_CLI_MODULE}\`;`,
      '  - or set TEMPORAL_ADDRESS to use a Temporal server that is already running.',
    ].join('\n'),
  });
}

async function trySdkDownload(
  cacheDir: string,
  target: string,
  download: (dir: string) => Promise<string | undefined>,
  log: (line: string) => void,
): Promise<string | undefined> {
  const downloadDir = path.join(cacheDir, 'sdk-download');
  try {
    const file = await download(downloadDir);
    if (!file || !answersVersion(file)) return undefined;
    await mkdir(cacheDir, { recursive: true });
    const partial = `${target}.partial-${process.pid}`;
    await copyFile(file, partial);
    await chmod(partial, 0o755);
    await rename(partial, target);
    return target;
  } catch (error) {
    log(`Temporal SDK download unavailable (${(error as Error).message.split('\n')[0]?.slice(0, 160)})`);
    return undefined;
  } finally {
    await rm(downloadDir, { recursive: true, force: true });
  }
}

/** Lets the SDK fetch its default CLI into `downloadDir` by starting (and stopping) a dev server. */
async function sdkDownload(downloadDir: string): Promise<string | undefined> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const testEnv = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'cached-download', downloadDir } },
  });
  await testEnv.teardown();
  const names = await readdir(downloadDir);
  const binary = names.find((n) => n.startsWith('temporal') && !n.endsWith('.tar.gz') && !n.endsWith('.zip'));
  return binary ? path.join(downloadDir, binary) : undefined;
}

async function goInstall(go: string, cacheDir: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  // Build into a private folder and rename, so an interrupted build never leaves a broken binary.
  const gobin = await mkdtemp(path.join(cacheDir, '.build-'));
  const started = Date.now();
  log(`building the Temporal CLI with Go (${TEMPORAL_CLI_MODULE}); the first build takes a few minutes and is cached in ${cacheDir}`);
  const ticker = setInterval(() => {
    log(`  still building the Temporal CLI (${Math.round((Date.now() - started) / 1000)} s)`);
  }, 20_000);
  try {
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(go, ['install', TEMPORAL_CLI_MODULE], {
        env: { ...env, GOBIN: gobin },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const collect = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          output.push(line);
          if (output.length > 200) output.shift();
        }
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) {
      throw new DevflowError({
        code: 'temporal_cli_build_failed',
        message: `go install ${TEMPORAL_CLI_MODULE} failed (exit ${code}):\n${output.slice(-30).join('\n')}`,
        recoveryHint: 'install the Temporal CLI yourself and set TEMPORAL_CLI_PATH, or set TEMPORAL_ADDRESS to an existing server',
      });
    }
    await rename(path.join(gobin, 'temporal'), path.join(cacheDir, 'temporal'));
    log(`built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)} s -> ${path.join(cacheDir, 'temporal')}`);
  } finally {
    clearInterval(ticker);
    await rm(gobin, { recursive: true, force: true });
  }
}
