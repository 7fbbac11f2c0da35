/**
 * Loading: YAML → `${VAR}` expansion → schema → cross-references → secrets
 * and paths resolved → `StsConfig`. Every problem found is reported at once,
 * one line per key, in a ConfigError.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import type { IssuerConfig } from '../identity/issuer-config.ts';
import type { PolicyConfig } from '../policy/types.ts';
import { expandEnv } from './env.ts';
import { ConfigError } from './errors.ts';
import { buildIssuers } from './issuers.ts';
import { configSchema, type RawConfig } from './schema.ts';
import { resolveSecret } from './secrets.ts';

/** The configuration the STS runs with: validated, defaults filled in, secrets read, paths absolute. */
export interface StsConfig {
  server: Omit<RawConfig['server'], 'id'> & { id: string };
  gitlab: Omit<RawConfig['gitlab'], 'token'> & { token: string };
  store: RawConfig['store'];
  issuers: Record<string, IssuerConfig>;
  policies: PolicyConfig[];
  tokens: RawConfig['tokens'];
  reaper: RawConfig['reaper'];
  audit: RawConfig['audit'];
}

export interface LoadOptions {
  /** Directory relative paths are resolved against (default: the config file's folder). */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * Stands in for `gitlab.token` (when the file has one) before anything is
   * expanded or read: for offline tools that never call GitLab (`policy test`).
   */
  gitlabTokenPlaceholder?: string;
}

/** `input` with `gitlab.token`, where present, replaced by `token`. */
function withGitlabToken(input: unknown, token: string): unknown {
  const gitlab = (input as { gitlab?: unknown } | null)?.gitlab;
  if (!gitlab || typeof gitlab !== 'object' || !('token' in gitlab)) return input;
  return { ...(input as object), gitlab: { ...gitlab, token } };
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
  return `${key.replace(/\.\[/g, '[') || '(root)'}: ${issue.message}`;
}

/** Default deployment ID: a short hash of publicUrl (scheme, host and port included). */
export function defaultServerId(publicUrl: string): string {
  const u = new URL(publicUrl);
  return createHash('sha256').update(`${u.protocol}//${u.host}${u.pathname}`).digest('hex').slice(0, 10);
}

/** Validate a parsed config object. Throws ConfigError listing every problem. */
export function parseConfig(input: unknown, options: LoadOptions = {}): StsConfig {
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const issues: string[] = [];
  const doc =
    options.gitlabTokenPlaceholder === undefined
      ? input
      : withGitlabToken(input, options.gitlabTokenPlaceholder);
  const expanded = expandEnv(doc, '', issues, env);
  if (issues.length) throw new ConfigError('invalid configuration', issues);
  const parsed = configSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError('invalid configuration', parsed.error.issues.map(formatIssue));
  const raw = parsed.data;

  const rel = (p: string | undefined) =>
    p === undefined ? undefined : isAbsolute(p) ? p : resolve(baseDir, p);
  const issuers = buildIssuers(raw.issuers, { maxTokenLifetime: raw.tokens.maxLifetime }, rel);
  // Rules across sections; rules within one policy are the policy compiler's (src/policy/compile.ts).
  const { listen: pub, metricsListen: met } = raw.server;
  if (met && met.port !== 0 && met.port === pub.port && met.host === pub.host) {
    issues.push('server.metricsListen: must differ from server.listen');
  }
  raw.policies.forEach((p, i) => {
    if (!issuers[p.issuer]) issues.push(`policies[${i}].issuer: "${p.issuer}" is not a configured issuer`);
  });
  if (issues.length) throw new ConfigError('invalid configuration', issues);

  return {
    server: {
      ...raw.server,
      id: raw.server.id ?? defaultServerId(raw.server.publicUrl),
      tls: raw.server.tls && { cert: rel(raw.server.tls.cert)!, key: rel(raw.server.tls.key)! },
    },
    gitlab: {
      ...raw.gitlab,
      url: raw.gitlab.url.replace(/\/+$/, ''),
      token: resolveSecret(raw.gitlab.token, baseDir, 'gitlab.token', env),
      caFile: rel(raw.gitlab.caFile),
    },
    store: { sqlite: raw.store.sqlite === ':memory:' ? ':memory:' : rel(raw.store.sqlite)! },
    issuers,
    policies: raw.policies,
    tokens: raw.tokens,
    reaper: raw.reaper,
    audit: { file: rel(raw.audit.file) },
  };
}

/** Read, expand and validate a YAML config file. */
export function loadConfigFile(path: string, options: Omit<LoadOptions, 'baseDir'> = {}): StsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read config file ${path}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseConfig(doc, { ...options, baseDir: dirname(resolve(path)) });
}
