/**
 * Attacks on the request people already write (issue 18): client
 * authentication at `/oauth/token` and `/token` (RFC 6749 §2.3, §5.2), a
 * policy's `client` as a second factor, and the target a request that names
 * none gets. Rows 125–131 of docs/security.md. Each refusal: no GitLab call,
 * no subject-token validation where the client failed first, the one generic
 * answer, nothing of the secret or the policies in answers, audit or log.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EXCHANGE, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import {
  assertAuditClean,
  closeEntraAgent,
  GENERIC,
  gitlabApiCalls,
  jwksFetches,
  mintEntra,
} from './helpers/attack.ts';

const SECRET = 'ci-runner-secret-5b0f3c9e2a7d41e8';
const OTHER_SECRET = 'other-client-secret-0a1b2c3d4e5f';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('client authentication and the request without a resource (attacks)', () => {
  let s: Stack;
  let subject: string;
  const answers: string[] = [];

  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.clients = { 'ci-runner': { secret: SECRET }, other: { secret: OTHER_SECRET } };
        // The pipeline app may get its one project only together with the ci-runner client.
        raw.policies[0].client = 'ci-runner';
      },
    });
    subject = await mintEntra(s);
  });
  after(async () => {
    try {
      assertAuditClean(s, [SECRET, OTHER_SECRET, subject]);
      for (const a of answers) {
        assert.ok(!a.includes(SECRET) && !a.includes(OTHER_SECRET), `an answer echoes a secret: ${a}`);
        assert.ok(!a.includes(PROJECT), `an answer names a target: ${a}`);
      }
    } finally {
      await closeEntraAgent(s);
      await s.close();
    }
  });

  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const r = await postForm(`${s.sts.url}${path}`, form, headers);
    if (r.status !== 200) answers.push(r.text);
    return r;
  };
  const audited = (r: { json: any }) => s.audit.events.find((e) => e.requestId === r.json?.request_id);

  /** Asserts a 401 invalid_client with the challenge, before any work: no JWKS fetch, no GitLab call. */
  async function expectInvalidClient(form: Record<string, string>, headers: Record<string, string> = {}) {
    const gitlab = await gitlabApiCalls(s);
    const jwks = jwksFetches(s);
    const r = await post('/oauth/token', { ...EXCHANGE, subject_token: subject, ...form }, headers);
    assert.equal(r.status, 401, r.text);
    assert.deepEqual(
      [r.json.error, r.json.error_description],
      ['invalid_client', 'client authentication failed'],
    );
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="tanuki-sts"');
    assert.equal(await gitlabApiCalls(s), gitlab, 'no GitLab call');
    assert.equal(jwksFetches(s), jwks, 'no JWKS fetch');
    const event = audited(r);
    assert.equal(event?.outcome, 'invalid_client');
    assert.equal(event?.subjectTokenId, undefined, 'the subject token was not validated');
    return event?.reason ?? '';
  }

  it('125: guessing the secret: every wrong guess is the same 401, whatever its length or prefix; the right one works', async () => {
    const guesses = [
      '',
      'x',
      SECRET.slice(0, -1),
      `${SECRET}x`,
      SECRET.toUpperCase(),
      ` ${SECRET}`,
      SECRET.slice(0, 8),
    ];
    const bodies = new Set<string>();
    for (const g of guesses) {
      const reason = await expectInvalidClient({ client_id: 'ci-runner', client_secret: g });
      assert.equal(reason, 'wrong secret for client ci-runner (client_secret_post)');
      const last = answers.at(-1) ?? '';
      bodies.add(last.replace(/"request_id":"[^"]+"/, ''));
    }
    assert.equal(bodies.size, 1, 'one answer for every wrong guess');
    // An unknown client answers exactly as a wrong secret does (the audit tells them apart).
    assert.equal(
      await expectInvalidClient({ client_id: 'no-such-client', client_secret: SECRET }),
      `unknown client sha256:${createHash('sha256').update('no-such-client').digest('hex').slice(0, 16)} (client_secret_post)`,
    );
    const ok = await post('/oauth/token', {
      ...EXCHANGE,
      subject_token: subject,
      client_id: 'ci-runner',
      client_secret: SECRET,
    });
    assert.equal(ok.status, 200, ok.text);
    await post('/revoke', { token: ok.json.access_token });
  });

  it('126: two methods at once, or a body client_id that contradicts Basic: 401, never the "better" of the two', async () => {
    assert.match(
      await expectInvalidClient({ client_secret: SECRET }, { authorization: basic('ci-runner', SECRET) }),
      /two client authentication methods/,
    );
    assert.match(
      await expectInvalidClient({ client_id: 'other' }, { authorization: basic('ci-runner', SECRET) }),
      /differs from the HTTP Basic one/,
    );
    assert.match(
      await expectInvalidClient(
        { client_id: 'ci-runner', client_secret: 'wrong' },
        { authorization: basic('ci-runner', SECRET) },
      ),
      /two client authentication methods/,
    );
  });

  it('127: hostile Authorization headers: bad base64, not UTF-8, no colon, bad percent-encoding, 4 KiB, other schemes, a token', async () => {
    const glpat = 'glpat-AbCdEfGhIjKlMnOpQrSt';
    const headers = [
      'Basic',
      'Basic ====',
      'Basic %%%%',
      `Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`,
      `Basic ${Buffer.from('ci-runner').toString('base64')}`,
      `Basic ${Buffer.from('ci-runner:%E0%A4%A').toString('base64')}`,
      `Basic ${Buffer.from(`:${SECRET}`).toString('base64')}`,
      `Basic ${'QUFB'.repeat(1100)}`,
      `Bearer ${glpat}`,
      `Digest username="ci-runner"`,
      glpat,
    ];
    for (const h of headers) {
      const reason = await expectInvalidClient({}, { authorization: h });
      assert.ok(!reason.includes(glpat) && !reason.includes(SECRET), reason);
    }
  });

  it('128: a stolen subject token alone does not satisfy a policy with `client`, nor does naming the client without its secret', async () => {
    const gitlab = await gitlabApiCalls(s);
    for (const [form, headers] of [
      [{}, {}],
      [{ client_id: 'ci-runner' }, {}],
      [{ client_id: 'other', client_secret: OTHER_SECRET }, {}],
      [{}, { authorization: basic('other', OTHER_SECRET) }],
    ] as Array<[Record<string, string>, Record<string, string>]>) {
      for (const path of ['/token', '/oauth/token']) {
        const r = await post(
          path,
          { ...EXCHANGE, subject_token: subject, audience: PROJECT, ...form },
          headers,
        );
        assert.equal(r.status, 400, r.text);
        assert.deepEqual([r.json.error, r.json.error_description], ['invalid_request', GENERIC]);
        assert.match(
          audited(r)?.reason ?? '',
          /client: the request did not authenticate as the client this policy requires/,
        );
      }
    }
    assert.equal(await gitlabApiCalls(s), gitlab, 'no GitLab call');
  });

  it('129: a client_id carrying a token, the secret itself (id and secret swapped), markup or control characters: audited as a hash, never echoed', async () => {
    const glpat = 'glpat-ZyXwVuTsRqPoNmLkJiHg';
    for (const id of [glpat, subject, SECRET, '<script>alert(1)</script>', 'a\u202eb', 'x'.repeat(200)]) {
      const r = await post('/oauth/token', {
        ...EXCHANGE,
        subject_token: subject,
        audience: PROJECT,
        client_id: id,
      });
      assert.equal(r.status, 400, r.text);
      assert.match(audited(r)?.clientId ?? '', /^sha256:[0-9a-f]{16}$/);
      assert.ok(!r.text.includes(id));
    }
  });

  it('130: probing policies and targets by leaving the resource out: a fixed answer that names none', async () => {
    // Accepted, one target: granted (the positive case).
    const ok = await post('/oauth/token', {
      ...EXCHANGE,
      subject_token: subject,
      client_id: 'ci-runner',
      client_secret: SECRET,
    });
    assert.equal(ok.status, 200, ok.text);
    await post('/revoke', { token: ok.json.access_token });
    // Not accepted (no client): the generic refusal, as with a resource; no GitLab call.
    const gitlab = await gitlabApiCalls(s);
    const none = await post('/oauth/token', { ...EXCHANGE, subject_token: subject });
    assert.deepEqual(
      [none.status, none.json.error, none.json.error_description],
      [400, 'invalid_request', GENERIC],
    );
    // An invalid token: the same.
    const bad = await post('/oauth/token', { ...EXCHANGE, subject_token: `${subject.slice(0, -4)}AAAA` });
    assert.deepEqual([bad.status, bad.json.error_description], [400, GENERIC]);
    assert.equal(await gitlabApiCalls(s), gitlab);
  });

  it('131: secrets never reach the answers, the audit stream or the metrics', async () => {
    await post('/oauth/token', {
      ...EXCHANGE,
      subject_token: subject,
      client_id: 'ci-runner',
      client_secret: `${SECRET}-wrong`,
    });
    await post('/oauth/token', {
      ...EXCHANGE,
      subject_token: SECRET,
      client_id: 'other',
      client_secret: SECRET,
    });
    await post('/oauth/token', {
      ...EXCHANGE,
      subject_token: subject,
      client_id: SECRET,
      client_secret: 'ci-runner',
    });
    const metrics = await (await fetch(s.sts.metricsUrl ?? '')).text();
    assert.ok(!metrics.includes(SECRET) && !metrics.includes('ci-runner-secret'));
    // Checked for every answer and audit event in `after`.
  });
});

describe('the request without a resource, for a caller with several targets (attack)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({
      tweak: (raw) => {
        raw.policies[0].grant.projects = [PROJECT, 'platform/secret-project', 'platform/other'];
      },
    });
  });
  after(async () => {
    assertAuditClean(s);
    await closeEntraAgent(s);
    await s.close();
  });

  it('130: invalid_target asking to name the target, the same text whatever the policy grants; no GitLab call', async () => {
    const gitlab = await gitlabApiCalls(s);
    const r = await postForm(`${s.sts.url}/oauth/token`, { ...EXCHANGE, subject_token: await mintEntra(s) });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json.error, 'invalid_target');
    assert.equal(
      r.json.error_description,
      'name the GitLab project or group: resource=<its URL on GitLab> (or audience=<its path>)',
    );
    assert.ok(!/platform|secret-project|image-build/.test(r.text), r.text);
    assert.equal(await gitlabApiCalls(s), gitlab);
  });
});
