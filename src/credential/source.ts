/**
 * Where the STS's GitLab token lives, read again at every refresh and written
 * back after a rotation:
 *
 * - `inline` and `env`: the value the configuration gave, fixed for the life
 *   of the process; nothing can be written back (rotation refuses them).
 * - `file`: read again each time (trimmed); written by replacing the file
 *   atomically — a new file, mode 0600, in the same folder, fsynced, renamed
 *   over the old one, the folder fsynced — so a reader (another replica on a
 *   shared volume, a crash) sees the old value or the new one, never half.
 * - `keyVault`: keyvault.ts.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CredentialSourceError } from './errors.ts';
import { openKeyVaultSource } from './keyvault.ts';
import { type CredentialSourceSpec, describeSource } from './types.ts';

export interface CredentialSource {
  readonly kind: CredentialSourceSpec['kind'];
  /** For people: `Key Vault https://…, secret gitlab-token`, `file /run/…`; never a value. */
  readonly description: string;
  /** Whether `write` can store a rotated token here (`file`, `keyVault`). */
  readonly writable: boolean;
  /** The current value. Throws CredentialSourceError naming the source and the cause. */
  read(): Promise<string>;
  /** Store a new value (a new Key Vault version, the file replaced); returns the version if there is one. */
  write(value: string): Promise<{ version?: string }>;
  close(): Promise<void>;
}

export interface OpenSourceOptions {
  /** The value the configuration read (`inline`, `env`, `file` at load time). */
  value: string;
  /** Deadline of one Key Vault call (default 30 s). */
  timeoutMs?: number;
}

export function openCredentialSource(spec: CredentialSourceSpec, o: OpenSourceOptions): CredentialSource {
  switch (spec.kind) {
    case 'inline':
    case 'env':
      return fixedSource(spec, o.value);
    case 'file':
      return fileSource(spec.path);
    case 'keyVault':
      return openKeyVaultSource(spec, { timeoutMs: o.timeoutMs ?? 30_000 });
  }
}

function fixedSource(spec: CredentialSourceSpec, value: string): CredentialSource {
  const description = describeSource(spec);
  return {
    kind: spec.kind,
    description,
    writable: false,
    async read() {
      if (!value) throw new CredentialSourceError(`${description} is empty`);
      return value;
    },
    async write() {
      throw new CredentialSourceError(`${description} cannot be written: a rotated token has nowhere to go`);
    },
    async close() {},
  };
}

export function fileSource(path: string): CredentialSource {
  const description = `file ${path}`;
  return {
    kind: 'file',
    description,
    writable: true,
    async read() {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        throw new CredentialSourceError(
          `cannot read ${description} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          true,
        );
      }
      const value = text.trim();
      if (!value) throw new CredentialSourceError(`${description} is empty`, true);
      return value;
    },
    async write(value: string) {
      replaceFileAtomically(path, `${value}\n`);
      return {};
    },
    async close() {},
  };
}

/**
 * A new file beside `path` (mode 0600 whatever the umask, created exclusively), written and
 * fsynced, renamed over `path`, then the folder fsynced so the rename survives a power cut.
 * Throws CredentialSourceError (the temporary file removed) naming the file and the errno.
 */
export function replaceFileAtomically(path: string, content: string): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new CredentialSourceError(
      `cannot write file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      true,
    );
  }
  try {
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // Some file systems cannot fsync a folder; the rename itself has happened.
  }
}
