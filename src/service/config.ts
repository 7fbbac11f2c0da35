/**
 * The STS configuration: one zod schema, validated once at start-up.
 * Every key is documented here and in docs/configuration.md; an invalid file
 * stops the process with a message naming each wrong key.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDurationSeconds } from '../util/duration.ts';

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(issues.length ? `${message}:\n  - ${issues.join('\n  - ')}` : message);
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** https everywhere, except loopback hosts (development and tests). */
export function isAllowedUrl(value: string): boolean {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return false;
  }
  if (u.username || u.password || u.hash) return false;
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && isLoopbackHost(u.hostname);
}

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

const httpsUrl = z
  .string()
  .refine(
    isAllowedUrl,
    'expected an https URL (http only for loopback hosts), without credentials or fragment',
  );

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDurationSeconds(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A secret given inline (discouraged), from an environment variable, or from a file. */
const secretRef = z.union([
  z.string().min(1),
  z.object({ env: z.string().min(1) }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8600')
  .transform((v) => {
    const i = v.lastIndexOf(':');
    return { host: v.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(v.slice(i + 1)) };
  })
  .refine((v) => v.port <= 65535, 'port out of range');

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const tokenRules = {
  /** Longest subject-token lifetime (exp − iat) accepted. Managed identity tokens live about 24 h. */
  maxTokenLifetime: duration.optional(),
  /** Extra CA (PEM file) trusted for this issuer's discovery and JWKS. */
  caFile: z.string().optional(),
  /** Accepted `aud` values; at least one (an empty list would accept any audience: CVE-2024-5798). */
  audiences: z.array(z.string().min(1)).min(1, 'at least one audience is required'),
};

const entraIssuer = z
  .object({
    entra: z
      .object({
        tenant: z.string().regex(GUID, 'expected the tenant ID (a GUID)'),
        authorityHost: httpsUrl.default('https://login.microsoftonline.com'),
        /** Accept delegated (user) tokens with `scp`. Off: the STS is for workloads. */
        allowDelegated: z.boolean().default(false),
      })
      .strict(),
    ...tokenRules,
  })
  .strict();

const oidcIssuer = z
  .object({
    oidc: z
      .object({
        /** Compared byte for byte with the token's `iss`; also where discovery is fetched from. */
        issuer: httpsUrl,
        /** Optional explicit JWKS URL; otherwise taken from discovery. */
        jwksUri: httpsUrl.optional(),
      })
      .strict(),
    ...tokenRules,
  })
  .strict();

const issuerSchema = z.union([entraIssuer, oidcIssuer]);

export const ROLE_LEVELS = {
  guest: 10,
  planner: 15,
  reporter: 20,
  developer: 30,
  maintainer: 40,
  owner: 50,
} as const;
export type RoleName = keyof typeof ROLE_LEVELS;

/**
 * GitLab scopes a project/group access token may carry (`resource_bot_scopes`), less
 * `self_rotate`: the STS never grants it. A token that may rotate itself chooses its own new
 * expiry (up to a year) and id. `api` includes self-rotation too (doc/api/project_access_tokens.md,
 * "Rotate a project access token"): the reaper revokes a grant's rotated copies by name
 * (src/ledger/revoke-grant.ts), but grant `api` only where it is needed.
 */
export const RESOURCE_SCOPES = [
  'api',
  'read_api',
  'read_repository',
  'write_repository',
  'read_registry',
  'write_registry',
  'read_virtual_registry',
  'write_virtual_registry',
  'create_runner',
  'manage_runner',
  'ai_features',
  'k8s_proxy',
] as const;

const grantScope = z
  .string()
  .refine(
    (s) => s !== 'self_rotate',
    'self_rotate is never granted: a token could rotate itself past its TTL',
  )
  .pipe(z.enum(RESOURCE_SCOPES));

/** A claim matcher: exact value (type-strict), one of a list, `contains` for arrays, or an anchored `pattern`. */
const matcher = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
  z.object({ contains: z.union([z.string(), z.number()]) }).strict(),
  z
    .object({ pattern: z.string().min(1) })
    .strict()
    .refine((m) => {
      try {
        new RegExp(`^(?:${m.pattern})$`, 'u');
        return true;
      } catch {
        return false;
      }
    }, 'invalid regular expression'),
]);

const targetRef = z.union([
  z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a GitLab path such as group/project'),
  z.number().int().positive(),
]);

const policySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"'),
    issuer: z.string().min(1),
    match: z
      .record(z.string(), matcher)
      .refine((m) => Object.keys(m).length > 0, 'at least one claim to match'),
    grant: z
      .object({
        projects: z.array(targetRef).default([]),
        groups: z.array(targetRef).default([]),
        scopes: z.array(grantScope).min(1),
        role: z.enum(Object.keys(ROLE_LEVELS) as [RoleName, ...RoleName[]]),
        ttl: z
          .object({ default: duration.default(900), max: duration.default(3600) })
          .strict()
          .default({ default: 900, max: 3600 })
          .refine((t) => t.default <= t.max, 'ttl.default must not exceed ttl.max'),
      })
      .strict()
      .refine((g) => g.projects.length + g.groups.length > 0, 'grant needs at least one project or group'),
  })
  .strict();

