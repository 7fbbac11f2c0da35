/**
 * RFC 8693 token exchange: the checks in a fixed, cheap-first order, then one
 * GitLab call, with the ledger written before and after it.
 *
 *   request shape → per-IP limit → client authentication → subject token
 *   → server.deny → target (named, or the caller's only one) → per-identity limit → policy
 *   → ledger writable? → canonical target (GitLab, briefly cached) → ledger (minting, with the
 *   active-grant cap in the same write) → GitLab → ledger (active) → answer
 *
 * The token is minted on the target's numeric id, and only when GitLab's
 * canonical path is the path the policy allowed: GitLab follows redirect
 * routes of renamed and moved projects, so an old path may name a project
 * that now lives outside the granted group.
 */
import { randomUUID } from 'node:crypto';
import {
  deployTokenExpiry,
  GitlabError,
  GitlabMovedError,
  GitlabNotFoundError,
  GitlabUnavailableError,
  gitlabExpiryDate,
  type ResolvedTarget,
} from '../gitlab/index.ts';
import { SubjectTokenError } from '../identity/index.ts';
import type { Identity } from '../identity/types.ts';
import { identityKey } from '../identity/types.ts';
import { ActiveGrantCapError, tokenName } from '../ledger/index.ts';
import {
  type DecisionTarget,
  decide,
  defaultTarget,
  deniedBy,
  MIN_TTL_SECONDS,
  parseTarget,
  type TargetError,
  type TargetRequest,
  targetRefusal,
} from '../policy/index.ts';
import { isGitlabScope, nearestGitlabScope } from '../util/gitlab-scopes.ts';
import { sha256Hex } from '../util/hash.ts';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT } from '../util/oauth-urns.ts';
import { MAX_SUBJECT_TOKEN_CHARS } from '../util/token-limits.ts';
import type { AuditEvent } from './audit.ts';
import { authenticateClient } from './client-auth.ts';
import type { StsContext } from './context.ts';
import {
  InvalidRequestError,
  InvalidScopeError,
  InvalidTargetError,
  NAME_THE_TARGET,
  RateLimitedError,
  refusalReason,
  ServerError,
  StsError,
  subjectTokenRefused,
  UnavailableError,
  UnsupportedGrantTypeError,
} from './errors.ts';
import type { FormParams } from './form.ts';
import { UNEXPECTED_OUTCOME, unexpectedError } from './unexpected.ts';

const SUBJECT_TOKEN_TYPES = new Set([TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN]);
/** One scope name as GitLab spells them (`read_api`, `k8s_proxy`). */
const SCOPE_TOKEN = /^[a-z0-9_]{1,40}$/;

export interface TokenResponse {
  access_token: string;
  issued_token_type: typeof TOKEN_TYPE_ACCESS_TOKEN;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  /**
   * The username to give git and the registries with the token (an additional response parameter,
   * RFC 8693 §2.2.1 / RFC 6749 §5.1): a deploy token's own (`gitlab+deploy-token-N`, the only one
   * GitLab accepts with it), `oauth2` for an access token (see ACCESS_TOKEN_USERNAME).
   */
  gitlab_username: string;
}

/**
 * `gitlab_username` for an access token. GitLab accepts any non-empty username with one (git over
 * HTTPS, `docker login`; doc/user/project/settings/project_access_tokens.md). Its bot user's
 * username (`project_<id>_bot_<random>`) is not in GitLab's create answer (only `user_id`), and
 * asking for it would cost a second GitLab call per exchange; `oauth2` is what the client has always
 * sent (docs/policies.md#via-which-kind-of-token).
 */
export const ACCESS_TOKEN_USERNAME = 'oauth2';

/** What a mint returned, whatever kind of token it was. */
interface Minted {
  id: number;
  token: string;
  username: string;
  /** An access token's bot user. */
  userId?: number;
  /** Where GitLab says it minted an access token (its `resource_id`). */
  resourceId?: number;
  /** false: GitLab answered the token already unusable. */
  active?: false;
}

interface ParsedRequest {
  subjectToken: string;
  scopes?: string[];
  ttlSeconds?: number;
  policyName?: string;
  resource: string[];
  audience: string[];
}

