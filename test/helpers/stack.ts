/**
 * Test harness: the Entra ID and GitLab emulators and an STS wired to them,
 * in this process, with a fake clock the test can move and an in-memory audit
 * sink the test can read. Everything listens on ephemeral loopback ports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type StsConfig } from '../../src/config/index.ts';
import { type DevSeedSummary, summarizeDevSeed } from '../../src/emulators/entra/dev-seed.ts';
import { type EntraEmulatorHandle, startEntraEmulator } from '../../src/emulators/entra/index.ts';
import { type GitlabEmulatorHandle, startGitlabEmulator } from '../../src/emulators/gitlab/index.ts';
import { createMemoryAuditSink } from '../../src/service/audit.ts';
import { type StsHandle, startSts } from '../../src/service/server.ts';
import { GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN } from '../../src/util/oauth-urns.ts';
import { findToken } from '../../src/util/token-patterns.ts';
import { azureToken } from './azure.ts';

export const PROJECT = 'platform/internal-lib';

export class FakeClock {
  t = Date.now();
  now = () => this.t;
  advance(ms: number) {
    this.t += ms;
  }
}

export interface Stack {
  dir: string;
  entra: EntraEmulatorHandle;
  gitlab: GitlabEmulatorHandle;
  seed: DevSeedSummary;
  clock: FakeClock;
  audit: ReturnType<typeof createMemoryAuditSink>;
  config: StsConfig;
  sts: StsHandle;
  /** Restart the STS on the same ledger (a new process, as far as the STS can tell). */
  restartSts(opts?: { background?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Changes to the raw STS config before it is parsed. */
  tweak?: (raw: Record<string, any>) => void;
  entraConfig?: unknown;
  background?: boolean;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'tanuki-stack-'));
  const entra = await startEntraEmulator({ stateDir: join(dir, 'entra'), config: options.entraConfig });
  const gitlab = await startGitlabEmulator({ stateDir: join(dir, 'gitlab') });
  const seed = summarizeDevSeed(entra.config);
  const clock = new FakeClock();
  const audit = createMemoryAuditSink();
  const raw: Record<string, any> = {
    server: {
      listen: '127.0.0.1:0',
      metricsListen: '127.0.0.1:0',
      publicUrl: 'http://127.0.0.1:8600',
      id: 'test',
      rateLimit: { perIdentity: 0, perIp: 0 },
      maxActiveGrantsPerIdentity: 0,
      // No client bundle: building it costs each test process ~0.5 s of CPU; the tests of the
      // bundle route set `server.clientBundle` themselves.
      clientBundle: false,
    },
    gitlab: { url: gitlab.url, token: gitlab.adminToken, timeout: '3s' },
    store: { sqlite: join(dir, 'ledger.db') },
    issuers: {
      contoso: {
        entra: { tenant: seed.tenantId, authorityHost: entra.url },
        caFile: entra.caFile,
        audiences: [seed.resourceUri, seed.resourceClientId],
      },
      ci: {
        oidc: { issuer: `${entra.url}/_emulator/oidc` },
        caFile: entra.caFile,
        audiences: ['http://127.0.0.1:8600'],
      },
    },
    policies: [
      {
        name: 'image-build',
        issuer: 'contoso',
        match: { appid: seed.pipelineClientId, roles: { contains: 'GitLab.Read' } },
        grant: {
          projects: [PROJECT],
          scopes: ['read_repository', 'read_api'],
          role: 'reporter',
          ttl: { default: '15m', max: '1h' },
        },
      },
      {
        name: 'ci-main',
        issuer: 'ci',
        match: { sub: { pattern: 'project_path:platform/[^:]+:ref_type:branch:ref:main' } },
        grant: {
          groups: ['platform'],
          scopes: ['read_repository'],
          role: 'reporter',
          ttl: { default: '5m', max: '10m' },
        },
      },
    ],
  };
  options.tweak?.(raw);
  const config = parseConfig(raw, { baseDir: dir, env: {} });
  const start = (background = options.background ?? false) =>
    startSts({ config, logger: false, audit, now: clock.now, background });
  const stack: Stack = {
    dir,
    entra,
    gitlab,
    seed,
    clock,
    audit,
    config,
    sts: await start(),
    async restartSts(opts = {}) {
      await stack.sts.close().catch(() => {});
      stack.sts = await start(opts.background);
    },
    async close() {
      await stack.sts.close().catch(() => {});
      await gitlab.close().catch(() => {});
      await entra.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** POST a form to the STS and return status, headers and parsed JSON. */
export async function postForm(
  url: string,
  form: Record<string, string> | string,
  headers: Record<string, string> = {},
) {
  const body = typeof form === 'string' ? form : new URLSearchParams(form).toString();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

export const EXCHANGE = {
  grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
  subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
};

/** Every token the GitLab emulator knows, with its state. */
export async function gitlabTokens(gitlabUrl: string): Promise<Array<Record<string, any>>> {
  const res = await fetch(`${gitlabUrl}/_emulator/tokens`);
  const body = (await res.json()) as any;
  return Array.isArray(body) ? body : body.tokens;
}

/** Fails if any text holds a GitLab token or a JWT, in any case (src/util/token-patterns.ts). */
export function assertNoSecrets(texts: string[], label = 'output'): void {
  for (const t of texts) {
    if (findToken(t) !== undefined)
      throw new Error(`${label} contains a token: ${t.slice(0, 200).replace(/[A-Za-z0-9_-]{30,}/g, '[…]')}`);
  }
}

/** An Entra token for the STS, as the dev pipeline app gets it with its client secret (real @azure/identity). */
export function pipelineToken(s: Stack): Promise<string> {
  return azureToken({
    caFile: s.entra.caFile,
    authorityHost: s.entra.url,
    tenantId: s.seed.tenantId,
    clientId: s.seed.pipelineClientId,
    clientSecret: s.seed.pipelineClientSecret,
    scope: `${s.seed.resourceUri}/.default`,
  });
}
