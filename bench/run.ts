/**
 * `npm run bench` (full, a few minutes) and `npm run bench -- --quick` (under
 * a minute, same measurements with fewer samples). Prints a table, writes
 * bench/results/latest.json, and prints that JSON on one line as the very
 * last line. Exits 0 whenever the measurements complete, goals met or not;
 * 1 when a measurement could not be made.
 *
 * Options: --quick, --out <file> (default bench/results/latest.json),
 * --smoke (tiny windows, for the smoke test only: the figures mean nothing).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FIGURE_ORDER, GOALS } from './figures.ts';
import { type BenchReport, type CpuUse, FULL, QUICK, runBench, SMOKE } from './harness.ts';
import { BENCH_DIR } from './procs.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const fmt = (v: number, digits = 3) =>
  Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v);
const pct = (cpu: number | undefined, wall: number) =>
  cpu === undefined ? '-' : `${Math.round((cpu / wall) * 100)}%`;

function cpuCell(c: CpuUse): string {
  const parts = [`load ${pct(c.loadgen, c.wall)}`];
  if (c.hello !== undefined) parts.push(`hello ${pct(c.hello, c.wall)}`);
  if (c.sts !== undefined) parts.push(`sts ${pct(c.sts, c.wall)}`);
  if (c.emulator !== undefined) parts.push(`gitlab ${pct(c.emulator, c.wall)}`);
  if (c.postgres !== undefined) parts.push(`pg ${pct(c.postgres, c.wall)}`);
  return `${parts.join(' ')} of ${c.wall.toFixed(1)} s`;
}

export function table(r: BenchReport): string {
  const rows: string[][] = [['figure', 'value', 'goal', 'met', 'CPU (share of one core, per process)']];
  rows.push(['hello rps (baseline)', fmt(r.baselines.hello.rps, 5), '', '', cpuCell(r.baselines.hello.cpu)]);
  rows.push([
    'verify µs CPU (baseline)',
    fmt(r.baselines.verify.cpuUsPerVerify),
    '',
    '',
    'verify 100% (own process)',
  ]);
  for (const name of FIGURE_ORDER) {
    const f = r.figures[name];
    rows.push([
      name,
      fmt(f.value),
      `${GOALS[name].op} ${GOALS[name].limit}`,
      f.met ? 'yes' : 'NO',
      cpuCell(f.cpu),
    ]);
  }
  for (const [name, f] of Object.entries(r.floors ?? {})) {
    rows.push([`floor: ${name} (ratio)`, fmt(f.ratio), '', '', cpuCell(f.cpu)]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(rows[0] ?? []),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    '',
    `${r.met}/${r.total} goals met (${r.mode}, ${r.seconds} s, ${r.machine.cpus} × ${r.machine.model}, node ${r.machine.node})`,
  ].join('\n');
}

async function main(): Promise<number> {
  const settings = process.argv.includes('--smoke') ? SMOKE : process.argv.includes('--quick') ? QUICK : FULL;
  const out = arg('--out') ?? join(BENCH_DIR, 'results', 'latest.json');
  let report: BenchReport;
  try {
    report = await runBench(settings);
  } catch (err) {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    return 1;
  }
  const json = JSON.stringify(report);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${table(report)}\nresults: ${out}\n`);
  // The last line, on stdout and stderr together: the JSON on one line.
  process.stdout.write(`${json}\n`);
  return 0;
}

process.exitCode = await main();
