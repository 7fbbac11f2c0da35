/**
 * Rotations of the STS's own GitLab token, recorded in the ledger so that a
 * crash at any step of a rotation never loses the only working credential
 * (src/credential/rotation.ts runs the protocol; docs/operations.md explains it).
 *
 * One row per rotation, in the `credential_rotations` table of either store:
 *
 * ```
 * begin ──▶ pending ──recordNewToken (GitLab answered: the new token, sealed)──▶ pending
 *              │                                  │ markWritten (written back to the source)
 *              │                                  ▼
 *              └──────────── finish ──▶ done | abandoned | lost   (the sealed value is erased)
 * ```
 *
 * At most one row is `pending` at a time (a unique index): `begin` is also the
 * lock that keeps two processes (the leader and `tanuki-sts credential rotate`)
 * from rotating at once. The token values are never stored in the clear: the
 * old and new tokens as SHA-256, the new one also sealed (AES-256-GCM) under a
 * key derived from the old token's value, so the ledger alone does not reveal
 * it; the seal is erased when the rotation finishes.
 */
import { LedgerError } from './types.ts';

export type CredentialRotationState = 'pending' | 'done' | 'abandoned' | 'lost';

export interface CredentialRotation {
  id: string;
  state: CredentialRotationState;
  /** Epoch ms. */
  startedAt: number;
  /** The process that began it (for operators: which replica or CLI run). */
  owner: string;
  /** SHA-256 (hex) of the token being rotated. */
  oldSha256: string;
  /** GitLab's id of the token being rotated. */
  oldTokenId?: number;
  /** Set once GitLab answered: the new token's SHA-256, id and expiry date (`YYYY-MM-DD`). */
  newSha256?: string;
  newTokenId?: number;
  newExpiresAt?: string;
  /** The new token sealed with a key derived from the old one (src/credential/seal.ts); erased by finish. */
  sealed?: string;
  /** When the new token was written back to its source (epoch ms). */
  writtenAt?: number;
  finishedAt?: number;
  /** Why it was abandoned or lost (never a token). */
  reason?: string;
}

export interface NewRotation {
  id: string;
  startedAt: number;
  owner: string;
  oldSha256: string;
  oldTokenId?: number;
}

export interface CredentialRotationStore {
  /** Record a rotation about to call GitLab. Throws CredentialRotationBusyError if one is pending. */
  begin(r: NewRotation): Promise<void>;
  /** GitLab answered: keep the new token (sealed) before anything else happens. */
  recordNewToken(
    id: string,
    v: { newSha256: string; newTokenId: number; newExpiresAt?: string; sealed: string },
  ): Promise<void>;
  /** The new token is in the source. */
  markWritten(id: string, at: number): Promise<void>;
  /** The rotation is over, one way or the other; the sealed value is erased. Only a pending row changes. */
  finish(id: string, v: { state: 'done' | 'abandoned' | 'lost'; at: number; reason?: string }): Promise<void>;
  /** The pending rotation, if any. */
  pending(): Promise<CredentialRotation | undefined>;
  /** The most recent rotation that finished `done`. */
  lastDone(): Promise<CredentialRotation | undefined>;
  close(): Promise<void>;
}

/** Another rotation is pending (another process is rotating, or one must be completed first). */
export class CredentialRotationBusyError extends LedgerError {
  static override readonly code = 'ERR_CREDENTIAL_ROTATION_BUSY';
  override readonly code = CredentialRotationBusyError.code;
  constructor() {
    super('another rotation of the GitLab credential is pending');
    this.name = 'CredentialRotationBusyError';
  }
}

/** Longest `reason` kept. */
export const MAX_ROTATION_REASON_CHARS = 500;
