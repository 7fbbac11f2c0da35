import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ConfigError, parseConfig, type StsConfig } from '../../src/config/index.ts';
import { startAdminSocket } from '../../src/service/admin-socket.ts';
import { startSts } from '../../src/service/server.ts';
import { EXCHANGE, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, closeEntraAgent, GENERIC, gitlabApiCalls, mintEntra } from './helpers/attack.ts';

const GLPAT = 'glpat-Q1w2E3r4T5y6U7i8O9p0';

describe('kill switch and reload (attacks)', () => {
  let s: Stack;
  let raw: Record<string, any>;
  let next: () => StsConfig;
  const logLines: string[] = [];

  before(async () => {
    s = await startStack({
      tweak: (r) => {
        raw = r;
        r.server.adminSocket = 'run/admin.sock';
        r.server.deny = [{ issuer: 'contoso', match: { appid: 'denied-placeholder' } }];
      },
    });
    raw.server.deny = [{ issuer: 'contoso', match: { appid: s.seed.pipelineClientId } }];
    const parse = () => parseConfig(structuredClone(raw), { baseDir: s.dir, env: {} });
    next = parse;
    await s.sts.close();
    const logger = pino({ level: 'info', base: null }, { write: (line: string) => void logLines.push(line) });
    s.sts = await startSts({
      config: parse(),
      reloadConfig: () => next(),
      logger,
      audit: s.audit,
      now: s.clock.now,
      background: false,
    });
  });
  after(async () => {
    try {
      assertAuditClean(s, [GLPAT]);
      for (const l of logLines) assert.ok(!l.includes(GLPAT) && !l.includes(s.gitlab.adminToken), l);
    } finally {
      await closeEntraAgent(s);
      await s.close();
    }
  });

  const post = (path: string, form: Record<string, string>) => postForm(`${s.sts.url}${path}`, form);
  const withoutId = (text: string) => text.replace(/"request_id":"[^"]+"/, '');

  it('132: a denied identity cannot get past server.deny: v1 or v2 token, named policy, resource URL, no resource, /oauth/token', async () => {
    const gitlab = await gitlabApiCalls(s);
    const v1 = await mintEntra(s);
    const v2 = await mintEntra(s, { version: 2, resource: s.seed.resourceClientId });
    const forms: Array<Record<string, string>> = [
      { subject_token: v1, audience: PROJECT },
      { subject_token: v2, audience: PROJECT },
      { subject_token: v1, audience: PROJECT, policy: 'image-build' },
      { subject_token: v1, resource: `${s.gitlab.url}/${PROJECT}` },
      { subject_token: v1, resource: `${s.gitlab.url}/groups/platform` },
      { subject_token: v1 },
    ];
    for (const form of forms) {
      for (const path of ['/token', '/oauth/token']) {
        const r = await post(path, { ...EXCHANGE, ...form });
        assert.equal(r.status, 400, r.text);
        assert.deepEqual([r.json.error, r.json.error_description], ['invalid_request', GENERIC]);
        const event = s.audit.events.find((e) => e.requestId === r.json.request_id);
        assert.equal(event?.reason, 'denied by server.deny[0]');
      }
    }
    assert.equal(await gitlabApiCalls(s), gitlab, 'no GitLab call');
  });

  it('133: a denial is indistinguishable from an invalid token or an unknown caller (no oracle)', async () => {
    const denied = await post('/token', {
      ...EXCHANGE,
      subject_token: await mintEntra(s),
      audience: PROJECT,
    });
    const invalid = await post('/token', { ...EXCHANGE, subject_token: 'x.y.z', audience: PROJECT });
    const unknown = await post('/token', {
      ...EXCHANGE,
      subject_token: await mintEntra(s, { clientId: '00000000-0000-4000-8000-00000000abcd' }),
      audience: PROJECT,
    });
    assert.equal(denied.status, 400);
    assert.equal(withoutId(denied.text), withoutId(invalid.text));
    assert.equal(withoutId(denied.text), withoutId(unknown.text));
    const headers = (r: { headers: Headers }) =>
      [...r.headers.entries()].filter(([k]) => !['date', 'x-request-id', 'content-length'].includes(k));
    assert.deepEqual(headers(denied), headers(unknown));
  });

  it('134: a secret pasted into the wrong key of the new file: the reload is refused, and the secret is in no answer, log line or audit event', async () => {
    const bad = structuredClone(raw);
    bad.server.deny = [];
    bad.server.rateLimit = { perIdentity: GLPAT, perIp: 0 };
    bad.policies[0].grant.ttl = { default: GLPAT, max: '1h' };
    next = () => parseConfig(bad, { baseDir: s.dir, env: {} });
    const r = await s.sts.reload();
    assert.equal(r.outcome, 'error');
    assert.ok(r.errors.length >= 2, r.errors.join('\n'));
    assert.ok(
      r.errors.some((e) => e.startsWith('server.rateLimit.perIdentity:')),
      r.errors.join('\n'),
    );
    assert.ok(!JSON.stringify(r).includes(GLPAT));
    const still = await post('/token', { ...EXCHANGE, subject_token: await mintEntra(s), audience: PROJECT });
    assert.equal(still.status, 400);
    assert.ok(!new ConfigError(`x ${GLPAT}`, [`y ${GLPAT}`]).message.includes(GLPAT));
    next = () => parseConfig(structuredClone(raw), { baseDir: s.dir, env: {} });
  });

  it('135: the admin socket is private; a file or symlink planted at its path is never taken over', async () => {
    const path = join(s.dir, 'run', 'admin.sock');
    assert.ok(statSync(path).isSocket());
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(s.dir, 'run')).mode & 0o777, 0o700);
    const victim = join(s.dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    mkdirSync(join(s.dir, 'planted'), { mode: 0o700 });
    symlinkSync(victim, join(s.dir, 'planted', 'link.sock'));
    await assert.rejects(
      startAdminSocket(join(s.dir, 'planted', 'link.sock'), { reload: () => s.sts.reload() }),
      /exists and is not a socket/,
    );
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    const junk = await new Promise<string>((resolve) => {
      const c = connect(path);
      let out = '';
      c.on('data', (d) => {
        out += d;
      });
      c.once('close', () => resolve(out));
      c.once('error', () => resolve(out));
      c.once('connect', () => c.write(`${'A'.repeat(65)}`));
    });
    assert.equal(junk, '');
  });

  it('136: exchanges racing reloads that add and remove the deny entry: each is decided wholly under one configuration', async () => {
    const allowed = structuredClone(raw);
    allowed.server.deny = [];
    const configs = [
      () => parseConfig(structuredClone(allowed), { baseDir: s.dir, env: {} }),
      () => parseConfig(structuredClone(raw), { baseDir: s.dir, env: {} }),
    ];
    const subject = await mintEntra(s);
    const results: Array<ReturnType<typeof post>> = [];
    for (let i = 0; i < 20; i++) {
      results.push(post('/token', { ...EXCHANGE, subject_token: subject, audience: PROJECT }));
      next = configs[i % 2]!;
      void s.sts.reload();
    }
    const answers = await Promise.all(results);
    let granted = 0;
    for (const r of answers) {
      assert.ok(r.status === 200 || r.status === 400, r.text);
      if (r.status === 200) {
        granted++;
        await post('/revoke', { token: r.json.access_token });
      } else {
        assert.equal(r.json.error_description, GENERIC);
        const event = s.audit.events.find((e) => e.requestId === r.json.request_id);
        assert.equal(event?.reason, 'denied by server.deny[0]');
      }
    }
    assert.ok(granted + answers.filter((r) => r.status === 400).length === 20);
    next = configs[1]!;
    assert.equal((await s.sts.reload()).outcome, 'success');
  });
});