const rawSchema = z
  .object({
    server: z
      .object({
        listen: listen.default({ host: '127.0.0.1', port: 8600 }),
        /**
         * Where Prometheus scrapes `GET /metrics`: a listener of its own (plain HTTP, nothing
         * else served there), never the public one, since metrics name every policy.
         * `false` turns metrics off.
         */
        metricsListen: z.union([z.literal(false), listen]).default({ host: '127.0.0.1', port: 9464 }),
        publicUrl: httpsUrl,
        id: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected 1-32 letters, digits, "_", "." or "-"')
          .optional(),
        tls: z.object({ cert: z.string(), key: z.string() }).strict().optional(),
        trustProxy: z.boolean().default(false),
        bodyLimit: z.number().int().min(1024).max(1048576).default(65536),
        requestTimeout: duration.default(30),
        rateLimit: z
          .object({
            /** Exchanges per minute per identity (issuer + subject); 0 = off. */
            perIdentity: z.number().int().min(0).default(60),
            /** Requests per minute per client IP; 0 = off. */
            perIp: z.number().int().min(0).default(0),
          })
          .strict()
          .default({ perIdentity: 60, perIp: 0 }),
        /** Concurrently active grants per identity; 0 = off. */
        maxActiveGrantsPerIdentity: z.number().int().min(0).default(20),
      })
      .strict(),
    gitlab: z
      .object({
        url: httpsUrl,
        token: secretRef,
        caFile: z.string().optional(),
        timeout: duration.default(10),
        /** How often the background check calls GET /personal_access_tokens/self. */
        healthInterval: duration.default(60),
        /**
         * How long a resolved target (path → numeric id and canonical path) is reused; 0 = resolve on
         * every exchange. Bounds the window in which a renamed or moved project goes unnoticed.
         */
        targetCacheTtl: z.union([z.literal(0), duration]).default(10),
      })
      .strict(),
    store: z
      .object({ sqlite: z.string().min(1).default('./data/tanuki-sts.db') })
      .strict()
      .default({ sqlite: './data/tanuki-sts.db' }),
    issuers: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), issuerSchema),
    policies: z.array(policySchema),
    tokens: z
      .object({
        /** Allowed clock skew for exp/nbf/iat. */
        clockSkew: duration.default(300),
        /** Default longest subject-token lifetime (24 h + skew). */
        maxLifetime: duration.default(86700),
      })
      .strict()
      .default({ clockSkew: 300, maxLifetime: 86700 }),
    reaper: z
      .object({
        interval: duration.default(5),
        concurrency: z.number().int().min(1).max(256).default(32),
        reconcileInterval: duration.default(300),
      })
      .strict()
      .default({ interval: 5, concurrency: 32, reconcileInterval: 300 }),
    audit: z.object({ file: z.string().optional() }).strict().default({}),
  })
  .strict();

