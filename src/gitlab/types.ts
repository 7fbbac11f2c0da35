/** Plain data in and out of the GitLab client (see README.md). */
import type { TargetKind } from '../util/target-kind.ts';

export interface GitlabRequestInfo {
  method: string;
  /** Route template without ids, e.g. `/projects/:id/access_tokens/:token_id`. */
  route: string;
  /** HTTP status, or 'error' for a timeout or network failure. */
  status: number | 'error';
  durationMs: number;
}

export interface GitlabClientOptions {
  /** Instance URL, e.g. https://gitlab.example.com (a relative-URL install such as https://host/gitlab works too). */
  url: string;
  /**
   * A personal (or service-account) access token: project/group tokens cannot create tokens. A
   * provider (src/credential's holder) is read at every request and asked about a 401.
   */
  token: string | TokenProvider;
  /** PEM CA bundle for a private GitLab CA. */
  caFile?: string;
  /** Deadline for one request, connect + headers + body. */
  timeoutMs: number;
  /** Retries of idempotent calls (revoke, list, health) on 5xx/429/network errors; default 2. */
  maxRetries?: number;
  /** First backoff delay between retries; default 250 ms (doubled each time, with jitter). */
  retryBaseDelayMs?: number;
  /** Longest wait between retries; a longer `Retry-After` is thrown to the caller instead. Default 2000 ms. */
  retryMaxDelayMs?: number;
  /** Keep-alive connections to GitLab (at least 64). */
  connections?: number;
  now?: () => number;
  /** Called after every HTTP request (feeds the Prometheus histogram). */
  onRequest?: (info: GitlabRequestInfo) => void;
}

/** The STS's own token, swappable while the client runs. */
export interface TokenProvider {
  current(): string;
  /**
   * GitLab answered 401 to `used`: true when another value is current now (the request is then
   * sent once more with it). Absent: a 401 is final.
   */
  unauthorized?(used: string): Promise<boolean>;
}

/** A personal access token as `GET /personal_access_tokens/self` shows it (never the value). */
export interface PersonalTokenInfo {
  id: number;
  name: string;
  scopes: string[];
  active: boolean;
  revoked: boolean;
  /** `YYYY-MM-DD` (the token stops working at 00:00 UTC that day), or null: no expiry. */
  expiresAt: string | null;
  createdAt: string;
  userId: number;
  lastUsedAt: string | null;
}

/** The answer of a rotation: the new token's details and its value. */
export interface RotatedPersonalToken extends PersonalTokenInfo {
  token: string;
}

export interface CreateTokenInput {
  kind: TargetKind;
  /** Numeric id or full path (`group/sub/project`); the client URL-encodes it. */
  ref: string;
  name: string;
  description: string;
  scopes: string[];
  /** 10 guest … 50 owner (doc/api/project_access_tokens.md, `access_level`). */
  accessLevel: number;
  /** `YYYY-MM-DD`, see gitlabExpiryDate. */
  expiresAt: string;
}

export interface CreatedToken {
  id: number;
  /** false when GitLab created the token inactive (an `expires_at` of today); absent otherwise. */
  active?: false;
  /** The secret. Hash it (sha256Hex) before it goes anywhere but the caller. */
  token: string;
  expiresAt: string;
  /** The bot user GitLab created for the token. */
  userId: number;
  resourceId?: number;
}

export interface AccessTokenInfo {
  id: number;
  name: string;
  /** The bot user the token belongs to (rotation keeps it); -1 when GitLab did not say. */
  userId: number;
  active: boolean;
  revoked: boolean;
  expiresAt: string | null;
  createdAt: string;
}

export interface CreateDeployTokenInput {
  kind: TargetKind;
  /** Numeric id or full path; the client URL-encodes it. */
  ref: string;
  name: string;
  /** Deploy-token scopes only (doc/api/deploy_tokens.md). */
  scopes: string[];
  /** ISO 8601 date-time (`2026-06-30T10:15:42Z`): GitLab enforces it to the second; see deployTokenExpiry. */
  expiresAt: string;
  /** Absent: GitLab's `gitlab+deploy-token-<id>`. */
  username?: string;
}

