import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../util/hash.ts';
import { memorySource } from './fakes.testutil.ts';
import { createCredentialHolder, type PendingLookup } from './holder.ts';

const A = 'glpat-token-aaaaaaaaaaaaaaaaaaaa';
const B = 'glpat-token-bbbbbbbbbbbbbbbbbbbb';

describe('createCredentialHolder', () => {
  it('a 401 for a value already replaced: true at once, nothing read', async () => {
    const source = memorySource(A);
    const h = createCredentialHolder({ source, initial: A });
    h.set(B);
    assert.equal(await h.unauthorized(A), true);
    assert.equal(source.reads, 0);
    assert.equal(h.current(), B);
    assert.equal(h.currentSha256(), sha256Hex(B));
  });

  it('a 401: the source holds another value now → swapped, listeners told (SHA-256s only)', async () => {
    const source = memorySource(A);
    const h = createCredentialHolder({ source, initial: A });
    const changes: unknown[] = [];
    h.onChange((c) => changes.push(c));
    source.value = B;
    assert.equal(await h.unauthorized(A), true);
    assert.equal(h.current(), B);
    assert.deepEqual(changes, [{ from: sha256Hex(A), to: sha256Hex(B), why: 'source' }]);
  });

  it("a 401 while the leader's rotation awaits GitLab's answer: waits, then takes the sealed value", async () => {
    const source = memorySource(A);
    let polls = 0;
    const pending: PendingLookup = async (old) => {
      assert.equal(old, A);
      polls++;
      return polls < 3 ? { state: 'waiting' } : { state: 'ready', value: B };
    };
    const h = createCredentialHolder({ source, initial: A, pending, pollMs: 1 });
    assert.equal(await h.unauthorized(A), true);
    assert.equal(h.current(), B);
    assert.equal(polls, 3);
  });

  it('a token that is simply dead: false, and many 401s read the source once per recheck interval', async () => {
    const source = memorySource(A);
    let t = 0;
    const h = createCredentialHolder({
      source,
      initial: A,
      pending: async () => ({ state: 'none' }),
      now: () => t,
      recheckMs: 1000,
    });
    const answers = await Promise.all(Array.from({ length: 100 }, () => h.unauthorized(A)));
    assert.deepEqual(new Set(answers), new Set([false]));
    assert.equal(source.reads, 1, 'one check for 100 concurrent 401s');
    assert.equal(await h.unauthorized(A), false);
    assert.equal(source.reads, 1, 'within the recheck interval: not read again');
    t = 1000;
    assert.equal(await h.unauthorized(A), false);
    assert.equal(source.reads, 2);
  });

  it('a pending rotation that never answers: false after waitMs', async () => {
    const source = memorySource(A);
    let t = 0;
    const h = createCredentialHolder({
      source,
      initial: A,
      pending: async () => {
        t += 400;
        return { state: 'waiting' };
      },
      now: () => t,
      waitMs: 1000,
      pollMs: 1,
    });
    assert.equal(await h.unauthorized(A), false);
    assert.equal(h.current(), A);
  });

  it('an unreadable source or ledger is logged, never thrown into the request', async () => {
    const source = memorySource(A);
    source.failReads = true;
    const warned: string[] = [];
    const h = createCredentialHolder({
      source,
      initial: A,
      pending: async () => {
        throw new Error('ledger down');
      },
      log: { warn: (_o, m) => warned.push(m) },
    });
    assert.equal(await h.unauthorized(A), false);
    assert.deepEqual(warned, [
      'GitLab credential: cannot read its source',
      'GitLab credential: cannot look up a pending rotation',
    ]);
    await assert.rejects(h.refresh(), /cannot read/);
  });
});
