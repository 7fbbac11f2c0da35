/**
 * The grant ledger: one row per token the STS mints, written before GitLab is
 * called and kept after revocation. `LedgerStore` is the storage interface,
 * implemented on SQLite (sqlite.ts) and PostgreSQL (postgres.ts). Every method is
 * async and takes and returns plain data, so any backend fits. The contract
 * every implementation must meet is the test suite in contract.testutil.ts.
 *
 * Lifecycle:
 *
 *   minting ──markActive──▶ active ──requestRevoke──▶ revoking
 *      │                      │                          │
 *      │ markFailed /         └──────── markRevoked ◀────┘   (reaper, POST /revoke, reconciler)
 *      ▼ failStaleMinting                  │
 *   failed ──(reconciler revoked a token named for it)──▶ revoked
 */
import type { TargetKind } from '../util/target-kind.ts';
import type { TokenKind } from '../util/token-kind.ts';

export type GrantState = 'minting' | 'active' | 'revoking' | 'revoked' | 'failed';

export interface Grant {
  /** Random UUID; also the last part of the GitLab token name `tanuki-sts/<server.id>/<policy>/<id>`. */
  id: string;
  state: GrantState;
  requestId: string;
  issuer: string;
  /** Key for per-identity limits (issuer + subject), see identity/types.ts. */
  identityKey: string;
  subject: string;
  tenant?: string;
  clientId?: string;
  objectId?: string;
  policy: string;
  targetKind: TargetKind;
  /** The target's canonical full path when minted (for people: audit, logs). */
  targetRef: string;
  /**
   * The target's numeric GitLab id: what the STS mints, revokes and reconciles
   * by. A path can be renamed, moved or reused (GitLab then follows a redirect
   * route to another project); an id cannot. Absent only in grants recorded
   * before ledger schema 2, which fall back to the path.
   */
  targetId?: number;
  /**
   * What was minted (the policy's `grant.via`): absent for a project/group access token (every
   * grant recorded before ledger schema 4 is one), `deploy-token` for a deploy token, which the
   * reaper, POST /revoke and the reconciler end through GitLab's deploy-token API.
   */
  tokenKind?: TokenKind;
  scopes: string[];
  /** The access token's role as an access level; 0 for a deploy token (no role). */
  accessLevel: number;
  /** Epoch ms. */
  createdAt: number;
  /** End of the STS TTL, epoch ms: the reaper revokes the token then. */
  expiresAt: number;
  /**
   * The `expires_at` sent to GitLab (the backstop): a date (`YYYY-MM-DD`) for an access token, a
   * date-time (`2030-06-02T10:16:01Z`, enforced to the second) for a deploy token.
   */
  gitlabExpiresAt: string;
  gitlabTokenId?: number;
  /** The bot user GitLab created for the token (a rotation keeps it; forensics). */
  gitlabUserId?: number;
  /** A deploy token's username (`gitlab+deploy-token-<id>`): what git and registries need with it. */
  gitlabUsername?: string;
  /** SHA-256 (hex) of the token: the only form of the token the ledger ever holds. */
  tokenSha256?: string;
  revokeRequestedAt?: number;
  revokedAt?: number;
  /** Failed revocation attempts. */
  attempts: number;
  /**
   * For active/revoking grants: when the reaper may next work on it (the TTL
   * end, `now` after a revoke request, a backoff after a failure, or the end of
   * a reaper's lease).
   */
  nextAttemptAt?: number;
  lastError?: string;
}

/** What insertMinting takes: a grant before GitLab is called, without what GitLab and the lifecycle fill in. */
export type NewGrant = Omit<
  Grant,
  | 'state'
  | 'attempts'
  | 'gitlabTokenId'
  | 'gitlabUserId'
  | 'gitlabUsername'
  | 'tokenSha256'
  | 'revokeRequestedAt'
  | 'revokedAt'
  | 'nextAttemptAt'
  | 'lastError'
> & { state?: 'minting'; attempts?: number };

export interface LedgerTarget {
  kind: TargetKind;
  /** What to call GitLab with: the numeric id (as a string), or the path for pre-schema-2 grants. */
  ref: string;
  /** The canonical path last recorded for it (logs). */
  path: string;
  /**
   * `deploy-token`: this row stands for the target's deploy tokens (a target minted for with both
   * kinds is listed twice, once per kind); absent: its access tokens.
   */
  tokenKind?: 'deploy-token';
}

