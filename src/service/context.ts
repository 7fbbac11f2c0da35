/**
 * Everything a request handler needs, built at start-up (see server.ts). A reload
 * (reload.ts) builds a new one with the new configuration's parts and swaps it in;
 * each request keeps the one it started with, so an exchange in flight finishes
 * under the configuration it began with.
 */
import type { Logger } from 'pino';
import type { StsConfig } from '../config/index.ts';
import type { GitlabClient, TargetResolver } from '../gitlab/index.ts';
import type { TokenValidator } from '../identity/index.ts';
import type { LedgerStore } from '../ledger/index.ts';
import type { DenyList, PolicySet } from '../policy/index.ts';
import type { AuditSink } from './audit.ts';
import type { ClientRegistry } from './client-auth.ts';
import type { ClientBundle } from './client-bundle.ts';
import type { RateLimiter } from './limits.ts';
import type { StsMetrics } from './metrics.ts';

export interface StsContext {
  config: StsConfig;
  validator: TokenValidator;
  policies: PolicySet;
  /** `server.deny`, compiled: identities refused before any policy. */
  deny: DenyList;
  /** `clients`: the confidential clients and the digests of their secrets. */
  clients: ClientRegistry;
  store: LedgerStore;
  gitlab: GitlabClient;
  /** Path → id and canonical path, briefly cached (gitlab.targetCacheTtl). */
  targets: TargetResolver;
  audit: AuditSink;
  /**
   * The operational log (pino). Only bugs and operational trouble go here, with their
   * stack; never a token (refusals go to `audit`, with token hashes).
   */
  log: Logger;
  metrics: StsMetrics;
  limits: { perIdentity: RateLimiter; perIp: RateLimiter };
  now: () => number;
  /** The STS's own GitLab credential (src/credential): `/readyz` asks it; absent in focused tests. */
  credential?: { ready(): boolean };
  /** The pipeline client served at /client/tanuki-sts.mjs; absent: not served (404, no metadata fields). */
  clientBundle?: ClientBundle;
}
