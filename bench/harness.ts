/**
 * The bench harness: starts every process on loopback, runs each measurement
 * window with the load generator in its own process, reads each process's CPU
 * time around every window, and computes the figures (figures.ts).
 *
 *   run.ts ──IPC──▶ loadgen.ts (autocannon)  ──HTTP──▶ hello.ts | tanuki-sts serve
 *      │                                                          └──HTTP──▶ tanuki-sts emulate gitlab
 *      │                                                          └──SQL──▶ PostgreSQL (the PostgreSQL windows)
 *      ├── issuer (OIDC discovery + JWKS, in this process; hit only at STS start-up)
 *      ├── verify.ts (crypto.verify baseline)
 *      └── reaper.ts (STS in-process with a clock it can move: reaper_rate)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_JWT } from '../src/util/oauth-urns.ts';
import { measureClientStart } from './client-start.ts';
import { FIGURE_ORDER, type FigureName, GOALS, meets } from './figures.ts';
import { type GitlabEmu, startGitlabEmu } from './gitlab-emu.ts';
import { AUDIENCE, type BenchIssuer, startBenchIssuer } from './issuer.ts';
import type { LoadJob, LoadResult } from './loadgen.ts';
import {
  BENCH_PG_URL,
  backendCpu,
  backendCpuDelta,
  benchSchema,
  checkPostgres,
  dropBenchSchema,
} from './postgres.ts';
import { ask, CLI, cpuSeconds, forkScript, type Proc, rssMb, spawnCli } from './procs.ts';

export interface BenchSettings {
  mode: 'full' | 'quick' | 'smoke';
  /** Seconds of each throughput window (hello, rejects, exchanges, concurrency, latency). */
  window: number;
  /** Seconds of the warm-up before each window (not measured). */
  warmup: number;
  /** Connections of the throughput windows (the "same load settings"). */
  connections: number;
  /** Connections of the policy-latency windows (p50 as a lightly loaded STS sees it). */
  latencyConnections: number;
  /** Clients and added GitLab latency of concurrency_efficiency. */
  concurrencyClients: number;
  concurrencyLatencyMs: number;
  /** Policies of the two policy_scaling configs. */
  fewPolicies: number;
  manyPolicies: number;
  /** Exchanges of the rss_growth_mb window, after warm-up. */
  rssExchanges: number;
  /** Grants falling due at once in reaper_rate, and the GitLab latency then. */
  reaperGrants: number;
  reaperLatencyMs: number;
  /** Seconds of the crypto.verify baseline loop. */
  verifySeconds: number;
  /** Runs of each command (the bundle's --version, `node -e 0`) behind client_start_ratio's medians. */
  clientStartRuns: number;
  /** Distinct signed subject tokens the exchange windows rotate through. */
  tokenPool: number;
  /**
   * Also measure the floors of a refusal (full runs only, to keep --quick under a minute):
   * an audited refusal on plain fastify (the hello process), a POST to an unknown route of
   * the STS, and a /token refusal that never looks at a token.
   */
  floors: boolean;
}

export const FULL: BenchSettings = {
  mode: 'full',
  window: 10,
  warmup: 2,
  connections: 32,
  latencyConnections: 1,
  concurrencyClients: 200,
  concurrencyLatencyMs: 200,
  fewPolicies: 10,
  manyPolicies: 10_000,
  rssExchanges: 100_000,
  reaperGrants: 10_000,
  reaperLatencyMs: 50,
  verifySeconds: 3,
  clientStartRuns: 31,
  tokenPool: 2000,
  floors: true,
};

export const QUICK: BenchSettings = {
  ...FULL,
  mode: 'quick',
  window: 3,
  warmup: 1,
  rssExchanges: 5000,
  reaperGrants: 1000,
  verifySeconds: 1,
  clientStartRuns: 11,
  tokenPool: 500,
  floors: false,
};

/** Tiny windows for test/bench-smoke.test.ts: checks that everything still measures, not how fast. */
export const SMOKE: BenchSettings = {
  mode: 'smoke',
  window: 0.5,
  warmup: 0,
  connections: 4,
  latencyConnections: 1,
  concurrencyClients: 10,
  concurrencyLatencyMs: 50,
  fewPolicies: 3,
  manyPolicies: 30,
  rssExchanges: 100,
  reaperGrants: 20,
  reaperLatencyMs: 10,
  verifySeconds: 0.2,
  clientStartRuns: 3,
  tokenPool: 20,
  floors: false,
};

