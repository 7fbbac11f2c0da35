import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies } from './compile.ts';
import { decide } from './decide.ts';
import { explain, explainData } from './explain.ts';
import { APP, GITLAB, identity, OTHER_APP, policies } from './fixtures.testutil.ts';

const set = compilePolicies(
  policies([
    { name: 'ci', issuer: 'ci', match: { project_id: '42' } },
    { name: 'needs-role', match: { appid: APP, roles: { contains: 'GitLab.Write' } } },
    { name: 'reader', match: { appid: APP }, grant: { ttl: { default: '5m', max: '10m' } } },
    { name: 'later', match: { appid: APP } },
    { name: 'other-app', match: { appid: OTHER_APP } },
  ]),
  { gitlabUrl: GITLAB },
);
const target = { ref: 'platform/app', byId: false, explicitGroup: false };

describe('explain', () => {
  it('names the granting policy, what it grants, and why each earlier policy does not', () => {
    const text = explain(set, identity({ appid: APP, roles: ['GitLab.Read'] }), { target, ttlSeconds: 3600 });
    assert.match(
      text,
      /^x ci: caller not accepted\n {4}issuer: policy is for "ci", caller is from "contoso"$/m,
    );
    assert.match(
      text,
      /^x needs-role: caller not accepted\n {4}claim roles: does not contain the value \(policy: contains "GitLab.Write"; token: \["GitLab.Read"\]\)$/m,
    );
    assert.match(text, /^\+ reader: grants$/m);
    assert.match(text, /^- later: skipped\n {4}an earlier policy \(reader\) grants$/m);
    assert.match(
      text,
      /GRANTED by policy reader: project platform\/app, scopes read_repository read_api, role reporter \(20\), ttl 600s\n$/,
    );
  });

  it('lists every mismatching claim for a refused caller and ends with the error', () => {
    const text = explain(set, identity({ appid: 'nobody' }), { target });
    assert.match(
      text,
      /x other-app: caller not accepted\n {4}claim appid: value differs \(policy: "aaaaaaaa-0000-4000-8000-000000000002"; token: "nobody"\)/,
    );
    assert.match(text, /DENIED: invalid_request\n$/);
  });

  it('has the same decision as decide, and reports a requested policy alone', () => {
    const id = identity({ appid: APP });
    const req = { target, policyName: 'later', scopes: ['read_api'] };
    const data = explainData(set, id, req);
    assert.deepEqual(data.decision, decide(set, id, req));
    assert.deepEqual(
      data.policies.map((p) => `${p.policy}:${p.outcome}`),
      ['ci:skipped', 'needs-role:skipped', 'reader:skipped', 'later:granted', 'other-app:skipped'],
    );
    const unknown = explainData(set, id, { target, policyName: 'nope' });
    assert.equal(unknown.decision.ok, false);
    assert.deepEqual(unknown.policies.at(-1), {
      policy: 'nope',
      outcome: 'caller',
      reasons: ['no policy of this name'],
    });
  });
});
