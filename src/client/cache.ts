/**
 * Per-user token cache of the git credential helper, so that one job does
 * not mint a token per git command. One 0600 JSON file per key in a private
 * directory: `$XDG_RUNTIME_DIR/tanuki-sts/` (tmpfs, per login, removed at
 * logout) or `<tmpdir>/tanuki-sts-<uid>/` (0700). Files are replaced
 * atomically (write a temp file, rename), and minting is serialised per key
 * with an O_EXCL lock file so concurrent git processes mint once.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, EXIT } from './errors.ts';
import type { Env } from './settings.ts';

export interface CacheEntry {
  token: string;
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
  scopes: string[] | undefined;
  resource: string;
}

export class CacheError extends ClientError {
  constructor(message: string) {
    super('ERR_CACHE', EXIT.internal, message);
  }
}

export function defaultCacheDir(env: Env): string {
  if (env.TANUKI_CACHE_DIR) return env.TANUKI_CACHE_DIR;
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) {
    try {
      if (statSync(runtime).isDirectory()) return join(runtime, 'tanuki-sts');
    } catch {}
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return join(tmpdir(), `tanuki-sts-${uid}`);
}

/** Creates the directory 0700, or checks an existing one is ours, a real directory, and private. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory())
    throw new CacheError(`token cache ${dir} is not a directory (a symlink?); remove it`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new CacheError(`token cache ${dir} belongs to another user; remove it or set TANUKI_CACHE_DIR`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Reuse a token until a quarter of its life, at most 2 minutes, remains. */
export function isFresh(entry: CacheEntry, now: number): boolean {
  const margin = Math.min(120_000, (entry.expiresAt - entry.issuedAt) / 4);
  return now < entry.expiresAt - margin;
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

  /** A fresh entry, or undefined (missing, unreadable, expiring). */
  get(key: string): CacheEntry | undefined {
    const entry = this.peek(key);
    return entry && isFresh(entry, this.now()) ? entry : undefined;
  }

  /** The entry whatever its age (for erase). */
  peek(key: string): CacheEntry | undefined {
    try {
      const parsed = JSON.parse(readFileSync(this.file(key), 'utf8')) as CacheEntry;
      if (typeof parsed.token !== 'string' || typeof parsed.expiresAt !== 'number') return undefined;
      return parsed;
    } catch {
      return undefined;
    }
  }

  put(key: string, entry: CacheEntry): void {
    ensurePrivateDir(this.dir);
    const tmp = join(this.dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, this.file(key));
  }

  delete(key: string): void {
    rmSync(this.file(key), { force: true });
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
