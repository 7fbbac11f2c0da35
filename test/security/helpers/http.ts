/** Raw HTTP for what fetch will not do: streamed oversized bodies, stalled and drip-fed requests. */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
  ms: number;
}

/**
 * POST a body of `totalBytes` (a prefix, then filler) in 64 KiB chunks, with
 * Content-Length or chunked. Resolves with the server's answer as soon as it
 * comes, and stops writing then.
 */
export function streamPost(
  url: string,
  opts: { prefix: string; totalBytes: number; chunked?: boolean; filler?: string; contentType?: string },
): Promise<RawResponse> {
  const started = performance.now();
  const u = new URL(url);
  const headers: Record<string, string> = {
    'content-type': opts.contentType ?? 'application/x-www-form-urlencoded',
  };
  if (!opts.chunked) headers['content-length'] = String(opts.totalBytes);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, agent: false },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: RawResponse['json'];
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json,
            ms: performance.now() - started,
          });
          req.destroy();
        });
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const filler = Buffer.alloc(64 * 1024, opts.filler ?? 'A');
    let sent = 0;
    const first = Buffer.from(opts.prefix);
    const write = () => {
      while (!answered && !req.destroyed && sent < opts.totalBytes) {
        const chunk =
          sent === 0 ? first : filler.subarray(0, Math.min(filler.length, opts.totalBytes - sent));
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', write);
          return;
        }
      }
      if (!answered && !req.destroyed) req.end();
    };
    write();
  });
}

export interface SlowResult {
  /** How the server ended it: an HTTP status line it sent, or 'closed'. */
  outcome: string;
  ms: number;
  bytesSent: number;
}

/**
 * Opens a raw connection, sends `head`, then `dripBytes` one byte every
 * `dripMs` (0 = nothing more). Resolves when the server answers or closes the
 * connection, or after `giveUpMs`.
 */
export function slowRequest(
  url: string,
  opts: { head: string; dripMs: number; dripBytes?: number; giveUpMs: number },
): Promise<SlowResult> {
  const u = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const sock: Socket = connect(Number(u.port), u.hostname);
    let bytesSent = 0;
    let timer: NodeJS.Timeout | undefined;
    let received = '';
    const done = (outcome: string) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      sock.destroy();
      resolve({ outcome, ms: performance.now() - started, bytesSent });
    };
    const giveUp = setTimeout(() => done('still open'), opts.giveUpMs);
    sock.on('connect', () => {
      sock.write(opts.head);
      bytesSent += opts.head.length;
      if (opts.dripMs > 0) {
        let left = opts.dripBytes ?? Number.POSITIVE_INFINITY;
        timer = setInterval(() => {
          if (left-- <= 0 || sock.destroyed) return;
          sock.write('A');
          bytesSent++;
        }, opts.dripMs);
      }
    });
    sock.on('data', (d) => {
      received += d.toString('latin1');
      const line = received.split('\r\n')[0];
      if (line?.startsWith('HTTP/')) done(line);
    });
    sock.on('close', () => done('closed'));
    sock.on('error', () => done('closed'));
  });
}