/** Step 1: the request's shape, before any work. */
export function parseExchangeRequest(params: FormParams): ParsedRequest {
  const grantType = params.get('grant_type');
  if (grantType === undefined) throw new InvalidRequestError('grant_type is required');
  if (grantType !== GRANT_TYPE_TOKEN_EXCHANGE) throw new UnsupportedGrantTypeError();
  const subjectToken = params.get('subject_token');
  if (!subjectToken) throw new InvalidRequestError('subject_token is required');
  if (subjectToken.length > MAX_SUBJECT_TOKEN_CHARS) {
    throw subjectTokenRefused(`subject token of ${subjectToken.length} characters exceeds the limit`);
  }
  const subjectTokenType = params.get('subject_token_type');
  if (!subjectTokenType) throw new InvalidRequestError('subject_token_type is required');
  if (!SUBJECT_TOKEN_TYPES.has(subjectTokenType)) {
    throw new InvalidRequestError(
      `subject_token_type must be ${TOKEN_TYPE_JWT} or ${TOKEN_TYPE_ACCESS_TOKEN}`,
    );
  }
  const requested = params.get('requested_token_type');
  if (requested !== undefined && requested !== TOKEN_TYPE_ACCESS_TOKEN) {
    throw new InvalidRequestError(`requested_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN}`);
  }
  if (params.has('actor_token') || params.has('actor_token_type')) {
    throw new InvalidRequestError('actor tokens (delegation) are not supported');
  }
  // Neither: the caller's only target, if it has exactly one (defaultTarget), as in the request
  // people write for GitLab's own /oauth/token.
  const resource = params.get('resource');
  const audience = params.get('audience');

  let scopes: string[] | undefined;
  const scope = params.get('scope');
  if (scope !== undefined) {
    scopes = scope.split(' ').filter((s) => s !== '');
    if (scopes.length === 0) scopes = undefined;
    else if (scopes.some((s) => !SCOPE_TOKEN.test(s)) || new Set(scopes).size !== scopes.length) {
      throw new InvalidScopeError(
        'malformed scope parameter',
        'scope must be GitLab scope names separated by spaces, each once',
      );
    }
    // GitLab's scope list is public: naming a typo reveals nothing about the policies. `[a-z0-9_]`
    // only (SCOPE_TOKEN), so the description cannot carry a GitLab token, a JWT or a control character.
    const unknown = scopes?.filter((s) => !isGitlabScope(s)) ?? [];
    if (unknown.length) {
      const near = unknown.length === 1 ? nearestGitlabScope(unknown[0]!) : undefined;
      const more = unknown.length > 3 ? ` and ${unknown.length - 3} more` : '';
      const description = `unknown scope: ${unknown.slice(0, 3).join(' ')}${more}${near ? ` (did you mean ${near}?)` : ''}`;
      throw new InvalidScopeError(description, description);
    }
  }

  let ttlSeconds: number | undefined;
  const expiresIn = params.get('expires_in');
  if (expiresIn !== undefined) {
    if (!/^[1-9][0-9]{0,7}$/.test(expiresIn)) {
      throw new InvalidRequestError('expires_in must be a positive whole number of seconds');
    }
    ttlSeconds = Number(expiresIn);
    // Refused, not raised to the minimum: the STS never grants a longer lifetime than asked for.
    if (ttlSeconds < MIN_TTL_SECONDS) {
      throw new InvalidRequestError(
        `expires_in must be at least ${MIN_TTL_SECONDS} seconds (the minimum TTL)`,
      );
    }
  }

  const policyName = params.get('policy');
  if (policyName !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(policyName)) {
    throw new InvalidRequestError('policy must be a policy name');
  }
  return {
    subjectToken,
    scopes,
    ttlSeconds,
    policyName,
    resource: resource === undefined ? [] : [resource],
    audience: audience === undefined ? [] : [audience],
  };
}

export interface ExchangeContext {
  requestId: string;
  clientIp: string;
  /** The request's `Authorization` header, if any: HTTP Basic client authentication (client-auth.ts). */
  authorization?: string;
}

function identityFields(id: Identity): Partial<AuditEvent> {
  return {
    issuer: id.issuer,
    tenant: id.tenant,
    appId: id.clientId,
    objectId: id.objectId,
    subject: id.subject,
    subjectTokenId: id.tokenId,
  };
}

/** Handle one exchange; every outcome, success or failure, is audited once. */
export async function exchangeToken(
  sts: StsContext,
  params: FormParams,
  ctx: ExchangeContext,
): Promise<TokenResponse> {
  const started = performance.now();
  const audit: AuditEvent = {
    event: 'exchange',
    requestId: ctx.requestId,
    clientIp: ctx.clientIp,
    outcome: 'error',
  };
  try {
    const response = await runExchange(sts, params, ctx, audit);
    audit.outcome = 'granted';
    return response;
  } catch (err) {
    if (err instanceof StsError) {
      audit.outcome = err.error;
      audit.reason = err.reason;
      sts.metrics.refusals.inc({ reason: refusalReason(err) });
      throw err;
    }
    // A bug, not a refusal: server_error to the caller, the stack to the log.
    const e = unexpectedError(sts.log, err, { requestId: ctx.requestId, during: 'token exchange' });
    audit.outcome = UNEXPECTED_OUTCOME;
    audit.reason = e.reason;
    throw e;
  } finally {
    audit.durationMs = Math.round((performance.now() - started) * 10) / 10;
    sts.audit.write(audit);
    sts.metrics.exchanges.inc({ outcome: audit.outcome, policy: audit.policy ?? '' });
    sts.metrics.exchangeDuration.observe({ outcome: audit.outcome }, audit.durationMs / 1000);
  }
}

