/**
 * `npm run bench` cannot rot: the harness runs end to end with tiny windows
 * (`--smoke`): every process starts, every window measures something, the
 * figures are numbers, and the last line printed is the JSON report.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const FIGURES = [
  'garbage_reject_ratio',
  'badsig_reject_ratio',
  'exchange_ratio',
  'exchange_cpu_per_verify',
  'exchange_ratio_postgres',
  'postgres_vs_sqlite',
  'cap_check_cost',
  'concurrency_efficiency',
  'policy_scaling',
  'gitlab_calls_per_exchange',
  'reaper_rate',
  'rss_growth_mb',
  'client_start_ratio',
];

describe('bench harness (smoke)', () => {
  it('measures every figure and ends with the JSON line', { timeout: 110_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'tanuki-bench-smoke-'));
    try {
      const out = join(dir, 'latest.json');
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
        encoding: 'utf8',
        timeout: 100_000,
      });
      assert.equal(r.status, 0, `bench exited ${r.status}\n${r.stderr}\n${r.stdout}`);
      const lines = r.stdout.trimEnd().split('\n');
      const last = JSON.parse(lines[lines.length - 1] ?? '');
      const file = JSON.parse(readFileSync(out, 'utf8'));
      assert.deepEqual(last, file);
      assert.equal(last.mode, 'smoke');
      assert.ok(last.baselines.hello.rps > 0, 'hello measured');
      assert.ok(last.baselines.verify.cpuUsPerVerify > 0, 'verify measured');
      assert.deepEqual(Object.keys(last.figures).sort(), [...FIGURES].sort());
      for (const name of FIGURES) {
        const f = last.figures[name];
        assert.equal(typeof f.value, 'number', name);
        assert.ok(Number.isFinite(f.value), `${name} is ${f.value}`);
        assert.equal(typeof f.met, 'boolean', name);
        assert.ok(f.cpu.wall > 0, `${name} has a window`);
      }
      assert.ok(last.figures.exchange_ratio.detail.rps > 0, 'exchanges succeeded');
      assert.ok(last.figures.exchange_cpu_per_verify.cpu.sts > 0, 'STS CPU time read');
      assert.ok(last.figures.exchange_ratio_postgres.detail.rps > 0, 'exchanges on PostgreSQL succeeded');
      assert.ok(last.figures.cap_check_cost.detail.onRps > 0, 'exchanges with the cap on succeeded');
      assert.ok(
        last.figures.cap_check_cost.detail.windows.every(
          (w: { status: Record<string, number> }) => !w.status['429'],
        ),
        'the cap was never reached',
      );
      assert.ok(last.figures.reaper_rate.detail.revoked > 0, 'the reaper revoked grants');
      assert.ok(last.figures.client_start_ratio.detail.clientMs > 0, 'the client started');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
