// The run workflows' bundle, built in a process of its own. Bundling (webpack) grows the process
// that does it by ~100 MB it never gives back; in a child that memory leaves with the child,
// and the worker only reads the finished code (measured: `npm run bench`, worker RSS parked).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';

const THIS_FILE = fileURLToPath(import.meta.url);
// Resolved from here, not from the working directory, which may be any folder `devflow` runs in.
const TSX_LOADER = import.meta.resolve('tsx');

/** Bundles the workflows at `workflowsPath` in a child process and returns the code; fails with the child's output. */
export async function bundleWorkflowsApart(workflowsPath: string): Promise<WorkflowBundle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devflow-bundle-'));
  const file = path.join(dir, 'workflows.js');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX_LOADER, THIS_FILE, workflowsPath, file], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`bundling the workflows failed (${signal ?? `exit ${code}`}): ${text.trim().slice(-2000)}`))));
    });
    return { code: await readFile(file, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// As a child: bundle the workflows named on the command line into the file named after them.
if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const [workflowsPath, target] = process.argv.slice(2);
  if (!workflowsPath || !target) throw new Error('usage: worker/bundle.ts <workflows file> <output file>');
  const quiet = { trace() {}, debug() {}, info() {}, warn: console.error, error: console.error, log() {} };
  const bundle = await bundleWorkflowCode({ workflowsPath, logger: quiet as never });
  await writeFile(target, bundle.code);
}
