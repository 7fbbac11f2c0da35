/**
 * The token the GitLab client sends, swappable while the STS runs: a replica
 * picks up a token the leader (or `tanuki-sts credential rotate`) rotated
 * without a restart and without failing a request.
 *
 * - `current()`: the value to send now.
 * - `unauthorized(used)`: GitLab answered 401 to `used`. True when a different
 *   value is current afterwards (the client then sends the request once more):
 *   another request already swapped it; or the source holds another value now;
 *   or a pending rotation in the ledger rotated `used` and holds the new token,
 *   sealed under `used` (the leader stores it the moment GitLab answers, before
 *   the write-back), which this process opens with `used`. While such a rotation
 *   has not got GitLab's answer yet it waits (polling, at most `waitMs`). One
 *   check runs at a time, and a value found dead is not checked again for
 *   `recheckMs`: a token GitLab refuses for good costs one source read per
 *   interval, not one per request.
 * - `refresh()`: read the source again (every `gitlab.credentialRefresh`).
 * - `set(value)`: this process rotated; the new value is current at once.
 */
import { sha256Hex } from '../util/hash.ts';
import type { CredentialSource } from './source.ts';

/** What the ledger says about a rotation of the token whose SHA-256 is given. */
export type PendingLookup = (
  oldToken: string,
) => Promise<{ state: 'none' } | { state: 'waiting' } | { state: 'ready'; value: string }>;

export interface CredentialHolder {
  current(): string;
  /** SHA-256 (hex) of the current value. */
  currentSha256(): string;
  unauthorized(used: string): Promise<boolean>;
  /** Read the source; true when the value changed. Errors are thrown (the caller logs them). */
  refresh(): Promise<boolean>;
  /** Make `value` current (`why`: `rotation` by default, for the change listeners). */
  set(value: string, why?: string): void;
  /** Called with the SHA-256 of the old and new value whenever the value changes. */
  onChange(listener: (change: { from: string; to: string; why: string }) => void): void;
}

export interface HolderOptions {
  source: CredentialSource;
  initial: string;
  /** The ledger's pending rotation, opened with the old token (src/service wires it). */
  pending?: PendingLookup;
  /** How long `unauthorized` waits for a pending rotation's answer (default 10 s). */
  waitMs?: number;
  /** Poll interval while waiting (default 200 ms). */
  pollMs?: number;
  /** A value found dead is not checked again for this long (default 1 s). */
  recheckMs?: number;
  now?: () => number;
  log?: { warn(o: object, msg: string): void };
}

export function createCredentialHolder(o: HolderOptions): CredentialHolder {
  const now = o.now ?? Date.now;
  const waitMs = o.waitMs ?? 10_000;
  const pollMs = o.pollMs ?? 200;
  const recheckMs = o.recheckMs ?? 1000;
  let value = o.initial;
  let sha = sha256Hex(value);
  const listeners: Array<(c: { from: string; to: string; why: string }) => void> = [];
  let checking: Promise<boolean> | undefined;
  let deadValue: { sha: string; at: number } | undefined;

  function swap(next: string, why: string): boolean {
    if (!next || next === value) return false;
    const from = sha;
    value = next;
    sha = sha256Hex(next);
    deadValue = undefined;
    for (const l of listeners) {
      try {
        l({ from, to: sha, why });
      } catch {
        // a listener never breaks the swap
      }
    }
    return true;
  }

  async function fromSource(): Promise<string | undefined> {
    try {
      return await o.source.read();
    } catch (err) {
      o.log?.warn({ err: (err as Error).message }, 'GitLab credential: cannot read its source');
      return undefined;
    }
  }

  async function check(used: string): Promise<boolean> {
    const deadline = now() + waitMs;
    for (;;) {
      if (value !== used) return true;
      const read = await fromSource();
      if (value !== used) return true;
      if (read !== undefined && read !== used) return swap(read, 'source');
      let found: Awaited<ReturnType<PendingLookup>> = { state: 'none' };
      try {
        found = o.pending ? await o.pending(used) : found;
      } catch (err) {
        o.log?.warn({ err: (err as Error).message }, 'GitLab credential: cannot look up a pending rotation');
      }
      if (value !== used) return true;
      if (found.state === 'ready') return swap(found.value, 'pending rotation');
      if (found.state === 'none' || now() >= deadline) {
        deadValue = { sha: sha256Hex(used), at: now() };
        return false;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  return {
    current: () => value,
    currentSha256: () => sha,
    async unauthorized(used) {
      if (used !== value) return true;
      if (deadValue && deadValue.sha === sha && now() - deadValue.at < recheckMs) return false;
      checking ??= check(used).finally(() => {
        checking = undefined;
      });
      await checking;
      return value !== used;
    },
    async refresh() {
      return swap(await o.source.read(), 'source');
    },
    set(next, why = 'rotation') {
      swap(next, why);
    },
    onChange(listener) {
      listeners.push(listener);
    },
  };
}
