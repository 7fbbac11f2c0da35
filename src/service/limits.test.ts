import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRateLimiter } from './limits.ts';

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** The answers of `n` takes of `key`, at the current instant. */
const takes = (l: ReturnType<typeof createRateLimiter>, key: string, n: number) =>
  Array.from({ length: n }, () => l.take(key));

describe('createRateLimiter', () => {
  it('0 or less per minute is no limit', () => {
    for (const perMinute of [0, -1]) {
      const l = createRateLimiter(perMinute, clock().now);
      assert.deepEqual(takes(l, 'k', 1000), Array(1000).fill(0));
    }
  });

  it('allows a burst of perMinute, then says how long to wait for one token', () => {
    const table: Array<[perMinute: number, waitSeconds: number]> = [
      [1, 60],
      [6, 10],
      [60, 1],
      [7, 9], // 60/7 = 8.57 s, rounded up
      [6_000, 1], // 0.01 s, but a wait is at least 1
    ];
    for (const [perMinute, wait] of table) {
      const l = createRateLimiter(perMinute, clock().now);
      assert.deepEqual(takes(l, 'k', perMinute), Array(perMinute).fill(0), `${perMinute}/min burst`);
      assert.equal(l.take('k'), wait, `${perMinute}/min wait`);
    }
  });

  it('refills at perMinute/60 per second, partial tokens included, and a refusal costs nothing', () => {
    const c = clock();
    const l = createRateLimiter(6, c.now); // one token per 10 s
    takes(l, 'k', 6);
    assert.equal(l.take('k'), 10);
    c.advance(4_000);
    assert.equal(l.take('k'), 6, '0.4 token: 6 s to go');
    assert.equal(l.take('k'), 6, 'a refused take does not consume');
    c.advance(6_000);
    assert.equal(l.take('k'), 0);
    assert.equal(l.take('k'), 10);
  });

  it('refills no further than perMinute', () => {
    const c = clock();
    const l = createRateLimiter(3, c.now);
    takes(l, 'k', 3);
    c.advance(3_600_000);
    assert.deepEqual(takes(l, 'k', 4), [0, 0, 0, 20]);
  });

  it('keeps one bucket per key', () => {
    const l = createRateLimiter(1, clock().now);
    assert.deepEqual(
      ['a', 'b', 'a', 'b', 'c'].map((k) => l.take(k)),
      [0, 0, 60, 60, 0],
    );
  });

  it('evicts the least recently used key beyond maxKeys (it starts afresh)', () => {
    const l = createRateLimiter(1, clock().now, 2);
    l.take('a');
    l.take('b');
    assert.equal(l.take('a'), 60, 'a is now the most recent');
    l.take('c'); // evicts b
    assert.equal(l.take('b'), 0, 'b was forgotten; taking it evicts a');
    assert.equal(l.take('a'), 0, 'a was forgotten too');
    assert.equal(l.take('b'), 60, 'b is still known');
  });
});
