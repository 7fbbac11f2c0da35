/**
 * RFC 7009 revocation. Holding the token is the authority to revoke it. The
 * answer is 200 whatever happens (unknown token, already revoked, GitLab
 * down), as §2.2 says; when GitLab is down the request is recorded and the
 * reaper finishes it.
 */
import { revokeGrantTokens } from '../ledger/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { type AuditEvent, grantAuditFields } from './audit.ts';
import type { StsContext } from './context.ts';
import { InvalidRequestError, StsError, UnavailableError } from './errors.ts';
import type { FormParams } from './form.ts';
import { UNEXPECTED_OUTCOME, unexpectedError } from './unexpected.ts';

export async function revokeToken(
  sts: StsContext,
  params: FormParams,
  ctx: { requestId: string; clientIp: string },
): Promise<void> {
  const audit: AuditEvent = {
    event: 'revoke',
    requestId: ctx.requestId,
    clientIp: ctx.clientIp,
    outcome: 'ignored',
  };
  try {
    const token = params.get('token');
    if (!token) throw new InvalidRequestError('token is required');
    if (token.length > 4096) {
      audit.reason = 'token too long to be ours';
      return;
    }
    const tokenSha256 = sha256Hex(token);
    audit.tokenSha256 = tokenSha256;
    const grant = await storeCall(() => sts.store.findActiveByTokenSha(tokenSha256));
    if (!grant || grant.gitlabTokenId === undefined) {
      audit.reason = 'not an active token of this STS';
      return;
    }
    Object.assign(audit, grantAuditFields(grant));
    const now = sts.now();
    // Record the wish first, so a crash or a GitLab outage leaves it to the reaper.
    await storeCall(() => sts.store.requestRevoke(grant.id, now));
    try {
      // Revoked means nothing of the grant is active: rotated copies too (revoke-grant.ts).
      const r = await revokeGrantTokens(sts.gitlab, sts.config.server.id, grant);
      await sts.store.markRevoked(grant.id, sts.now());
      if (r.descendants > 0) audit.descendants = r.descendants;
      audit.outcome = 'revoked';
      sts.metrics.revocations.inc({ outcome: 'revoked', source: 'client' });
    } catch (err) {
      audit.outcome = 'deferred';
      audit.reason = `GitLab revoke failed, left to the reaper: ${(err as Error).message}`;
      sts.metrics.revocations.inc({ outcome: 'deferred', source: 'client' });
    }
  } catch (err) {
    if (err instanceof StsError) {
      audit.outcome = err.status < 500 ? err.error : 'error';
      audit.reason = err.reason;
      throw err;
    }
    // A bug, not a store failure: server_error to the caller, the stack to the log.
    const e = unexpectedError(sts.log, err, { requestId: ctx.requestId, during: 'revocation' });
    audit.outcome = UNEXPECTED_OUTCOME;
    audit.reason = e.reason;
    throw e;
  } finally {
    sts.audit.write(audit);
  }
}

/** A ledger call: if the store itself fails, nothing is recorded, so say so (RFC 7009 §2.2.1 allows 503). */
async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new UnavailableError(`store unavailable: ${(err as Error)?.message ?? err}`);
  }
}
