/**
 * The ledger's writer thread: runs the exchange path's writes on its own
 * SQLite connection, group-committed (group-commit.ts), so that the fsync of
 * each commit never blocks the STS's event loop. Messages in:
 * `{id, op: 'insertMinting', row, cap}`, `{id, op: 'markActive', args}`,
 * `{op: 'close'}`; out: `{id, ok: true, value}` or `{id, ok: false, code, message}`.
 * A message is answered only after its transaction is committed (fsynced).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { createGroupCommit } from './group-commit.ts';
import {
  type CapRow,
  configureConnection,
  type MintingRow,
  prepareExchangeWrites,
} from './sqlite-exchange-writes.ts';

type Request =
  | { id: number; op: 'insertMinting'; row: MintingRow; cap: CapRow }
  | { id: number; op: 'markActive'; args: [string, number, string, number | null, string | null] }
  | { op: 'close' };

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const port = parentPort!;
const db = new Database(path);
configureConnection(db, busyTimeoutMs);
const writes = prepareExchangeWrites(db);
const group = createGroupCommit(db);

port.on('message', (m: Request) => {
  if (m.op === 'close') {
    group.flush();
    // After the flush's replies (promise callbacks) have been posted.
    setImmediate(() => {
      db.close();
      port.close();
    });
    return;
  }
  const op =
    m.op === 'insertMinting' ? () => writes.insertMinting(m.row, m.cap) : () => writes.markActive(...m.args);
  group.run(op).then(
    (value) => port.postMessage({ id: m.id, ok: true, value }),
    (err: { code?: string; message?: string }) =>
      port.postMessage({ id: m.id, ok: false, code: err?.code, message: err?.message ?? String(err) }),
  );
});
port.postMessage({ ready: true });
