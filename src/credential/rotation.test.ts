/**
 * The rotation protocol against a GitLab that behaves as GitLab does (rotate
 * revokes the old token; reusing a rotated token revokes the family), the
 * SQLite rotation records, and a source whose writes can fail: each crash point
 * is simulated by completing the pending record with a fresh holder, as a
 * restarted process would.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { CredentialRotationStore } from '../ledger/credential-rotations.ts';
import { openSqliteCredentialRotations } from '../ledger/sqlite-credential-rotations.ts';
import { sha256Hex } from '../util/hash.ts';
import { type FakeTokens, fakeTokens, type MemorySource, memoryLog, memorySource } from './fakes.testutil.ts';
import { createCredentialHolder } from './holder.ts';
import {
  completePendingRotation,
  ownerIsGone,
  type RotationDeps,
  type RotationStep,
  rotateCredential,
  rotationExpiryDate,
  rotationOwner,
} from './rotation.ts';
import { openSealedToken } from './seal.ts';

const OLD = 'glpat-original-token-value-0001';
const NOW = Date.parse('2026-03-10T12:00:00Z');

class Crash extends Error {}

interface World {
  gitlab: FakeTokens;
  source: MemorySource;
  store: CredentialRotationStore;
  log: ReturnType<typeof memoryLog>;
  deps(o?: { stopAt?: RotationStep }): RotationDeps;
}

function world(): World {
  const gitlab = fakeTokens(OLD, { createdAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-20' });
  const source = memorySource(OLD);
  const store = openSqliteCredentialRotations(':memory:');
  const log = memoryLog();
  return {
    gitlab,
    source,
    store,
    log,
    deps(o = {}) {
      return {
        source,
        // A new process: a holder that starts from what the source holds now.
        holder: createCredentialHolder({ source, initial: source.value }),
        gitlab,
        store,
        lifetimeSeconds: 7 * 86400,
        owner: 'test',
        now: () => NOW,
        log,
        writeAttempts: 2,
        writeRetryDelayMs: 1,
        stopAt: (step) => {
          if (step === o.stopAt) throw new Crash(step);
        },
      };
    },
  };
}

const rotateCalls = (w: World) => w.gitlab.calls.filter((c) => c.op === 'rotate');

describe('rotateCredential', () => {
  let w: World;
  beforeEach(() => {
    w = world();
  });

  it('rotates, keeps the new token sealed until it is written back, checks it, closes the record', async () => {
    const d = w.deps();
    const r = await rotateCredential(d);
    const now = w.gitlab.activeValue() as string;
    assert.equal(r.outcome, 'success');
    assert.deepEqual(
      {
        old: r.oldTokenSha256,
        new: r.newTokenSha256,
        oldId: r.oldTokenId,
        newId: r.newTokenId,
        exp: r.expiresAt,
      },
      { old: sha256Hex(OLD), new: sha256Hex(now), oldId: 1, newId: 2, exp: '2026-03-17' },
    );
    assert.equal(w.source.value, now, 'written back');
    assert.equal(d.holder.current(), now, 'this process uses it');
    assert.equal(w.gitlab.works(OLD), false);
    assert.equal(await w.store.pending(), undefined);
    const last = await w.store.lastDone();
    assert.equal(last?.sealed, undefined, 'the seal is erased');
    assert.equal(last?.newSha256, sha256Hex(now));
    assert.deepEqual(rotateCalls(w), [{ op: 'rotate', token: OLD, status: 200 }]);
    assert.equal(w.log.lines.join('\n').includes(now), false);
  });

  it('expires_at is `lifetime` ahead as a date, never before the day after tomorrow', () => {
    assert.equal(rotationExpiryDate(NOW, 7 * 86400), '2026-03-17');
    assert.equal(rotationExpiryDate(Date.parse('2026-03-10T23:59:59Z'), 2 * 86400), '2026-03-12');
    assert.equal(rotationExpiryDate(NOW, 3600), '2026-03-12');
  });

  it('GitLab refuses (400): nothing rotated, the record abandoned, the old token still works', async () => {
    w.gitlab.nextRotate = 400;
    const r = await rotateCredential(w.deps());
    assert.equal(r.outcome, 'failed');
    assert.equal(w.gitlab.works(OLD), true);
    assert.equal(await w.store.pending(), undefined);
    assert.equal(w.source.value, OLD);
  });

  it('GitLab unreachable and it did not rotate: failed, abandoned, the old token still works', async () => {
    w.gitlab.nextRotate = 'unavailable';
    const r = await rotateCredential(w.deps());
    assert.equal(r.outcome, 'failed');
    assert.equal(w.gitlab.works(OLD), true);
    assert.equal(await w.store.pending(), undefined);
  });

  it('GitLab rotated but its answer was lost: `lost`, never a second rotate with the old token', async () => {
    w.gitlab.nextRotate = 'lost';
    const r = await rotateCredential(w.deps());
    assert.equal(r.outcome, 'lost');
    assert.match(r.reason ?? '', /credential is lost/);
    assert.equal(rotateCalls(w).length, 1, 'one rotate call only: a second would trigger reuse detection');
    assert.equal(w.gitlab.active().length, 1, 'the family lives (the new token GitLab made)');
    assert.equal((await w.store.pending()) === undefined, true);
  });

  it('a token GitLab refuses is never rotated (a rotate call with a revoked token kills the family)', async () => {
    w.gitlab.pats[0]!.revoked = true;
    w.gitlab.pats.push({
      id: 2,
      value: 'glpat-someone-elses-rotation-xx',
      revoked: false,
      expiresAt: null,
      createdAt: '',
    });
    const r = await rotateCredential(w.deps());
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason ?? '', /refuses the token .* \(401\): nothing was rotated/);
    assert.equal(rotateCalls(w).length, 0);
    assert.equal(w.gitlab.works('glpat-someone-elses-rotation-xx'), true);
  });

  it('another process rotating (a young record, its process alive): busy; stale or its process gone: settled', async () => {
    const me = rotationOwner('cli');
    // A record of a live process (this one, seen from another rotator) that GitLab may be answering now.
    await w.store.begin({ id: 'live', startedAt: NOW - 1000, owner: me, oldSha256: sha256Hex(OLD) });
    const busy = await rotateCredential(w.deps());
    assert.equal(busy.outcome, 'busy');
    assert.equal(rotateCalls(w).length, 0);
    assert.equal((await w.store.pending())?.id, 'live', 'left alone');
    // Older than staleAfterMs: GitLab is asked (a GET), the old token still works: abandoned, then rotated.
    const late = await rotateCredential({ ...w.deps(), staleAfterMs: 500 });
    assert.equal(late.outcome, 'success');
    // A record whose process (on this host) is gone is settled at once.
    const gone = 'serve:' + rotationOwner('x').split(':').slice(1, -1).join(':') + ':2147483646';
    assert.equal(ownerIsGone(gone), true);
    assert.equal(ownerIsGone(me), false);
    assert.equal(ownerIsGone('serve:another-host:1'), false, 'another host: cannot tell');
    await w.store.begin({ id: 'dead', startedAt: NOW, owner: gone, oldSha256: sha256Hex(w.source.value) });
    assert.equal((await rotateCredential(w.deps())).outcome, 'success');
    // Between our look at the ledger and our begin, someone else began: busy, GitLab not called.
    await w.store.begin({ id: 'race', startedAt: NOW, owner: me, oldSha256: 'e'.repeat(64) });
    const store = w.store;
    const before = rotateCalls(w).length;
    const raced = await rotateCredential({
      ...w.deps(),
      store: { ...store, pending: async () => undefined },
    });
    assert.equal(raced.outcome, 'busy');
    assert.equal(rotateCalls(w).length, before);
  });

  it('the write-back fails: writeback_failed; this process has the new token; the record holds it sealed', async () => {
    w.source.failWrites = 10;
    const d = w.deps();
    const r = await rotateCredential(d);
    const live = w.gitlab.activeValue() as string;
    assert.equal(r.outcome, 'writeback_failed');
    assert.equal(d.holder.current(), live);
    assert.equal(w.source.value, OLD);
    const p = await w.store.pending();
    assert.ok(p?.sealed);
    assert.equal(openSealedToken(p.sealed, OLD, p.id), live);
    assert.equal(p.sealed.includes(live), false);
    // The next pass (same process) finishes it once the source takes writes again.
    w.source.failWrites = 0;
    const again = await completePendingRotation(d);
    assert.equal(again?.outcome, 'recovered');
    assert.equal(w.source.value, live);
    assert.equal(await w.store.pending(), undefined);
  });
});

describe('a crash at each step, then the next process completes it', () => {
  const steps: Array<[RotationStep, string]> = [
    ['before-gitlab', 'abandoned'],
    ['after-gitlab', 'recovered'],
    ['after-writeback', 'recovered'],
  ];
  for (const [step, outcome] of steps) {
    it(`${step}: ${outcome}, one working token, no second rotate of the old one`, async () => {
      const w = world();
      await assert.rejects(rotateCredential(w.deps({ stopAt: step })), Crash);
      const after = w.deps();
      const r = await completePendingRotation(after);
      assert.equal(r?.outcome, outcome);
      const live = w.gitlab.activeValue() as string;
      assert.equal(w.gitlab.active().length, 1);
      assert.equal(w.source.value, live, 'the source holds the working token');
      assert.equal(after.holder.current(), live);
      assert.equal(await w.store.pending(), undefined);
      assert.equal(rotateCalls(w).length, step === 'before-gitlab' ? 0 : 1);
      // A rotation afterwards works from the token the source holds.
      assert.equal((await rotateCredential(w.deps())).outcome, 'success');
      assert.equal(w.gitlab.active().length, 1);
    });
  }

  it('writeback-failed, then a crash: the next process opens the sealed token and writes it back', async () => {
    const w = world();
    w.source.failWrites = 10;
    await assert.rejects(rotateCredential(w.deps({ stopAt: 'writeback-failed' })), Crash);
    assert.equal(w.source.value, OLD);
    w.source.failWrites = 0;
    const r = await completePendingRotation(w.deps());
    assert.equal(r?.outcome, 'recovered');
    assert.equal(w.source.value, w.gitlab.activeValue());
  });

  it('the answer never reached the ledger (the residual window): `lost`, said once, never retried', async () => {
    const w = world();
    await assert.rejects(rotateCredential(w.deps({ stopAt: 'gitlab-answered' })), Crash);
    const r = await completePendingRotation(w.deps());
    assert.equal(r?.outcome, 'lost');
    assert.equal(rotateCalls(w).length, 1);
    assert.equal(await completePendingRotation(w.deps()), undefined, 'closed: not reported again');
  });

  it('a sealed value that does not open with the old token is not used', async () => {
    const w = world();
    await w.store.begin({ id: 'r1', startedAt: NOW, owner: 'x', oldSha256: sha256Hex(OLD) });
    await w.store.recordNewToken('r1', {
      newSha256: 'a'.repeat(64),
      newTokenId: 9,
      sealed: 'v1.AAAA.BBBB.CCCC.DDDD',
    });
    const d = w.deps();
    const r = await completePendingRotation(d);
    assert.equal(r?.outcome, 'lost');
    assert.equal(d.holder.current(), OLD);
    assert.equal(w.source.writes.length, 0);
  });

  it('the source was given another token by hand meanwhile: the record is closed, the source wins', async () => {
    const w = world();
    w.source.failWrites = 10;
    await rotateCredential(w.deps());
    w.source.value = 'glpat-put-there-by-an-operator-x';
    w.source.failWrites = 0;
    const d = w.deps();
    const r = await completePendingRotation(d);
    assert.equal(r?.outcome, 'abandoned');
    assert.equal(d.holder.current(), 'glpat-put-there-by-an-operator-x');
    assert.equal(await w.store.pending(), undefined);
  });
});
