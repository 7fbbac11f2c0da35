/**
 * Reading secrets (subject tokens, token files, stdin) with limits. A token
 * is a few kilobytes; anything that is not a regular file (`/dev/zero`, a
 * FIFO, a terminal) or that is larger than 64 KiB is a mistake or an attack,
 * and is refused before it costs memory or is uploaded anywhere. The cap and
 * how it relates to the STS's own subject-token limit: util/token-limits.ts.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { MAX_SECRET_INPUT_BYTES } from '../util/token-limits.ts';
import { UsageError } from './errors.ts';

function tooLarge(what: string): UsageError {
  return new UsageError(`${what} is larger than 64 KiB (${MAX_SECRET_INPUT_BYTES} bytes): it is not a token`);
}

/**
 * Reads a regular file of at most 64 KiB. Opened non-blocking so a FIFO
 * cannot hang us before fstat says what it is; symlinks are followed (AKS
 * and CI file variables use them), the file they reach must be regular.
 */
export function readSecretFile(path: string, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new UsageError(
        `${what} ${path} is not a regular file (a device, pipe or directory) — write the token to a file, or pass it in a variable`,
      );
    }
    if (st.size > MAX_SECRET_INPUT_BYTES) throw tooLarge(`${what} ${path}`);
    const bytes = readFdCapped(fd, MAX_SECRET_INPUT_BYTES);
    if (bytes === undefined) throw tooLarge(`${what} ${path}`);
    return bytes.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * An open file's bytes to its end, or undefined when it holds more than `cap`.
 * Reads at most one byte past the cap: a file growing after fstat still
 * cannot make us read more.
 */
export function readFdCapped(fd: number, cap: number): Buffer | undefined {
  const buf = Buffer.alloc(cap + 1);
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, n, buf.length - n, null);
    if (got === 0) break;
    n += got;
    if (n > cap) return undefined;
  }
  return buf.subarray(0, n);
}

/** The same limits for a file another library reads (e.g. AZURE_FEDERATED_TOKEN_FILE), checked without reading it. */
export function checkSecretFile(path: string, what: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    throw new UsageError(`${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!st.isFile()) throw new UsageError(`${what} ${path} is not a regular file`);
  if (st.size > MAX_SECRET_INPUT_BYTES) throw tooLarge(`${what} ${path}`);
}

/** A token handed over in an environment variable: the same 64 KiB cap. */
export function checkSecretSize(value: string, what: string): string {
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_INPUT_BYTES) throw tooLarge(what);
  return value;
}

/** Reads a stream (stdin) up to the cap; more is a usage error, and the rest is not buffered. */
export async function readCapped(stream: AsyncIterable<unknown>, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
    n += b.length;
    if (n > MAX_SECRET_INPUT_BYTES) throw tooLarge(what);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
