/**
 * Per-user token cache of the git credential helper, so that one job does
 * not mint a token per git command. One 0600 JSON file per key in a private
 * directory: `$XDG_RUNTIME_DIR/tanuki-sts/` (tmpfs, per login, removed at
 * logout) or `<tmpdir>/tanuki-sts-<uid>/` (0700). Files are replaced
 * atomically (write a temp file, rename), and minting is serialised per key
 * with an O_EXCL lock file so concurrent git processes mint once.
 *
 * On a shared host another local user can pre-create `/tmp/tanuki-sts-<uid>`
 * (the name is predictable) and plant entries under keys computed from
 * public values. So the folder is checked before every read (ours, a real
 * directory, private), each file is opened without following symlinks and
 * checked with fstat (ours, a regular file, 0600), every token read back must
 * be token-shaped, and a hostile default folder is abandoned for a fresh
 * private one (mkdtemp) — sticky /tmp keeps us from removing theirs.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, EXIT } from './errors.ts';
import { readFdCapped } from './secret-input.ts';
import type { Env } from './settings.ts';
import { isTokenShaped, isUsernameShaped } from './trust.ts';

export interface CacheEntry {
  token: string;
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
  scopes: string[] | undefined;
  resource: string;
  /** STS base URL that issued the token: the only place it may be revoked (revoke-all). */
  sts?: string;
  /** CI job the token was minted for (CI_JOB_ID…), so revoke-all leaves other jobs' tokens alone. */
  session?: string;
  /** The username to hand git with the token (the STS's `gitlab_username`); absent: `oauth2`. */
  username?: string;
}

export class CacheError extends ClientError {
  constructor(message: string) {
    super('ERR_CACHE', EXIT.internal, message);
  }
}

const ENTRY_FILE = /^[0-9a-f]{40}\.json$/;
/** A cache file is a few hundred bytes; anything larger is not ours. */
const MAX_ENTRY_BYTES = 16 * 1024;

function myUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/**
 * Why `dir` is not a safe private folder, `'missing'`, or undefined when it
 * is ours, a real directory (not a symlink) and 0700. A folder of ours that
 * is group/world-accessible is tightened rather than refused: only we (or
 * root) could have loosened it, and every file in it is checked on its own.
 */
export function inspectDir(dir: string, tighten = true): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return `cannot be inspected (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  const me = myUid();
  if (me !== undefined && st.uid !== me) return `belongs to uid ${st.uid}, not to you (uid ${me})`;
  if ((st.mode & 0o077) !== 0) {
    if (!tighten) return 'is accessible to other users';
    try {
      chmodSync(dir, 0o700);
    } catch {
      return 'is accessible to other users and cannot be made private';
    }
  }
  return undefined;
}

/** Creates the directory 0700, or checks an existing one is ours, a real directory, and private. */
export function ensurePrivateDir(dir: string): void {
  let problem = inspectDir(dir);
  if (problem === 'missing') {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new CacheError(
        `cannot create the token cache ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    problem = inspectDir(dir);
  }
  if (problem !== undefined)
    throw new CacheError(`token cache ${dir} ${problem}; remove it or set TANUKI_CACHE_DIR`);
}

export interface CacheDirChoice {
  dir: string;
  /** Set when the default folder was hostile and a fresh one is used: say so on stderr. */
  notice?: string;
}

function tmpOf(env: Env): string {
  return env.TMPDIR && env.TMPDIR.trim() !== '' ? env.TMPDIR : tmpdir();
}

/** The default folder (no hostility check): `$XDG_RUNTIME_DIR/tanuki-sts` or `<tmp>/tanuki-sts-<uid>`. */
export function defaultCacheDir(env: Env): string {
  if (env.TANUKI_CACHE_DIR) return env.TANUKI_CACHE_DIR;
  const runtime = env.XDG_RUNTIME_DIR;
  // XDG_RUNTIME_DIR is per user and 0700: nobody else can pre-create a folder in it.
  if (runtime && inspectDir(runtime, false) === undefined) return join(runtime, 'tanuki-sts');
  return join(tmpOf(env), `tanuki-sts-${myUid() ?? 'user'}`);
}

/**
 * Where to cache. An explicit TANUKI_CACHE_DIR is used as given (a hostile
 * one is an error at use, never silently replaced). A hostile default folder
 * is replaced by a fresh private `<tmp>/tanuki-sts-<uid>.XXXXXX`; later
 * processes find the same one again (a folder owned by us with that prefix
 * can only be ours: another user cannot create a folder owned by us).
 */
