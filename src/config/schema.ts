/**
 * The configuration file's schema: one zod schema, validated once at
 * start-up. Every key is documented here, with `doc()`, and nowhere else:
 * docs/configuration.md is generated from it (`npm run docs`).
 */
import { z } from 'zod';
import { parsePostgresUrl } from '../util/postgres-url.ts';
import { clientsSchema } from './clients.ts';
import { credentialRefresh, gitlabTokenRef, rotation, TOKEN_DOC } from './credential.ts';
import { doc, duration, httpsUrl, listen } from './fields.ts';
import { issuersSchema } from './issuers.ts';
import { denyRuleSchema, policiesSchema } from './policies.ts';

const server = z
  .object({
    listen: doc(
      listen.default({ host: '127.0.0.1', port: 8600 }),
      '`host:port` to listen on (`[::1]:8600` for IPv6). Port `0` picks a free port.',
    ),
    metricsListen: doc(
      z.union([z.literal(false), listen]).default({ host: '127.0.0.1', port: 9464 }),
      '`host:port` (`[::1]:9464` for IPv6) of the metrics listener: plain HTTP, `GET /metrics` only ' +
        '(anything else is 404), Prometheus text format. Metrics are never served on `listen` (their ' +
        '`policy` label names every policy). `false` turns metrics off. Port `0` picks a free port (the ' +
        "start-up log line's `metricsUrl` names it). Must differ from `listen`. See [operations](operations.md).",
    ),
    publicUrl: doc(
      httpsUrl,
      "The STS's own identifier: the `issuer` of its RFC 8414 metadata and the base of the advertised endpoints.",
    ),
    id: doc(
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected 1-32 letters, digits, "_", "." or "-"')
        .optional(),
      "Names this deployment's tokens in GitLab: `tanuki-sts/<id>/<policy>/<grant-id>`. The reconciler " +
        'only touches tokens with its own `id`, so two deployments sharing a GitLab must have different ' +
        'ids. 1–32 of `A-Za-z0-9_.-`.',
      'short hash of `publicUrl` (scheme, host, port, path)',
    ),
    tls: z
      .object({
        cert: doc(
          z.string(),
          'PEM certificate file; with `tls.key` set the STS serves HTTPS itself. Otherwise run it behind ' +
            'a TLS-terminating proxy (see [operations](operations.md)).',
        ),
        key: doc(z.string(), 'PEM private key file of `tls.cert`.'),
      })
      .strict()
      .optional(),
    trustProxy: doc(
      z.boolean().default(false),
      'Believe `X-Forwarded-For` for the client IP (per-IP limits and audit). Enable only behind a proxy you control.',
    ),
    bodyLimit: doc(
      z.number().int().min(1024).max(1048576).default(65536),
      'Largest request body in bytes (1024–1048576); checked before anything else (`413`).',
    ),
    requestTimeout: doc(duration.default(30), 'Longest time a request may take end to end.'),
    rateLimit: z
      .object({
        perIdentity: doc(
          z.number().int().min(0).default(60),
          'Exchanges per minute per identity (issuer + tenant + subject). `0` turns it off. Over it: ' +
            '`429` with `Retry-After`. Counted in each process: with N replicas the effective limit is up ' +
            'to N × this ([deployment](deployment.md#what-replicas-share-and-what-they-dont)).',
        ),
        perIp: doc(
          z.number().int().min(0).default(0),
          'Requests per minute per client IP. `0` (the default) turns it off. Per process, as `perIdentity`.',
        ),
      })
      .strict()
      .default({ perIdentity: 60, perIp: 0 }),
    maxActiveGrantsPerIdentity: doc(
      z.number().int().min(0).default(20),
      'Concurrently active grants one identity may hold; bounds what a stolen subject token can do. ' +
        '`0` turns it off. Over it: `429`.',
    ),
    deny: doc(
      z.array(denyRuleSchema).default([]),
      'Identities refused at once, before any policy is looked at, with the generic refusal (`400 ' +
        'invalid_request`): a list of `{ issuer?: NAME, match: { claim: matcher, … } }`, matchers as in a ' +
        "policy's `match` (every one must hold; `issuer` limits the entry to one issuer). Applied by a " +
        'reload (`SIGHUP`, `tanuki-sts reload`) without a restart; see the ' +
        '[leaked-identity runbook](operations.md#runbook-a-leaked-pipeline-identity).',
    ),
    adminSocket: doc(
      z.string().min(1).optional(),
      'A Unix socket (created `0600`, its folder `0700` if missing) on which the running STS takes ' +
        '`tanuki-sts reload --config F` and answers whether the reload worked. Unset: no socket (`SIGHUP` ' +
        'still reloads). Must be on a local file system; at most 100 bytes long. See ' +
        '[reload](operations.md#reloading-the-configuration).',
      'none',
    ),
    clientBundle: doc(
      z.union([z.literal(false), z.string().min(1)]).optional(),
      'The self-contained pipeline client served at `GET /client/tanuki-sts.mjs` (its SHA-256 is the ' +
        "metadata's `client_sha256`): a file, read once at start-up (unreadable or empty: the STS does not " +
        'start). Unset: `dist/tanuki-sts-client.mjs` of the installation (`npm run build`; not when a ' +
        'source file beside it is newer), else built in memory from the sources at start-up, else not ' +
        'served (a warning). `false`: never served. See [operations](operations.md#the-pipeline-client-bundle).',
      'the built file, else built from the sources',
    ),
  })
  .strict();

