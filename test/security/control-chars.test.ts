/**
 * Claim values with control characters (C0 — \n, \r, \t … —, DEL, C1) are
 * refused before any policy matches them: `[^/]+` and `[^:]+` would otherwise
 * accept "platform/app\nanything" (attack catalogue #50; the check lives in
 * src/policy/match.ts, see docs/policies.md).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXCHANGE, postForm, type Stack, startStack } from '../helpers/stack.ts';
import { assertAuditClean, closeEntraAgent, expectRefused, mintEntra, mintOidc } from './helpers/attack.ts';

const AUD = 'http://127.0.0.1:8600';
const sub = (project: string) => `project_path:platform/${project}:ref_type:branch:ref:main`;

describe('claim values with control characters', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    assertAuditClean(s);
    await closeEntraAgent(s);
    await s.close();
  });

  it('control: a plain sub matched by the `[^:]+` pattern is exchanged', async () => {
    const token = await mintOidc(s, { claims: { aud: AUD, sub: sub('app') } });
    const res = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: token,
      audience: 'platform',
    });
    assert.equal(res.status, 200, res.text);
    await postForm(`${s.sts.url}/revoke`, { token: res.json.access_token });
  });

  it('a sub holding \\n, \\r, \\t, DEL or a C1 control is refused even by a `[^:]+` pattern', async () => {
    for (const c of ['\n', '\r', '\t', '\u001b', '\u007f', '\u0085', '\u009b']) {
      const token = await mintOidc(s, { claims: { aud: AUD, sub: sub(`app${c}evil`) } });
      const reason = await expectRefused(s, token, { extra: { audience: 'platform' }, noJwksFetch: false });
      assert.match(reason, /claim sub: holds a control character/, JSON.stringify(c));
    }
  });

  it('an Entra token whose roles hold a control character is refused by `contains`', async () => {
    const token = await mintEntra(s, { extraClaims: { roles: ['GitLab.Read', 'GitLab.Read\nadmin'] } });
    const reason = await expectRefused(s, token, { noJwksFetch: false });
    assert.match(reason, /claim roles: holds a control character/);
  });
});
