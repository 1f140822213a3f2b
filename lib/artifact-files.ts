// An agent's artifact on disk, read as a hostile agent may have left it: devflow never follows a
// link (or a folder swapped for one) out of the run's worktree, and never reads more than its
// size limit (DEVFLOW_MAX_ARTIFACT_BYTES). Looking uses lstat and realpath only; reading opens
// the file without following a link and checks the open file is still the one inside.
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DevflowError } from './errors.ts';

export const DEFAULT_MAX_ARTIFACT_BYTES = 4 * 1024 * 1024;

export interface FileSignature {
  size: number;
  mtimeMs: number;
}

export type ArtifactOnDisk =
  | { state: 'absent' }
  /** A regular file inside the worktree, at `real` (its path with every link resolved). */
  | { state: 'file'; real: string; signature: FileSignature }
  /** Something devflow will not read; the signature is of the entry at the path itself (a link's own). */
  | { state: 'refused'; error: DevflowError; signature: FileSignature };

const ABSENT: ArtifactOnDisk = { state: 'absent' };

function isInside(root: string, file: string): boolean {
  return file === root || file.startsWith(root + path.sep);
}

const missing = (error: unknown) => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '');
const signatureOf = (s: Stats): FileSignature => ({ size: s.size, mtimeMs: s.mtimeMs });

/** The file exists but devflow cannot read it: a problem for a person, waiting will not fix it. */
export function unreadable(file: string, error: unknown): DevflowError {
  return new DevflowError({
    code: 'artifact_unreadable',
    message: `devflow cannot read the artifact ${file}: ${(error as Error).message}`,
    recoveryHint: 'make the file (and its folders) readable by the user devflow runs as, then approve this gate',
    cause: error,
  });
}

function outside(file: string, worktree: string | undefined, how: string): DevflowError {
  return new DevflowError({
    code: 'artifact_outside_worktree',
    message: `devflow will not read the artifact ${file}: ${how}; it reads only a regular file inside the run worktree${worktree ? ` ${worktree}` : ''}`,
    recoveryHint: 'write the artifact as a regular file at its path (not a link, not through a folder that is a link), then approve',
    details: { path: file },
  });
}

function tooLarge(file: string, size: string, limit: number): DevflowError {
  return new DevflowError({
    code: 'artifact_too_large',
    message: `the artifact ${file} is ${size} bytes, over the limit of ${limit} bytes (DEVFLOW_MAX_ARTIFACT_BYTES)`,
    recoveryHint: 'have the agent write a smaller artifact, or raise DEVFLOW_MAX_ARTIFACT_BYTES on the worker',
    details: { path: file, limit },
  });
}

/**
 * What is at an artifact path, found with lstat and realpath (nothing is opened): nothing yet, a
 * regular file inside the worktree, or an entry devflow refuses (a link out, a folder on the way
 * that leads out, a file with other hard links). Anything else at the path (a folder, a fifo)
 * counts as nothing yet.
 */
export async function inspectArtifact(worktree: string | undefined, file: string): Promise<ArtifactOnDisk> {
  let entry: Stats;
  try {
    entry = await lstat(file);
  } catch (error) {
    if (missing(error)) return ABSENT;
    throw unreadable(file, error);
  }
  const refuse = (how: string): ArtifactOnDisk => ({ state: 'refused', error: outside(file, worktree, how), signature: signatureOf(entry) });
  if (worktree === undefined || !isInside(path.resolve(worktree), path.resolve(file))) return refuse('its path is not inside a run worktree');
  let root: string;
  let folder: string;
  try {
    root = await realpath(worktree);
    folder = await realpath(path.dirname(file));
  } catch (error) {
    if (missing(error)) return ABSENT; // moved away under us: look again later
    throw unreadable(file, error);
  }
  if (!isInside(root, folder)) return refuse(`a folder on its path is a link: the file is in ${folder}`);
  let real = path.join(folder, path.basename(file));
  if (entry.isSymbolicLink()) {
    let target: string;
    try {
      target = await realpath(real);
    } catch (error) {
      if (!missing(error)) throw unreadable(file, error);
      // A dangling link: refused when it points out, nothing yet when its file is still to come inside.
      const pointed = path.resolve(folder, await readlink(real).catch(() => '.'));
      return isInside(root, pointed) ? ABSENT : refuse(`it is a link to ${pointed}`);
    }
    if (!isInside(root, target)) return refuse(`it is a link to ${target}`);
    real = target;
    try {
      entry = await lstat(real);
    } catch (error) {
      if (missing(error)) return ABSENT;
      throw unreadable(file, error);
    }
  }
  if (!entry.isFile()) return ABSENT;
  // A hard link shares its content with a file elsewhere, maybe outside the worktree.
  if (entry.nlink > 1) return refuse(`it has ${entry.nlink} hard links, so its content may be a file elsewhere`);
  return { state: 'file', real, signature: signatureOf(entry) };
}

/**
 * The artifact's bytes. Refuses (artifact_outside_worktree) what inspectArtifact refuses, and a
 * folder swapped between that look and the open; refuses (artifact_too_large) a file over
 * `maxBytes` by its size, and reads at most one byte past the limit of one that grows meanwhile.
 */
export async function readArtifact(worktree: string | undefined, file: string, maxBytes: number): Promise<Buffer> {
  const found = await inspectArtifact(worktree, file);
  if (found.state === 'refused') throw found.error;
  if (found.state === 'absent') throw unreadable(file, new Error('there is no regular file at this path'));
  if (found.signature.size > maxBytes) throw tooLarge(file, String(found.signature.size), maxBytes);
  let handle: FileHandle;
  try {
    handle = await open(found.real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw outside(file, worktree, 'it became a link while devflow opened it');
    throw unreadable(file, error);
  }
  try {
    // Where the open file really is (Linux says through /proc): a folder swapped since the look shows here.
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && !isInside(await realpath(worktree!), opened)) throw outside(file, worktree, `a folder on its path became a link to ${path.dirname(opened)}`);
    const info = await handle.stat();
    if (!info.isFile()) throw unreadable(file, new Error('it is not a regular file'));
    if (info.nlink > 1) throw outside(file, worktree, `it has ${info.nlink} hard links, so its content may be a file elsewhere`);
    if (info.size > maxBytes) throw tooLarge(file, String(info.size), maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(file, `more than ${maxBytes}`, maxBytes);
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

/**
 * Creates the artifact's folder in the worktree, unless a part of it that exists already leads
 * out (then nothing is made anywhere, and false): `mkdir -p` through a link would make folders
 * outside.
 */
export async function makeFolderInside(worktree: string, folder: string): Promise<boolean> {
  if (!isInside(path.resolve(worktree), path.resolve(folder))) return false;
  const root = await realpath(worktree);
  for (let existing = folder; ; existing = path.dirname(existing)) {
    try {
      if (!isInside(root, await realpath(existing))) return false;
      break;
    } catch (error) {
      if (!missing(error) || path.dirname(existing) === existing) throw error;
    }
  }
  try {
    await mkdir(folder, { recursive: true });
    return true;
  } catch (error) {
    if (['EEXIST', 'ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return false; // a dangling link on the way
    throw error;
  }
}
