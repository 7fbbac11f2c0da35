/**
 * The configured ledger, opened for serving: SQLite (one process: the ledger
 * lock, always the leader) or PostgreSQL (any number of replicas: the store
 * waits for its database, and the replicas elect a leader). The one place the
 * STS chooses a backend.
 */
import type { Logger } from 'pino';
import type { StsConfig } from '../config/index.ts';
import type { CredentialRotationStore } from '../ledger/credential-rotations.ts';
import {
  acquireLedgerLock,
  type LeaderChange,
  type LeaderElection,
  type LedgerStore,
  migratePostgresLedger,
  migrateSqliteLedger,
  openPostgresLedger,
  openSqliteLedger,
  staticLeader,
} from '../ledger/index.ts';
import { openPostgresCredentialRotations } from '../ledger/postgres-credential-rotations.ts';
import { openSqliteCredentialRotations } from '../ledger/sqlite-credential-rotations.ts';

export interface LedgerBackend {
  kind: 'sqlite' | 'postgres';
  store: LedgerStore;
  /** Who runs the reaper, the reconciler and start-up recovery (leader.ts). */
  election(onChange: LeaderChange): LeaderElection;
  /** Rotations of the STS's own GitLab token (src/ledger/credential-rotations.ts); closed by close(). */
  rotations: CredentialRotationStore;
  /** Close the store (and release the SQLite lock). */
  close(): Promise<void>;
}

export interface LedgerBackendOptions {
  log: Logger;
  /** PostgreSQL: how often followers try to take the lead (default 2 s). */
  electionIntervalMs?: number;
  /** PostgreSQL: heartbeat and lease of this process's minting grants (defaults 5 s, 30 s). */
  heartbeatMs?: number;
  leaseMs?: number;
}

export async function openLedgerBackend(config: StsConfig, o: LedgerBackendOptions): Promise<LedgerBackend> {
  const { log } = o;
  const pgConfig = config.store.postgres;
  if (pgConfig) {
    const store = await openPostgresLedger({
      url: pgConfig.url,
      caFile: pgConfig.caFile,
      schema: pgConfig.schema,
      poolSize: pgConfig.poolSize,
      // A replica may start before its database: not ready until it answers.
      waitForDatabase: true,
      heartbeatMs: o.heartbeatMs,
      leaseMs: o.leaseMs,
      log,
    });
    log.info({ schema: store.schema, instanceId: store.instanceId }, 'ledger: PostgreSQL');
    const rotations = openPostgresCredentialRotations({
      url: pgConfig.url,
      caFile: pgConfig.caFile,
      schema: pgConfig.schema,
    });
    return {
      kind: 'postgres',
      store,
      election: (onChange) => store.leaderElection({ onChange, intervalMs: o.electionIntervalMs, log }),
      rotations,
      close: async () => {
        await rotations.close();
        await store.close();
      },
    };
  }
  const path = config.store.sqlite;
  // One serving process per SQLite file (src/ledger/sqlite-lock.ts); refuse to start otherwise.
  const lock = acquireLedgerLock(path);
  try {
    const store = openSqliteLedger(path, {
      onWriterStopped: (err) =>
        log.error(
          { err: err.message },
          'ledger writer stopped: exchanges answer 503 until restart; not ready',
        ),
    });
    let rotations: CredentialRotationStore;
    try {
      rotations = openSqliteCredentialRotations(path);
    } catch (err) {
      await store.close();
      throw err;
    }
    return {
      kind: 'sqlite',
      store,
      election: staticLeader,
      rotations,
      async close() {
        try {
          await rotations.close();
          await store.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** What `tanuki-sts migrate` did. */
export interface LedgerMigration {
  /** For people: `PostgreSQL schema "tanuki_sts"` or `SQLite file /var/lib/…` (never the URL). */
  where: string;
  from: number;
  to: number;
}

/** Bring the configured ledger's schema up to date, nothing else (the STS does the same at start-up). */
export async function migrateLedger(config: StsConfig): Promise<LedgerMigration> {
  const pgConfig = config.store.postgres;
  if (pgConfig) {
    const r = await migratePostgresLedger({
      url: pgConfig.url,
      caFile: pgConfig.caFile,
      schema: pgConfig.schema,
    });
    return { where: `PostgreSQL schema "${pgConfig.schema}"`, ...r };
  }
  return { where: `SQLite file ${config.store.sqlite}`, ...migrateSqliteLedger(config.store.sqlite) };
}
