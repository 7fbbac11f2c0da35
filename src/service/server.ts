/**
 * Start-up and shutdown of the STS: config → policies → store → GitLab client →
 * keys → routes, then the reaper and reconciler. `startSts` is what
 * `tanuki-sts serve`, `tanuki-sts dev` and the integration tests call.
 */
import pino, { type Logger } from 'pino';
import type { StsConfig } from '../config/index.ts';
import { createGitlabClient, createTargetResolver } from '../gitlab/index.ts';
import { createTokenValidator } from '../identity/index.ts';
import {
  acquireLedgerLock,
  createReaper,
  createReconciler,
  GrantStillActiveError,
  openSqliteLedger,
} from '../ledger/index.ts';
import { compilePolicies } from '../policy/index.ts';
import { buildApp } from './app.ts';
import { type AuditSink, createAuditSink, grantAuditFields } from './audit.ts';
import type { StsContext } from './context.ts';
import { createRateLimiter } from './limits.ts';
import { createMetrics, startMetricsServer } from './metrics.ts';

export interface StartStsOptions {
  config: StsConfig;
  /** Operational log; default pino to stdout. `false` silences it. */
  logger?: Logger | false;
  audit?: AuditSink;
  now?: () => number;
  /** Disable the background loops (reaper, reconciler, GitLab check) — for benchmarks and focused tests. */
  background?: boolean;
}

export interface StsHandle {
  url: string;
  port: number;
  /** The metrics scrape URL (`http://host:port/metrics`, port as bound); undefined when metrics are off. */
  metricsUrl: string | undefined;
  metricsPort: number | undefined;
  context: StsContext;
  /** Run one reaper pass now (tests). */
  reapNow(): Promise<unknown>;
  /** Run one reconciler pass now (tests). */
  reconcileNow(): Promise<unknown>;
  close(): Promise<void>;
}

