/** The bench figures (docs/performance.md): names, goals, and how a value compares with its goal. */
export type FigureName =
  | 'garbage_reject_ratio'
  | 'badsig_reject_ratio'
  | 'exchange_ratio'
  | 'exchange_cpu_per_verify'
  | 'exchange_ratio_postgres'
  | 'postgres_vs_sqlite'
  | 'cap_check_cost'
  | 'concurrency_efficiency'
  | 'policy_scaling'
  | 'gitlab_calls_per_exchange'
  | 'reaper_rate'
  | 'rss_growth_mb'
  | 'client_start_ratio';

export interface Goal {
  op: '>=' | '<=' | '=';
  limit: number;
  /** One line: what is measured. */
  what: string;
}

export const GOALS: Record<FigureName, Goal> = {
  garbage_reject_ratio: {
    op: '>=',
    limit: 0.7,
    what: 'rps of /token with malformed or unknown-issuer tokens ÷ hello rps',
  },
  badsig_reject_ratio: {
    op: '>=',
    limit: 0.25,
    what: 'rps of /token with known issuer and kid, bad signature ÷ hello rps',
  },
  exchange_ratio: {
    op: '>=',
    limit: 0.05,
    what: 'rps of successful exchanges (GitLab emulator, no added latency) ÷ hello rps',
  },
  exchange_cpu_per_verify: {
    op: '<=',
    limit: 8,
    what: 'STS CPU time per successful exchange ÷ CPU time of one crypto.verify',
  },
  exchange_ratio_postgres: {
    op: '>=',
    limit: 0.04,
    what: "exchange_ratio with a PostgreSQL ledger (goal: 0.8 × exchange_ratio's)",
  },
  postgres_vs_sqlite: {
    op: '>=',
    limit: 0.8,
    what: 'exchange rps with a PostgreSQL ledger ÷ with SQLite (the exchange_ratio window)',
  },
  cap_check_cost: {
    op: '>=',
    limit: 0.95,
    what: 'exchange rps on PostgreSQL with maxActiveGrantsPerIdentity > 0 (never reached) ÷ with 0',
  },
  concurrency_efficiency: {
    op: '>=',
    limit: 0.9,
    what: 'exchange rps with 200 ms GitLab latency, 200 clients ÷ (200 / 0.2 s)',
  },
  policy_scaling: {
    op: '<=',
    limit: 1.2,
    what: 'p50 exchange latency with many policies ÷ with 10 policies',
  },
  gitlab_calls_per_exchange: {
    op: '=',
    limit: 1,
    what: 'GitLab API requests in the exchange window ÷ successful exchanges',
  },
  reaper_rate: {
    op: '>=',
    limit: 350,
    what: 'revocations per second, grants all due at once, GitLab 50 ms latency',
  },
  rss_growth_mb: { op: '<=', limit: 50, what: 'STS RSS growth (MiB) over a run of exchanges after warm-up' },
  client_start_ratio: {
    op: '<=',
    limit: 3,
    what: 'wall time of `node tanuki-sts.mjs --version` (the served client) ÷ `node -e 0`, medians',
  },
};

export const FIGURE_ORDER = Object.keys(GOALS) as FigureName[];

export function meets(name: FigureName, value: number): boolean {
  const g = GOALS[name];
  if (!Number.isFinite(value)) return false;
  if (g.op === '>=') return value >= g.limit;
  if (g.op === '<=') return value <= g.limit;
  // "= 1.0": equal to two decimals (a stray health check in a 100,000-request window is still a miss above 1.005).
  return Math.abs(value - g.limit) < 0.005;
}
