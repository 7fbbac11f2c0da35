/** The grant ledger (SQLite), reaper and reconciler. See README.md. */

export { parseTokenName, tokenName, tokenNamePrefix } from './names.ts';
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
export { openSqliteLedger } from './sqlite.ts';
export { acquireLedgerLock, type ProcessLock } from './sqlite-lock.ts';
export type {
  Grant,
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
} from './types.ts';
