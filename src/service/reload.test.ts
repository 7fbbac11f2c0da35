/**
 * Reloading the configuration (reload.ts): what is applied, what needs a
 * restart and is not applied, an invalid file keeps the running
 * configuration (logged, counted, audited), an exchange in flight finishes
 * under the configuration it started with, and a replaced validator is closed
 * only after the grace period.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, type StsConfig } from '../config/index.ts';
import { type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import type { TokenValidatorHandle } from '../identity/index.ts';
import { buildApp } from './app.ts';
import {
  APP,
  POLICIES,
  stubValidator,
  type TestContext,
  TOKENS,
  testConfig,
  testContext,
} from './context.testutil.ts';
import { createReloader, diffConfig, type Reloader } from './reload.ts';
import { FORM, formBody, GRANT_TYPE, JWT_TYPE } from './wire.testutil.ts';

const VALID = {
  grant_type: GRANT_TYPE,
  subject_token: TOKENS.good,
  subject_token_type: JWT_TYPE,
  audience: 'platform/app',
};

function validatorStub(): TokenValidatorHandle & { closed: number } {
  const v = stubValidator();
  const out = Object.assign(v, {
    closed: 0,
    refreshNow: async () => {},
    close() {
      out.closed++;
    },
  });
  return out as unknown as TokenValidatorHandle & { closed: number };
}

async function reloadCount(ctx: TestContext): Promise<Record<string, number>> {
  const m = await ctx.metrics.configReloads.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]));
}

describe('configuration reload', () => {
  let fake: FakeGitlab;
  let ctx: TestContext;
  let next: () => StsConfig;
  let reloader: Reloader;
  const made: Array<ReturnType<typeof validatorStub>> = [];

  before(async () => {
    fake = await startFakeGitlab();
    ctx = testContext(fake.url);
    next = () => ctx.config;
    reloader = createReloader({
      initial: ctx,
      load: () => next(),
      makeValidator: () => {
        const v = validatorStub();
        made.push(v);
        return v;
      },
      graceMs: 50,
    });
  });
  after(async () => {
    reloader.close();
    await ctx.close();
    await fake.close();
  });

  it('the same file: success, nothing changed, the same context parts kept', async () => {
    const r = await reloader.reload();
    assert.deepEqual(r, { outcome: 'success', applied: [], restartRequired: [], errors: [] });
    assert.equal(reloader.current().validator, ctx.validator, 'no new validator when issuers are unchanged');
    assert.equal(reloader.current().limits.perIdentity, ctx.limits.perIdentity);
  });

  it('policies, deny list, limits: applied at once; listen, store, gitlab: reported, not applied', async () => {
    const changed = testConfig(
      fake.url,
      {
        listen: '127.0.0.1:9999',
        deny: [{ match: { appid: APP } }],
        rateLimit: { perIdentity: 5, perIp: 0 },
        maxActiveGrantsPerIdentity: 3,
      },
      { policies: [{ ...POLICIES[0], name: 'renamed' }] },
    );
    next = () => ({
      ...changed,
      store: { sqlite: '/elsewhere.db' },
      gitlab: { ...changed.gitlab, timeout: 99 },
    });
    const r = await reloader.reload();
    assert.equal(r.outcome, 'success');
    assert.deepEqual(r.applied.sort(), [
      'policies',
      'server.deny',
      'server.maxActiveGrantsPerIdentity',
      'server.rateLimit',
    ]);
    assert.deepEqual(r.restartRequired.sort(), ['gitlab', 'server.listen', 'store']);
    const live = reloader.current();
    assert.notEqual(live, ctx);
    assert.deepEqual(
      live.policies.policies.map((p) => p.name),
      ['renamed'],
    );
    assert.equal(live.deny.rules.length, 1);
    assert.equal(live.config.server.maxActiveGrantsPerIdentity, 3);
    assert.notEqual(live.limits.perIdentity, ctx.limits.perIdentity, 'a changed limit gets a new limiter');
    assert.equal(live.limits.perIp, ctx.limits.perIp, 'an unchanged one keeps its state');
    // Not half-applied: the running values stay.
    assert.deepEqual(live.config.server.listen, ctx.config.server.listen);
    assert.deepEqual(live.config.store, ctx.config.store);
    assert.equal(live.config.gitlab.timeout, ctx.config.gitlab.timeout);
    const logged = ctx.logLines.filter(
      (l) => l.msg === 'configuration changes that need a restart were not applied',
    );
    assert.deepEqual((logged.at(-1) as { restartRequired?: string[] } | undefined)?.restartRequired?.sort(), [
      'gitlab',
      'server.listen',
      'store',
    ]);
    const audit = ctx.audit.events.filter((e) => e.event === 'reload').at(-1);
    assert.equal(audit?.outcome, 'success');
  });

  it('an invalid file: the running configuration stays, the error is logged, counted and audited', async () => {
    const before = reloader.current();
    const counts = await reloadCount(ctx);
    for (const [load, line] of [
      [
        () => {
          throw new ConfigError('invalid configuration', ['policies[0].grant.role: expected one of …']);
        },
        'policies[0].grant.role: expected one of …',
      ],
      [
        () => testConfig(fake.url, {}, { policies: [{ ...POLICIES[0], match: { sub: { pattern: '(' } } }] }),
        /^policy "deploy": match\.sub: invalid pattern/,
      ],
      [
        () => testConfig(fake.url, { deny: [{ match: {} }] }),
        'server.deny[0]: match needs at least one claim',
      ],
      [
        () => {
          throw new TypeError('a bug');
        },
        'unexpected: a bug',
      ],
    ] as const) {
      next = load as () => StsConfig;
      const r = await reloader.reload();
      assert.equal(r.outcome, 'error');
      assert.equal(r.errors.length, 1);
      if (typeof line === 'string') assert.equal(r.errors[0], line);
      else assert.match(r.errors[0] ?? '', line);
      assert.equal(reloader.current(), before, 'the running context stays');
    }
    const after = await reloadCount(ctx);
    assert.equal(after.error, (counts.error ?? 0) + 4);
    assert.equal(after.success, counts.success);
    assert.ok(
      ctx.logLines.some((l) => l.msg === 'configuration reload failed; the running configuration stays'),
    );
    assert.equal(ctx.audit.events.filter((e) => e.event === 'reload' && e.outcome === 'error').length, 4);
  });

  it('changed issuers: a new validator, initialised before the swap; the old one closed after the grace period', async () => {
    const base = testConfig(fake.url);
    next = () => ({ ...base, tokens: { ...base.tokens, clockSkew: 1 } });
    const old = reloader.current().validator;
    const r = await reloader.reload();
    assert.ok(r.applied.includes('tokens'));
    const v1 = made.at(-1);
    assert.equal(reloader.current().validator, v1);
    assert.notEqual(old, v1);
    // A second change retires v1 (one the reloader made): closed after the grace period, not before.
    next = () => ({ ...base, tokens: { ...base.tokens, clockSkew: 2 } });
    await reloader.reload();
    assert.equal(v1?.closed, 0);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(v1?.closed, 1);
  });

  it('reloads run one at a time, in order', async () => {
    const order: number[] = [];
    let n = 0;
    next = () => {
      const i = ++n;
      order.push(i);
      return testConfig(fake.url, { maxActiveGrantsPerIdentity: i });
    };
    const results = await Promise.all([reloader.reload(), reloader.reload(), reloader.reload()]);
    assert.deepEqual(order, [1, 2, 3]);
    assert.ok(results.every((r) => r.outcome === 'success'));
    assert.equal(reloader.current().config.server.maxActiveGrantsPerIdentity, 3);
  });

  it('without a file to reload from: an error, nothing changed', async () => {
    const r = createReloader({ initial: ctx, makeValidator: () => validatorStub(), graceMs: 0 });
    const res = await r.reload();
    assert.deepEqual(res.errors, ['this process was started without a configuration file to reload']);
    assert.equal(r.current(), ctx);
  });
});

describe('an exchange in flight finishes under the configuration it started with', () => {
  it('a reload that denies the caller mid-exchange: that exchange is granted, the next one refused', async () => {
    const fake = await startFakeGitlab();
    const ctx = testContext(fake.url);
    let next = () => ctx.config;
    const reloader = createReloader({
      initial: ctx,
      load: () => next(),
      makeValidator: () => validatorStub(),
      graceMs: 0,
    });
    const app = buildApp(ctx, { current: reloader.current });
    try {
      // GitLab is slow: the exchange is at GitLab when the reload lands.
      fake.latencyMs = 300;
      const inflight = app.inject({
        method: 'POST',
        url: '/token',
        payload: formBody(VALID),
        headers: { 'content-type': FORM },
      });
      while (fake.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      next = () => testConfig(fake.url, { deny: [{ match: { appid: APP } }] });
      assert.equal((await reloader.reload()).outcome, 'success');
      const first = await inflight;
      assert.equal(first.statusCode, 200, first.body);
      fake.latencyMs = 0;
      const second = await app.inject({
        method: 'POST',
        url: '/token',
        payload: formBody(VALID),
        headers: { 'content-type': FORM },
      });
      assert.equal(second.statusCode, 400, second.body);
      const event = ctx.audit.events.find((e) => e.requestId === second.headers['x-request-id']);
      assert.equal(event?.reason, 'denied by server.deny[0]');
    } finally {
      reloader.close();
      await app.close();
      await ctx.close();
      await fake.close();
    }
  });
});

describe('diffConfig', () => {
  it('classifies every key: known reloadable ones applied, anything else (new keys too) restart-only', () => {
    const a = testConfig('https://gitlab.example.com');
    const b = {
      ...a,
      audit: { file: '/x' },
      reaper: { ...a.reaper, interval: 1 },
      server: { ...a.server, bodyLimit: 2048, trustProxy: true, someFutureKey: 1 },
      futureSection: {},
    } as unknown as StsConfig;
    // The GitLab token's value alone is no change: the running process reads it again by itself.
    assert.deepEqual(diffConfig(a, { ...a, gitlab: { ...a.gitlab, token: 'glpat-rotated' } }), {
      applied: [],
      restartRequired: [],
    });
    const d = diffConfig(a, b);
    assert.deepEqual(d.applied, []);
    assert.deepEqual(d.restartRequired.sort(), [
      'audit',
      'futureSection',
      'reaper',
      'server.bodyLimit',
      'server.someFutureKey',
      'server.trustProxy',
    ]);
  });
});
