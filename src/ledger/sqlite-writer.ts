/**
 * Where the exchange path's two ledger writes run.
 *
 * - `startWriterThread` (files): on a worker thread with its own connection
 *   (sqlite-writer.worker.ts). better-sqlite3 is synchronous, so with
 *   synchronous=FULL each commit's fsync would otherwise stall the event loop
 *   (bench: a quarter of the STS's main thread). Callers still resume only
 *   after their write is committed. If the thread dies, every pending and
 *   later write is rejected: the exchange fails closed (503), nothing is minted
 *   without a record.
 * - `inlineWriter` (`:memory:`, which a second connection cannot share): the
 *   same group commit on the caller's thread.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { createGroupCommit } from './group-commit.ts';
import { type CapRow, type MintingRow, prepareExchangeWrites } from './sqlite-exchange-writes.ts';

export interface LedgerWriter {
  /** Rows inserted (1, or 0 when the cap is reached). */
  insertMinting(row: MintingRow, cap: CapRow): Promise<number>;
  /** Rows changed (1, or 0 when the grant is not `minting`). */
  markActive(
    id: string,
    gitlabTokenId: number,
    tokenSha256: string,
    gitlabUserId: number | null,
    gitlabUsername: string | null,
  ): Promise<number>;
  /** Undefined while writes can succeed; the reason once the writer has stopped. */
  stopped(): Error | undefined;
  close(): Promise<void>;
}

export function inlineWriter(db: Database.Database): LedgerWriter {
  const writes = prepareExchangeWrites(db);
  const group = createGroupCommit(db);
  return {
    insertMinting: (row, cap) => group.run(() => writes.insertMinting(row, cap)),
    markActive: (id, tokenId, sha, userId, username) =>
      group.run(() => writes.markActive(id, tokenId, sha, userId, username)),
    stopped: () => undefined,
    async close() {
      group.flush();
    },
  };
}

/** The worker, loaded as TypeScript through tsx when we run from sources, as JS from dist/. */
function spawnWorker(workerData: unknown): Worker {
  if (import.meta.url.endsWith('.ts')) {
    const bootstrap = `const { workerData } = require('node:worker_threads');
import(workerData.tsx).then((m) => { m.register(); return import(workerData.module); });`;
    return new Worker(bootstrap, {
      eval: true,
      execArgv: [],
      workerData: {
        ...(workerData as object),
        tsx: import.meta.resolve('tsx/esm/api'),
        module: new URL('./sqlite-writer.worker.ts', import.meta.url).href,
      },
    });
  }
  // execArgv: [] — the thread needs none of the process's flags (an inherited --input-type or
  // --eval would even stop it from starting).
  return new Worker(new URL('./sqlite-writer.worker.js', import.meta.url), { workerData, execArgv: [] });
}

class WriterStoppedError extends Error {
  readonly code = 'ERR_LEDGER_WRITER_STOPPED';
  constructor(why: string) {
    super(`the ledger writer thread stopped: ${why}`);
    this.name = 'WriterStoppedError';
  }
}

export function startWriterThread(
  path: string,
  busyTimeoutMs: number,
  /** Called once if the thread stops other than by close() (log it: nothing can be minted any more). */
  onUnexpectedStop: (err: Error) => void = () => {},
): LedgerWriter {
  const worker = spawnWorker({ path, busyTimeoutMs });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let stopped: Error | undefined;
  let exited: Promise<void> | undefined;
  worker.unref();

  let closing = false;
  const stop = (err: Error) => {
    if (!stopped && !closing) onUnexpectedStop(err);
    stopped ??= err;
    for (const p of pending.values()) p.reject(stopped);
    pending.clear();
  };
  exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', (err) => stop(new WriterStoppedError(err.message)));
  worker.on('exit', (code) => stop(new WriterStoppedError(`exit code ${code}`)));
  worker.on(
    'message',
    (m: { id?: number; ok?: boolean; value?: unknown; code?: string; message?: string }) => {
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      // The thread keeps the process alive only while someone waits for it.
      if (pending.size === 0) worker.unref();
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.message ?? 'ledger write failed'), { code: m.code }));
    },
  );

  function call<T>(message: Record<string, unknown>): Promise<T> {
    if (stopped) return Promise.reject(stopped);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, ...message });
    });
  }

  return {
    insertMinting: (row, cap) => call<number>({ op: 'insertMinting', row, cap }),
    markActive: (id, tokenId, sha, userId, username) =>
      call<number>({ op: 'markActive', args: [id, tokenId, sha, userId, username] }),
    stopped: () => stopped,
    async close() {
      closing = true;
      if (!stopped) {
        worker.ref();
        worker.postMessage({ op: 'close' });
      }
      await exited;
      stop(new WriterStoppedError('closed'));
    },
  };
}