async function runExchange(
  sts: StsContext,
  params: FormParams,
  ctx: ExchangeContext,
  audit: AuditEvent,
): Promise<TokenResponse> {
  const req = parseExchangeRequest(params);
  audit.subjectTokenSha256 = sha256Hex(req.subjectToken);

  const named = req.resource.length + req.audience.length > 0;
  const parsed: TargetRequest | TargetError | undefined = named
    ? parseTarget({ resource: req.resource, audience: req.audience }, sts.config.gitlab.url)
    : undefined;
  if (parsed && 'error' in parsed && parsed.error !== 'invalid_target') {
    throw new InvalidRequestError(
      'resource or audience is not a valid GitLab project or group',
      parsed.reason,
    );
  }

  const ipWait = sts.limits.perIp.take(ctx.clientIp);
  if (ipWait > 0) {
    throw new RateLimitedError(
      'too many requests from this address; retry later',
      'per-IP rate limit',
      ipWait,
    );
  }

  // RFC 6749 §2.3: a failed or ambiguous client authentication is 401 before the token is read.
  const clientAuth = authenticateClient(sts.clients, params, ctx.authorization);
  if (clientAuth.method !== 'none') audit.clientAuth = clientAuth.method;
  if (clientAuth.client !== undefined) audit.client = clientAuth.client;
  if (clientAuth.publicClientId !== undefined) audit.clientId = clientAuth.publicClientId;
  const client = clientAuth.client;

  let identity: Identity;
  try {
    identity = await sts.validator.validate(req.subjectToken);
  } catch (err) {
    // Only the validator's own refusals are answers; anything else is a bug (server_error).
    if (!(err instanceof SubjectTokenError)) throw err;
    if (err.retryable) {
      throw new UnavailableError(
        `signing keys unavailable: ${err.reason}`,
        err.retryAfterSeconds ?? 30,
        'the subject token cannot be verified right now; retry later',
      );
    }
    throw subjectTokenRefused(`${err.code}: ${err.reason}`);
  }
  Object.assign(audit, identityFields(identity));
  // server.deny: before any policy, the one generic refusal (the audit and metrics say why).
  const denied = deniedBy(sts.deny, identity);
  if (denied !== undefined) throw subjectTokenRefused(`denied by server.deny[${denied}]`, 'denied');
  // A target outside the configured GitLab is refused only now, so that the
  // error precedence holds: an invalid caller learns nothing about targets.
  let target: TargetRequest;
  if (parsed === undefined) {
    // No target named: the caller's only one, else a request to name it (nothing of the policies shown).
    const only = defaultTarget(sts.policies, identity, { client, policyName: req.policyName });
    if (only === 'none') {
      // Why, for the audit: no policy accepts the caller, so decide never reaches the (empty) target.
      const why = decide(sts.policies, identity, {
        target: { ref: '', byId: false, explicitGroup: false },
        policyName: req.policyName,
        client,
      });
      const reason = why.ok ? '' : why.reasons.map((r) => `${r.policy}: ${r.reason}`).join('; ');
      throw subjectTokenRefused(`no policy matches: ${reason || 'no policy'}`, 'no_policy');
    }
    if (only === 'ambiguous') {
      throw new InvalidTargetError(
        'no resource or audience, and the caller may get more than one target',
        NAME_THE_TARGET,
      );
    }
    target = only;
  } else if ('error' in parsed) {
    if (targetRefusal(sts.policies, identity, parsed, client) === 'invalid_request')
      throw subjectTokenRefused('no policy matches the caller', 'no_policy');
    throw new InvalidTargetError(parsed.reason);
  } else {
    target = parsed;
  }

  const key = identityKey(identity);
  const idWait = sts.limits.perIdentity.take(key);
  if (idWait > 0) {
    throw new RateLimitedError(
      'too many exchanges for this identity; retry later',
      'per-identity rate limit',
      idWait,
    );
  }

  const decision = decide(sts.policies, identity, {
    target,
    scopes: req.scopes,
    policyName: req.policyName,
    ttlSeconds: req.ttlSeconds,
    client,
  });
  if (!decision.ok) {
    const reason =
      decision.reasons
        .map((r: { policy: string; reason: string }) => `${r.policy}: ${r.reason}`)
        .join('; ') || 'no policy';
    if (decision.error === 'invalid_target') throw new InvalidTargetError(reason);
    if (decision.error === 'invalid_scope') throw new InvalidScopeError(reason);
    throw subjectTokenRefused(`no policy matches: ${reason}`, 'no_policy');
  }
  Object.assign(audit, {
    policy: decision.policy,
    target: decision.target.display,
    targetKind: decision.target.kind,
    scopes: decision.scopes,
    role: decision.role,
    ttlSeconds: decision.ttlSeconds,
  });

  // A ledger known to be unwritable (PostgreSQL unreachable, SQLite writer stopped): 503 now,
  // before any GitLab call; nothing is recorded, nothing minted.
  if (sts.store.writable?.() === false)
    throw new UnavailableError('store unavailable: the ledger cannot be written');
  const canonical = await canonicalTarget(sts, decision.target, target.byId);
  audit.target = canonical.fullPath;
  audit.targetId = canonical.id;

  const now = sts.now();
  const cap = sts.config.server.maxActiveGrantsPerIdentity;
  const grantId = randomUUID();
  audit.grantId = grantId;
  const expiresAt = now + decision.ttlSeconds * 1000;
  const deploy = decision.via === 'deploy-token';
  // An access token's expiry is a date, a deploy token's a time GitLab enforces to the second (expiry.ts).
  const gitlabExpiresAt = deploy ? deployTokenExpiry(expiresAt) : gitlabExpiryDate(expiresAt);
  if (deploy) audit.tokenKind = 'deploy-token';
  await mintingCall(cap, () =>
    sts.store.insertMinting(
      {
        id: grantId,
        state: 'minting',
        requestId: ctx.requestId,
        issuer: identity.issuer,
        identityKey: key,
        subject: identity.subject,
        tenant: identity.tenant,
        clientId: identity.clientId,
        objectId: identity.objectId,
        policy: decision.policy,
        targetKind: decision.target.kind,
        targetRef: canonical.fullPath,
        targetId: canonical.id,
        ...(deploy ? { tokenKind: 'deploy-token' as const } : {}),
        scopes: decision.scopes,
        accessLevel: decision.accessLevel,
        createdAt: now,
        expiresAt,
        gitlabExpiresAt,
        attempts: 0,
      },
      { maxActive: cap, now },
    ),
  );

  let created: Minted;
  try {
    const mint = {
      kind: decision.target.kind,
      // By id: the path was checked above, and a path can be redirected between then and now.
      ref: String(canonical.id),
      name: tokenName(sts.config.server.id, decision.policy, grantId),
      scopes: decision.scopes,
      expiresAt: gitlabExpiresAt,
    };
    if (deploy) {
      const d = await sts.gitlab.createDeployToken(mint);
      // A deploy token dies at its `expires_at`, to the second: one GitLab already puts in the past is dead.
      const dead = d.active === false || (d.expiresAt !== null && !(Date.parse(d.expiresAt) > sts.now()));
      created = {
        id: d.id,
        token: d.token,
        username: d.username,
        ...(dead ? { active: false as const } : {}),
      };
    } else {
      const a = await sts.gitlab.createAccessToken({
        ...mint,
        description: describeCaller(identity),
        accessLevel: decision.accessLevel,
      });
      created = {
        id: a.id,
        token: a.token,
        username: ACCESS_TOKEN_USERNAME,
        ...(a.userId > 0 ? { userId: a.userId } : {}),
        ...(a.resourceId !== undefined ? { resourceId: a.resourceId } : {}),
        ...(a.active === false ? { active: false as const } : {}),
      };
    }
  } catch (err) {
    // GitLab may or may not have created the token (a lost answer): the grant
    // stays recorded as failed and the reconciler revokes any token named for it.
    await sts.store.markFailed(grantId, String((err as Error).message)).catch(() => {});
    if (err instanceof GitlabNotFoundError)
      throw new InvalidTargetError(`GitLab: ${decision.target.kind} not found`);
    if (err instanceof GitlabUnavailableError) {
      throw new UnavailableError(`GitLab unavailable: ${err.message}`, err.retryAfterSeconds);
    }
    if (err instanceof GitlabError) throw new ServerError(`GitLab refused the mint: ${err.message}`);
    throw err;
  }

  const tokenSha256 = sha256Hex(created.token);
  audit.gitlabTokenId = created.id;
  audit.tokenSha256 = tokenSha256;
  if (created.userId !== undefined) audit.gitlabUserId = created.userId;
  if (deploy) audit.gitlabUsername = created.username;
  // Revoked where GitLab says it lives (the resource_id of its answer), which is the target unless GitLab misbehaved.
  const takeBack = () =>
    (deploy
      ? sts.gitlab.revokeDeployToken(decision.target.kind, String(canonical.id), created.id)
      : sts.gitlab.revokeAccessToken(
          decision.target.kind,
          String(created.resourceId ?? canonical.id),
          created.id,
        )
    ).catch(() => {});
  if (created.resourceId !== undefined && created.resourceId !== canonical.id) {
    // GitLab says it minted elsewhere than asked: never hand that token out.
    await takeBack();
    await sts.store
      .markFailed(grantId, `minted on ${created.resourceId}, not ${canonical.id}`)
      .catch(() => {});
    throw new ServerError(`GitLab minted on resource ${created.resourceId}, not ${canonical.id}`);
  }
  if (created.active === false) {
    // A token the client could not use (GitLab's clock already at its expiry date): say so, not 200.
    await takeBack();
    await sts.store.markFailed(grantId, 'GitLab created the token inactive').catch(() => {});
    throw new ServerError(`GitLab created the token inactive (expires_at ${gitlabExpiresAt})`);
  }
  try {
    await sts.store.markActive(grantId, {
      gitlabTokenId: created.id,
      tokenSha256,
      ...(created.userId !== undefined ? { gitlabUserId: created.userId } : {}),
      ...(deploy ? { gitlabUsername: created.username } : {}),
    });
  } catch (err) {
    // No token leaves the STS without its ledger record: take it back now.
    await takeBack();
    throw new UnavailableError(`ledger write failed after mint: ${(err as Error).message}`);
  }

  return {
    access_token: created.token,
    issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
    token_type: 'Bearer',
    expires_in: Math.max(1, Math.round((expiresAt - sts.now()) / 1000)),
    scope: decision.scopes.join(' '),
    gitlab_username: created.username,
  };
}