export function chooseCacheDir(env: Env): CacheDirChoice {
  const dir = defaultCacheDir(env);
  if (env.TANUKI_CACHE_DIR) return { dir };
  let problem = inspectDir(dir);
  if (problem === 'missing') {
    try {
      // Not recursive under /tmp: the parent exists, and creating it now closes the window
      // in which another user could create it between our check and our first write.
      mkdirSync(dir, { mode: 0o700 });
    } catch {}
    problem = inspectDir(dir);
  }
  if (problem === undefined) return { dir };
  const tmp = tmpOf(env);
  const prefix = `tanuki-sts-${myUid() ?? 'user'}.`;
  let fresh: string | undefined;
  try {
    fresh = readdirSync(tmp)
      .filter((n) => n.startsWith(prefix))
      .sort()
      .map((n) => join(tmp, n))
      .find((p) => inspectDir(p) === undefined);
  } catch {}
  fresh ??= mkdtempSync(join(tmp, prefix));
  return {
    dir: fresh,
    notice: `the default token cache ${dir} ${problem}: not using it, caching in ${fresh} instead (another local user may have created it; an administrator can remove it)`,
  };
}

/** Reuse a token until a quarter of its life, at most 2 minutes, remains. */
export function isFresh(entry: CacheEntry, now: number): boolean {
  const margin = Math.min(120_000, (entry.expiresAt - entry.issuedAt) / 4);
  return now < entry.expiresAt - margin;
}

function isEntry(v: unknown): v is CacheEntry {
  const e = v as CacheEntry;
  return (
    typeof e === 'object' &&
    e !== null &&
    isTokenShaped(e.token) &&
    typeof e.expiresAt === 'number' &&
    typeof e.issuedAt === 'number' &&
    (e.sts === undefined || typeof e.sts === 'string') &&
    (e.session === undefined || typeof e.session === 'string') &&
    (e.username === undefined || isUsernameShaped(e.username))
  );
}

/**
 * Reads one cache file: not through a symlink (O_NOFOLLOW), only a regular
 * file of ours that nobody else can read or write (fstat on the open file,
 * so a swap after a check cannot fool us), and only a token-shaped token.
 */
function readEntryFile(file: string): CacheEntry | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const me = myUid();
    if (!st.isFile() || (me !== undefined && st.uid !== me) || (st.mode & 0o077) !== 0) return undefined;
    if (st.size > MAX_ENTRY_BYTES) return undefined;
    const bytes = readFdCapped(fd, MAX_ENTRY_BYTES);
    if (bytes === undefined) return undefined;
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return isEntry(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export class TokenCache {
  constructor(
    readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {}

  static keyOf(parts: unknown[]): string {
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 40);
  }

  private file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /** A fresh entry, or undefined (missing, unreadable, expiring, not ours). */
  get(key: string): CacheEntry | undefined {
    const entry = this.peek(key);
    return entry && isFresh(entry, this.now()) ? entry : undefined;
  }

  /** The entry whatever its age (for erase); nothing is read from a folder that is not ours and private. */
  peek(key: string): CacheEntry | undefined {
    if (inspectDir(this.dir) !== undefined) return undefined;
    return readEntryFile(this.file(key));
  }

  /** Every readable entry (for revoke-all and `store`), with its key. */
  entries(): Array<{ key: string; entry: CacheEntry }> {
    if (inspectDir(this.dir) !== undefined) return [];
    const out: Array<{ key: string; entry: CacheEntry }> = [];
    for (const name of readdirSync(this.dir)) {
      if (!ENTRY_FILE.test(name)) continue;
      const entry = readEntryFile(join(this.dir, name));
      if (entry) out.push({ key: name.slice(0, -'.json'.length), entry });
    }
    return out;
  }

  put(key: string, entry: CacheEntry): void {
    ensurePrivateDir(this.dir);
    const tmp = join(this.dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, this.file(key));
  }

  delete(key: string): void {
    if (inspectDir(this.dir) !== undefined) return;
    rmSync(this.file(key), { force: true });
  }

  /** Temp files a crashed writer left behind (they may hold a token), older than `minAgeMs`. */
  removeLeftovers(minAgeMs = 60_000): void {
    if (inspectDir(this.dir) !== undefined) return;
    for (const name of readdirSync(this.dir)) {
      if (!/^\..*\.tmp$/.test(name)) continue;
      const p = join(this.dir, name);
      try {
        if (Date.now() - lstatSync(p).mtimeMs >= minAgeMs) rmSync(p, { force: true });
      } catch {}
    }
  }

  /**
   * Runs `fn` holding the key's lock. A lock older than `staleMs` is taken
   * over (its holder died); after `waitMs` we go ahead without it — minting
   * twice is better than failing a build.
   */
  async withLock<T>(key: string, fn: () => Promise<T>, waitMs = 20_000, staleMs = 60_000): Promise<T> {
    ensurePrivateDir(this.dir);
    const lock = join(this.dir, `${key}.lock`);
    const deadline = Date.now() + waitMs;
    let held = false;
    while (!held) {
      try {
        writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
        held = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          if (Date.now() - statSync(lock).mtimeMs > staleMs) rmSync(lock, { force: true });
        } catch {}
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
    try {
      return await fn();
    } finally {
      if (held) rmSync(lock, { force: true });
    }
  }
}
