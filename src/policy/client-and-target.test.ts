/**
 * A policy's `client` (a second factor beside the subject token) and the
 * target of a request that names none (`defaultTarget`): the one target of the
 * one policy that accepts the caller, else `ambiguous` or `none`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicies } from './compile.ts';
import { callerMatchesAnyPolicy, decide, defaultTarget, targetRefusal } from './decide.ts';
import { explain } from './explain.ts';
import { APP, GITLAB, identity, OTHER_APP, type PolicyInput, policies } from './fixtures.testutil.ts';
import { parseTarget } from './target.ts';
import type { TargetRequest } from './types.ts';

const set = (list: PolicyInput[]) => compilePolicies(policies(list), { gitlabUrl: GITLAB });
function target(audience: string): TargetRequest {
  const t = parseTarget({ audience: [audience] }, GITLAB);
  assert.ok(!('error' in t));
  return t;
}

describe('policy `client`: the request must authenticate as that client', () => {
  const ps = set([
    { name: 'with-runner', match: { appid: APP }, client: 'runner', grant: { projects: ['platform/app'] } },
    { name: 'open', match: { appid: OTHER_APP }, grant: { projects: ['platform/app'] } },
  ]);
  const caller = identity({ appid: APP });

  it('grants only to a request authenticated as the named client', () => {
    const ok = decide(ps, caller, { target: target('platform/app'), client: 'runner' });
    assert.ok(ok.ok && ok.policy === 'with-runner');
    for (const client of [undefined, 'deployer']) {
      const d = decide(ps, caller, { target: target('platform/app'), client });
      assert.deepEqual(d.ok ? 'ok' : d.error, 'invalid_request');
      assert.ok(
        !d.ok &&
          d.reasons[0]?.reason ===
            'client: the request did not authenticate as the client this policy requires',
      );
    }
  });

  it('a policy without `client` accepts any request, authenticated or not', () => {
    const other = identity({ appid: OTHER_APP });
    for (const client of [undefined, 'runner']) {
      const d = decide(ps, other, { target: target('platform/app'), client });
      assert.ok(d.ok && d.policy === 'open');
    }
  });

  it('callerMatchesAnyPolicy and targetRefusal count the client as part of the caller', () => {
    assert.equal(callerMatchesAnyPolicy(ps, caller), false);
    assert.equal(callerMatchesAnyPolicy(ps, caller, 'runner'), true);
    const elsewhere = { error: 'invalid_target' as const, reason: 'not on the configured GitLab' };
    assert.equal(targetRefusal(ps, caller, elsewhere), 'invalid_request');
    assert.equal(targetRefusal(ps, caller, elsewhere, 'runner'), 'invalid_target');
  });

  it('`policy test` says which client the policy wants and which one the request had', () => {
    const text = explain(ps, caller, { target: target('platform/app'), client: 'deployer' });
    assert.match(text, /client: policy requires client "runner", the request authenticated as "deployer"/);
  });

  it('a policy naming a client that is not configured does not load', () => {
    assert.throws(
      () => policies([{ name: 'p', match: { appid: APP }, client: 'nobody' }]),
      /policies\[0\]\.client: "nobody" is not a configured client/,
    );
  });
});

describe('defaultTarget: the target of a request that names none', () => {
  const ps = set([
    { name: 'one-project', match: { appid: APP }, grant: { projects: ['Platform/App'] } },
    { name: 'one-group', match: { appid: OTHER_APP }, grant: { projects: [], groups: ['platform/tools'] } },
    { name: 'by-id', issuer: 'ci', match: { sub: 'id' }, grant: { projects: [4242] } },
    { name: 'two', issuer: 'ci', match: { sub: 'two' }, grant: { projects: ['a/b', 'a/c'] } },
    { name: 'overlap-1', issuer: 'ci', match: { sub: 'both' }, grant: { projects: ['a/b'] } },
    { name: 'overlap-2', issuer: 'ci', match: { project_path: 'a/b' }, grant: { projects: ['a/b'] } },
    {
      name: 'second-factor',
      issuer: 'ci',
      match: { sub: 'client' },
      client: 'runner',
      grant: { projects: ['x/y'] },
    },
  ]);

  it('one policy with one target: that target, as parseTarget would give it (paths lower-cased)', () => {
    assert.deepEqual(defaultTarget(ps, identity({ appid: APP })), {
      ref: 'platform/app',
      byId: false,
      explicitGroup: false,
    });
    assert.deepEqual(defaultTarget(ps, identity({ appid: OTHER_APP })), {
      ref: 'platform/tools',
      byId: false,
      explicitGroup: true,
    });
    assert.deepEqual(defaultTarget(ps, identity({ sub: 'id' }, 'ci')), {
      ref: '4242',
      byId: true,
      explicitGroup: false,
    });
  });

  it('the target it gives is granted by decide, as a project or group token', () => {
    for (const [caller, kind] of [
      [identity({ appid: APP }), 'project'],
      [identity({ appid: OTHER_APP }), 'group'],
    ] as const) {
      const t = defaultTarget(ps, caller);
      assert.ok(typeof t === 'object');
      const d = decide(ps, caller, { target: t });
      assert.ok(d.ok, JSON.stringify(d));
      assert.equal(d.target.kind, kind);
    }
  });

  it('several targets, or several policies accepting the caller: ambiguous', () => {
    assert.equal(defaultTarget(ps, identity({ sub: 'two' }, 'ci')), 'ambiguous');
    assert.equal(defaultTarget(ps, identity({ sub: 'both', project_path: 'a/b' }, 'ci')), 'ambiguous');
    // Naming the policy narrows it to that one.
    assert.deepEqual(
      defaultTarget(ps, identity({ sub: 'both', project_path: 'a/b' }, 'ci'), { policyName: 'overlap-2' }),
      {
        ref: 'a/b',
        byId: false,
        explicitGroup: false,
      },
    );
  });

  it('no policy accepts the caller (or not without its client): none', () => {
    assert.equal(defaultTarget(ps, identity({ appid: 'stranger' })), 'none');
    assert.equal(defaultTarget(ps, identity({ sub: 'client' }, 'ci')), 'none');
    assert.deepEqual(defaultTarget(ps, identity({ sub: 'client' }, 'ci'), { client: 'runner' }), {
      ref: 'x/y',
      byId: false,
      explicitGroup: false,
    });
    assert.equal(defaultTarget(ps, identity({ appid: APP }), { policyName: 'nope' }), 'none');
  });
});
