/**
 * The operator's kill switch (`tanuki-sts grants list` / `grants revoke`):
 * which grants match a selection, their status for people, and revoking them
 * now, from a process beside the serving one, the way the reaper does
 * (revoke-grant.ts: the recorded token and every rotated copy).
 *
 * Status (what `--status` selects), derived from the row and the clock:
 * - `expired`: the STS TTL has passed (expiresAt <= now), whatever the row's
 *   state: a grant past its TTL that the reaper has not reached yet is
 *   `expired` even though its token may still work;
 * - otherwise `active` (minting, active or revoking: its token may live),
 *   `revoked` or `failed`, as the row's state.
 *
 * Revocation ends every grant of the selection whose token may still live
 * (row state minting, active or revoking), whether or not its TTL has passed:
 * 1. minting grants (an exchange in flight) are marked failed, so the serving
 *    process's markActive fails and it takes its token back instead of handing
 *    it out (exchange.ts); anything GitLab already created for them is revoked
 *    by name here (and by the reconciler otherwise);
 * 2. every live grant is marked revoke-requested (due at once) before GitLab
 *    is called, so whatever this process does not finish, the reaper does;
 * 3. each is revoked in GitLab, then recorded revoked. A failure is recorded
 *    (due again at once: the reaper retries it with its backoff); once GitLab
 *    is unreachable or refuses the STS's own token, nothing more is attempted
 *    (the rest stay due for the reaper).
 */
import { GitlabRejectedError, GitlabUnavailableError } from '../gitlab/index.ts';
import { type GrantRevocation, type RevokingGitlab, revokeGrantTokens } from './revoke-grant.ts';
import type { Grant, GrantFilter, LedgerStore } from './types.ts';

export type GrantStatus = 'active' | 'revoked' | 'expired' | 'failed';
/** What `--status` accepts, in the order the help lists them. */
export const STATUS_FILTERS = ['active', 'revoked', 'expired', 'failed', 'all'] as const;
export type StatusFilter = (typeof STATUS_FILTERS)[number];

/** Who and what a kill-switch command selects (each field narrows; see GrantFilter). */
export type GrantSelection = Pick<GrantFilter, 'policy' | 'clientId' | 'subject' | 'target'>;

/** A grant's status at `now` (see the top of this file). */
export function grantStatus(g: Pick<Grant, 'state' | 'expiresAt'>, now: number): GrantStatus {
  if (g.expiresAt <= now) return 'expired';
  if (g.state === 'revoked' || g.state === 'failed') return g.state;
  return 'active';
}

/** The store filter that keeps the grants of status `s` at `now` (grantStatus, as SQL). */
export function statusFilter(s: StatusFilter, now: number): Pick<GrantFilter, 'states' | 'ttl' | 'now'> {
  switch (s) {
    case 'all':
      return {};
    case 'expired':
      return { ttl: 'ended', now };
    case 'active':
      return { states: ['minting', 'active', 'revoking'], ttl: 'running', now };
    case 'revoked':
    case 'failed':
      return { states: [s], ttl: 'running', now };
  }
}

const PAGE = 500;

/** Every grant matching `filter`, oldest first, read page by page. */
export async function* listMatching(
  store: Pick<LedgerStore, 'listGrants'>,
  filter: Omit<GrantFilter, 'after' | 'limit'>,
  pageSize = PAGE,
): AsyncGenerator<Grant> {
  let after: GrantFilter['after'];
  for (;;) {
    const page = await store.listGrants({ ...filter, after, limit: pageSize });
    yield* page;
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = { createdAt: last.createdAt, id: last.id };
  }
}

export interface SettledGrant {
  grant: Grant;
  /** What revoke-grant.ts found: `revoked`, `absent` (nothing of it was active any more) or `gone`. */
  outcome: GrantRevocation;
  /** Rotated copies revoked with it. */
  descendants: number;
  /** It was minting: failed in the ledger, so no client receives its token. */
  wasMinting: boolean;
}

export interface UnsettledGrant {
  grant: Grant;
  /** Why it is not revoked yet (no token, only messages). */
  error: string;
  /** Whether GitLab was asked at all (false: skipped once GitLab was unreachable). */
  attempted: boolean;
}

