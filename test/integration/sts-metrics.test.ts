/**
 * Metrics live on a listener of their own (`server.metricsListen`): the
 * public listener has no /metrics (its labels name every policy), the metrics
 * listener serves GET /metrics and nothing else, port 0 binds an ephemeral
 * port the STS handle reports, and a port already taken stops start-up.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StsConfig } from '../../src/config/index.ts';
import { acquireLedgerLock } from '../../src/ledger/index.ts';
import { createMemoryAuditSink } from '../../src/service/audit.ts';
import { startSts } from '../../src/service/server.ts';
import { EXCHANGE, PROJECT, pipelineToken, postForm, type Stack, startStack } from '../helpers/stack.ts';

describe('metrics listener', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(() => s.close());

  const withServer = (server: Partial<StsConfig['server']>, ledger: string): StsConfig => ({
    ...s.config,
    store: { sqlite: join(s.dir, ledger) },
    server: { ...s.config.server, ...server },
  });

  it('GET /metrics on the public listener is 404', async () => {
    const res = await fetch(`${s.sts.url}/metrics`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(
      { error: body.error, error_description: body.error_description },
      { error: 'not_found', error_description: 'no such endpoint' },
    );
  });

  it('port 0 binds an ephemeral port, reported by the handle', () => {
    assert.deepEqual(s.config.server.metricsListen, { host: '127.0.0.1', port: 0 });
    assert.ok(s.sts.metricsPort && s.sts.metricsPort > 0);
    assert.equal(s.sts.metricsUrl, `http://127.0.0.1:${s.sts.metricsPort}/metrics`);
    assert.notEqual(s.sts.metricsPort, s.sts.port);
  });

  it('serves GET /metrics: exchanges counted by outcome and policy', async () => {
    const subject = await pipelineToken(s);
    const ex = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(ex.status, 200, ex.text);
    await postForm(`${s.sts.url}/revoke`, { token: ex.json.access_token });
    const res = await fetch(s.sts.metricsUrl ?? '');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const text = await res.text();
    assert.ok(
      text
        .split('\n')
        .some(
          (l) =>
            l.startsWith('tanuki_sts_exchanges_total{') &&
            l.includes('outcome="granted"') &&
            l.includes('policy="image-build"') &&
            l.endsWith(' 1'),
        ),
      text,
    );
    assert.match(text, /^tanuki_sts_process_/m);
  });

  it('serves nothing else: other paths and methods are 404', async () => {
    const base = new URL(s.sts.metricsUrl ?? '').origin;
    for (const path of [
      '/',
      '/token',
      '/revoke',
      '/healthz',
      '/readyz',
      '/metrics/',
      '/metricsx',
      '/METRICS',
    ]) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, path);
      await res.text();
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      const res = await fetch(`${base}/metrics`, { method });
      assert.equal(res.status, 404, method);
      await res.text();
    }
    // A query string is still GET /metrics (some scrapers add one).
    assert.equal((await fetch(`${base}/metrics?x=1`)).status, 200);
  });

  it('metricsListen false: no metrics listener, and still none on the public one', async () => {
    const sts = await startSts({
      config: withServer({ metricsListen: false }, 'no-metrics.db'),
      logger: false,
      audit: createMemoryAuditSink(),
      background: false,
    });
    try {
      assert.equal(sts.metricsUrl, undefined);
      assert.equal(sts.metricsPort, undefined);
      assert.equal((await fetch(`${sts.url}/metrics`)).status, 404);
    } finally {
      await sts.close();
    }
  });

  it('a metrics port already taken stops start-up (EADDRINUSE) and releases the ledger lock', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        startSts({
          config: withServer({ metricsListen: { host: '127.0.0.1', port } }, 'taken.db'),
          logger: false,
          audit: createMemoryAuditSink(),
          background: false,
        }),
        /EADDRINUSE/,
      );
      acquireLedgerLock(join(s.dir, 'taken.db')).release();
    } finally {
      blocker.close();
    }
  });
});
