/**
 * reaper_rate, in its own process: the real STS (startSts, background loops
 * off) on a real SQLite ledger, with a clock this process can move. The bench
 * mints the grants through ordinary exchanges (load generator → /token →
 * GitLab emulator), then this process moves the clock past their TTL so that
 * every grant falls due at the same instant, and times the reaper's passes
 * (real GitLab client, real emulator with added latency) until all are revoked.
 *
 * IPC: {cmd:'start', config, baseDir} → {url}; {cmd:'reap', advanceMs, expect}
 * → {revoked, failed, seconds, passes}; {cmd:'stop'} → {}.
 */
import { parseConfig } from '../src/config/index.ts';
import { type StsHandle, startSts } from '../src/service/server.ts';

let offset = 0;
const now = () => Date.now() + offset;
let sts: StsHandle | undefined;

type Msg =
  | { cmd: 'start'; config: unknown; baseDir: string }
  | { cmd: 'reap'; advanceMs: number; expect: number }
  | { cmd: 'stop' };

async function handle(msg: Msg): Promise<unknown> {
  if (msg.cmd === 'start') {
    const config = parseConfig(msg.config, { baseDir: msg.baseDir, env: {} });
    sts = await startSts({ config, logger: false, background: false, now });
    return { url: sts.url };
  }
  if (msg.cmd === 'reap') {
    if (!sts) throw new Error('not started');
    offset += msg.advanceMs;
    const t0 = performance.now();
    let revoked = 0;
    let failed = 0;
    let passes = 0;
    // One pass claims every due grant in batches; more passes only if some failed (backoff) — bounded.
    while (revoked < msg.expect && passes < 20) {
      const r = (await sts.reapNow()) as { revoked: number; failed: number };
      passes++;
      revoked += r.revoked;
      failed += r.failed;
      if (r.revoked === 0 && r.failed === 0) break;
    }
    return { revoked, failed, passes, seconds: (performance.now() - t0) / 1000 };
  }
  if (msg.cmd === 'stop') {
    await sts?.close();
    sts = undefined;
    return {};
  }
  throw new Error('unknown command');
}

process.on('message', (msg: Msg) => {
  handle(msg).then(
    (r) => process.send?.(r),
    (err: Error) => process.send?.({ error: err.stack ?? err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
