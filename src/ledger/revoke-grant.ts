/**
 * What "this grant is revoked" means in GitLab, for the reaper and POST /revoke.
 *
 * A grant's token can be replaced without the STS: GitLab lets a token with
 * `api` or `self_rotate` rotate itself (`POST …/access_tokens/self/rotate`,
 * doc/api/project_access_tokens.md, "Rotate a project access token"), and a
 * token with `api` and Maintainer rotate the other tokens of its project. The
 * new token has a new id, the same name and bot user, and an expiry its holder
 * chose, up to a year ahead. So the DELETE of the recorded id proves nothing:
 * it answers 404 when a rotation already revoked that id (and real GitLab's
 * RevokeService may even answer 204 for it), while the descendant lives on.
 *
 * Hence: DELETE the recorded id, then list the target's active tokens carrying
 * the grant's unique name (rotation keeps it) and revoke each, until a listing
 * shows none. Only that listing makes the grant revoked. A holder rotating in
 * a loop must win the race between our listing and our DELETE every round; we
 * give up after a few rounds with GrantStillActiveError and the reaper comes
 * back within a second or two.
 *
 * Targets are addressed by numeric id (Grant.targetId) wherever the ledger has
 * one: a path may be a redirect to another project by now.
 */
import { type GitlabClient, GitlabNotFoundError, GitlabRejectedError } from '../gitlab/index.ts';
import { tokenName } from './names.ts';
import { type Grant, LedgerError } from './types.ts';

/**
 * - `revoked`: we revoked at least one live token of the grant.
 * - `absent`: nothing of the grant was active any more (revoked earlier, expired).
 * - `gone`: the project or group itself no longer exists. GitLab deletes a
 *   deleted project's or group's bot users, and with them every token of
 *   theirs (app/services/projects/destroy_service.rb `destroy_project_bots!`,
 *   app/services/groups/destroy_service.rb `destroy_associated_users`).
 */
export type GrantRevocation = 'revoked' | 'absent' | 'gone';

/** The methods revocation needs. */
export type RevokingGitlab = Pick<
  GitlabClient,
  | 'revokeAccessToken'
  | 'listAccessTokens'
  | 'revokeDeployToken'
  | 'listDeployTokens'
  | 'resolveTarget'
  | 'checkHealth'
>;

export interface RevokeGrantResult {
  outcome: GrantRevocation;
  /** Tokens revoked that were not the recorded one: rotated descendants. */
  descendants: number;
}

/** Live tokens of the grant survived every round (a holder rotating as fast as we revoke). */
export class GrantStillActiveError extends LedgerError {
  static override readonly code = 'ERR_GRANT_STILL_ACTIVE';
  override readonly code = GrantStillActiveError.code;
  constructor(grantId: string, rounds: number) {
    super(`grant ${grantId}: tokens named for it still active after ${rounds} rounds of revocation`);
    this.name = 'GrantStillActiveError';
  }
}

const MAX_ROUNDS = 4;

/** The GitLab ref a grant is addressed by: its numeric id, or the path for grants recorded before ids. */
export function grantTargetRef(g: Pick<Grant, 'targetId' | 'targetRef'>): string {
  return g.targetId !== undefined ? String(g.targetId) : g.targetRef;
}

