// The order in which devflow looks for a Temporal CLI (SPEC section 11). The binaries here are
// small scripts; the suite's own dev server was found or built by the same function.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveTemporalCli, temporalCacheDir, TEMPORAL_CLI_MODULE } from '../cli/stack/temporal-cli.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'devflow-cli-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

async function executable(file: string, body = 'echo "temporal version test"'): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

const noDownload = async () => undefined;

describe('Temporal CLI resolution', () => {
  it('uses TEMPORAL_CLI_PATH first, even when others exist', async () => {
    const explicit = await executable(path.join(root, 'explicit', 'temporal'));
    await executable(path.join(root, 'bin', 'temporal'));
    const env = { TEMPORAL_CLI_PATH: explicit, PATH: path.join(root, 'bin'), XDG_CACHE_HOME: path.join(root, 'cache') };
    expect(await resolveTemporalCli({ env, sdkDownload: noDownload })).toEqual({ path: explicit, source: 'TEMPORAL_CLI_PATH' });
  });

  it('refuses a TEMPORAL_CLI_PATH that is not executable, naming the variable', async () => {
    const env = { TEMPORAL_CLI_PATH: path.join(root, 'missing'), PATH: '' };
    await expect(resolveTemporalCli({ env, sdkDownload: noDownload })).rejects.toThrow(/TEMPORAL_CLI_PATH: .*missing is not an executable file/);
  });

  it('then `temporal` on PATH, then the per-user cache', async () => {
    const cache = path.join(root, 'cache');
    const cached = await executable(path.join(cache, 'devflow', 'bin', 'temporal'));
    const onPath = await executable(path.join(root, 'bin', 'temporal'));
    const env = { PATH: path.join(root, 'bin'), XDG_CACHE_HOME: cache };
    expect(await resolveTemporalCli({ env, sdkDownload: noDownload })).toEqual({ path: onPath, source: 'PATH' });
    expect(await resolveTemporalCli({ env: { ...env, PATH: '' }, sdkDownload: noDownload })).toEqual({ path: cached, source: 'cache' });
  });

  it('skips a binary that cannot answer --version', async () => {
    await executable(path.join(root, 'bin', 'temporal'), 'exit 3');
    const cached = await executable(path.join(root, 'cache', 'devflow', 'bin', 'temporal'));
    const env = { PATH: path.join(root, 'bin'), XDG_CACHE_HOME: path.join(root, 'cache') };
    expect(await resolveTemporalCli({ env, sdkDownload: noDownload })).toEqual({ path: cached, source: 'cache' });
  });

  it('caches the SDK download so the next resolution finds it', async () => {
    const env = { PATH: '', XDG_CACHE_HOME: path.join(root, 'cache') };
    const sdkDownload = (dir: string) => executable(path.join(dir, 'temporal-sdk-1.0'));
    const first = await resolveTemporalCli({ env, sdkDownload });
    expect(first).toEqual({ path: path.join(temporalCacheDir(env), 'temporal'), source: 'sdk-download' });
    expect(await resolveTemporalCli({ env, sdkDownload: noDownload })).toEqual({ path: first.path, source: 'cache' });
  });

  it('builds with go install into the cache when nothing else worked, and says so', async () => {
    // A stand-in `go` that records its arguments and "builds" into $GOBIN.
    const args = path.join(root, 'go-args');
    await executable(path.join(root, 'go', 'go'), `echo "$@ GOBIN=$GOBIN" > ${args}\nprintf '#!/bin/sh\\necho built\\n' > "$GOBIN/temporal"\n/bin/chmod +x "$GOBIN/temporal"`);
    const env = { PATH: path.join(root, 'go'), XDG_CACHE_HOME: path.join(root, 'cache') };
    const lines: string[] = [];
    const result = await resolveTemporalCli({ env, sdkDownload: noDownload, log: (l) => lines.push(l) });
    expect(result).toEqual({ path: path.join(root, 'cache', 'devflow', 'bin', 'temporal'), source: 'go-install' });
    expect(await readFile(args, 'utf8')).toMatch(new RegExp(`^install ${TEMPORAL_CLI_MODULE} GOBIN=${root}/cache/devflow/bin/.build-`));
    expect(lines.join('\n')).toMatch(/building the Temporal CLI with Go[\s\S]*built the Temporal CLI in \d+ s/);
    expect(await resolveTemporalCli({ env, sdkDownload: noDownload })).toMatchObject({ source: 'cache' });
  });

  it('reports a failed Go build with its output and leaves no binary behind', async () => {
    await executable(path.join(root, 'go', 'go'), 'echo "go: module lookup disabled" >&2; exit 1');
    const env = { PATH: path.join(root, 'go'), XDG_CACHE_HOME: path.join(root, 'cache') };
    await expect(resolveTemporalCli({ env, sdkDownload: noDownload })).rejects.toThrow(/failed \(exit 1\):\ngo: module lookup disabled/);
    await expect(resolveTemporalCli({ env: { ...env, PATH: '' }, sdkDownload: noDownload })).rejects.toMatchObject({ code: 'temporal_cli_not_found' });
  });

  it('says exactly what to install when nothing works', async () => {
    const env = { PATH: '', XDG_CACHE_HOME: path.join(root, 'cache') };
    const error = await resolveTemporalCli({ env, sdkDownload: noDownload }).catch((e) => e);
    expect(error).toMatchObject({ code: 'temporal_cli_not_found' });
    expect(error.recoveryHint).toContain('install the Temporal CLI');
    expect(error.recoveryHint).toContain('TEMPORAL_CLI_PATH');
    expect(error.recoveryHint).toContain(`go install ${TEMPORAL_CLI_MODULE}`);
  });

  it('defaults the cache to ~/.cache/devflow/bin', () => {
    expect(temporalCacheDir({ HOME: '/home/someone' })).toBe('/home/someone/.cache/devflow/bin');
    expect(temporalCacheDir({ HOME: '/home/someone', XDG_CACHE_HOME: '/var/cache/x' })).toBe('/var/cache/x/devflow/bin');
  });
});
