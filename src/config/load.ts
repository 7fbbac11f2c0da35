/**
 * Loading: YAML → `${VAR}` expansion → schema → cross-references → secrets
 * and paths resolved → `StsConfig`. Every problem found is reported at once,
 * one line per key, in a ConfigError.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CredentialSourceSpec } from '../credential/types.ts';
import type { IssuerConfig } from '../identity/issuer-config.ts';
import type { PolicyConfig } from '../policy/types.ts';
import { CLIENT_NAME } from './clients.ts';
import { rotationProblem, tokenSourceSpec } from './credential.ts';
import { expandEnv } from './env.ts';
import { ConfigError } from './errors.ts';
import { buildIssuers } from './issuers.ts';
import { configErrorMap, flattenIssues } from './issues.ts';
import { configSchema, type RawConfig } from './schema.ts';
import { resolveSecret, secretRef } from './secrets.ts';

/** `store.postgres` as validated (defaults filled in, `caFile` absolute). */
export type PostgresStoreConfig = NonNullable<RawConfig['store']['postgres']>;

/** The configuration the STS runs with: validated, defaults filled in, secrets read, paths absolute. */
export interface StsConfig {
  server: Omit<RawConfig['server'], 'id'> & { id: string };
  /**
   * `token`: the value read at load time (inline, `env`, `file`; empty for Key Vault, which the
   * service reads at start-up, and with `secrets: false`); `tokenSource`: where it lives, which the
   * service reads again and writes a rotated token back to (src/credential).
   */
  gitlab: Omit<RawConfig['gitlab'], 'token'> & { token: string; tokenSource: CredentialSourceSpec };
  /** Exactly one backend: the schema refuses both and neither. */
  store: { sqlite: string; postgres?: undefined } | { postgres: PostgresStoreConfig; sqlite?: undefined };
  issuers: Record<string, IssuerConfig>;
  /**
   * Confidential clients by name (`client_id`): the secret as read (empty for Key Vault, which the
   * service reads: src/service/runtime.ts `readClientSecrets`, and with `secrets: false`), and where it lives.
   */
  clients: Record<string, { secret: string; source: CredentialSourceSpec }>;
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
   * `false`: validate without reading any secret (`check-config --no-secrets`,
   * `policy test`): secret sources (`{ env }`, `{ file }`) are checked for
   * shape only, `${VAR}` inside the keys of SECRET_KEYS is not expanded, and
   * `gitlab.token` is the empty string. Default `true`.
   */
  secrets?: boolean;
}

/** Longest `server.adminSocket` path (bytes): Linux allows 107, macOS 103. */
const MAX_SOCKET_PATH_BYTES = 100;

/** Keys whose value is or holds a secret: read only when secrets are read. */
export const SECRET_KEYS: readonly string[] = ['gitlab.token', 'store.postgres.url'];
/** Of SECRET_KEYS, those given as a secret source (`secrets.ts`) and read at load time. */
const SECRET_SOURCES: readonly string[] = ['gitlab.token'];
/** Shortest `clients.NAME.secret` accepted: a guessable secret authenticates nothing. */
export const MIN_CLIENT_SECRET_CHARS = 16;

/** SECRET_SOURCES plus each client's `clients.NAME.secret` (the names are the file's own keys). */
function secretSources(input: unknown): string[] {
  const clients = valueAt(input, 'clients');
  const names =
    clients && typeof clients === 'object' && !Array.isArray(clients)
      ? Object.keys(clients).filter((n) => CLIENT_NAME.test(n) && n !== '__proto__')
      : [];
  return [...SECRET_SOURCES, ...names.map((n) => `clients.${n}.secret`)];
}