export interface CreatedDeployToken {
  id: number;
  /** The secret. Hash it (sha256Hex) before it goes anywhere but the caller. */
  token: string;
  /** What git and the registries must be given with the token (nothing else is accepted). */
  username: string;
  /** As GitLab answered it (`2026-06-30T10:15:42.000Z`), or null. */
  expiresAt: string | null;
  /** false when GitLab answered it revoked or expired; absent otherwise. */
  active?: false;
}

/** A deploy token as GitLab lists it (never the value). */
export interface DeployTokenInfo {
  id: number;
  name: string;
  username: string;
  expiresAt: string | null;
  revoked: boolean;
  /** GitLab's day-granular flag (`expires_at < Date.today`), not whether it still authenticates. */
  expired: boolean;
}

export interface ListDeployTokensOptions {
  /** `active=true`: not revoked and `expires_at` not passed (to the second). */
  active?: boolean;
}

/** A project or group as GitLab names it now (`GET /projects/:id`, `GET /groups/:id`). */
export interface ResolvedTarget {
  kind: TargetKind;
  /** Numeric id: never reused, never changed by a rename or transfer. */
  id: number;
  /** The canonical full path today (`path_with_namespace` / `full_path`). */
  fullPath: string;
}

export interface ListTokensOptions {
  /** GitLab's `search` filter (a substring match on the name); callers still check names exactly. */
  search?: string;
  state?: 'active' | 'inactive';
}

export interface GitlabRateLimit {
  /** `RateLimit-Remaining` of the last response that carried it. */
  remaining?: number;
  /** `RateLimit-Reset` as epoch ms. */
  resetAt?: number;
  /** When the last 429's `Retry-After` ends (epoch ms, by the client's clock). */
  retryAfterUntil?: number;
  /** When the rate-limit headers were last seen. */
  observedAt?: number;
}

export interface GitlabClient {
  /** Exactly one POST, never retried (a retry could mint twice; the reconciler cleans up lost answers). */
  createAccessToken(i: CreateTokenInput): Promise<CreatedToken>;
  /**
   * GET /projects/:ref or /groups/:ref → id and canonical path. GitLab follows
   * redirect routes of renamed or moved projects here, so a caller must compare
   * `fullPath` with the path it asked for. Throws GitlabNotFoundError on 404.
   */
  resolveTarget(kind: TargetKind, ref: string): Promise<ResolvedTarget>;
  /** DELETE → 'revoked'; 404 → 'absent' (already gone). Retried on 5xx/429/network errors. */
  revokeAccessToken(kind: TargetKind, ref: string, tokenId: number): Promise<'revoked' | 'absent'>;
  /** All pages (per_page=100), following X-Next-Page or Link rel="next". */
  listAccessTokens(kind: TargetKind, ref: string, opts?: ListTokensOptions): Promise<AccessTokenInfo[]>;
  /** POST …/deploy_tokens: exactly one request, never retried (as createAccessToken). */
  createDeployToken(i: CreateDeployTokenInput): Promise<CreatedDeployToken>;
  /** DELETE …/deploy_tokens/:id → 'revoked'; 404 → 'absent'. Retried on 5xx/429/network errors. */
  revokeDeployToken(kind: TargetKind, ref: string, tokenId: number): Promise<'revoked' | 'absent'>;
  /** All pages of GET …/deploy_tokens (per_page=100; `active=true` when asked). */
  listDeployTokens(kind: TargetKind, ref: string, opts?: ListDeployTokensOptions): Promise<DeployTokenInfo[]>;
  /** GET /personal_access_tokens/self: cheap, and proves the STS's own token still works. */
  checkHealth(): Promise<void>;
  /**
   * GET /personal_access_tokens/self with `token` (default: the current one; an explicit token is
   * not refreshed on a 401 and does not move `lastStatus`). Retried on 5xx/429/network errors.
   */
  getSelfToken(token?: string): Promise<PersonalTokenInfo>;
  /**
   * POST /personal_access_tokens/self/rotate with `token` and `expires_at`: GitLab revokes `token`
   * and answers the new one. Exactly one request, never retried (see client.ts).
   */
  rotateSelfToken(i: { token: string; expiresAt: string }): Promise<RotatedPersonalToken>;
  /** The last answer of any call (readiness reads it and never calls GitLab itself). */
  lastStatus(): { ok: boolean; at: number } | undefined;
  rateLimit(): GitlabRateLimit;
  close(): Promise<void>;
}