export async function startSts(options: StartStsOptions): Promise<StsHandle> {
  const { config } = options;
  // Policies first: an unusable policy (PolicyCompileError) stops the start before anything is opened.
  const policies = compilePolicies(config.policies, { gitlabUrl: config.gitlab.url });
  const now = options.now ?? Date.now;
  const logger =
    options.logger === false
      ? pino({ level: 'silent' })
      : (options.logger ??
        pino({ name: 'tanuki-sts', base: null, timestamp: pino.stdTimeFunctions.isoTime }));
  const audit = options.audit ?? createAuditSink({ file: config.audit.file });
  // One serving process per SQLite file (see src/ledger/sqlite-lock.ts); refuse to start otherwise.
  const lock = acquireLedgerLock(config.store.sqlite);
  // What start-up has opened, in order; undone newest first by close(), or at once if start-up fails.
  const undo: Array<() => unknown> = [() => lock.release()];
  try {
    const store = openSqliteLedger(config.store.sqlite, {
      onWriterStopped: (err) =>
        logger.error(
          { err: err.message },
          'ledger writer stopped: exchanges answer 503 until restart; not ready',
        ),
    });
    undo.push(() => store.close());
    // With the lock held, any grant still `minting` belongs to a process that died mid-mint:
    // fail it now, so that the reconciler's first pass revokes whatever GitLab created for it
    // (its token reached no client), instead of waiting out the stale-minting deadline.
    const orphans = await store.failStaleMinting(Number.MAX_SAFE_INTEGER);
    if (orphans.length > 0) {
      logger.warn({ grants: orphans.length }, 'grants left minting by a previous process marked failed');
      for (const grantId of orphans) audit.write({ event: 'recover', outcome: 'failed', grantId });
    }

    let metrics: StsContext['metrics'] | undefined;
    const gitlab = createGitlabClient({
      url: config.gitlab.url,
      token: config.gitlab.token,
      caFile: config.gitlab.caFile,
      timeoutMs: config.gitlab.timeout * 1000,
      // Each exchange holds one GitLab connection for GitLab's whole answer time: at 200 ms a
      // 64-connection pool caps the STS at 320 exchanges/s whatever the CPU (bench: concurrency_efficiency).
      connections: 256,
      now,
      onRequest: (info) =>
        metrics?.gitlabDuration.observe(
          { method: info.method, route: info.route, status: String(info.status) },
          info.durationMs / 1000,
        ),
    });
    undo.push(() => gitlab.close());
    metrics = createMetrics({
      activeGrants: () => store.countAllActive(),
      reaperLagSeconds: async () => {
        const oldest = await store.oldestOverdue(now());
        return oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000);
      },
    });

    const validator = createTokenValidator({
      issuers: config.issuers,
      clockSkewSeconds: config.tokens.clockSkew,
      now,
    });
    undo.push(() => validator.close());
    const context: StsContext = {
      config,
      validator,
      policies,
      store,
      gitlab,
      targets: createTargetResolver(gitlab, { ttlMs: config.gitlab.targetCacheTtl * 1000, now }),
      audit,
      log: logger,
      metrics,
      limits: {
        perIdentity: createRateLimiter(config.server.rateLimit.perIdentity, now),
        perIp: createRateLimiter(config.server.rateLimit.perIp, now),
      },
      now,
    };

    // A minting grant is presumed dead only well after any GitLab call could still answer.
    const staleMintingMs = Math.max(120_000, 2 * config.gitlab.timeout * 1000);
    const reaper = createReaper({
      store,
      gitlab,
      serverId: config.server.id,
      concurrency: config.reaper.concurrency,
      intervalMs: config.reaper.interval * 1000,
      staleMintingMs,
      now,
      log: logger,
      onRevoked: (grant, outcome, descendants) => {
        metrics?.revocations.inc({ outcome: String(outcome), source: 'reaper' });
        audit.write({
          event: 'reap',
          outcome: String(outcome),
          ...grantAuditFields(grant),
          ...(descendants > 0 ? { descendants } : {}),
        });
      },
      onFailed: (grant, err) => {
        // `contested`: the grant's token keeps being rotated while we revoke it (alert on it).
        const outcome = err instanceof GrantStillActiveError ? 'contested' : 'failed';
        metrics?.revocations.inc({ outcome, source: 'reaper' });
        logger.warn({ grantId: grant.id, err: err.message }, 'revocation failed; will retry');
      },
    });
    const reconciler = createReconciler({
      store,
      gitlab,
      serverId: config.server.id,
      intervalMs: config.reaper.reconcileInterval * 1000,
      staleMintingMs,
      now,
      log: logger,
      onRevoked: (info) => {
        metrics?.revocations.inc({ outcome: info.outcome, source: 'reconciler' });
        audit.write({
          event: 'reconcile',
          outcome: info.outcome,
          reason: info.reason,
          grantId: info.grantId,
          gitlabTokenId: info.tokenId,
          target: info.target.ref,
          targetKind: info.target.kind,
        });
      },
    });

    await validator.init();
    const background = options.background !== false;
    let healthTimer: NodeJS.Timeout | undefined;
    if (background) {
      const check = () =>
        gitlab.checkHealth().catch((err: Error) => logger.warn({ err: err.message }, 'GitLab check failed'));
      await check();
      healthTimer = setInterval(check, config.gitlab.healthInterval * 1000);
      healthTimer.unref();
      undo.push(() => clearInterval(healthTimer));
      // Overdue grants first (they fell due while we were down), then the usual loop.
      await reaper.start();
      undo.push(() => reaper.stop());
      await reconciler.start();
      undo.push(() => reconciler.stop());
    }

    const app = buildApp(context, { logger: options.logger === false ? false : logger });
    // First to close: finish in-flight requests before their ledger writes' store closes.
    undo.push(() => app.close());
    await app.listen({ host: config.server.listen.host, port: config.server.listen.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.server.listen.port;
    const host = config.server.listen.host.includes(':')
      ? `[${config.server.listen.host}]`
      : config.server.listen.host;
    const url = `${config.server.tls ? 'https' : 'http'}://${host}:${port}`;
    // Metrics on their own listener only (their labels name every policy); none on the public one.
    const metricsServer = config.server.metricsListen
      ? await startMetricsServer(metrics.registry, config.server.metricsListen)
      : undefined;
    if (metricsServer) undo.push(() => metricsServer.close());
    logger.info({ url, metricsUrl: metricsServer?.url, serverId: config.server.id }, 'tanuki-sts listening');

    let closed: Promise<void> | undefined;
    return {
      url,
      port,
      metricsUrl: metricsServer?.url,
      metricsPort: metricsServer?.port,
      context,
      reapNow: () => reaper.runOnce(),
      reconcileNow: () => reconciler.runOnce(),
      close() {
        // Newest first: the app (in-flight requests finish), background loops, clients, the
        // store, and last the ledger lock; every step runs even if one before it fails.
        closed ??= (async () => {
          const failed = await unwind(undo);
          await audit.close();
          if (failed) throw failed;
        })();
        return closed;
      },
    };
  } catch (err) {
    await unwind(undo);
    throw err;
  }
}

/** Runs every step (newest first) even when one fails; returns the first failure. */
async function unwind(steps: Array<() => unknown>): Promise<unknown> {
  let first: unknown;
  for (const step of [...steps].reverse()) {
    try {
      await step();
    } catch (err) {
      first ??= err;
    }
  }
  return first;
}