export type RawConfig = z.output<typeof rawSchema>;
export type PolicyConfig = RawConfig['policies'][number];
export type ClaimMatcher = z.output<typeof matcher>;

export interface EntraIssuerConfig {
  name: string;
  kind: 'entra';
  tenant: string;
  authorityHost: string;
  allowDelegated: boolean;
  audiences: string[];
  caFile?: string;
  maxTokenLifetime: number;
}
export interface OidcIssuerConfig {
  name: string;
  kind: 'oidc';
  issuer: string;
  jwksUri?: string;
  audiences: string[];
  caFile?: string;
  maxTokenLifetime: number;
}
export type IssuerConfig = EntraIssuerConfig | OidcIssuerConfig;

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

/** `${VAR}` anywhere in a string value is replaced from the environment; a missing variable is an error. */
function expandEnv(value: unknown, path: string, issues: string[], env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        issues.push(`${path || '(root)'}: environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, `${path}[${i}]`, issues, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, expandEnv(v, path ? `${path}.${k}` : k, issues, env)]),
    );
  }
  return value;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
  return `${key.replace(/\.\[/g, '[') || '(root)'}: ${issue.message}`;
}

function resolveSecret(
  ref: z.output<typeof secretRef>,
  baseDir: string,
  key: string,
  env: NodeJS.ProcessEnv,
): string {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const v = env[ref.env];
    if (!v)
      throw new ConfigError('invalid configuration', [`${key}: environment variable ${ref.env} is not set`]);
    return v.trim();
  }
  try {
    return readFileSync(resolve(baseDir, ref.file), 'utf8').trim();
  } catch {
    throw new ConfigError('invalid configuration', [`${key}: cannot read file ${ref.file}`]);
  }
}

/** Default deployment ID: a short hash of publicUrl (scheme, host and port included). */
export function defaultServerId(publicUrl: string): string {
  const u = new URL(publicUrl);
  return createHash('sha256').update(`${u.protocol}//${u.host}${u.pathname}`).digest('hex').slice(0, 10);
}

export interface LoadOptions {
  /** Directory relative paths are resolved against (default: the config file's folder). */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** Validate a parsed config object. Throws ConfigError listing every problem. */
export function parseConfig(input: unknown, options: LoadOptions = {}): StsConfig {
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const issues: string[] = [];
  const expanded = expandEnv(input, '', issues, env);
  if (issues.length) throw new ConfigError('invalid configuration', issues);
  const parsed = rawSchema.safeParse(expanded);
  if (!parsed.success) throw new ConfigError('invalid configuration', parsed.error.issues.map(formatIssue));
  const raw = parsed.data;

  const rel = (p: string | undefined) =>
    p === undefined ? undefined : isAbsolute(p) ? p : resolve(baseDir, p);
  const issuers: Record<string, IssuerConfig> = {};
  for (const [name, iss] of Object.entries(raw.issuers)) {
    const maxTokenLifetime = iss.maxTokenLifetime ?? raw.tokens.maxLifetime;
    const common = { name, audiences: iss.audiences, caFile: rel(iss.caFile), maxTokenLifetime };
    issuers[name] =
      'entra' in iss
        ? {
            ...common,
            kind: 'entra',
            tenant: iss.entra.tenant.toLowerCase(),
            authorityHost: iss.entra.authorityHost.replace(/\/+$/, ''),
            allowDelegated: iss.entra.allowDelegated,
          }
        : { ...common, kind: 'oidc', issuer: iss.oidc.issuer, jwksUri: iss.oidc.jwksUri };
  }
  const { listen: pub, metricsListen: met } = raw.server;
  if (met && met.port !== 0 && met.port === pub.port && met.host === pub.host) {
    issues.push('server.metricsListen: must differ from server.listen');
  }
  const seen = new Set<string>();
  raw.policies.forEach((p, i) => {
    if (!issuers[p.issuer]) issues.push(`policies[${i}].issuer: "${p.issuer}" is not a configured issuer`);
    if (seen.has(p.name)) issues.push(`policies[${i}].name: duplicate policy name "${p.name}"`);
    seen.add(p.name);
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