/** The insert of a minting grant: the cap (checked in the same write) → 429, any other failure → 503. */
async function mintingCall(cap: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ActiveGrantCapError) {
      throw new RateLimitedError(
        'this identity holds too many active tokens; revoke some or wait for them to expire',
        `active grant cap ${cap} reached`,
        60,
      );
    }
    throw new UnavailableError(`store unavailable: ${(err as Error).message}`);
  }
}

/**
 * The project or group the policy allowed, as GitLab names it now. A path
 * GitLab resolves to another canonical path is a redirect route (the project
 * or group was renamed or moved): refused, whatever lives there now. A numeric
 * id names the same thing forever, so only paths are compared.
 */
async function canonicalTarget(sts: StsContext, t: DecisionTarget, byId: boolean): Promise<ResolvedTarget> {
  let resolved: ResolvedTarget;
  try {
    resolved = await sts.targets.resolve(t.kind, t.ref);
  } catch (err) {
    if (err instanceof GitlabNotFoundError) throw new InvalidTargetError(`GitLab: ${t.kind} not found`);
    if (err instanceof GitlabMovedError) {
      throw new InvalidTargetError(
        `${t.kind} ${t.display} is a redirect route (renamed or moved): not followed`,
      );
    }
    if (err instanceof GitlabUnavailableError) {
      throw new UnavailableError(`GitLab unavailable: ${err.message}`, err.retryAfterSeconds);
    }
    if (err instanceof GitlabError) {
      throw new ServerError(`GitLab refused the ${t.kind} lookup: ${err.message}`);
    }
    throw err;
  }
  // GitLab paths compare case-insensitively; the requested ref is already lower-case.
  if (!byId && resolved.fullPath.toLowerCase() !== t.ref.toLowerCase()) {
    throw new InvalidTargetError(
      `${t.kind} ${t.display} is a redirect to ${resolved.fullPath} (id ${resolved.id}): renamed or moved, not followed`,
    );
  }
  return resolved;
}

/** What GitLab shows beside the token: who asked for it (no secrets). */
function describeCaller(id: Identity): string {
  const parts = [`issuer=${id.issuer}`];
  if (id.tenant) parts.push(`tenant=${id.tenant}`);
  if (id.clientId) parts.push(`app=${id.clientId}`);
  if (id.objectId) parts.push(`oid=${id.objectId}`);
  else parts.push(`sub=${id.subject}`);
  return `Minted by tanuki-sts for ${parts.join(' ')}`.slice(0, 255);
}
