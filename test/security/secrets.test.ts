/**
 * No secret in the audit stream or in an error answer: not the GitLab tokens
 * the STS mints, not the subject JWTs (only their SHA-256), not a client
 * secret a confused caller sends, wherever in the request it puts them.
 * (Every other security test file scans its own audit stream the same way in
 * its `after` hook, through assertAuditClean.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoSecrets, EXCHANGE, PROJECT, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, closeEntraAgent, exchange, mintEntra, seedSecrets } from './helpers/attack.ts';

describe('secrets stay out of the audit stream and the answers', () => {
  let s: Stack;
  let subject: string;
  let clientSecret: string;
  const answers: string[] = [];

  before(async () => {
    s = await startStack();
    subject = await mintEntra(s);
    clientSecret = s.seed.pipelineClientSecret;
    assert.ok(clientSecret && clientSecret.length >= 8, 'the seed has a client secret');
    assert.ok(seedSecrets(s).includes(clientSecret));
  });
  after(async () => {
    await closeEntraAgent(s);
    await s.close();
  });

  it('a successful exchange and revocation record hashes, never the tokens', async () => {
    const res = await exchange(s, subject);
    assert.equal(res.status, 200, res.text);
    const glpat = res.json.access_token as string;
    // GitLab 18.x's format (the emulator's default), so every scan below runs on one.
    assert.match(glpat, /^glpat-[A-Za-z0-9_-]+\.01\.[0-9a-z]{9}$/);
    const revoked = await postForm(`${s.sts.url}/revoke`, { token: glpat });
    assert.equal(revoked.status, 200);
    const lines = s.audit.events.map((e) => JSON.stringify(e));
    assert.ok(
      lines.some((l) => l.includes('"tokenSha256"')),
      'the minted token is audited by hash',
    );
    for (const l of lines) {
      assert.ok(!l.includes(glpat), 'GitLab token in the audit stream');
      assert.ok(!l.includes(subject), 'subject token in the audit stream');
    }
    assertAuditClean(s, [glpat, subject]);
  });

  it('tokens and client secrets sent in the wrong places are not echoed to the audit stream or the caller', async () => {
    const res = await exchange(s, subject);
    assert.equal(res.status, 200, res.text);
    const glpat = res.json.access_token as string;
    const url = `${s.sts.url}/token`;
    const base = { ...EXCHANGE, subject_token: subject, audience: PROJECT };
    const forms: Array<Record<string, string> | string> = [
      { ...EXCHANGE, subject_token: clientSecret, audience: PROJECT },
      { ...EXCHANGE, subject_token: glpat, audience: PROJECT },
      { ...base, client_secret: clientSecret },
      {
        ...base,
        client_id: s.seed.pipelineClientId,
        client_secret: clientSecret,
        grant_type: 'client_credentials',
      },
      { ...EXCHANGE, subject_token: subject, audience: subject },
      { ...EXCHANGE, subject_token: subject, resource: `${s.gitlab.url}/${subject}` },
      { ...EXCHANGE, subject_token: subject, resource: subject },
      { ...EXCHANGE, subject_token: subject, audience: clientSecret },
      { ...base, scope: subject },
      { ...base, policy: subject },
      { ...base, expires_in: clientSecret },
      { ...base, actor_token: subject, actor_token_type: EXCHANGE.subject_token_type },
      { ...base, subject_token_type: subject },
      { ...base, requested_token_type: glpat },
      { grant_type: subject },
      `${new URLSearchParams(base).toString()}&subject_token=${subject}`,
      `${new URLSearchParams(base).toString()}&${subject}=1&${subject}=2`,
      `${new URLSearchParams(base).toString()}&${clientSecret}=1&${clientSecret}=2`,
      `${new URLSearchParams(base).toString()}&x=%E0${subject}`,
    ];
    for (const form of forms) {
      const r = await postForm(url, form);
      assert.ok(r.status < 500, `${r.status} ${r.text}`);
      if (r.status === 200) {
        // Unknown parameters (client_secret) are ignored (RFC 6749 §3.2); the exchange itself was valid.
        await postForm(`${s.sts.url}/revoke`, { token: r.json.access_token });
        continue;
      }
      answers.push(r.text);
    }
    const json = await postForm(url, JSON.stringify({ ...base, client_secret: clientSecret }), {
      'content-type': 'application/json',
    });
    answers.push(json.text);
    for (const token of [glpat, subject, clientSecret, 'not-a-token']) {
      const r = await postForm(`${s.sts.url}/revoke`, { token, token_type_hint: subject });
      answers.push(r.text);
    }
    await postForm(`${s.sts.url}/revoke`, { token: glpat });
    assertNoSecrets(answers, 'error answers');
    for (const a of answers) assert.ok(!a.includes(clientSecret), `an answer echoes the client secret: ${a}`);
    assertAuditClean(s, [glpat, subject, clientSecret]);
  });

  it('a GitLab token sent as the `policy` parameter is not written to the audit stream', async () => {
    const glpat = 'glpat-0000000000000000000000';
    const before = s.audit.events.length;
    const res = await exchange(s, subject, { policy: glpat });
    assert.equal(res.status, 400, res.text);
    assert.ok(!res.text.includes(glpat));
    assertNoSecrets(
      s.audit.events.slice(before).map((e) => JSON.stringify(e)),
      'audit stream',
    );
  });

  it('a token sent as the target (audience, resource) is not written to the audit stream, in any case', async () => {
    const glpat = 'glpat-AbCdEfGhIjKlMnOpQrSt';
    const before = s.audit.events.length;
    for (const extra of <Array<Record<string, string>>>[
      { audience: glpat },
      { audience: `platform/${glpat}` },
      { audience: `platform/${subject}` },
      { resource: `${s.gitlab.url}/${glpat}` },
    ]) {
      const res = await exchange(s, subject, extra);
      assert.ok(res.status >= 400 && res.status < 500, res.text);
      assert.ok(!res.text.toLowerCase().includes(glpat.toLowerCase()));
    }
    const lines = s.audit.events.slice(before).map((e) => JSON.stringify(e));
    assert.ok(lines.length >= 4);
    assertNoSecrets(lines, 'audit stream');
    for (const line of lines) assert.ok(!line.toLowerCase().includes('abcdefghijklmnopqrst'), line);
  });

  it('the metadata document, the health endpoints and the metrics carry no secret', async () => {
    const texts: string[] = [];
    for (const p of ['/.well-known/oauth-authorization-server', '/healthz', '/readyz']) {
      texts.push(await (await fetch(`${s.sts.url}${p}`)).text());
    }
    // Metrics are on their own listener (server.metricsListen), not the public one.
    assert.ok(s.sts.metricsUrl, 'the test stack serves metrics');
    texts.push(await (await fetch(s.sts.metricsUrl)).text());
    assertNoSecrets(texts, 'public endpoints');
    for (const t of texts) {
      assert.ok(!t.includes(clientSecret));
      assert.ok(!t.includes(s.gitlab.adminToken), 'the STS’s own GitLab token is never shown');
    }
  });
});
