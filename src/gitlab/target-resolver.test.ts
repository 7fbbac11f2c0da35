import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TargetKind } from '../util/target-kind.ts';
import { GitlabUnavailableError } from './errors.ts';
import { createTargetResolver } from './target-resolver.ts';
import type { ResolvedTarget } from './types.ts';

function stub() {
  const calls: string[] = [];
  let fail = false;
  let path = 'Group/App';
  return {
    calls,
    failNext: () => {
      fail = true;
    },
    move: (p: string) => {
      path = p;
    },
    gitlab: {
      async resolveTarget(kind: TargetKind, ref: string): Promise<ResolvedTarget> {
        calls.push(`${kind}:${ref}`);
        await new Promise((r) => setTimeout(r, 5));
        if (fail) {
          fail = false;
          throw new GitlabUnavailableError('down');
        }
        return { kind, id: 7, fullPath: path };
      },
    },
  };
}

describe('target resolver', () => {
  it('reuses an answer for ttlMs, for every spelling of the path, then asks again', async () => {
    const s = stub();
    const clock = { t: 0 };
    const r = createTargetResolver(s.gitlab, { ttlMs: 10_000, now: () => clock.t });
    assert.equal((await r.resolve('project', 'group/app')).fullPath, 'Group/App');
    assert.equal((await r.resolve('project', 'GROUP/App')).id, 7);
    assert.deepEqual(s.calls, ['project:group/app']);
    s.move('Elsewhere/App');
    clock.t = 9_999;
    assert.equal((await r.resolve('project', 'group/app')).fullPath, 'Group/App', 'within the window');
    clock.t = 10_000;
    assert.equal((await r.resolve('project', 'group/app')).fullPath, 'Elsewhere/App', 'the move is seen');
    assert.equal(s.calls.length, 2);
  });

  it('keeps kinds apart, shares one request among concurrent callers, and never caches a failure', async () => {
    const s = stub();
    const r = createTargetResolver(s.gitlab, { ttlMs: 10_000, now: () => 0 });
    await Promise.all([r.resolve('project', 'a'), r.resolve('project', 'a'), r.resolve('group', 'a')]);
    assert.deepEqual(s.calls, ['project:a', 'group:a']);
    s.failNext();
    await assert.rejects(r.resolve('project', 'b'), GitlabUnavailableError);
    assert.equal((await r.resolve('project', 'b')).id, 7);
    assert.deepEqual(s.calls.slice(2), ['project:b', 'project:b']);
  });

  it('ttlMs 0 asks GitLab every time; maxEntries bounds the cache', async () => {
    const s = stub();
    const off = createTargetResolver(s.gitlab, { ttlMs: 0 });
    await off.resolve('project', 'a');
    await off.resolve('project', 'a');
    assert.equal(s.calls.length, 2);
    const small = createTargetResolver(s.gitlab, { ttlMs: 10_000, now: () => 0, maxEntries: 2 });
    for (const p of ['x', 'y', 'z', 'x']) await small.resolve('project', p);
    assert.deepEqual(
      s.calls.slice(2),
      ['project:x', 'project:y', 'project:z', 'project:x'],
      'x was dropped first',
    );
  });
});
