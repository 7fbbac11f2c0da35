/**
 * Start-up and shutdown of the STS: config → policies → store → the STS's own
 * GitLab token (its source read: Key Vault, a file, …) → GitLab client → keys →
 * routes, then the leader election, whose leader runs start-up recovery, the
 * reaper and the reconciler (one process on SQLite; one replica at a time on
 * PostgreSQL), and the credential manager (refresh everywhere; on the leader,
 * rotation and the completion of a rotation a crash left pending). `startSts` is what `tanuki-sts serve`, `tanuki-sts dev` and the
 * integration tests call.
 */
import pino, { type Logger } from 'pino';
import type { StsConfig } from '../config/index.ts';
import {
  type CredentialManager,
  createCredentialManager,
  ROTATION_OUTCOMES,
  rotationOwner,
  stopHookFromEnv,
} from '../credential/index.ts';
import { createGitlabClient, createTargetResolver } from '../gitlab/index.ts';
import { createTokenValidator } from '../identity/index.ts';
import { createReaper, createReconciler, GrantStillActiveError, type LedgerStore } from '../ledger/index.ts';
import { startAdminSocket } from './admin-socket.ts';
import { buildApp } from './app.ts';
import { type AuditSink, createAuditSink, grantAuditFields } from './audit.ts';
import { resolveClientBundle } from './client-bundle.ts';
import type { StsContext } from './context.ts';
import { openStsCredential, rotationAuditEvent, rotationStaleAfterMs } from './credential.ts';
import { type LedgerBackendOptions, openLedgerBackend } from './ledger-backend.ts';
import { createRateLimiter } from './limits.ts';
import { createMetrics, startMetricsServer } from './metrics.ts';
import { createReloader, type ReloadResult } from './reload.ts';
import { compileConfig, readClientSecrets } from './runtime.ts';

export interface StartStsOptions {
  config: StsConfig;
  /** Operational log; default pino to stdout. `false` silences it. */
  logger?: Logger | false;
  audit?: AuditSink;
  now?: () => number;
  /** Disable the background loops (reaper, reconciler, GitLab check) — for benchmarks and focused tests. */
  background?: boolean;
  /** PostgreSQL timings (election interval, heartbeat, lease), for tests; see ledger-backend.ts. */
  ledger?: Omit<LedgerBackendOptions, 'log'>;
  /**
   * Reads and validates the configuration again, for `reload()` (SIGHUP, the admin socket):
   * `serve` passes `loadConfigFile(path)`. Absent: a reload fails (nothing to reload from).
   */
  reloadConfig?: () => StsConfig;
}

export interface StsHandle {
  url: string;
  port: number;
  /** The metrics scrape URL (`http://host:port/metrics`, port as bound); undefined when metrics are off. */
  metricsUrl: string | undefined;
  metricsPort: number | undefined;
  /** The context requests starting now use (a reload replaces it). */
  readonly context: StsContext;
  /**
   * Re-read the configuration and apply what can change at run time (reload.ts); never throws:
   * on error the running configuration stays. What `serve` does on SIGHUP and the admin socket.
   */
  reload(): Promise<ReloadResult>;
  /** Run one reaper pass now (tests). */
  reapNow(): Promise<unknown>;
  /** Run one reconciler pass now (tests). */
  reconcileNow(): Promise<unknown>;
  /** Whether this process is the leader (runs the reaper and reconciler) now. */
  isLeader(): boolean;
  /** The STS's own GitLab credential: its state, a pass or a rotation now (tests). */
  credential: CredentialManager;
  close(): Promise<void>;
}