export interface KillSwitchResult {
  /** Revoked in GitLab (or found already gone there) and recorded. */
  settled: SettledGrant[];
  /** Not revoked now: due for the reaper (minting ones: failed, for the reconciler). */
  unsettled: UnsettledGrant[];
}

export interface KillSwitchOptions {
  store: LedgerStore;
  gitlab: RevokingGitlab;
  /** The deployment's `server.id` (token names). */
  serverId: string;
  selection: GrantSelection;
  /** Only grants whose STS TTL is running, or has ended (default both: either token may work). */
  ttl?: 'running' | 'ended';
  now?: () => number;
  /** GitLab revocations in flight at once (default 16). */
  concurrency?: number;
  /** After each grant: settled or not (the audit). */
  onResult?: (r: SettledGrant | UnsettledGrant) => void;
}

/** The reason recorded on a grant caught mid-mint. */
export const STOPPED_WHILE_MINTING = 'stopped by an operator (grants revoke) while minting';

/** Revoke every live grant of the selection now (see the top of this file). */
export async function revokeMatching(o: KillSwitchOptions): Promise<KillSwitchResult> {
  const now = o.now ?? Date.now;
  const concurrency = Math.max(1, o.concurrency ?? 16);
  const result: KillSwitchResult = { settled: [], unsettled: [] };
  const report = (r: SettledGrant | UnsettledGrant): void => {
    if ('outcome' in r) result.settled.push(r);
    else result.unsettled.push(r);
    o.onResult?.(r);
  };
  const filter = (states: Grant['state'][]): Omit<GrantFilter, 'after' | 'limit'> => ({
    ...o.selection,
    states,
    ...(o.ttl ? { ttl: o.ttl, now: now() } : {}),
  });

  // 1. Exchanges in flight: fail them first, so their token never reaches a client. One that
  // became active meanwhile is in the listing of step 2.
  const minting: Grant[] = [];
  for await (const g of listMatching(o.store, filter(['minting']))) minting.push(g);
  for (const g of minting) await o.store.markFailed(g.id, STOPPED_WHILE_MINTING);
  const stopped: Grant[] = [];
  for (const g of minting) {
    const cur = await o.store.getById(g.id);
    if (cur?.state === 'failed' && cur.lastError === STOPPED_WHILE_MINTING) stopped.push(cur);
  }

  // 2. Every live grant, recorded as revoke-requested before GitLab is called.
  const live: Grant[] = [];
  for await (const g of listMatching(o.store, filter(['active', 'revoking']))) live.push(g);
  for (const g of live) await o.store.requestRevoke(g.id, now());

  // 3. GitLab, with at most `concurrency` revocations in flight.
  const queue: Array<{ grant: Grant; wasMinting: boolean }> = [
    ...stopped.map((grant) => ({ grant, wasMinting: true })),
    ...live.map((grant) => ({ grant, wasMinting: false })),
  ];
  let halted: string | undefined;
  const handle = async ({ grant, wasMinting }: { grant: Grant; wasMinting: boolean }): Promise<void> => {
    if (halted !== undefined) {
      report({ grant, error: `not attempted: ${halted}`, attempted: false });
      return;
    }
    try {
      const r = await revokeGrantTokens(o.gitlab, o.serverId, grant);
      // A stopped mint with nothing in GitLab stays failed (the reconciler watches failed grants).
      if (!wasMinting || r.outcome !== 'absent') await o.store.markRevoked(grant.id, now());
      report({ grant, outcome: r.outcome, descendants: r.descendants, wasMinting });
    } catch (err) {
      const error = (err as Error).message;
      if (
        err instanceof GitlabUnavailableError ||
        (err instanceof GitlabRejectedError && err.status === 401)
      ) {
        halted ??= `GitLab ${err instanceof GitlabUnavailableError ? 'unavailable' : "refused the STS's token"}`;
      }
      // Due again at once: the reaper retries with its backoff. A failed (minting) grant is the
      // reconciler's: recordRevokeFailure leaves it alone.
      await o.store.recordRevokeFailure(grant.id, error, now()).catch(() => {});
      report({ grant, error, attempted: true });
    }
  };
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) await handle(next);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return result;
}
