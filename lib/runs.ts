// Where a run's files live, and the check that its source exists: shared by the worker (which
// makes the worktree), the API (which refuses a bad request before writing anything) and reports.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DevflowError } from './errors.ts';
import { gitOk } from './git.ts';

export function worktreePathFor(workspaceRoot: string, runId: string): string {
  return path.join(workspaceRoot, runId, 'main');
}

/** The run worktree a path lies in, by its place under the workspace root; undefined: in none. */
export function worktreeHolding(workspaceRoot: string | undefined, file: string): string | undefined {
  if (!workspaceRoot) return undefined;
  const runId = path.relative(path.resolve(workspaceRoot), path.resolve(file)).split(path.sep)[0];
  if (!runId || runId === '..' || path.isAbsolute(runId)) return undefined;
  const worktree = worktreePathFor(path.resolve(workspaceRoot), runId);
  return path.resolve(file).startsWith(worktree + path.sep) ? worktree : undefined;
}

export function runBranch(runId: string): string {
  return `devflow/${runId}`;
}

/** Refuses a repo path that is not a git repository, or a base branch it does not have. */
export async function checkRunSource(repoPath: string, baseBranch: string): Promise<void> {
  if (!path.isAbsolute(repoPath) || !existsSync(repoPath)) {
    throw new DevflowError({ code: 'repo_path_invalid', message: `repoPath ${repoPath} must be an absolute path to an existing folder` });
  }
  if (!(await gitOk(repoPath, ['rev-parse', '--git-dir']))) {
    throw new DevflowError({ code: 'repo_not_git', message: `repoPath ${repoPath} is not a git repository` });
  }
  if (!(await gitOk(repoPath, ['rev-parse', '--verify', '--quiet', `refs/heads/${baseBranch}^{commit}`]))) {
    throw new DevflowError({
      code: 'base_branch_not_found',
      message: `baseBranch ${baseBranch} does not exist in ${repoPath}`,
    });
  }
}

export function reportPathFor(workspaceRoot: string, runId: string): string {
  return path.join(workspaceRoot, `${runId}.report.md`);
}
