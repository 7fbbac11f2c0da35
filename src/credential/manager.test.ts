import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PersonalTokenInfo } from '../gitlab/types.ts';
import { openSqliteCredentialRotations } from '../ledger/sqlite-credential-rotations.ts';
import { fakeTokens, memoryLog, memorySource } from './fakes.testutil.ts';
import { createCredentialHolder } from './holder.ts';
import { createCredentialManager, expiryInstant, rotationDue } from './manager.ts';
import type { RotationResult } from './rotation.ts';

const T = 'glpat-managed-token-value-00001';
const DAY = 86_400_000;

const token = (createdAt: string, expiresAt: string | null): PersonalTokenInfo => ({
  id: 1,
  name: 'sts',
  scopes: ['api'],
  active: true,
  revoked: false,
  expiresAt,
  createdAt,
  userId: 1,
  lastUsedAt: null,
});

describe('rotationDue / expiryInstant', () => {
  const now = Date.parse('2026-03-10T12:00:00Z');
  it('due when `every` old, or expiring within `every`', () => {
    assert.equal(rotationDue(token('2026-03-10T00:00:00Z', null), 86400, now), false);
    assert.equal(rotationDue(token('2026-03-09T12:00:00Z', null), 86400, now), true);
    assert.equal(rotationDue(token('2026-03-10T11:00:00Z', '2026-03-11'), 86400, now), true);
    assert.equal(rotationDue(token('2026-03-10T11:00:00Z', '2026-03-12'), 86400, now), false);
    assert.equal(rotationDue(token('not a date', '2026-03-20'), 86400, now), true);
  });
  it('a token stops at 00:00 UTC of its date; none: never', () => {
    assert.equal(expiryInstant('2026-03-11'), Date.parse('2026-03-11T00:00:00Z'));
    assert.equal(expiryInstant(null), Number.POSITIVE_INFINITY);
  });
});

function setup(o: { leader: boolean; expiresAt: string | null; createdAt: string; now: number }) {
  const gitlab = fakeTokens(T, { createdAt: o.createdAt, expiresAt: o.expiresAt });
  const source = memorySource(T);
  const holder = createCredentialHolder({ source, initial: T });
  gitlab.current = () => holder.current();
  const store = openSqliteCredentialRotations(':memory:');
  const events: RotationResult[] = [];
  let t = o.now;
  const m = createCredentialManager({
    source,
    holder,
    gitlab,
    store,
    rotation: { every: 86400, lifetime: 7 * 86400 },
    refreshSeconds: 300,
    isLeader: () => o.leader,
    owner: 'test',
    now: () => t,
    log: memoryLog(),
    onRotation: (r) => events.push(r),
  });
  return { m, gitlab, source, holder, events, advance: (ms: number) => (t += ms) };
}

describe('createCredentialManager', () => {
  const now = Date.parse('2026-03-10T12:00:00Z');

  it('on the leader: rotates when due, once; the expiry gauge follows the new token', async () => {
    const s = setup({ leader: true, createdAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-12', now });
    assert.equal(Number.isNaN(s.m.expirySeconds()), true, 'unknown before the first pass');
    await s.m.tick();
    assert.deepEqual(
      s.events.map((e) => e.outcome),
      ['success'],
    );
    assert.equal(s.m.state().token?.id, 2);
    assert.equal(s.m.expirySeconds(), (Date.parse('2026-03-17T00:00:00Z') - now) / 1000);
    await s.m.tick();
    assert.equal(s.events.length, 1, 'the new token is not due');
    await s.m.stop();
  });

  it('on a follower: never rotates, even when due; it only reads the source', async () => {
    const s = setup({ leader: false, createdAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-12', now });
    await s.m.tick();
    assert.deepEqual(s.events, []);
    assert.equal(s.gitlab.calls.filter((c) => c.op === 'rotate').length, 0);
    s.source.value = 'glpat-rotated-by-the-leader-0001';
    s.gitlab.pats.push({
      id: 5,
      value: s.source.value,
      revoked: false,
      expiresAt: '2026-03-17',
      createdAt: '',
    });
    await s.m.tick();
    assert.equal(s.holder.current(), 'glpat-rotated-by-the-leader-0001', 'picked up at the refresh');
    await s.m.stop();
  });

  it('readiness: expired → not ready; < 24 h left while rotation fails → not ready; else ready', async () => {
    const s = setup({ leader: true, createdAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-11', now });
    s.gitlab.nextRotate = 403;
    await s.m.tick();
    assert.equal(s.events[0]?.outcome, 'failed');
    assert.equal(s.m.ready(), false, 'under 24 h left and the rotation failed');
    await s.m.rotateNow();
    assert.equal(s.m.ready(), true, 'rotated: a week left');

    const e = setup({ leader: false, createdAt: '2026-03-01T00:00:00Z', expiresAt: '2026-03-11', now });
    await e.m.tick();
    assert.equal(e.m.ready(), true, 'under 24 h but no failing rotation (a follower)');
    e.advance(DAY);
    assert.equal(e.m.ready(), false, 'expired');
    await Promise.all([s.m.stop(), e.m.stop()]);
  });
});
