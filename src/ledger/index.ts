/** The grant ledger (SQLite, PostgreSQL), reaper, reconciler and leader election. See README.md. */

export {
  type CredentialRotation,
  CredentialRotationBusyError,
  type CredentialRotationState,
  type CredentialRotationStore,
  type NewRotation,
} from './credential-rotations.ts';
export {
  type GrantSelection,
  type GrantStatus,
  grantStatus,
  type KillSwitchOptions,
  type KillSwitchResult,
  listMatching,
  revokeMatching,
  type SettledGrant,
  STATUS_FILTERS,
  type StatusFilter,
  statusFilter,
  type UnsettledGrant,
} from './kill-switch.ts';
export { type LeaderChange, type LeaderElection, staticLeader } from './leader.ts';
export { parseTokenName, tokenName, tokenNamePrefix } from './names.ts';
export {
  migratePostgresLedger,
  openPostgresLedger,
  type PostgresLedger,
  type PostgresLedgerOptions,
} from './postgres.ts';
export { openPostgresCredentialRotations } from './postgres-credential-rotations.ts';
export { type MigrationResult, PG_MIGRATIONS } from './postgres-migrations.ts';
export type { Reaper, ReaperOptions, ReapOutcome, ReapResult } from './reaper.ts';
export { createReaper } from './reaper.ts';
export type { ReconciledToken, ReconcileResult, Reconciler, ReconcilerOptions } from './reconciler.ts';
export { createReconciler } from './reconciler.ts';
export {
  type GrantRevocation,
  GrantStillActiveError,
  grantTargetRef,
  type RevokeGrantResult,
  revokeGrantTokens,
} from './revoke-grant.ts';
export { migrateSqliteLedger, openSqliteLedger } from './sqlite.ts';
export { openSqliteCredentialRotations } from './sqlite-credential-rotations.ts';
export { acquireLedgerLock, type ProcessLock } from './sqlite-lock.ts';
export type {
  Grant,
  GrantFilter,
  GrantState,
  LedgerLog,
  LedgerStore,
  LedgerTarget,
  MintingCap,
  NewGrant,
} from './types.ts';
export {
  ActiveGrantCapError,
  DuplicateGrantError,
  GrantNotFoundError,
  GrantStateError,
  LedgerError,
  LedgerLockedError,
  LedgerSchemaError,
  LedgerUnavailableError,
} from './types.ts';
