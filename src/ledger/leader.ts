/**
 * Leader election: the reaper, the reconciler and start-up recovery run on one
 * process at a time. On SQLite the single serving process is always the leader
 * (`staticLeader`); on PostgreSQL the replicas elect one (postgres-leader.ts).
 *
 * `onChange(true)` is called when this process becomes the leader and
 * `onChange(false)` as soon as it stops being one (a lost connection included):
 * the caller starts and stops the loops there. Calls never overlap; each one is
 * made after the previous one's promise settled, except that a loss is
 * reported at once (the caller must stop its loops without waiting).
 */
export interface LeaderElection {
  /** Start campaigning; resolves after the first attempt (and its onChange(true), if it won). */
  start(): Promise<void>;
  /** Step down (if leading) and stop campaigning; resolves after onChange(false) settled. */
  stop(): Promise<void>;
  isLeader(): boolean;
}

export type LeaderChange = (leader: boolean) => Promise<void> | void;

/** The single process of a SQLite ledger: leader from start() to stop(). */
export function staticLeader(onChange: LeaderChange): LeaderElection {
  let leader = false;
  return {
    async start() {
      if (leader) return;
      leader = true;
      await onChange(true);
    },
    async stop() {
      if (!leader) return;
      leader = false;
      await onChange(false);
    },
    isLeader: () => leader,
  };
}