export async function revokeGrantTokens(
  gitlab: RevokingGitlab,
  serverId: string,
  g: Pick<Grant, 'id' | 'policy' | 'targetKind' | 'targetRef' | 'targetId' | 'gitlabTokenId' | 'tokenKind'>,
): Promise<RevokeGrantResult> {
  if (g.tokenKind === 'deploy-token') return revokeDeployGrant(gitlab, serverId, g);
  const ref = grantTargetRef(g);
  const name = tokenName(serverId, g.policy, g.id);
  let revokedAny = false;
  let refused: Error | undefined;
  if (g.gitlabTokenId !== undefined) {
    try {
      revokedAny = (await gitlab.revokeAccessToken(g.targetKind, ref, g.gitlabTokenId)) === 'revoked';
    } catch (err) {
      // A refusal (403, 400 …) of this id is not the end: the listing below decides. An outage is.
      if (!(err instanceof GitlabRejectedError)) throw err;
      refused = err;
    }
  }
  let descendants = 0;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // `search` is a substring match: the name is still compared exactly. Names cannot be changed.
    let listed: Awaited<ReturnType<RevokingGitlab['listAccessTokens']>>;
    try {
      listed = await gitlab.listAccessTokens(g.targetKind, ref, { search: name, state: 'active' });
    } catch (err) {
      if (g.targetId !== undefined && err instanceof GitlabRejectedError && err.status === 404) {
        if (await targetGone(gitlab, g.targetKind, ref)) return { outcome: 'gone', descendants };
      }
      throw err;
    }
    const live = listed.filter((t) => t.active && !t.revoked && t.name === name);
    if (live.length === 0) return { outcome: revokedAny ? 'revoked' : 'absent', descendants };
    for (const t of live) {
      // A refusal here is final for this attempt: something of the grant is alive and we cannot end it.
      if ((await gitlab.revokeAccessToken(g.targetKind, ref, t.id)) === 'revoked') {
        revokedAny = true;
        if (t.id !== g.gitlabTokenId) descendants++;
      }
    }
  }
  if (refused) throw refused;
  throw new GrantStillActiveError(g.id, MAX_ROUNDS);
}

/**
 * A deploy-token grant (doc/api/deploy_tokens.md). A deploy token cannot rotate itself or be
 * rotated, and DELETE destroys it: a 204 for the recorded id is the end of the grant. Otherwise (a
 * 404, which may also mean the STS no longer sees the target; a refusal; no recorded id, as for a
 * mint whose answer was lost) the target's active deploy tokens are listed and every one carrying
 * the grant's name deleted, until a listing shows none. GitLab's deploy-token list has no name
 * filter, so this costs a listing of the target's active deploy tokens: only when needed.
 */
async function revokeDeployGrant(
  gitlab: RevokingGitlab,
  serverId: string,
  g: Pick<Grant, 'id' | 'policy' | 'targetKind' | 'targetRef' | 'targetId' | 'gitlabTokenId'>,
): Promise<RevokeGrantResult> {
  const ref = grantTargetRef(g);
  const name = tokenName(serverId, g.policy, g.id);
  let refused: Error | undefined;
  if (g.gitlabTokenId !== undefined) {
    try {
      if ((await gitlab.revokeDeployToken(g.targetKind, ref, g.gitlabTokenId)) === 'revoked')
        return { outcome: 'revoked', descendants: 0 };
    } catch (err) {
      if (!(err instanceof GitlabRejectedError)) throw err;
      refused = err;
    }
  }
  let revokedAny = false;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let listed: Awaited<ReturnType<RevokingGitlab['listDeployTokens']>>;
    try {
      listed = await gitlab.listDeployTokens(g.targetKind, ref, { active: true });
    } catch (err) {
      if (g.targetId !== undefined && err instanceof GitlabRejectedError && err.status === 404) {
        if (await targetGone(gitlab, g.targetKind, ref)) return { outcome: 'gone', descendants: 0 };
      }
      throw err;
    }
    const live = listed.filter((t) => !t.revoked && t.name === name);
    if (live.length === 0) return { outcome: revokedAny ? 'revoked' : 'absent', descendants: 0 };
    for (const t of live) {
      if ((await gitlab.revokeDeployToken(g.targetKind, ref, t.id)) === 'revoked') revokedAny = true;
    }
  }
  if (refused) throw refused;
  throw new GrantStillActiveError(g.id, MAX_ROUNDS);
}

/**
 * A listing answered 404: is the target really gone, or is it the STS that
 * cannot see it? Gone only when GitLab says the numeric id does not exist AND
 * the STS's own token still works (a dead STS token also gets 404s and 401s).
 * Only for ids: a path that 404s may simply have moved.
 */
async function targetGone(gitlab: RevokingGitlab, kind: Grant['targetKind'], ref: string): Promise<boolean> {
  try {
    await gitlab.resolveTarget(kind, ref);
    return false;
  } catch (err) {
    if (!(err instanceof GitlabNotFoundError)) return false;
  }
  try {
    await gitlab.checkHealth();
    return true;
  } catch {
    return false;
  }
}
