/**
 * The ledger's files are private to the STS's user, whatever the umask: the
 * folder is created 0700, the database (and the lock file) 0600 *before*
 * SQLite opens them. SQLite creates `-wal`, `-shm` and `-journal` with the
 * database file's own mode (unix VFS: `findCreateFileMode`), so they are 0600
 * from birth too: no window in which another local user could open them.
 * Files left by an earlier version (0644) lose their group and other access.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';

/** Creates `dir` (and missing parents) 0700. An existing folder keeps its mode: it may be shared. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Creates the database file 0600 if absent (O_EXCL), else takes group and other access from it and its sidecars. */
export function ensurePrivateDbFile(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) restrictMode(p);
}

function restrictMode(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if ((mode & 0o077) !== 0) chmodSync(path, mode & 0o700);
}