/**
 * What listGrants selects: every field given narrows the selection. Text is compared exactly,
 * except the application and the target path, compared ignoring ASCII case (GUIDs, GitLab paths).
 */
export interface GrantFilter {
  policy?: string;
  /** The caller's application (Entra app ID, OIDC `azp`): Grant.clientId. */
  clientId?: string;
  subject?: string;
  /** The target: the path recorded at mint time, or (digits) its numeric GitLab id. */
  target?: string;
  /** Row states to keep (an empty list keeps none). */
  states?: GrantState[];
  /** `ended`: only grants whose STS TTL has passed at `now` (expiresAt <= now); `running`: the others. Needs `now`. */
  ttl?: 'running' | 'ended';
  now?: number;
  /** Keyset paging: only grants after this one in (createdAt, id) order. */
  after?: { createdAt: number; id: string };
  /** Most grants returned (at least 1). */
  limit: number;
}

/** The per-identity cap, checked in the same write as the insert (no check-then-act race). */
export interface MintingCap {
  /** Most grants one identity may hold whose token may live (see countActive); 0 = no cap. */
  maxActive: number;
  now: number;
}

export interface LedgerStore {
  /**
   * Record a grant in state `minting`, before GitLab is called. Throws
   * DuplicateGrantError on a reused id, and ActiveGrantCapError when `cap` is
   * given and the identity already holds `cap.maxActive` grants: the count and
   * the insert are one atomic statement, so parallel requests cannot overshoot.
   */
  insertMinting(g: NewGrant, cap?: MintingCap): Promise<void>;
  /**
   * minting → active, with GitLab's token id and the token's SHA-256. Throws
   * GrantStateError when the grant is no longer minting (e.g. swept as stale):
   * the caller must then revoke the token rather than hand it out.
   */
  markActive(
    id: string,
    v: { gitlabTokenId: number; tokenSha256: string; gitlabUserId?: number; gitlabUsername?: string },
  ): Promise<void>;
  /** minting → failed (GitLab refused, or may or may not have minted). A no-op in any other state. */
  markFailed(id: string, reason: string): Promise<void>;
  /** The active or revoking grant whose token hashes to `sha`. */
  findActiveByTokenSha(sha: string): Promise<Grant | undefined>;
  /** active → revoking, due at once. A no-op for a grant already revoking, revoked or failed. */
  requestRevoke(id: string, now: number): Promise<void>;
  /**
   * Grants of one identity whose token may live: minting, active (even past its TTL, until
   * the reaper ends it) or revoking. What the per-identity cap counts.
   */
  countActive(identityKey: string): Promise<number>;
  /** Grants whose token exists and is not yet revoked (active + revoking): the active-grants gauge. */
  countAllActive(): Promise<number>;
  /**
   * Up to `limit` active/revoking grants with nextAttemptAt <= now, earliest
   * first, leased: their nextAttemptAt moves to now + leaseMs in the same
   * write, so another reaper (replica) does not take them meanwhile.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<Grant[]>;
  /** → revoked (from any state but revoked; a no-op then). */
  markRevoked(id: string, now: number): Promise<void>;
  /** markRevoked for many grants in one write (the reaper's batches). */
  markRevokedMany(ids: string[], now: number): Promise<void>;
  /** Count a failed revocation attempt and set when to try again. */
  recordRevokeFailure(id: string, error: string, nextAttemptAt: number): Promise<void>;
  /** Release leases without counting an attempt (reaper stopping or pausing for GitLab's rate limit). */
  reschedule(ids: string[], nextAttemptAt: number): Promise<void>;
  /**
   * minting grants created before `olderThan` (the process died mid-call) →
   * failed, `lastError` "orphan-suspect"; the reconciler revokes any GitLab
   * token named for them. Returns their ids.
   */
  failStaleMinting(olderThan: number): Promise<string[]>;
  /**
   * minting grants whose process is gone → failed, `lastError` "orphan-suspect"; returns them
   * (as failed). Never a grant of this store's own process, nor (PostgreSQL) of a replica whose
   * heartbeat is within its lease: their mints may be in flight. SQLite (one process per file): every
   * minting grant another process (or an earlier run) recorded. PostgreSQL: those of replicas that
   * closed, or whose heartbeat is older than the lease (postgres.ts).
   */
  failOrphanedMinting(): Promise<Grant[]>;
  /**
   * Every project/group ever minted for, once each (by numeric id). Not only
   * those whose GitLab expiry date is ahead: a holder with `api` can rotate a
   * token and choose a new expiry up to a year out, so a target is never
   * assumed clean because of dates.
   */
  knownTargets(): Promise<LedgerTarget[]>;
  getById(id: string): Promise<Grant | undefined>;
  /**
   * Grants matching every field of `filter` (`tanuki-sts grants list` / `grants revoke`), oldest
   * first (createdAt, then id), at most `filter.limit`; page on with `filter.after` = the last one
   * returned. A read: safe beside a serving process (kill-switch.ts).
   */
  listGrants(filter: GrantFilter): Promise<Grant[]>;
  /** When the longest-waiting overdue grant fell due (TTL end or revoke request), epoch ms; for the reaper-lag metric. */
  oldestOverdue(now: number): Promise<number | undefined>;
  /** Earliest nextAttemptAt of any active/revoking grant: when the reaper should wake. */
  nextDueAt(): Promise<number | undefined>;
  /**
   * False while the store cannot write: SQLite, once its writer thread died; PostgreSQL, while the
   * database cannot be reached (it comes back by itself). Readiness reports it, and an exchange is
   * refused (503) before any GitLab call.
   */
  writable?(): boolean;
  close(): Promise<void>;
}