/** The value at a dotted key of the (expanded) file, or undefined. */
function valueAt(doc: unknown, key: string): unknown {
  let v = doc;
  for (const part of key.split('.')) {
    if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** `key` is `under` or inside it (`a.b` is under `a`, `a[0]` under `a`; `ab` is not). */
function isUnder(key: string, under: string): boolean {
  return key === under || key.startsWith(`${under}.`) || key.startsWith(`${under}[`);
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
  const readSecrets = options.secrets !== false;
  // Every problem in one pass: unset variables, the schema, unreadable secrets.
  const issues: string[] = [];
  const sources = secretSources(input);
  const expanded = expandEnv(
    input,
    '',
    issues,
    env,
    new Set(readSecrets ? [] : [...SECRET_KEYS, ...sources]),
  );
  // A key whose variable is unset is reported once, as such, not again as an empty value.
  const unset = issues.map((i) => i.slice(0, i.indexOf(': ')));
  const secrets = new Map<string, string>();
  const secretIssues: string[] = [];
  for (const key of sources) {
    const ref = secretRef.safeParse(valueAt(expanded, key));
    if (!ref.success || unset.some((u) => isUnder(key, u))) continue;
    if (!readSecrets) {
      secrets.set(key, '');
      continue;
    }
    try {
      secrets.set(key, resolveSecret(ref.data, baseDir, key, env));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      secretIssues.push(...err.issues);
    }
  }
  const parsed = configSchema.safeParse(expanded, { error: configErrorMap });
  if (!parsed.success) {
    for (const { key, message } of flattenIssues(parsed.error.issues)) {
      if (!unset.some((u) => isUnder(key, u))) issues.push(`${key}: ${message}`);
    }
  }
  if (!parsed.success) throw new ConfigError('invalid configuration', [...issues, ...secretIssues]);
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
    if (p.client !== undefined && !Object.hasOwn(raw.clients, p.client)) {
      issues.push(`policies[${i}].client: "${p.client}" is not a configured client (under \`clients\`)`);
    }
  });
  raw.server.deny.forEach((d, i) => {
    if (d.issuer !== undefined && !issuers[d.issuer]) {
      issues.push(`server.deny[${i}].issuer: "${d.issuer}" is not a configured issuer`);
    }
  });
  // Own properties only, whatever the names (`__proto__` included): built with fromEntries.
  const clients: StsConfig['clients'] = Object.fromEntries(
    Object.entries(raw.clients).map(([name, c]) => {
      const secret = secrets.get(`clients.${name}.secret`) ?? '';
      if (readSecrets && secrets.has(`clients.${name}.secret`) && secret.length < MIN_CLIENT_SECRET_CHARS) {
        issues.push(`clients.${name}.secret: shorter than ${MIN_CLIENT_SECRET_CHARS} characters`);
      }
      return [name, { secret, source: tokenSourceSpec(c.secret, (p) => rel(p) as string) }];
    }),
  );
  const adminSocket = rel(raw.server.adminSocket);
  if (adminSocket !== undefined && Buffer.byteLength(adminSocket) > MAX_SOCKET_PATH_BYTES) {
    issues.push(
      `server.adminSocket: the path is ${Buffer.byteLength(adminSocket)} bytes; a Unix socket path may have at most ${MAX_SOCKET_PATH_BYTES}`,
    );
  }
  const tokenSource = tokenSourceSpec(raw.gitlab.token, (p) => rel(p) as string);
  const rotationIssue = rotationProblem(tokenSource, raw.gitlab.rotation);
  if (rotationIssue) issues.push(rotationIssue);
  issues.push(...secretIssues);
  if (issues.length) throw new ConfigError('invalid configuration', issues);

  return {
    server: {
      ...raw.server,
      id: raw.server.id ?? defaultServerId(raw.server.publicUrl),
      tls: raw.server.tls && { cert: rel(raw.server.tls.cert)!, key: rel(raw.server.tls.key)! },
      clientBundle: raw.server.clientBundle === false ? false : rel(raw.server.clientBundle),
      adminSocket,
    },
    gitlab: {
      ...raw.gitlab,
      url: raw.gitlab.url.replace(/\/+$/, ''),
      token: secrets.get('gitlab.token') ?? '',
      tokenSource,
      caFile: rel(raw.gitlab.caFile),
    },
    store: raw.store.postgres
      ? { postgres: { ...raw.store.postgres, caFile: rel(raw.store.postgres.caFile) } }
      : { sqlite: raw.store.sqlite === ':memory:' ? ':memory:' : rel(raw.store.sqlite)! },
    issuers,
    clients,
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
