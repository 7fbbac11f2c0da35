/**
 * What the chaos runs (test/chaos/*.chaos.ts) share: their STS configuration
 * (three policies on one project, 60-second grants, one minting deploy tokens), the load (workers that
 * exchange in a loop, and a hostile holder that rotates its `api` token every
 * second through every kill), and the inspection of the GitLab emulator
 * afterwards (this deployment's tokens, which are still active, and waiting
 * until none is).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  DEV_PIPELINE_CLIENT_ID,
  DEV_RESOURCE_CLIENT_ID,
  DEV_RESOURCE_URI,
  DEV_TENANT_ID,
} from '../../src/emulators/entra/dev-seed.ts';
import type { EntraEmulatorHandle } from '../../src/emulators/entra/index.ts';
import type { GitlabEmulatorHandle } from '../../src/emulators/gitlab/index.ts';
import { parseTokenName } from '../../src/ledger/names.ts';
import { utcDate } from '../../src/util/utc-date.ts';
import { EXCHANGE, gitlabTokens, PROJECT } from './stack.ts';

/** The minimum TTL a policy may grant (src/policy/grants.ts, MIN_TTL_SECONDS): the drain waits for it. */
export const CHAOS_TTL_SECONDS = 60;
/** The reconciler's interval in the chaos configs. */
export const CHAOS_RECONCILE_SECONDS = 5;
/** The emulator's id of PROJECT (its built-in seed): the rotate endpoint is by id. */
const PROJECT_ID = 1000;

/** Kills per run: CHAOS_CYCLES, default 20. */
export function chaosCycles(): number {
  return Number(process.env.CHAOS_CYCLES ?? 20);
}

/**
 * The STS configuration of a chaos run (JSON is YAML): policy `chaos` (read_repository) and
 * `chaos-rotator` (api, so its holder can rotate), both 60 s; reaper every second, reconciler every
 * 5 s; no limits; no client bundle (each of the many restarts would build it for nothing).
 */
export function chaosConfig(o: {
  dir: string;
  serverId: string;
  listen: string;
  entra: EntraEmulatorHandle;
  gitlab: GitlabEmulatorHandle;
  store: Record<string, unknown>;
}): Record<string, unknown> {
  const ttl = { default: `${CHAOS_TTL_SECONDS}s`, max: `${CHAOS_TTL_SECONDS}s` };
  return {
    server: {
      listen: o.listen,
      metricsListen: '127.0.0.1:0',
      publicUrl: 'http://127.0.0.1:8600',
      id: o.serverId,
      rateLimit: { perIdentity: 0, perIp: 0 },
      maxActiveGrantsPerIdentity: 0,
      clientBundle: false,
    },
    gitlab: { url: o.gitlab.url, token: o.gitlab.adminToken, timeout: '3s', healthInterval: '30s' },
    store: o.store,
    issuers: {
      contoso: {
        entra: { tenant: DEV_TENANT_ID, authorityHost: o.entra.url },
        caFile: o.entra.caFile,
        audiences: [DEV_RESOURCE_URI, DEV_RESOURCE_CLIENT_ID],
      },
    },
    policies: [
      {
        name: 'chaos',
        issuer: 'contoso',
        match: { appid: DEV_PIPELINE_CLIENT_ID },
        grant: { projects: [PROJECT], scopes: ['read_repository'], role: 'reporter', ttl },
      },
      {
        name: 'chaos-rotator',
        issuer: 'contoso',
        match: { appid: DEV_PIPELINE_CLIENT_ID },
        grant: { projects: [PROJECT], scopes: ['api'], role: 'developer', ttl },
      },
      {
        name: 'chaos-deploy',
        issuer: 'contoso',
        match: { appid: DEV_PIPELINE_CLIENT_ID },
        grant: { via: 'deploy-token', projects: [PROJECT], scopes: ['read_repository'], ttl },
      },
    ],
    reaper: { interval: '1s', reconcileInterval: `${CHAOS_RECONCILE_SECONDS}s` },
    audit: { file: join(o.dir, 'audit.jsonl') },
  };
}