/** A log the reaper and reconciler write to (pino's Logger fits). */
export interface LedgerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export class LedgerError extends Error {
  static readonly code: string = 'ERR_LEDGER';
  readonly code: string = LedgerError.code;
}

export class GrantNotFoundError extends LedgerError {
  static override readonly code = 'ERR_GRANT_NOT_FOUND';
  override readonly code = GrantNotFoundError.code;
  constructor(id: string) {
    super(`grant ${id} not found`);
    this.name = 'GrantNotFoundError';
  }
}

export class GrantStateError extends LedgerError {
  static override readonly code = 'ERR_GRANT_STATE';
  override readonly code = GrantStateError.code;
  constructor(id: string, state: GrantState, wanted: string) {
    super(`grant ${id} is ${state}, expected ${wanted}`);
    this.name = 'GrantStateError';
  }
}

export class DuplicateGrantError extends LedgerError {
  static override readonly code = 'ERR_GRANT_DUPLICATE';
  override readonly code = DuplicateGrantError.code;
  constructor(id: string) {
    super(`grant ${id} already exists`);
    this.name = 'DuplicateGrantError';
  }
}

/** The identity already holds the most active grants its cap allows. */
export class ActiveGrantCapError extends LedgerError {
  static override readonly code = 'ERR_ACTIVE_GRANT_CAP';
  override readonly code = ActiveGrantCapError.code;
  constructor(readonly cap: number) {
    super(`active grant cap ${cap} reached`);
    this.name = 'ActiveGrantCapError';
  }
}

/** Another live process already serves from this SQLite ledger (SQLite is the single-replica store). */
export class LedgerLockedError extends LedgerError {
  static override readonly code = 'ERR_LEDGER_LOCKED';
  override readonly code = LedgerLockedError.code;
  constructor(path: string) {
    super(
      `another tanuki-sts process is serving from the ledger ${path}; SQLite is for one replica ` +
        '(run several replicas on PostgreSQL)',
    );
    this.name = 'LedgerLockedError';
  }
}

/** The PostgreSQL ledger cannot be reached right now (it recovers by itself when the database returns). */
export class LedgerUnavailableError extends LedgerError {
  static override readonly code = 'ERR_LEDGER_UNAVAILABLE';
  override readonly code = LedgerUnavailableError.code;
  constructor(reason: string) {
    super(`the ledger database is unavailable: ${reason}`);
    this.name = 'LedgerUnavailableError';
  }
}

/** The ledger's schema is newer than this tanuki-sts knows: it refuses to run on it (no silent downgrade). */
export class LedgerSchemaError extends LedgerError {
  static override readonly code = 'ERR_LEDGER_SCHEMA';
  override readonly code = LedgerSchemaError.code;
  constructor(where: string, found: number, known: number) {
    super(
      `the ledger ${where} is at schema version ${found}, newer than this tanuki-sts knows (${known}): ` +
        'run the tanuki-sts version that migrated it, or a newer one (a schema is never downgraded)',
    );
    this.name = 'LedgerSchemaError';
  }
}
