import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPassLoop, type PassLoopOptions } from './pass-loop.ts';
import type { LedgerLog } from './types.ts';

function recordingLog(): LedgerLog & { errors: string[] } {
  const errors: string[] = [];
  return { errors, info() {}, warn() {}, debug() {}, error: (_o, msg) => errors.push(msg ?? '') };
}

function loopOf(over: Partial<PassLoopOptions<number>> & Pick<PassLoopOptions<number>, 'pass'>) {
  return createPassLoop<number>({
    name: 'test',
    intervalMs: 60_000,
    log: recordingLog(),
    now: Date.now,
    whileBusy: 'skip',
    firstPass: 'await',
    ...over,
  });
}

describe('pass loop', () => {
  it('passes never overlap, and stop() waits for the one in flight', async () => {
    let running = 0;
    let peak = 0;
    let passes = 0;
    const loop = loopOf({
      intervalMs: 1,
      whileBusy: 'coalesce',
      pass: async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(20);
        running--;
        return ++passes;
      },
    });
    await loop.start();
    const [a, b] = await Promise.all([loop.runOnce(), loop.runOnce()]);
    assert.ok(a !== undefined && b !== undefined && b > a);
    await sleep(30);
    const stopping = loop.stop();
    assert.equal(loop.stopping, true);
    await stopping;
    assert.equal(loop.stopping, false);
    assert.equal(running, 0, 'no pass left running after stop()');
    assert.equal(peak, 1);
  });

  it('start() awaits the first pass and logs its failure; a background first pass is not awaited', async () => {
    const log = recordingLog();
    const failing = loopOf({ log, pass: () => Promise.reject(new Error('boom')) });
    await failing.start();
    assert.deepEqual(log.errors, ['test: first pass failed']);
    await failing.stop();

    let done = false;
    const slow = loopOf({
      firstPass: 'background',
      pass: async () => {
        await sleep(50);
        done = true;
        return 1;
      },
    });
    await slow.start();
    assert.equal(done, false);
    await slow.stop();
    assert.equal(done, true);
  });

  it('wakes for nextWakeAt long before the interval', async () => {
    let passes = 0;
    const loop = loopOf({
      intervalMs: 60_000,
      pass: async () => ++passes,
      nextWakeAt: async () => (passes < 2 ? Date.now() + 30 : undefined),
    });
    await loop.start();
    assert.equal(passes, 1);
    await sleep(300);
    await loop.stop();
    assert.equal(passes, 2);
  });
});
