/**
 * Bare git repositories under `<stateDir>/repositories/@hashed/ab/cd/<sha256 of the project id>.git`,
 * GitLab's hashed storage (`doc/administration/repository_storage_paths.md`), so
 * renaming or transferring a project moves nothing on disk. Created with real
 * `git` and a first commit on `main`. The commit is built
 * with plumbing (hash-object, mktree, commit-tree) under a fixed author, date
 * and environment, so it needs no user git config and has the same id on
 * every machine.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GitCommandError } from './errors.ts';

/** An environment for git that ignores the user's and the system's configuration. */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/nonexistent',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    LC_ALL: 'C',
    ...extra,
  };
}

const SEED_AUTHOR = {
  GIT_AUTHOR_NAME: 'GitLab Emulator',
  GIT_AUTHOR_EMAIL: 'emulator@gitlab.example.com',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'GitLab Emulator',
  GIT_COMMITTER_EMAIL: 'emulator@gitlab.example.com',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

export function git(
  args: string[],
  opts: { input?: string | Buffer; env?: Record<string, string> } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      { env: gitEnv(opts.env), encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const e = new GitCommandError(
            `git ${args[0]} failed: ${stderr.toString('utf8').trim().slice(0, 500)}`,
          );
          (e as { exitCode?: unknown }).exitCode = (err as { code?: unknown }).code;
          reject(e);
        } else resolve(stdout);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function repositoriesRoot(stateDir: string): string {
  return join(stateDir, 'repositories');
}

/** `@hashed/ab/cd/<sha256>.git`, relative to the repositories root (GitLab's `Storage::Hashed#disk_path`). */
export function repoRelativePath(projectId: number): string {
  const hash = createHash('sha256').update(String(projectId)).digest('hex');
  return `@hashed/${hash.slice(0, 2)}/${hash.slice(2, 4)}/${hash}.git`;
}

export function repoDir(stateDir: string, projectId: number): string {
  return join(repositoriesRoot(stateDir), repoRelativePath(projectId));
}

/**
 * Creates the bare repository with its first commit unless it exists. A
 * repository left by an older emulator at `<legacyPath>.git` (path-based
 * layout) is moved to the hashed path instead.
 */
export async function ensureRepository(
  stateDir: string,
  projectId: number,
  files: Record<string, string>,
  legacyPath?: string,
): Promise<void> {
  const dir = repoDir(stateDir, projectId);
  if (existsSync(join(dir, 'HEAD'))) return;
  const legacy = legacyPath && join(repositoriesRoot(stateDir), `${legacyPath.toLowerCase()}.git`);
  if (legacy && existsSync(join(legacy, 'HEAD'))) {
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(legacy, dir);
    return;
  }
  mkdirSync(dirname(dir), { recursive: true });
  await git(['init', '--bare', '--quiet', '--initial-branch=main', dir]);
  // Pushes over smart HTTP go through `git http-backend`, which needs this.
  await git(['--git-dir', dir, 'config', 'http.receivepack', 'true']);
  const tree = await buildTree(dir, files);
  const commit = (
    await git(['--git-dir', dir, 'commit-tree', tree, '-m', 'Initial commit'], { env: SEED_AUTHOR })
  )
    .toString('utf8')
    .trim();
  await git(['--git-dir', dir, 'update-ref', 'refs/heads/main', commit]);
}

/**
 * A new project's repository: anything left at its hashed path (a project of
 * the same id in an earlier, unpersisted run) is removed first.
 */
export async function createRepository(
  stateDir: string,
  projectId: number,
  files: Record<string, string>,
): Promise<void> {
  rmSync(repoDir(stateDir, projectId), { recursive: true, force: true });
  await ensureRepository(stateDir, projectId, files);
}

/** A tree object of nested files (path → content). */
async function buildTree(dir: string, files: Record<string, string>): Promise<string> {
  const entries: string[] = [];
  const subdirs = new Map<string, Record<string, string>>();
  for (const [path, content] of Object.entries(files)) {
    const slash = path.indexOf('/');
    if (slash > 0) {
      const sub = subdirs.get(path.slice(0, slash)) ?? {};
      sub[path.slice(slash + 1)] = content;
      subdirs.set(path.slice(0, slash), sub);
      continue;
    }
    const blob = (await git(['--git-dir', dir, 'hash-object', '-w', '--stdin'], { input: content }))
      .toString('utf8')
      .trim();
    entries.push(`100644 blob ${blob}\t${path}`);
  }
  for (const [name, sub] of subdirs) entries.push(`040000 tree ${await buildTree(dir, sub)}\t${name}`);
  const input = entries.length === 0 ? '' : `${entries.join('\n')}\n`;
  return (await git(['--git-dir', dir, 'mktree'], { input })).toString('utf8').trim();
}

/**
 * A file's bytes at a ref (`git cat-file blob <ref>:<path>`), or undefined
 * when the ref or the file does not exist.
 */
export async function readRepositoryFile(
  stateDir: string,
  projectId: number,
  ref: string,
  filePath: string,
): Promise<Buffer | undefined> {
  if (ref.startsWith('-') || ref.includes(':') || filePath.startsWith('/') || filePath.includes('\0'))
    return undefined;
  try {
    return await git(['--git-dir', repoDir(stateDir, projectId), 'cat-file', 'blob', `${ref}:${filePath}`]);
  } catch (err) {
    if (err instanceof GitCommandError) return undefined;
    throw err;
  }
}
