/** Everything a request handler needs, built once at start-up (see server.ts). */
import type { Logger } from 'pino';
import type { StsConfig } from '../config/index.ts';
import type { GitlabClient, TargetResolver } from '../gitlab/index.ts';
import type { TokenValidator } from '../identity/index.ts';
import type { LedgerStore } from '../ledger/index.ts';
import type { PolicySet } from '../policy/index.ts';
import type { AuditSink } from './audit.ts';
import type { RateLimiter } from './limits.ts';
import type { StsMetrics } from './metrics.ts';

export interface StsContext {
  config: StsConfig;
  validator: TokenValidator;
  policies: PolicySet;
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
}