export async function startSts(options: StartStsOptions): Promise<StsHandle> {
  // Client secrets kept in Key Vault are read first, as the config loader read the others.
  const config = await readClientSecrets(options.config);
  // Policies (and server.deny, clients) first: an unusable one stops the start before anything is opened.
  const compiled = compileConfig(config);
  const now = options.now ?? Date.now;
  const logger =
    options.logger === false
      ? pino({ level: 'silent' })
      : (options.logger ??
        pino({ name: 'tanuki-sts', base: null, timestamp: pino.stdTimeFunctions.isoTime }));
  const audit = options.audit ?? createAuditSink({ file: config.audit.file });
  // Found or built while the rest starts (an in-memory build takes a few hundred ms); awaited before
  // the routes. The no-op catch keeps a start-up that fails earlier from leaving it unhandled.
  const clientBundle = resolveClientBundle({ setting: config.server.clientBundle, log: logger });
  clientBundle.catch(() => {});
  // What start-up has opened, in order; undone newest first by close(), or at once if start-up fails.
  const undo: Array<() => unknown> = [];
  try {
    // SQLite: the ledger lock (one serving process per file). PostgreSQL: waits for its database.
    const ledger = await openLedgerBackend(config, { ...options.ledger, log: logger });
    undo.push(() => ledger.close());
    const store = ledger.store;
    // The STS's own GitLab token, from its source (Key Vault is read here: a vault that cannot be
    // read stops the start, naming the vault, the secret and Azure's error).
    const credential = await openStsCredential(config, { log: logger, rotations: () => ledger.rotations });
    undo.push(() => credential.close());

    let metrics: StsContext['metrics'] | undefined;
    const gitlab = createGitlabClient({
      url: config.gitlab.url,
      token: credential.holder,
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
    const credentials: CredentialManager = createCredentialManager({
      source: credential.source,
      holder: credential.holder,
      gitlab,
      store: ledger.rotations,
      rotation: config.gitlab.rotation,
      refreshSeconds: config.gitlab.credentialRefresh,
      // Only the leader rotates and completes pending rotations; every replica refreshes.
      isLeader: () => election.isLeader(),
      owner: rotationOwner('serve'),
      staleAfterMs: rotationStaleAfterMs(config),
      now,
      log: logger,
      onRotation: (r) => {
        metrics?.credentialRotations.inc({ outcome: r.outcome });
        audit.write(rotationAuditEvent(r, 'leader'));
      },
      stopAt: stopHookFromEnv(),
    });
    metrics = createMetrics({
      credentialExpirySeconds: () => credentials.expirySeconds(),
      rotationOutcomes: ROTATION_OUTCOMES,
      leader: () => election.isLeader(),
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
      ...compiled,
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
      credential: credentials,
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
      onRecovered: (grant, outcome) => {
        if (outcome !== 'failed') metrics?.revocations.inc({ outcome, source: 'recovery' });
        audit.write({ event: 'recover', outcome, ...grantAuditFields(grant) });
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
    // The leader's work: start-up recovery, then (background) the reaper and the reconciler.
    // Leadership lost: the loops stop at once; regained: recovery again, then the loops.
    let generation = 0;
    let duties: Promise<unknown> = Promise.resolve();
    const election = ledger.election((leader) => {
      const mine = ++generation;
      if (!leader) {
        const stopped = Promise.all([reaper.stop(), reconciler.stop()]);
        duties = duties.then(() => stopped);
        return stopped.then(() => {});
      }
      const start = duties.then(async () => {
        if (mine !== generation) return;
        await recoverOrphans(store, audit, logger);
        if (!background || mine !== generation) return;
        // Overdue grants first (they fell due while no leader ran), then the usual loop.
        await reaper.start();
        if (mine !== generation) return;
        await reconciler.start();
      });
      duties = start.catch(() => {});
      return start;
    });
    let healthTimer: NodeJS.Timeout | undefined;
    if (background) {
      const check = () =>
        gitlab.checkHealth().catch((err: Error) => logger.warn({ err: err.message }, 'GitLab check failed'));
      await check();
      healthTimer = setInterval(check, config.gitlab.healthInterval * 1000);
      healthTimer.unref();
      undo.push(() => clearInterval(healthTimer));
    }
    await election.start();
    undo.push(() => election.stop());
    // Refresh on every replica; on the leader, complete a rotation a crash left pending, then rotate
    // when due (src/credential/manager.ts). Stopped before the election steps down.
    if (background) {
      credentials.start();
      undo.push(() => credentials.stop());
    }

    context.clientBundle = await clientBundle;
    // Reloads swap the context; each request keeps the one it started with (reload.ts).
    const reloader = createReloader({
      initial: context,
      load: options.reloadConfig,
      makeValidator: (c) =>
        createTokenValidator({ issuers: c.issuers, clockSkewSeconds: c.tokens.clockSkew, now }),
      graceMs: config.server.requestTimeout * 1000,
    });
    undo.push(() => reloader.close());
    const app = buildApp(context, {
      logger: options.logger === false ? false : logger,
      current: reloader.current,
    });
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
    const adminSocket = config.server.adminSocket
      ? await startAdminSocket(config.server.adminSocket, { reload: () => reloader.reload() })
      : undefined;
    if (adminSocket) undo.push(() => adminSocket.close());
    logger.info({ url, metricsUrl: metricsServer?.url, serverId: config.server.id }, 'tanuki-sts listening');

    let closed: Promise<void> | undefined;
    return {
      url,
      port,
      metricsUrl: metricsServer?.url,
      metricsPort: metricsServer?.port,
      get context() {
        return reloader.current();
      },
      reload: () => reloader.reload(),
      reapNow: () => reaper.runOnce(),
      reconcileNow: () => reconciler.runOnce(),
      isLeader: () => election.isLeader(),
      credential: credentials,
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

/**
 * Start-up recovery, on the leader: a grant still `minting` whose process is gone (SQLite: any
 * process but this one, the lock being held; PostgreSQL: a replica that closed or whose heartbeat
 * lapsed) died mid-mint. Fail it now, so that the reconciler's first pass revokes whatever GitLab
 * created for it (its token reached no client), instead of waiting out the stale-minting deadline.
 * A store that cannot be reached leaves it to the reaper's passes.
 */
async function recoverOrphans(store: LedgerStore, audit: AuditSink, logger: Logger): Promise<void> {
  let orphans: Awaited<ReturnType<LedgerStore['failOrphanedMinting']>>;
  try {
    orphans = await store.failOrphanedMinting();
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'start-up recovery deferred: the ledger is unavailable');
    return;
  }
  if (orphans.length === 0) return;
  logger.warn({ grants: orphans.length }, 'grants left minting by a previous process marked failed');
  for (const g of orphans) audit.write({ event: 'recover', outcome: 'failed', ...grantAuditFields(g) });
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
