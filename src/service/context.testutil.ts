/**
 * A StsContext for the service tests, every part under the test's control:
 * real compiled policies, an in-memory SQLite ledger, the real GitLab client
 * against the fake GitLab (every request recorded), a stub validator that
 * maps fixed token strings to identities or refusals, an in-memory audit
 * sink, a log that keeps its lines, and a frozen clock.
 */
import pino from 'pino';
import { parseConfig } from '../config/index.ts';
import { FAKE_ADMIN_TOKEN } from '../gitlab/fake-gitlab.testutil.ts';
import { createGitlabClient, createTargetResolver } from '../gitlab/index.ts';
import { refuse, SubjectTokenCodes, unavailable } from '../identity/errors.ts';
import type { Identity, TokenValidator } from '../identity/index.ts';
import { openSqliteLedger } from '../ledger/index.ts';
import { createMemoryAuditSink } from './audit.ts';
import type { StsContext } from './context.ts';
import { createRateLimiter } from './limits.ts';
import { createMetrics } from './metrics.ts';
import { compileConfig } from './runtime.ts';

export const TENANT = '3f1e8a2c-5b7d-4c9e-a1f0-2b6d8e4c7a90';
export const APP = 'aaaaaaaa-0000-4000-8000-000000000001';
export const STRANGER_APP = 'aaaaaaaa-0000-4000-8000-0000000000ff';
export const OBJECT_ID = 'bbbbbbbb-0000-4000-8000-000000000001';
export const SERVER_ID = 'unit';
export const PUBLIC_URL = 'https://sts.example.test';
/** 2025-06-15T23:50:00Z: a 900 s grant ends after midnight, so GitLab's date is the 17th. */
export const NOW = Date.UTC(2025, 5, 15, 23, 50, 0);

/** Subject tokens the stub validator knows (any other string: ERR_TOKEN_MALFORMED). */
export const TOKENS = {
  /** Matches policy `deploy` (platform/app, missing/app, project 4242, the platform/tools group). */
  good: 'good-subject-token',
  /** A valid token no policy accepts. */
  stranger: 'stranger-subject-token',
  /** A refused token (expired). */
  expired: 'expired-subject-token',
  /** Keys cannot be fetched: retryable. */
  keysDown: 'keys-down-subject-token',
  /** The validator has a bug: it throws a TypeError. */
  bug: 'validator-bug-subject-token',
  /** The validator has a bug that looks like a refusal: a plain object with code and reason. */
  bugLikeRefusal: 'validator-bug-refusal-lookalike',
  /** JWT-shaped; the validator has a bug whose message quotes the token. */
  bugQuotingToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJidWcifQ.c2lnbmF0dXJlLWJ1Zw',
} as const;

export function entraIdentity(appId: string): Identity {
  return {
    issuer: 'contoso',
    kind: 'entra',
    tenant: TENANT,
    clientId: appId,
    objectId: OBJECT_ID,
    subject: OBJECT_ID,
    roles: [],
    tokenId: 'uti-1',
    expiresAt: NOW / 1000 + 3600,
    version: '2.0',
    claims: { appid: appId, azp: appId, oid: OBJECT_ID, sub: OBJECT_ID, tid: TENANT },
  };
}

export function stubValidator(): TokenValidator & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async validate(token) {
      calls.push(token);
      switch (token) {
        case TOKENS.good:
          return entraIdentity(APP);
        case TOKENS.stranger:
          return entraIdentity(STRANGER_APP);
        case TOKENS.expired:
          throw refuse(SubjectTokenCodes.CLAIM_EXP, 'expired at 1');
        case TOKENS.keysDown:
          throw unavailable('JWKS fetch failed', 12.2);
        case TOKENS.bug:
          throw new TypeError("Cannot read properties of undefined (reading 'kid')");
        case TOKENS.bugLikeRefusal:
          throw { code: 'ERR_OOPS', reason: 'not a SubjectTokenError', retryable: false };
        case TOKENS.bugQuotingToken:
          throw new SyntaxError(`cannot parse ${token}`);
        default:
          throw refuse(SubjectTokenCodes.MALFORMED, 'not a known test token');
      }
    },
    init: async () => {},
    ready: () => true,
    close: () => {},
    stats: () => ({ jwksFetches: {} }),
  };
}

export const POLICIES = [
  {
    name: 'deploy',
    issuer: 'contoso',
    match: { appid: APP },
    grant: {
      // missing/app: granted, but the fake GitLab answers 404 for it. 4242: by id.
      projects: ['platform/app', 'missing/app', 4242],
      groups: ['platform/tools'],
      scopes: ['read_repository', 'read_api'],
      role: 'reporter',
    },
  },
];

/** The unit tests' configuration; `extra` replaces or adds top-level sections (`clients`, `policies`). */
export function testConfig(
  gitlabUrl: string,
  server: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) {
  return parseConfig(
    {
      server: {
        publicUrl: `${PUBLIC_URL}/`,
        id: SERVER_ID,
        metricsListen: '127.0.0.1:0',
        rateLimit: { perIdentity: 0, perIp: 0 },
        ...server,
      },
      gitlab: { url: gitlabUrl, token: FAKE_ADMIN_TOKEN, targetCacheTtl: 0 },
      store: { sqlite: ':memory:' },
      issuers: {
        contoso: {
          entra: { tenant: TENANT },
          audiences: ['api://aaaaaaaa-0000-4000-8000-0000000000aa', 'aaaaaaaa-0000-4000-8000-0000000000aa'],
        },
        ci: { oidc: { issuer: 'https://ci.example.test' }, audiences: [PUBLIC_URL] },
      },
      policies: POLICIES,
      ...extra,
    },
    { env: {} },
  );
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export type TestContext = StsContext & {
  audit: ReturnType<typeof createMemoryAuditSink>;
  validator: ReturnType<typeof stubValidator>;
  logLines: LogLine[];
  close(): Promise<void>;
};

export function testContext(
  gitlabUrl: string,
  o: { server?: Record<string, unknown>; extra?: Record<string, unknown>; now?: () => number } = {},
): TestContext {
  const config = testConfig(gitlabUrl, o.server, o.extra);
  const now = o.now ?? (() => NOW);
  const logLines: LogLine[] = [];
  const log = pino({ level: 'info', base: null }, { write: (s: string) => logLines.push(JSON.parse(s)) });
  const store = openSqliteLedger(':memory:');
  const gitlab = createGitlabClient({
    url: config.gitlab.url,
    token: config.gitlab.token,
    timeoutMs: 2000,
    maxRetries: 0,
    now,
  });
  const metrics = createMetrics({ activeGrants: async () => 0, reaperLagSeconds: async () => 0 });
  return {
    config,
    validator: stubValidator(),
    ...compileConfig(config),
    store,
    gitlab,
    targets: createTargetResolver(gitlab, { ttlMs: 0, now }),
    audit: createMemoryAuditSink(),
    log,
    logLines,
    metrics,
    limits: {
      perIdentity: createRateLimiter(config.server.rateLimit.perIdentity, now),
      perIp: createRateLimiter(config.server.rateLimit.perIp, now),
    },
    now,
    async close() {
      await gitlab.close();
      await store.close();
    },
  };
}