/** CPU seconds of each process during one window, and the window's wall time. */
export interface CpuUse {
  wall: number;
  loadgen: number;
  sts?: number;
  emulator?: number;
  hello?: number;
  /** The PostgreSQL backends serving the STS (PostgreSQL windows, server on this machine). */
  postgres?: number;
}

export interface FigureResult {
  value: number;
  goal: string;
  met: boolean;
  /** The measurement(s) behind the value, with the CPU time of each process. */
  detail: Record<string, unknown>;
  cpu: CpuUse;
}

export interface BenchReport {
  tool: 'tanuki-sts bench';
  mode: BenchSettings['mode'];
  startedAt: string;
  seconds: number;
  machine: { cpus: number; model: string; node: string; platform: string };
  settings: BenchSettings;
  samples: Record<string, number>;
  baselines: {
    hello: { rps: number; p50: number; cpu: CpuUse };
    verify: { cpuUsPerVerify: number; verifies: number; cpuSeconds: number };
  };
  figures: Record<FigureName, FigureResult>;
  /** Full runs: what the STS's HTTP stack costs before any token work (docs/performance.md). */
  floors?: Record<
    'minimal_audited_refusal' | 'post_unknown_route' | 'refusal_without_token',
    { rps: number; ratio: number; cpu: CpuUse }
  >;
  met: number;
  total: number;
}

const PROJECT = 'platform/internal-lib';
const EXCHANGE_FORM = {
  grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
  subject_token_type: TOKEN_TYPE_JWT,
};
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

export const appIdOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

/**
 * cap_check_cost's `server.maxActiveGrantsPerIdentity`: on, and never reached (each of the pool's
 * tokens is its own identity, holding a few dozen grants at most), so the window measures the check
 * itself, not refusals.
 */
export const BENCH_CAP = 1000;