/** An Entra ID access token of the dev pipeline app, from the emulator (the subject of every exchange). */
export async function entraSubject(entra: EntraEmulatorHandle): Promise<string> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(entra.caFile, 'utf8') } });
  try {
    const res = await undiciFetch(`${entra.url}/_emulator/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ entra: {} }),
      dispatcher,
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: string }).token;
  } finally {
    await dispatcher.close();
  }
}

export interface ChaosLoadResult {
  /** Every token a client received (in memory only: never printed). */
  received: string[];
  /** Answers by HTTP status, and `connection error`. */
  outcomes: Record<string, number>;
  /** Successful rotations by the hostile holder. */
  rotations: number;
}

export interface ChaosLoad {
  /** Stop every loop and wait for them. */
  stop(): Promise<ChaosLoadResult>;
}

/**
 * Start the load: `workers` loops exchanging (policy `chaos`) and one hostile holder that exchanges
 * for `api` (policy `chaos-rotator`) and rotates its token every second, at GitLab, until GitLab
 * refuses, then starts over. `target()` is the STS base URL of the next request (one process, or
 * the next replica round-robin).
 */
export function startChaosLoad(o: {
  target: () => string;
  subject: string;
  gitlabUrl: string;
  workers: number;
}): ChaosLoad {
  const received: string[] = [];
  const outcomes = new Map<string, number>();
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  let rotations = 0;
  let running = true;
  const exchange = async (policy?: string): Promise<string | undefined> => {
    try {
      const res = await fetch(`${o.target()}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          ...EXCHANGE,
          subject_token: o.subject,
          audience: PROJECT,
          ...(policy && { policy }),
        }).toString(),
      });
      const body = (await res.json().catch(() => ({}))) as { access_token?: string };
      count(String(res.status));
      if (res.status === 200 && body.access_token) {
        received.push(body.access_token);
        return body.access_token;
      }
    } catch {
      count('connection error');
      await sleep(20);
    }
    return undefined;
  };
  const worker = async () => {
    while (running) await exchange();
  };
  // Deploy tokens (policy `chaos-deploy`): killed mid-mint and mid-revocation like the others.
  const deployer = async () => {
    while (running) await exchange('chaos-deploy');
  };
  const rotator = async () => {
    while (running) {
      let token = await exchange('chaos-rotator');
      while (running && token) {
        await sleep(1000);
        const r = await fetch(`${o.gitlabUrl}/api/v4/projects/${PROJECT_ID}/access_tokens/self/rotate`, {
          method: 'POST',
          headers: { 'private-token': token, 'content-type': 'application/json' },
          body: JSON.stringify({ expires_at: utcDate(Date.now() + 300 * 86_400_000) }),
        }).catch(() => undefined);
        const next = r?.status === 200 ? ((await r.json()) as { token?: string }).token : undefined;
        if (next) rotations++;
        token = next;
      }
      if (!token) await sleep(200);
    }
  };
  const loops = Promise.all([...Array.from({ length: o.workers }, worker), rotator(), deployer()]);
  return {
    async stop() {
      running = false;
      await loops;
      return { received, outcomes: Object.fromEntries(outcomes), rotations };
    },
  };
}

export type GitlabToken = Record<string, any>;

/**
 * This deployment's tokens (named `tanuki-sts/<server.id>/…`), rotated copies and deploy tokens
 * (`kind: 'deploy'`; `active` false once deleted) included.
 */
export async function deploymentTokens(gitlabUrl: string, serverId: string): Promise<GitlabToken[]> {
  const deploy = (await (await fetch(`${gitlabUrl}/_emulator/deploy_tokens`)).json()) as GitlabToken[];
  return [
    ...(await gitlabTokens(gitlabUrl)),
    ...deploy.map((t): GitlabToken => ({ ...t, kind: 'deploy' })),
  ].filter((t) => parseTokenName(String(t.name ?? ''), serverId).belongs);
}

export const isActiveAtGitlab = (t: GitlabToken) => t.active === true && t.revoked !== true;

/** The grant id in a token's name (undefined: not a name the STS gives). */
export const grantIdOf = (t: GitlabToken, serverId: string) =>
  parseTokenName(String(t.name ?? ''), serverId).grantId;

/**
 * Wait until GitLab holds no active token of this deployment, or the deadline passes; the
 * deployment's tokens at the end, how many are still active and how long it took.
 */
export async function drainGitlab(o: {
  gitlabUrl: string;
  serverId: string;
  deadline: number;
}): Promise<{ created: GitlabToken[]; leftActive: number; seconds: number }> {
  const started = Date.now();
  let created: GitlabToken[] = [];
  let leftActive = Number.POSITIVE_INFINITY;
  while (Date.now() < o.deadline) {
    created = await deploymentTokens(o.gitlabUrl, o.serverId);
    leftActive = created.filter(isActiveAtGitlab).length;
    if (leftActive === 0) break;
    await sleep(1000);
  }
  return { created, leftActive, seconds: (Date.now() - started) / 1000 };
}
