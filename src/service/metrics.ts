/**
 * Prometheus metrics, prefix `tanuki_sts_`, on a registry of the app's own (no global state),
 * served by a listener of their own (`server.metricsListen`), never the public one: the
 * labels name every policy.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { REFUSAL_REASONS } from './errors.ts';

export interface StsMetrics {
  registry: Registry;
  exchanges: Counter<'outcome' | 'policy'>;
  exchangeDuration: Histogram<'outcome'>;
  gitlabDuration: Histogram<'method' | 'route' | 'status'>;
  revocations: Counter<'outcome' | 'source'>;
  /** Refused exchanges by a bounded reason (errors.ts `RefusalReason`): never caller text. */
  refusals: Counter<'reason'>;
  /** Configuration reloads (SIGHUP, `tanuki-sts reload`) by outcome: `success` or `error`. */
  configReloads: Counter<'outcome'>;
  activeGrants: Gauge;
  reaperLag: Gauge;
  leader: Gauge;
  /** Rotations of the STS's own GitLab token by outcome (src/credential/rotation.ts `ROTATION_OUTCOMES`). */
  credentialRotations: Counter<'outcome'>;
  credentialExpiry: Gauge;
}

export function createMetrics(sources: {
  /** Whether this process runs the reaper and reconciler now (SQLite: always). */
  leader?: () => boolean;
  activeGrants: () => Promise<number>;
  reaperLagSeconds: () => Promise<number>;
  /** Seconds until the STS's own GitLab token expires (+Inf: no expiry; NaN: not known yet). */
  credentialExpirySeconds?: () => number;
  /** The label values of `tanuki_sts_credential_rotations_total`, created at 0. */
  rotationOutcomes?: readonly string[];
}): StsMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tanuki_sts_process_' });
  const metrics: StsMetrics = {
    registry,
    exchanges: new Counter({
      name: 'tanuki_sts_exchanges_total',
      help: 'Token exchanges by outcome and policy',
      labelNames: ['outcome', 'policy'],
      registers: [registry],
    }),
    exchangeDuration: new Histogram({
      name: 'tanuki_sts_exchange_duration_seconds',
      help: 'Latency of POST /token',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    gitlabDuration: new Histogram({
      name: 'tanuki_sts_gitlab_request_duration_seconds',
      help: 'Latency of calls to the GitLab API',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    revocations: new Counter({
      name: 'tanuki_sts_revocations_total',
      help: 'Revocations by outcome and source (client, reaper, reconciler)',
      labelNames: ['outcome', 'source'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'tanuki_sts_refusals_total',
      help:
        'Refused exchanges by reason: the OAuth error code, or subject_token / no_policy / denied (all ' +
        'invalid_request to the caller), rate_limited, unavailable',
      labelNames: ['reason'],
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'tanuki_sts_config_reload_total',
      help: 'Configuration reloads (SIGHUP, tanuki-sts reload) by outcome: success, or error (the running configuration stays)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    activeGrants: new Gauge({
      name: 'tanuki_sts_active_grants',
      help: 'Grants minted and not yet revoked',
      registers: [registry],
      async collect() {
        this.set(await sources.activeGrants().catch(() => Number.NaN));
      },
    }),
    reaperLag: new Gauge({
      name: 'tanuki_sts_reaper_lag_seconds',
      help: 'How long the oldest overdue grant has been waiting for revocation (0 when none)',
      registers: [registry],
      async collect() {
        this.set(await sources.reaperLagSeconds().catch(() => Number.NaN));
      },
    }),
    credentialRotations: new Counter({
      name: 'tanuki_sts_credential_rotations_total',
      help:
        "Rotations of the STS's own GitLab token by outcome: success, recovered (a pending one completed), " +
        'failed (nothing rotated), writeback_failed (rotated, not yet stored), abandoned, lost, busy',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    credentialExpiry: new Gauge({
      name: 'tanuki_sts_gitlab_credential_expiry_seconds',
      help: "Seconds until the STS's own GitLab token expires (+Inf: it has no expiry date)",
      registers: [registry],
      collect() {
        this.set(sources.credentialExpirySeconds?.() ?? Number.NaN);
      },
    }),
    leader: new Gauge({
      name: 'tanuki_sts_leader',
      help: 'Whether this process is the leader, the one running the reaper and reconciler (1) or not (0)',
      registers: [registry],
      collect() {
        this.set(sources.leader?.() === false ? 0 : 1);
      },
    }),
  };
  // Every series of the bounded label sets from the start, at 0: rates and alerts see the first event.
  for (const reason of REFUSAL_REASONS) metrics.refusals.inc({ reason }, 0);
  for (const outcome of ['success', 'error']) metrics.configReloads.inc({ outcome }, 0);
  for (const outcome of sources.rotationOutcomes ?? []) metrics.credentialRotations.inc({ outcome }, 0);
  return metrics;
}

export interface MetricsServer {
  /** The scrape URL, `http://host:port/metrics`, with the port actually bound (port 0 picks one). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The metrics listener: plain HTTP, `GET /metrics` and nothing else (404 for
 * any other method or path). Rejects if the address cannot be bound.
 */
export async function startMetricsServer(
  registry: Registry,
  listen: { host: string; port: number },
): Promise<MetricsServer> {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