const gitlab = z
  .object({
    url: doc(
      httpsUrl,
      "GitLab's base URL, e.g. `https://gitlab.example.com`. Resource URLs in requests must start with it.",
    ),
    token: doc(gitlabTokenRef, TOKEN_DOC),
    credentialRefresh,
    rotation,
    caFile: doc(z.string().optional(), "Extra CA (PEM) trusted for GitLab's TLS."),
    timeout: doc(duration.default(10), 'Timeout of each GitLab API call.'),
    healthInterval: doc(
      duration.default(60),
      'How often a background check calls `GET /personal_access_tokens/self`; its answer feeds `/readyz`.',
    ),
    targetCacheTtl: doc(
      z.union([z.literal(0), duration]).default(10),
      'How long the answer of `GET /projects/:path` (or `/groups/:path`) is reused: the requested path → ' +
        "the target's numeric ID and canonical path, checked before every mint " +
        '([policies](policies.md#renamed-and-moved-projects)). This is the window in which a renamed or ' +
        'moved project goes unnoticed; `0` resolves on every exchange (one more GitLab call each). ' +
        'Failures are never cached.',
    ),
  })
  .strict();

const postgres = z
  .object({
    url: doc(
      z.string().superRefine((v, ctx) => {
        try {
          parsePostgresUrl(v);
        } catch (err) {
          // The parser's message quotes nothing of the URL (it may hold a password).
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
      `\`postgres://user@host:5432/database\`, with \`\${VAR}\` expansion for the password ` +
        `(\`postgres://sts:\${PGPASSWORD}@db:5432/sts\`; \`PGPASSWORD\` in the environment also works). ` +
        'Only `sslmode` may follow (`disable`, `require`, `verify-ca`, `verify-full`; `allow`/`prefer` ' +
        'are refused). TLS, verified against the system CAs or `caFile` with the host name checked, is ' +
        'used for every host but loopback unless `sslmode=disable` says otherwise; `require` verifies too. ' +
        'Never logged. See [deployment](deployment.md#replicas-with-postgresql).',
      'required with `postgres`',
    ),
    caFile: doc(
      z.string().optional(),
      "Extra CA (PEM) trusted for the PostgreSQL server's certificate; turns TLS on whatever the host.",
    ),
    schema: doc(
      z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL identifier: a-z, 0-9, "_", up to 63')
        .default('tanuki_sts'),
      'The database schema the ledger lives in (created if missing, with its tables, on first start). ' +
        'Several deployments can share a database with a schema each.',
    ),
    poolSize: doc(
      z.number().int().min(1).max(100).default(10),
      'Connections per replica for requests (1–100); each replica holds one more for leader election.',
    ),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.caFile === undefined) return;
    try {
      parsePostgresUrl(v.url, true);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: (err as Error).message });
    }
  });

const store = doc(
  z
    .object({
      sqlite: doc(
        z.string().min(1).optional(),
        "The ledger's SQLite file (WAL mode), or `:memory:` (tests): one serving process. Its folder is " +
          'created (`0700`) if missing; the file, its `-wal`/`-shm` and the `.lock` file are `0600` ' +
          'whatever the umask.',
        '`./data/tanuki-sts.db` when `store` is absent',
      ),
      postgres: postgres.optional(),
    })
    .strict()
    .superRefine((v, ctx) => {
      const set = [v.sqlite !== undefined, v.postgres !== undefined].filter(Boolean).length;
      if (set !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: `set exactly one of store.sqlite and store.postgres (${set === 0 ? 'neither' : 'both'} is set)`,
        });
      }
    })
    .default({ sqlite: './data/tanuki-sts.db' }),
  'Where the ledger lives: exactly one of `sqlite` (a single process) and `postgres` (any number of ' +
    'replicas sharing it; see [deployment](deployment.md)).',
);

const tokens = z
  .object({
    clockSkew: doc(duration.default(300), 'Allowed clock skew for `exp`, `nbf` and `iat`.'),
    maxLifetime: doc(
      duration.default(86700),
      'Default longest subject-token lifetime (24 h + 5 min); managed identity tokens live about 24 h.',
    ),
  })
  .strict()
  .default({ clockSkew: 300, maxLifetime: 86700 });

const reaper = z
  .object({
    interval: doc(
      duration.default(5),
      'How often the reaper looks for due grants (it also wakes for the next due grant).',
    ),
    concurrency: doc(
      z.number().int().min(1).max(256).default(32),
      'Revocations in flight at once when working through a backlog (1–256).',
    ),
    reconcileInterval: doc(
      duration.default(300),
      "How often the reconciler lists this deployment's tokens in GitLab and revokes any the ledger " +
        'does not account for.',
    ),
  })
  .strict()
  .default({ interval: 5, concurrency: 32, reconcileInterval: 300 });

const audit = z
  .object({
    file: doc(
      z.string().optional(),
      'Where audit events (JSON lines) go. A file is created `0600` (its folder `0700`) whatever the ' +
        'umask; an existing one loses group and other access.',
      'stdout',
    ),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    server,
    gitlab,
    store,
    issuers: issuersSchema,
    clients: clientsSchema,
    policies: policiesSchema,
    tokens,
    reaper,
    audit,
  })
  .strict();

/** The file as validated: defaults filled in, durations in seconds; secrets and paths not yet resolved. */
export type RawConfig = z.output<typeof configSchema>;
