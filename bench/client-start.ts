/**
 * client_start_ratio: how much slower the self-contained pipeline client
 * (dist/tanuki-sts-client.mjs, built here in memory from the sources, as
 * `npm run build` would) starts than Node itself. Wall time of
 * `node tanuki-sts.mjs --version` ÷ wall time of `node -e 0`, each the median
 * of `runs` runs, alternated so that both see the same machine; the bundle
 * sits alone in an empty folder, as in a pipeline job.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClient } from '../src/service/client-bundle.ts';

export interface ClientStart {
  ratio: number;
  clientMs: number;
  nodeMs: number;
  runs: number;
  bytes: number;
  /** Wall time of all runs, seconds. */
  seconds: number;
}

function timed(args: string[], cwd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

export async function measureClientStart(runs: number): Promise<ClientStart> {
  const { bytes } = await buildClient();
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-bench-client-'));
  try {
    writeFileSync(join(dir, 'tanuki-sts.mjs'), bytes);
    const started = performance.now();
    // One of each first, unmeasured: the file and node itself into the page cache.
    timed(['-e', '0'], dir);
    timed(['tanuki-sts.mjs', '--version'], dir);
    const node: number[] = [];
    const client: number[] = [];
    for (let i = 0; i < runs; i++) {
      node.push(timed(['-e', '0'], dir));
      client.push(timed(['tanuki-sts.mjs', '--version'], dir));
    }
    const nodeMs = median(node);
    const clientMs = median(client);
    return {
      ratio: clientMs / nodeMs,
      clientMs,
      nodeMs,
      runs,
      bytes: bytes.length,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node --import tsx bench/client-start.ts [runs]`: this figure alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await measureClientStart(Number(process.argv[2] ?? 21));
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
