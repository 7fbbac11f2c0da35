/** Shared set-up for the reaper and reconciler tests: a ledger in a temp dir, a fake GitLab, a client, a clock. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_ADMIN_TOKEN, type FakeGitlab, startFakeGitlab } from '../gitlab/fake-gitlab.testutil.ts';
import { createGitlabClient, type GitlabClient, type GitlabClientOptions } from '../gitlab/index.ts';
import { sha256Hex } from '../util/hash.ts';
import { newGrant } from './contract.testutil.ts';
import { tokenName } from './names.ts';
import { openSqliteLedger } from './sqlite.ts';
import type { LedgerStore, NewGrant } from './types.ts';

export const T0 = Date.parse('2030-06-01T12:00:00.000Z');

export interface Kit {
  dir: string;
  dbPath: string;
  store: LedgerStore;
  fake: FakeGitlab;
  gitlab: GitlabClient;
  clock: { t: number; now: () => number };
  /** Mint a grant the way exchange.ts does: ledger minting → GitLab token → ledger active. */
  grant(over?: Partial<NewGrant>, serverId?: string): Promise<{ id: string; tokenId: number }>;
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function makeKit(clientOpts: Partial<GitlabClientOptions> = {}): Promise<Kit> {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-reaper-'));
  const dbPath = join(dir, 'ledger.db');
  const fake = await startFakeGitlab();
  const clock = {
    t: T0,
    now: () => clock.t,
  };
  const gitlab = createGitlabClient({
    url: fake.url,
    token: FAKE_ADMIN_TOKEN,
    timeoutMs: 2000,
    maxRetries: 0,
    now: clock.now,
    ...clientOpts,
  });
  const kit: Kit = {
    dir,
    dbPath,
    store: openSqliteLedger(dbPath),
    fake,
    gitlab,
    clock,
    async grant(over = {}, serverId = 'dev') {
      const g = newGrant({ createdAt: clock.t, expiresAt: clock.t + 60_000, ...over });
      await kit.store.insertMinting(g);
      const t = fake.addToken(g.targetKind, g.targetRef, tokenName(serverId, g.policy, g.id));
      await kit.store.markActive(g.id, { gitlabTokenId: t.id, tokenSha256: sha256Hex(t.token) });
      return { id: g.id, tokenId: t.id };
    },
    async reopen() {
      await kit.store.close();
      kit.store = openSqliteLedger(dbPath);
    },
    async close() {
      await kit.store.close();
      await gitlab.close();
      await kit.gitlab.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return kit;
}

/** Poll until `fn` is true (real time), failing after `ms`. */
export async function waitFor(
  fn: () => boolean | Promise<boolean>,
  ms = 2000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
