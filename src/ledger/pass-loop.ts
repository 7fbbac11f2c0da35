/**
 * The background loop the reaper and the reconciler share: passes never
 * overlap (one promise chain), an interval timer triggers them, and `stop`
 * waits for the pass in flight. Optionally a one-shot timer wakes the loop
 * before the interval when the next pass is due sooner (the reaper's next due
 * grant).
 */
import type { LedgerLog } from './types.ts';

export interface PassLoopOptions<R> {
  /** For log lines: "<name> pass failed". */
  name: string;
  pass: () => Promise<R>;
  intervalMs: number;
  log: LedgerLog;
  now: () => number;
  /** A trigger while a pass runs: `coalesce` runs one more pass after it, `skip` drops it. */
  whileBusy: 'coalesce' | 'skip';
  /** `start` awaits the first pass (`await`), or only triggers it (`background`: it may take a while). */
  firstPass: 'await' | 'background';
  /** When the next pass is due, if before the interval; asked after every pass. */
  nextWakeAt?: () => Promise<number | undefined>;
}

export interface PassLoop<R> {
  /** Run a first pass, then keep going in the background. */
  start(): Promise<void>;
  /** Stop the timers and wait for the pass in flight. */
  stop(): Promise<void>;
  /** One pass now (after the running one, if any). */
  runOnce(): Promise<R>;
  /** True while `stop` waits: a pass should wind down early. */
  readonly stopping: boolean;
}

/** A wake-up that is already due comes this much later, so that it cannot spin. */
const OVERDUE_WAKE_MS = 250;
const MAX_TIMER_MS = 2_147_483_647;

export function createPassLoop<R>(o: PassLoopOptions<R>): PassLoop<R> {
  let started = false;
  let stopping = false;
  let interval: NodeJS.Timeout | undefined;
  let wake: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let busy = false;
  let again = false;

  /** Passes never overlap. */
  function exclusive(): Promise<R> {
    const p = chain.then(o.pass);
    chain = p.catch(() => {});
    return p;
  }

  /** Background trigger (interval, wake timer). */
  function kick(): void {
    if (stopping) return;
    if (busy) {
      if (o.whileBusy === 'coalesce') again = true;
      return;
    }
    busy = true;
    exclusive()
      .catch((err: Error) => o.log.error({ err: err.message }, `${o.name} pass failed`))
      .finally(() => {
        busy = false;
        if (again && !stopping) {
          again = false;
          kick();
        } else {
          void scheduleWake();
        }
      });
  }

  /** A timer for when the next pass is due, so that it does not wait for the interval. */
  async function scheduleWake(): Promise<void> {
    if (!o.nextWakeAt || !started || stopping) return;
    let at: number | undefined;
    try {
      at = await o.nextWakeAt();
    } catch {
      return; // the interval keeps going
    }
    if (at === undefined || !started || stopping) return;
    if (wake) clearTimeout(wake);
    // Already due (it became due during the pass, or a claim failed): come back soon, but not in a tight loop.
    const delay = at > o.now() ? at - o.now() : OVERDUE_WAKE_MS;
    wake = setTimeout(kick, Math.min(MAX_TIMER_MS, delay));
    wake.unref();
  }

  return {
    async start() {
      if (started) return;
      started = true;
      stopping = false;
      if (o.firstPass === 'await') {
        try {
          await exclusive();
        } catch (err) {
          o.log.error({ err: (err as Error).message }, `${o.name}: first pass failed`);
        }
        if (stopping) return;
      } else {
        kick();
      }
      interval = setInterval(kick, o.intervalMs);
      interval.unref();
      void scheduleWake();
    },
    async stop() {
      stopping = true;
      if (interval) clearInterval(interval);
      if (wake) clearTimeout(wake);
      interval = undefined;
      wake = undefined;
      await chain;
      started = false;
      stopping = false;
    },
    async runOnce() {
      const r = await exclusive();
      void scheduleWake();
      return r;
    },
    get stopping() {
      return stopping;
    },
  };
}
