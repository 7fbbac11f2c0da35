/**
 * The reconciler: the ledger is the source of truth, GitLab is checked against
 * it. For every project/group this deployment ever minted for, it lists the
 * active access tokens named `tanuki-sts/<server.id>/…` and revokes any that
 * no live grant accounts for:
 *
 * - no grant id in the name, or an id the ledger does not know;
 * - a grant that is `failed` (GitLab's answer to the mint was lost: the client
 *   never got the token), `revoked` (the revocation did not take), or still
 *   `minting` long after the mint deadline (the process died mid-call);
 * - an active grant whose TTL is over, or whose token id is another one (its
 *   holder rotated it: the copy is revoked at once, the grant lives to its TTL).
 *
 * Targets are every project/group ever minted for, by numeric id, not only
 * those with a GitLab expiry date ahead: a rotation chooses a new date.
 *
 * Deploy tokens (`grant.via: deploy-token`) the same way, on the targets the
 * ledger minted deploy tokens for (LedgerTarget.tokenKind): GitLab's deploy-token
 * list has no name filter, so the active ones are listed and names compared here.
 *
 * A grant still `minting` within the deadline is left alone: its mint may be in
 * flight right now. Tokens of other deployments (another `server.id`) are
 * never touched. GitLab's `search` narrows the listing, but is a substring
 * match, so names are still checked exactly.
 */
import type { GitlabClient } from '../gitlab/index.ts';
import { parseTokenName, tokenNamePrefix } from './names.ts';
import { createPassLoop } from './pass-loop.ts';
import type { Grant, LedgerLog, LedgerStore, LedgerTarget } from './types.ts';

export interface ReconcilerOptions {
  store: LedgerStore;
  gitlab: Pick<
    GitlabClient,
    'listAccessTokens' | 'revokeAccessToken' | 'listDeployTokens' | 'revokeDeployToken'
  >;
  /** This deployment's `server.id`. */
  serverId: string;
  /** How often to reconcile (config `reaper.reconcileInterval`). */
  intervalMs: number;
  now?: () => number;
  log?: LedgerLog;
  /** A minting grant older than this is presumed dead (default 2 min, as the reaper). */
  staleMintingMs?: number;
  /** Targets listed at once (default 4). */
  concurrency?: number;
  /** After each token the reconciler revoked (audit, metrics). */
  onRevoked?: (info: ReconciledToken) => void;
}

export interface ReconciledToken {
  target: LedgerTarget;
  tokenId: number;
  tokenName: string;
  grantId?: string;
  reason: string;
  outcome: 'revoked' | 'absent';
}

export interface ReconcileResult {
  revoked: number;
  /** Targets listed. */
  targets: number;
  /** Targets or tokens that failed (GitLab errors); tried again next time. */
  errors: number;
}

export interface Reconciler {
  /** Start the background loop; the first pass runs at once (not awaited: listing can take a while). */
  start(): Promise<void>;
  stop(): Promise<void>;
  runOnce(): Promise<ReconcileResult>;
}

const noopLog: LedgerLog = { info() {}, warn() {}, error() {}, debug() {} };

export function createReconciler(o: ReconcilerOptions): Reconciler {
  const now = o.now ?? Date.now;
  const log = o.log ?? noopLog;
  const staleMintingMs = o.staleMintingMs ?? 120_000;
  const concurrency = Math.max(1, o.concurrency ?? 4);
  const prefix = tokenNamePrefix(o.serverId);

  /** Why this token (an access token, or a deploy token when `deploy`) must go, or undefined to keep it. */
  function verdict(
    t: { id: number },
    deploy: boolean,
    grantId: string | undefined,
    grant: Grant | undefined,
  ): string | undefined {
    if (grantId === undefined) return 'name carries no grant id';
    if (!grant) return 'grant unknown to the ledger';
    // Deploy-token and access-token ids are two sequences: a token of the other kind is never the grant's.
    if ((grant.tokenKind === 'deploy-token') !== deploy) return 'not the kind of token the grant minted';
    switch (grant.state) {
      case 'minting':
        return now() - grant.createdAt >= staleMintingMs ? 'grant stuck in minting' : undefined;
      case 'failed':
        return 'grant failed: the client never received this token';
      case 'revoked':
        return 'grant already revoked';
      default:
        if (grant.gitlabTokenId !== t.id) return `not the grant's token (${grant.gitlabTokenId ?? 'none'})`;
        if (grant.state === 'revoking') return 'revocation requested';
        if (grant.expiresAt <= now()) return 'grant TTL over';
        return undefined;
    }
  }

  async function reconcileTarget(target: LedgerTarget, result: ReconcileResult): Promise<void> {
    const deploy = target.tokenKind === 'deploy-token';
    let tokens: Array<{ id: number; name: string; active: boolean; revoked: boolean }>;
    try {
      tokens = deploy
        ? (await o.gitlab.listDeployTokens(target.kind, target.ref, { active: true })).map((t) => ({
            id: t.id,
            name: t.name,
            active: true,
            revoked: t.revoked,
          }))
        : await o.gitlab.listAccessTokens(target.kind, target.ref, { search: prefix, state: 'active' });
    } catch (err) {
      result.errors++;
      log.warn({ target, err: (err as Error).message }, 'reconciler: listing tokens failed');
      return;
    }
    result.targets++;
    for (const t of tokens) {
      if (loop.stopping) return;
      if (!t.active || t.revoked) continue;
      const { belongs, grantId } = parseTokenName(t.name, o.serverId);
      if (!belongs) continue; // another deployment's, or not ours at all
      try {
        const grant = grantId ? await o.store.getById(grantId) : undefined;
        const reason = verdict(t, deploy, grantId, grant);
        if (reason === undefined) continue;
        const outcome = deploy
          ? await o.gitlab.revokeDeployToken(target.kind, target.ref, t.id)
          : await o.gitlab.revokeAccessToken(target.kind, target.ref, t.id);
        // The grant is finished when this was its token, or it never had one.
        const sameKind = grant !== undefined && (grant.tokenKind === 'deploy-token') === deploy;
        if (grant && sameKind && (grant.gitlabTokenId === t.id || grant.gitlabTokenId === undefined)) {
          await o.store.markRevoked(grant.id, now());
        }
        result.revoked++;
        log.warn(
          { target, gitlabTokenId: t.id, tokenName: t.name, grantId, reason, outcome },
          'reconciler revoked a token the ledger does not account for',
        );
        o.onRevoked?.({
          target,
          tokenId: t.id,
          tokenName: t.name,
          reason,
          outcome,
          ...(grantId ? { grantId } : {}),
        });
      } catch (err) {
        result.errors++;
        log.warn({ target, gitlabTokenId: t.id, err: (err as Error).message }, 'reconciler: revoking failed');
      }
    }
  }

  async function pass(): Promise<ReconcileResult> {
    const result: ReconcileResult = { revoked: 0, targets: 0, errors: 0 };
    const targets = await o.store.knownTargets();
    let i = 0;
    const worker = async (): Promise<void> => {
      while (!loop.stopping && i < targets.length) {
        const target = targets[i++] as LedgerTarget;
        await reconcileTarget(target, result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
    log.info({ ...result }, 'reconciler pass');
    return result;
  }

  // A tick during a pass is skipped; the first pass is not awaited (listing can take a while).
  const loop = createPassLoop({
    name: 'reconciler',
    pass,
    intervalMs: o.intervalMs,
    log,
    now,
    whileBusy: 'skip',
    firstPass: 'background',
  });
  return { start: loop.start, stop: loop.stop, runOnce: loop.runOnce };
}
