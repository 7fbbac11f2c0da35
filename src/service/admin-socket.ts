/**
 * The admin socket (`server.adminSocket`): a Unix socket on which the running
 * STS takes `reload` from `tanuki-sts reload --config F` and answers with the
 * result, so the operator learns at once whether the new configuration was
 * applied (a signal could not say). Chosen over a pid file: no stale pid that
 * names another process after a restart, the file's permissions say who may
 * use it, and the answer comes back on the same connection.
 *
 * The socket is `0600` (its folder created `0700` when missing): only the
 * STS's own user (and root) may connect. A path that exists is used only if it
 * is a socket nobody answers on (a stale one, removed); a socket another
 * process answers on, or any other file, stops the start.
 *
 * The protocol: the client sends one line, `reload`; the server answers one
 * JSON line (`ReloadResult`) and closes. Anything else gets
 * `{"outcome":"error","errors":["unknown command"]}`; more than 64 bytes, or
 * nothing within 5 s, closes the connection.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import type { ReloadResult } from './reload.ts';

const MAX_COMMAND_BYTES = 64;
const COMMAND_TIMEOUT_MS = 5000;

export interface AdminSocket {
  path: string;
  close(): Promise<void>;
}

/** Whether something answers on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function startAdminSocket(
  path: string,
  handlers: { reload(): Promise<ReloadResult> },
): Promise<AdminSocket> {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  let stat: ReturnType<typeof lstatSync> | undefined;
  try {
    stat = lstatSync(path);
  } catch {
    stat = undefined;
  }
  if (stat) {
    if (!stat.isSocket()) {
      throw new Error(`server.adminSocket: ${path} exists and is not a socket (left as it is)`);
    }
    if (await answers(path)) {
      throw new Error(
        `server.adminSocket: another process answers on ${path} (is another tanuki-sts running?)`,
      );
    }
    rmSync(path, { force: true });
  }

  const server: Server = createServer((conn) => {
    let buf = '';
    let done = false;
    conn.setEncoding('utf8');
    conn.setTimeout(COMMAND_TIMEOUT_MS, () => conn.destroy());
    const answer = (r: ReloadResult) => {
      if (!conn.destroyed) conn.end(`${JSON.stringify(r)}\n`);
    };
    conn.on('data', (chunk: string) => {
      if (done) return;
      buf += chunk;
      if (Buffer.byteLength(buf) > MAX_COMMAND_BYTES) {
        done = true;
        conn.destroy();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      done = true;
      // The reload may take a while (new issuers' discovery): no command timeout while it runs.
      conn.setTimeout(0);
      const command = buf.slice(0, nl).trim();
      if (command !== 'reload') {
        answer({ outcome: 'error', applied: [], restartRequired: [], errors: ['unknown command'] });
        return;
      }
      handlers
        .reload()
        .then(answer, () =>
          answer({ outcome: 'error', applied: [], restartRequired: [], errors: ['reload failed'] }),
        );
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    server.close();
    throw err;
  }
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Node removes the socket file when the server closes; this covers a close() that cannot.
        rmSync(path, { force: true });
      }),
  };
}

/** The client side: send `reload` to the socket at `path` and return the server's answer. */
export function requestReload(path: string, timeoutMs = 120_000): Promise<ReloadResult> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let buf = '';
    c.setEncoding('utf8');
    c.setTimeout(timeoutMs, () => {
      c.destroy();
      reject(new Error(`no answer on ${path} within ${Math.round(timeoutMs / 1000)} s`));
    });
    c.once('connect', () => c.write('reload\n'));
    c.on('data', (d: string) => {
      buf += d;
      if (buf.length > 1_000_000) c.destroy(new Error('answer too long'));
    });
    c.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new Error(`nothing answers on ${path}: is tanuki-sts serve running with this configuration?`)
          : err.code === 'EACCES'
            ? new Error(`permission denied on ${path}: run as the user tanuki-sts serve runs as`)
            : err,
      );
    });
    c.once('end', () => {
      try {
        const r = JSON.parse(buf.trim()) as ReloadResult;
        if (r.outcome !== 'success' && r.outcome !== 'error') throw new Error('bad outcome');
        resolve(r);
      } catch {
        reject(new Error(`unexpected answer on ${path}`));
      }
    });
  });
}