/** The STS config of the bench: limits off, background work paused, `policies` policies each matching one appid. */
export function stsConfig(o: {
  issuerUrl: string;
  gitlabUrl: string;
  gitlabToken: string;
  dir: string;
  /** The ledger: a SQLite file, or a PostgreSQL server and schema. */
  sqlite?: string;
  postgres?: { url: string; schema: string };
  policies: number;
  ttl?: string;
  /** server.maxActiveGrantsPerIdentity (default 0: off). */
  maxActive?: number;
}): Record<string, unknown> {
  const ttl = o.ttl ?? '1h';
  return {
    server: {
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      publicUrl: 'http://127.0.0.1:8600',
      id: 'bench',
      rateLimit: { perIdentity: 0, perIp: 0 },
      maxActiveGrantsPerIdentity: o.maxActive ?? 0,
    },
    gitlab: { url: o.gitlabUrl, token: o.gitlabToken, timeout: '10s', healthInterval: '1d' },
    store: o.postgres ? { postgres: o.postgres } : { sqlite: o.sqlite },
    issuers: { bench: { oidc: { issuer: o.issuerUrl }, audiences: [AUDIENCE] } },
    policies: Array.from({ length: o.policies }, (_, i) => ({
      name: `bench-${String(i + 1).padStart(5, '0')}`,
      issuer: 'bench',
      match: { appid: appIdOf(i + 1) },
      grant: {
        projects: [PROJECT],
        scopes: ['read_repository'],
        role: 'reporter',
        ttl: { default: ttl, max: ttl },
      },
    })),
    reaper: { interval: '1d', reconcileInterval: '1d' },
    audit: { file: join(o.dir, 'audit.log') },
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

/**
 * Exchanges the STS granted so far, from its own metrics (tanuki_sts_exchanges_total{outcome="granted"}),
 * scraped from its metrics listener (`metricsUrl`, the full `…/metrics` URL).
 */
async function grantedCount(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('tanuki_sts_exchanges_total{') && line.includes('outcome="granted"')) {
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return n;
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export async function runBench(
  s: BenchSettings,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<BenchReport> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-bench-'));
  const procs: Proc[] = [];
  let issuer: BenchIssuer | undefined;
  let emu: GitlabEmu | undefined;
  /** PostgreSQL schemas the bench's STS processes created (dropped at the end). */
  const schemas: string[] = [];
  const track = <P extends Proc>(p: P) => {
    procs.push(p);
    return p;
  };
  try {
    // ── the pipeline client's start, first: nothing else runs yet ────────────
    log(`client start: the served bundle's --version vs node -e 0, ${s.clientStartRuns} runs each`);
    const clientStart = await measureClientStart(s.clientStartRuns);
    log(`  ${clientStart.clientMs.toFixed(1)} ms vs ${clientStart.nodeMs.toFixed(1)} ms`);

    // ── processes ────────────────────────────────────────────────────────────
    log(`bench (${s.mode}): starting processes in ${dir}`);
    issuer = await startBenchIssuer();
    const loadgen = track(forkScript('loadgen', 'loadgen.ts'));
    const hello = track(forkScript('hello', 'hello.ts', s.floors ? [dir] : []));
    const emuP = startGitlabEmu(join(dir, 'gitlab'));
    const [, helloUrlM, emuR] = await Promise.all([
      new Promise<void>((resolve, reject) => {
        loadgen.child.once('message', () => resolve());
        loadgen.child.once('exit', (c) => reject(new Error(`loadgen exited ${c}: ${loadgen.output()}`)));
      }),
      hello.waitFor(/listening on (http:\/\/\S+)/),
      emuP,
    ]);
    emu = emuR;
    track(emu.proc);
    const helloUrl = helloUrlM[1] ?? '';

    const load = (job: LoadJob) => ask<LoadResult>(loadgen, { job });
    /** One measured window: CPU of each process read just before and just after. */
    const measure = async (
      job: LoadJob,
      pids: { sts?: number; emulator?: number; hello?: number },
      /** PostgreSQL windows: the STS's instance id, whose backends' CPU is read too. */
      pgInstance?: string,
    ) => {
      const pg0 = pgInstance ? await backendCpu(pgInstance) : undefined;
      const before = Object.fromEntries(
        Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid as number)]),
      );
      const t0 = performance.now();
      const r = await load(job);
      const wall = (performance.now() - t0) / 1000;
      const cpu: CpuUse = { wall, loadgen: r.cpu };
      for (const [k, pid] of Object.entries(pids)) {
        (cpu as unknown as Record<string, number>)[k] = cpuSeconds(pid as number) - (before[k] as number);
      }
      if (pgInstance) {
        const pgCpu = backendCpuDelta(pg0, await backendCpu(pgInstance));
        if (pgCpu !== undefined) cpu.postgres = pgCpu;
      }
      return { r, cpu };
    };
    const warm = (job: LoadJob) =>
      s.warmup > 0 ? load({ ...job, duration: s.warmup, amount: undefined }) : Promise.resolve(undefined);

    // ── baselines ────────────────────────────────────────────────────────────
    log('baseline verify: crypto.verify RS256 in a loop');
    const verifyProc = track(forkScript('verify', 'verify.ts', [String(s.verifySeconds)]));
    const verifyM = await verifyProc.waitFor(/(\{"verifies".*\})\n/, 60_000);
    const verify = JSON.parse(verifyM[1] ?? '{}') as {
      verifies: number;
      cpuSeconds: number;
      cpuUsPerVerify: number;
    };
    log(`  ${verify.cpuUsPerVerify.toFixed(1)} µs CPU per verify`);

    const helloJob: LoadJob = {
      url: helloUrl,
      path: '/hello',
      method: 'GET',
      connections: s.connections,
      duration: s.window,
    };
    log('baseline hello: fastify route returning a small JSON body');
    await warm(helloJob);
    const helloM = await measure(helloJob, { hello: hello.pid });
    const helloRps = helloM.r.okRps;
    log(`  ${helloRps.toFixed(0)} rps`);
    // With floors, hello stays up (idle) for the plain-fastify floor measured below.
    if (!s.floors) await hello.stop();

    // ── subject tokens ───────────────────────────────────────────────────────
    const few = s.fewPolicies;
    const many = s.manyPolicies;
    const iss = issuer;
    const exchangeBodies = (n: number, appid: string, gitlabUrl = emu?.url, sub?: (i: number) => string) =>
      Array.from({ length: n }, (_, i) =>
        form({
          ...EXCHANGE_FORM,
          subject_token: iss.token(sub ? { appid, sub: sub(i) } : { appid }),
          resource: `${gitlabUrl}/${PROJECT}`,
        }),
      );
    const fewBodies = exchangeBodies(s.tokenPool, appIdOf(few));
    const manyBodies = exchangeBodies(Math.min(s.tokenPool, 200), appIdOf(many));
    const garbageBodies = [
      form({ ...EXCHANGE_FORM, subject_token: 'not-a-jwt', resource: `${emu.url}/${PROJECT}` }),
      form({
        ...EXCHANGE_FORM,
        subject_token: 'eyJhbGciOiJSUzI1NiJ9.e30.AAAA',
        resource: `${emu.url}/${PROJECT}`,
      }),
      ...Array.from({ length: 4 }, () =>
        form({
          ...EXCHANGE_FORM,
          subject_token: iss.unknownIssuerToken(),
          resource: `${emu?.url}/${PROJECT}`,
        }),
      ),
    ];
    const badsigBodies = Array.from({ length: 8 }, () =>
      form({
        ...EXCHANGE_FORM,
        subject_token: iss.badSignatureToken({ appid: appIdOf(few) }),
        resource: `${emu?.url}/${PROJECT}`,
      }),
    );

    // ── STS with few policies ────────────────────────────────────────────────
    const startSts = async (
      name: string,
      policies: number,
      o: { gitlab?: GitlabEmu; postgresSchema?: string; maxActive?: number } = {},
    ) => {
      const cfgFile = join(dir, `${name}.yaml`);
      const gitlab = o.gitlab ?? emu;
      const cfg = stsConfig({
        issuerUrl: iss.url,
        gitlabUrl: gitlab?.url ?? '',
        gitlabToken: gitlab?.adminToken ?? '',
        dir,
        ...(o.postgresSchema
          ? { postgres: { url: BENCH_PG_URL, schema: o.postgresSchema } }
          : { sqlite: join(dir, `${name}.db`) }),
        policies,
        maxActive: o.maxActive,
      });
      writeFileSync(cfgFile, JSON.stringify(cfg));
      /** Rewrite the file with another cap and reload it (SIGHUP); resolves once the STS applied it. */
      const setCap = async (maxActive: number) => {
        const reloads = () => p.output().split('"configuration reloaded"').length;
        const before = reloads();
        const server = cfg.server as Record<string, unknown>;
        writeFileSync(
          cfgFile,
          JSON.stringify({ ...cfg, server: { ...server, maxActiveGrantsPerIdentity: maxActive } }),
        );
        p.child.kill('SIGHUP');
        const deadline = Date.now() + 30_000;
        while (reloads() === before) {
          if (Date.now() > deadline)
            throw new Error(`${name}: no reload within 30 s: ${p.output().slice(-1000)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        const line = p
          .output()
          .split('\n')
          .findLast((l) => l.includes('"configuration reloaded"'));
        if (!line?.includes('maxActiveGrantsPerIdentity'))
          throw new Error(`${name}: the reload did not apply the cap: ${p.output().slice(-1000)}`);
      };
      const t0 = performance.now();
      // BENCH_PROF=<dir>: profile the STS (node --cpu-prof), written when it stops.
      const prof = process.env.BENCH_PROF;
      const argv = prof ? ['--cpu-prof', '--cpu-prof-dir', prof, CLI] : [CLI];
      const p = track(spawnCli(name, ['serve', '--config', cfgFile], {}, argv));
      const m = await p.waitFor(
        /"url":"(http:\/\/[^"]+)"[^\n]*tanuki-sts listening|tanuki-sts listening[^\n]*"url":"(http:\/\/[^"]+)"/,
        120_000,
      );
      const url = m[1] ?? m[2] ?? '';
      // The same start-up line names the metrics listener (server.metricsListen, port 0 here).
      const metricsUrl = (await p.waitFor(/"metricsUrl":"(http:\/\/[^"]+)"/, 5_000))[1] ?? '';
      // PostgreSQL: this process's id names its backends (application_name `tanuki-sts/<id>`).
      const instanceId = o.postgresSchema ? (await p.waitFor(/"instanceId":"([^"]+)"/, 5_000))[1] : undefined;
      log(
        `${name}: ${policies} policies, listening on ${url} after ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      return { proc: p, url, metricsUrl, instanceId, setCap };
    };
    const tokenJob = (url: string, bodies: string[], extra: Partial<LoadJob> = {}): LoadJob => ({
      url,
      path: '/token',
      method: 'POST',
      headers: FORM_HEADERS,
      connections: s.connections,
      duration: s.window,
      bodies,
      ...extra,
    });

    const sts1 = await startSts('sts-few', few);
    const pids1 = { sts: sts1.proc.pid, emulator: emu.proc.pid };
    await emu.setLatency(0);

    // Warm-up (also JIT for the latency window), then p50 with few policies.
    await warm(tokenJob(sts1.url, fewBodies));
    log(`policy latency, ${few} policies (${s.latencyConnections} connection)`);
    const lat1 = await measure(tokenJob(sts1.url, fewBodies, { connections: s.latencyConnections }), pids1);
    log(`  p50 ${lat1.r.p50.toFixed(2)} ms (${lat1.r.ok} exchanges)`);

    log('garbage: malformed and unknown-issuer tokens');
    await warm(tokenJob(sts1.url, garbageBodies));
    const garbage = await measure(tokenJob(sts1.url, garbageBodies), pids1);
    log(`  ${garbage.r.rps.toFixed(0)} rps ${JSON.stringify(garbage.r.status)}`);

    log('badsig: known issuer and kid, bad signature');
    await warm(tokenJob(sts1.url, badsigBodies));
    const badsig = await measure(tokenJob(sts1.url, badsigBodies), pids1);
    log(`  ${badsig.r.rps.toFixed(0)} rps ${JSON.stringify(badsig.r.status)}`);

    let floors: BenchReport['floors'];
    if (s.floors) {
      // The same load, doing less and less: how far a refusal can go.
      const floor = async (what: string, job: LoadJob, pids: Parameters<typeof measure>[1]) => {
        log(`floor: ${what}`);
        await warm(job);
        const m = await measure(job, pids);
        log(`  ${m.r.rps.toFixed(0)} rps ${JSON.stringify(m.r.status)}`);
        return { rps: round(m.r.rps), ratio: 0, cpu: roundCpu(m.cpu) };
      };
      floors = {
        minimal_audited_refusal: await floor(
          'the least an audited refusal can do on plain fastify (no STS code)',
          {
            ...helloJob,
            path: '/refuse',
            method: 'POST',
            headers: FORM_HEADERS,
            bodies: [form({ ...EXCHANGE_FORM, subject_token: 'eyJhbGciOiJSUzI1NiJ9.e30.AAAA' })],
          },
          { hello: hello.pid },
        ),
        post_unknown_route: await floor(
          'POST to an unknown route (404: fastify and our hooks only)',
          { ...tokenJob(sts1.url, garbageBodies), path: '/no-such-route' },
          pids1,
        ),
        refusal_without_token: await floor(
          '/token refused before the token is read (form, audit line, metrics, error)',
          tokenJob(sts1.url, ['grant_type=unknown']),
          pids1,
        ),
      };
      await hello.stop();
    }

    log('exchange: full successful exchanges, GitLab emulator without added latency');
    await warm(tokenJob(sts1.url, fewBodies));
    // Exchanges still in flight when the load generator stops are counted by the STS, not by autocannon:
    // let them finish, then count GitLab requests against the exchanges the STS itself granted.
    await settle();
    await emu.resetStats();
    const granted0 = await grantedCount(sts1.metricsUrl);
    const exchange = await measure(tokenJob(sts1.url, fewBodies), pids1);
    await settle();
    const gitlabCalls = await emu.apiRequests();
    const gitlabRoutes = await emu.byRoute();
    const stsGranted = (await grantedCount(sts1.metricsUrl)) - granted0;
    log(
      `  ${exchange.r.okRps.toFixed(0)} rps ${JSON.stringify(exchange.r.status)}; GitLab API requests ${gitlabCalls} for ${stsGranted} exchanges granted`,
    );

    // ── PostgreSQL ledger ────────────────────────────────────────────────────
    // A GitLab emulator of its own, fresh like the first one was at the exchange window, so these
    // windows leave the first one's token count (which the reaper window scans) as it was.
    await checkPostgres();
    log(`exchange on PostgreSQL (${new URL(BENCH_PG_URL).host}): own GitLab emulator, fresh schemas`);
    const emuPg = await startGitlabEmu(join(dir, 'gitlab-pg'));
    track(emuPg.proc);
    await emuPg.setLatency(0);
    const pgSchema = benchSchema();
    schemas.push(pgSchema);
    const pgSts = await startSts('sts-pg', few, { gitlab: emuPg, postgresSchema: pgSchema });
    const pgPids = { sts: pgSts.proc.pid, emulator: emuPg.proc.pid };
    // The exchange window as above (one identity, cap off), against the PostgreSQL ledger.
    const pgBodies = exchangeBodies(s.tokenPool, appIdOf(few), emuPg.url);
    await warm(tokenJob(pgSts.url, pgBodies));
    const pgExchange = await measure(tokenJob(pgSts.url, pgBodies), pgPids, pgSts.instanceId);
    log(
      `  ${pgExchange.r.okRps.toFixed(0)} rps ${JSON.stringify(pgExchange.r.status)} (SQLite: ${exchange.r.okRps.toFixed(0)} rps)`,
    );
    // Cap on ÷ off, on the same process and ledger (the cap is switched by a reload, SIGHUP), every
    // pool token its own identity. Eight quarter windows, off on on off off on on off, so that a drift
    // of the machine (or of the ledger's size) weighs on both sides alike.
    log(
      `cap check: maxActiveGrantsPerIdentity ${BENCH_CAP} vs 0 (switched by reloads), ${s.tokenPool} identities`,
    );
    const capBodies = exchangeBodies(s.tokenPool, appIdOf(few), emuPg.url, (i) => `bench-identity-${i}`);
    await warm(tokenJob(pgSts.url, capBodies));
    const capWindows: Array<{ on: boolean; m: Awaited<ReturnType<typeof measure>> }> = [];
    let capOnNow = false;
    for (const on of [false, true, true, false, false, true, true, false]) {
      if (on !== capOnNow) {
        await pgSts.setCap(on ? BENCH_CAP : 0);
        capOnNow = on;
        await settle();
      }
      const job = tokenJob(pgSts.url, capBodies, { duration: Math.max(s.window / 4, 0.5) });
      capWindows.push({ on, m: await measure(job, pgPids, pgSts.instanceId) });
    }
    const side = (on: boolean) => {
      const ms = capWindows.filter((w) => w.on === on).map((w) => w.m);
      const ok = ms.reduce((a, m) => a + m.r.ok, 0);
      const cpu = sumCpu(...ms.map((m) => m.cpu));
      return {
        rps: ok / ms.reduce((a, m) => a + m.r.seconds, 0),
        cpu,
        stsCpuUsPerExchange: round(((cpu.sts ?? Number.NaN) / ok) * 1e6),
        pgCpuUsPerExchange: cpu.postgres === undefined ? undefined : round((cpu.postgres / ok) * 1e6),
      };
    };
    const capOn = side(true);
    const capOff = side(false);
    log(
      `  on ${capOn.rps.toFixed(0)} rps, off ${capOff.rps.toFixed(0)} rps; ${capWindows.map((w) => `${w.on ? 'on' : 'off'} ${w.m.r.okRps.toFixed(0)}`).join(', ')}`,
    );
    await Promise.all([pgSts.proc.stop(), emuPg.proc.stop()]);

    log(`concurrency: ${s.concurrencyClients} clients, GitLab latency ${s.concurrencyLatencyMs} ms`);
    await emu.setLatency(s.concurrencyLatencyMs);
    const concJob = tokenJob(sts1.url, fewBodies, { connections: s.concurrencyClients });
    await warm(concJob);
    const conc = await measure(concJob, pids1);
    await emu.setLatency(0);
    log(`  ${conc.r.okRps.toFixed(0)} rps ${JSON.stringify(conc.r.status)} p50 ${conc.r.p50.toFixed(1)} ms`);

    log(`rss: ${s.rssExchanges} exchanges after warm-up`);
    await warm(tokenJob(sts1.url, fewBodies));
    const rss0 = rssMb(sts1.proc.pid);
    const rssRun = await measure(tokenJob(sts1.url, fewBodies, { amount: s.rssExchanges }), pids1);
    const rss1 = rssMb(sts1.proc.pid);
    log(
      `  RSS ${rss0.toFixed(1)} → ${rss1.toFixed(1)} MiB (${rssRun.r.ok} exchanges, ${rssRun.r.okRps.toFixed(0)} rps)`,
    );
    await sts1.proc.stop();

    // ── STS with many policies ───────────────────────────────────────────────
    const sts2 = await startSts('sts-many', many);
    const pids2 = { sts: sts2.proc.pid, emulator: emu.proc.pid };
    await warm(tokenJob(sts2.url, manyBodies));
    log(`policy latency, ${many} policies (${s.latencyConnections} connection)`);
    const lat2 = await measure(tokenJob(sts2.url, manyBodies, { connections: s.latencyConnections }), pids2);
    log(`  p50 ${lat2.r.p50.toFixed(2)} ms (${lat2.r.ok} exchanges)`);
    await sts2.proc.stop();

    // ── reaper ───────────────────────────────────────────────────────────────
    // A GitLab emulator of its own: a revocation lists the target's tokens by name, which the emulator
    // answers by scanning them all, and by now the first emulator's project holds every token of the
    // windows above (over 100,000 in a full run): the window would time the scan, not the reaper.
    log(
      `reaper: ${s.reaperGrants} grants due at once, GitLab latency ${s.reaperLatencyMs} ms, own GitLab emulator`,
    );
    await emu.proc.stop();
    const emuReap = await startGitlabEmu(join(dir, 'gitlab-reaper'));
    track(emuReap.proc);
    await emuReap.setLatency(0);
    const reaper = track(forkScript('reaper', 'reaper.ts'));
    const rCfg = stsConfig({
      issuerUrl: iss.url,
      gitlabUrl: emuReap.url,
      gitlabToken: emuReap.adminToken,
      dir,
      sqlite: join(dir, 'reaper.db'),
      policies: few,
      ttl: '15m',
    });
    const rStart = await ask<{ url: string }>(reaper, { cmd: 'start', config: rCfg, baseDir: dir });
    const reaperBodies = exchangeBodies(s.tokenPool, appIdOf(few), emuReap.url);
    const minted = await load(tokenJob(rStart.url, reaperBodies, { amount: s.reaperGrants }));
    await emuReap.setLatency(s.reaperLatencyMs);
    await emuReap.resetStats();
    const rEmu0 = cpuSeconds(emuReap.proc.pid);
    const rSts0 = cpuSeconds(reaper.pid);
    const reaped = await ask<{ revoked: number; failed: number; seconds: number; passes: number }>(reaper, {
      cmd: 'reap',
      advanceMs: 16 * 60_000,
      expect: minted.ok,
    });
    const reaperCpu: CpuUse = {
      wall: reaped.seconds,
      loadgen: 0,
      sts: cpuSeconds(reaper.pid) - rSts0,
      emulator: cpuSeconds(emuReap.proc.pid) - rEmu0,
    };
    const reaperDeletes = await emuReap.apiRequests();
    await ask(reaper, { cmd: 'stop' });
    await reaper.stop();
    const reaperRate = reaped.revoked / reaped.seconds;
    log(
      `  ${reaped.revoked}/${minted.ok} revoked in ${reaped.seconds.toFixed(2)} s = ${reaperRate.toFixed(0)}/s`,
    );

    // ── figures ──────────────────────────────────────────────────────────────
    const fig = (
      name: FigureName,
      value: number,
      cpu: CpuUse,
      detail: Record<string, unknown>,
    ): FigureResult => ({
      value: Math.round(value * 1000) / 1000,
      goal: `${GOALS[name].op} ${GOALS[name].limit}`,
      met: meets(name, value),
      detail,
      cpu: roundCpu(cpu),
    });
    const rejectRps = (r: LoadResult) =>
      Object.entries(r.status)
        .filter(([code]) => code.startsWith('4'))
        .reduce((a, [, n]) => a + n, 0) / r.seconds;
    const stsCpuPerExchangeUs = ((exchange.cpu.sts ?? Number.NaN) / exchange.r.ok) * 1e6;
    const figures: Record<FigureName, FigureResult> = {
      garbage_reject_ratio: fig('garbage_reject_ratio', rejectRps(garbage.r) / helloRps, garbage.cpu, {
        rps: rejectRps(garbage.r),
        status: garbage.r.status,
      }),
      badsig_reject_ratio: fig('badsig_reject_ratio', rejectRps(badsig.r) / helloRps, badsig.cpu, {
        rps: rejectRps(badsig.r),
        status: badsig.r.status,
      }),
      exchange_ratio: fig('exchange_ratio', exchange.r.okRps / helloRps, exchange.cpu, {
        rps: exchange.r.okRps,
        p50Ms: exchange.r.p50,
        status: exchange.r.status,
      }),
      exchange_cpu_per_verify: fig(
        'exchange_cpu_per_verify',
        stsCpuPerExchangeUs / verify.cpuUsPerVerify,
        exchange.cpu,
        {
          stsCpuUsPerExchange: stsCpuPerExchangeUs,
          verifyCpuUs: verify.cpuUsPerVerify,
          exchanges: exchange.r.ok,
        },
      ),
      exchange_ratio_postgres: fig('exchange_ratio_postgres', pgExchange.r.okRps / helloRps, pgExchange.cpu, {
        rps: pgExchange.r.okRps,
        p50Ms: pgExchange.r.p50,
        status: pgExchange.r.status,
      }),
      postgres_vs_sqlite: fig('postgres_vs_sqlite', pgExchange.r.okRps / exchange.r.okRps, pgExchange.cpu, {
        postgresRps: pgExchange.r.okRps,
        sqliteRps: exchange.r.okRps,
        cpuSqlite: roundCpu(exchange.cpu),
      }),
      cap_check_cost: fig('cap_check_cost', capOn.rps / capOff.rps, capOn.cpu, {
        onRps: capOn.rps,
        offRps: capOff.rps,
        cap: BENCH_CAP,
        identities: s.tokenPool,
        stsCpuUsPerExchange: { on: capOn.stsCpuUsPerExchange, off: capOff.stsCpuUsPerExchange },
        pgCpuUsPerExchange: { on: capOn.pgCpuUsPerExchange, off: capOff.pgCpuUsPerExchange },
        windows: capWindows.map((w) => ({
          cap: w.on ? BENCH_CAP : 0,
          rps: round(w.m.r.okRps),
          status: w.m.r.status,
        })),
        cpuOff: roundCpu(capOff.cpu),
      }),
      concurrency_efficiency: fig(
        'concurrency_efficiency',
        conc.r.okRps / (s.concurrencyClients / (s.concurrencyLatencyMs / 1000)),
        conc.cpu,
        {
          rps: conc.r.okRps,
          ideal: s.concurrencyClients / (s.concurrencyLatencyMs / 1000),
          p50Ms: conc.r.p50,
          p99Ms: conc.r.p99,
          status: conc.r.status,
        },
      ),
      policy_scaling: fig('policy_scaling', lat2.r.p50 / lat1.r.p50, lat2.cpu, {
        p50FewMs: lat1.r.p50,
        p50ManyMs: lat2.r.p50,
        few,
        many,
        exchangesFew: lat1.r.ok,
        exchangesMany: lat2.r.ok,
        cpuFew: roundCpu(lat1.cpu),
      }),
      gitlab_calls_per_exchange: fig('gitlab_calls_per_exchange', gitlabCalls / stsGranted, exchange.cpu, {
        gitlabRequests: gitlabCalls,
        byRoute: gitlabRoutes,
        exchangesGranted: stsGranted,
        exchangesAnswered: exchange.r.ok,
      }),
      reaper_rate: fig('reaper_rate', reaperRate, reaperCpu, {
        grants: minted.ok,
        revoked: reaped.revoked,
        failed: reaped.failed,
        seconds: reaped.seconds,
        passes: reaped.passes,
        gitlabRequests: reaperDeletes,
        latencyMs: s.reaperLatencyMs,
      }),
      rss_growth_mb: fig('rss_growth_mb', rss1 - rss0, rssRun.cpu, {
        rssBeforeMb: rss0,
        rssAfterMb: rss1,
        exchanges: rssRun.r.ok,
        rps: rssRun.r.okRps,
        status: rssRun.r.status,
      }),
      client_start_ratio: fig(
        'client_start_ratio',
        clientStart.ratio,
        { wall: clientStart.seconds, loadgen: 0 },
        {
          clientMs: round(clientStart.clientMs),
          nodeMs: round(clientStart.nodeMs),
          runs: clientStart.runs,
          bytes: clientStart.bytes,
        },
      ),
    };
    const met = FIGURE_ORDER.filter((n) => figures[n].met).length;
    return {
      tool: 'tanuki-sts bench',
      mode: s.mode,
      startedAt: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      machine: {
        cpus: cpus().length,
        model: cpus()[0]?.model ?? '?',
        node: process.version,
        platform: process.platform,
      },
      settings: s,
      samples: {
        windowSeconds: s.window,
        rssExchanges: rssRun.r.ok,
        reaperGrants: minted.ok,
        manyPolicies: many,
        fewPolicies: few,
        tokenPool: s.tokenPool,
      },
      baselines: {
        hello: { rps: round(helloRps), p50: round(helloM.r.p50), cpu: roundCpu(helloM.cpu) },
        verify: {
          cpuUsPerVerify: round(verify.cpuUsPerVerify),
          verifies: verify.verifies,
          cpuSeconds: round(verify.cpuSeconds),
        },
      },
      figures,
      ...(floors && {
        floors: Object.fromEntries(
          Object.entries(floors).map(([k, v]) => [k, { ...v, ratio: round(v.rps / helloRps) }]),
        ) as NonNullable<BenchReport['floors']>,
      }),
      met,
      total: FIGURE_ORDER.length,
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await issuer?.close().catch(() => {});
    for (const schema of schemas) await dropBenchSchema(schema).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** The CPU of several windows together (wall times added). */
function sumCpu(...cs: CpuUse[]): CpuUse {
  const sum: Record<string, number> = {};
  for (const c of cs) for (const [k, v] of Object.entries(c)) sum[k] = (sum[k] ?? 0) + (v as number);
  return sum as unknown as CpuUse;
}
function roundCpu(c: CpuUse): CpuUse {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, round(v as number)])) as unknown as CpuUse;
}
