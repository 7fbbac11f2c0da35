/**
 * The GitLab emulator as the bench drives it: its own process
 * (`tanuki-sts emulate gitlab`), plus its admin API for added latency and
 * request counters.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GITLAB_TOKEN_PATTERN } from '../src/util/token-patterns.ts';
import { CLI, type Proc, spawnCli } from './procs.ts';

export interface GitlabEmu {
  url: string;
  adminToken: string;
  proc: Proc;
  setLatency(ms: number): Promise<void>;
  resetStats(): Promise<void>;
  /** GitLab API (/api/v4) requests since the last reset. */
  apiRequests(): Promise<number>;
  /** The same, by route (`POST /projects/:id/access_tokens` …). */
  byRoute(): Promise<Record<string, number>>;
}

async function call(url: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The admin PAT of the built-in seed (`root`, token `tanuki-sts-admin`), kept in `<stateDir>/seed-tokens.json`. */
function findAdminToken(stateDir: string, output: string): string {
  const file = join(stateDir, 'seed-tokens.json');
  if (existsSync(file)) {
    const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const flat = (v: unknown): string | undefined =>
      typeof v === 'string'
        ? v
        : v && typeof v === 'object'
          ? flat((v as Record<string, unknown>).token ?? (v as Record<string, unknown>).value)
          : undefined;
    const admin =
      flat(all['root/tanuki-sts-admin']) ??
      Object.entries(all)
        .filter(([k]) => k.startsWith('root/'))
        .map(([, v]) => flat(v))[0];
    if (admin) return admin;
  }
  const fromOutput = output.match(GITLAB_TOKEN_PATTERN)?.[0];
  if (fromOutput) return fromOutput;
  throw new Error(`GitLab emulator: admin token not found in ${file}`);
}

export async function startGitlabEmu(stateDir: string): Promise<GitlabEmu> {
  const prof = process.env.BENCH_PROF_EMU;
  const proc = spawnCli(
    'gitlab-emulator',
    ['emulate', 'gitlab', '--port', '0', '--state-dir', stateDir],
    {},
    prof ? ['--cpu-prof', '--cpu-prof-dir', prof, CLI] : [CLI],
  );
  const m = await proc.waitFor(/GitLab emulator listening on (http:\/\/\S+)/, 60_000);
  const url = (m[1] ?? '').replace(/\/+$/, '');
  const adminToken = findAdminToken(stateDir, proc.output());
  return {
    url,
    adminToken,
    proc,
    async setLatency(ms) {
      // Replaces the whole fault config: only added latency, and no rate limit.
      await call(`${url}/_emulator/faults`, 'POST', { latencyMs: ms, rateLimit: null });
    },
    async resetStats() {
      await call(`${url}/_emulator/stats/reset`, 'POST');
    },
    async apiRequests() {
      const stats = (await call(`${url}/_emulator/stats`, 'GET')) as Record<string, unknown>;
      return countApi(stats);
    },
    async byRoute() {
      const stats = (await call(`${url}/_emulator/stats`, 'GET')) as { byRoute?: Record<string, number> };
      return stats.byRoute ?? {};
    },
  };
}

/** Total /api/v4 requests from the emulator's counters (shape: see src/emulators/gitlab). */
export function countApi(stats: Record<string, unknown>): number {
  if (typeof stats.apiRequests === 'number') return stats.apiRequests;
  if (typeof stats.requests === 'number') return stats.requests;
  let total = 0;
  const walk = (v: unknown) => {
    if (typeof v === 'number') total += v;
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(stats.requests ?? stats);
  return total;
}
