/**
 * The kill switch: `tanuki-sts grants list --config F` and `tanuki-sts grants
 * revoke --config F`, run beside the serving STS (docs/operations.md, "Kill
 * switch: grants list and grants revoke").
 *
 * - The ledger is opened as a second client, never as a server: on SQLite
 *   without the serving lock (`<ledger>.lock`, one *server* per file), in WAL
 *   mode with a busy timeout, in this thread (no writer thread); on PostgreSQL
 *   with a small pool of its own. Neither sweeps anything: this process never
 *   mints, so it has no orphans to settle and claims nobody else's.
 * - A missing ledger is an error, never an empty list: a wrong `--config` must
 *   not look like "nothing to revoke".
 * - Selection: `--policy`, `--app-id` (Entra app ID / `azp`, the ledger's
 *   clientId), `--subject`, `--target` (path or numeric id), each at most once;
 *   `--status` (src/ledger/kill-switch.ts says what each status means).
 * - `revoke` ends every matching grant whose token may still work (minting,
 *   active or revoking, TTL passed or not; `--status active|expired` narrows),
 *   in GitLab and the ledger, as the reaper does (src/ledger/kill-switch.ts).
 *   It needs a filter, or `--all-active`. Each grant gets an audit event
 *   (`event: "revoke"`, `reason: "operator"`) in the configured audit sink;
 *   when that is stdout, the events go to this process's stderr (stdout is the
 *   command's own output).
 * - Exit codes: 0 done (list: always; revoke: every matching token revoked in
 *   GitLab, or none matched), 2 usage, 3 (revoke) some grants could not be
 *   revoked now (listed; they are due and the STS's reaper retries them),
 *   1 anything else (config, ledger, GitLab client set-up).
 * - Never prints a token or its hash.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { StsConfig } from '../../config/index.ts';
import type { Grant, GrantSelection, LedgerStore, StatusFilter } from '../../ledger/index.ts';

export interface GrantsOptions {
  config: string;
  policy?: string;
  appId?: string;
  subject?: string;
  target?: string;
  status?: string;
  json?: boolean;
  allActive?: boolean;
}

/** Where a run writes; tests pass buffers. */
export interface GrantsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

const LIST_STATUSES = ['active', 'revoked', 'expired', 'failed', 'all'] as const;
const REVOKE_STATUSES = ['active', 'expired', 'all'] as const;
const MAX_FILTER_CHARS = 1024;
/** C0, DEL, C1, and the line and direction marks a terminal would act on. */
function unprintable(c: number): boolean {
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    c === 0x61c ||
    c === 0x200e ||
    c === 0x200f ||
    c === 0x2028 ||
    c === 0x2029 ||
    (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  );
}
const hasUnprintable = (s: string): boolean => [...s].some((ch) => unprintable(ch.charCodeAt(0)));

class UsageError extends Error {}

/** A filter flag given twice is refused: silently keeping one of two app IDs would spare the other. */
function once(flag: string) {
  return (value: string, previous: unknown): string => {
    if (previous !== undefined) throw new InvalidArgumentError(`${flag} may be given once`);
    return value;
  };
}

/** A filter value: non-empty, printable, bounded. */
function checkValue(flag: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === '') throw new UsageError(`${flag}: must not be empty`);
  if (v.length > MAX_FILTER_CHARS)
    throw new UsageError(`${flag}: longer than ${MAX_FILTER_CHARS} characters`);
  if (hasUnprintable(v)) throw new UsageError(`${flag}: holds a control character`);
  return v;
}

/** `--target`: a path as GitLab shows it (`group/project`, slashes at either end ignored) or a numeric id. */
function checkTarget(v: string | undefined): string | undefined {
  const t = checkValue('--target', v);
  if (t === undefined) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t) || /\s/.test(t)) {
    throw new UsageError('--target: give the path as GitLab shows it (group/project) or the numeric id');
  }
  const path = t.replace(/^\/+|\/+$/g, '');
  if (path === '') throw new UsageError('--target: must not be empty');
  return path;
}

function selectionOf(o: GrantsOptions): GrantSelection {
  const s: GrantSelection = {};
  const policy = checkValue('--policy', o.policy);
  const clientId = checkValue('--app-id', o.appId);
  const subject = checkValue('--subject', o.subject);
  const target = checkTarget(o.target);
  if (policy !== undefined) s.policy = policy;
  if (clientId !== undefined) s.clientId = clientId;
  if (subject !== undefined) s.subject = subject;
  if (target !== undefined) s.target = target;
  return s;
}

function describeSelection(s: GrantSelection, status: string): string {
  const parts = [
    s.policy !== undefined && `policy ${s.policy}`,
    s.clientId !== undefined && `app-id ${s.clientId}`,
    s.subject !== undefined && `subject ${s.subject}`,
    s.target !== undefined && `target ${s.target}`,
  ].filter((p): p is string => typeof p === 'string');
  return `${parts.length ? parts.join(', ') : 'every grant'}; status ${status}`;
}

/** Text for a terminal: unprintable characters shown as \uXXXX. */
function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += unprintable(c) ? `\\u${c.toString(16).padStart(4, '0')}` : ch;
  }
  return out;
}

/** One JSON line; JSON.stringify escapes C0 itself, DEL, C1 and the marks are escaped here (still valid JSON). */
function jsonLine(o: unknown): string {
  let out = '';
  for (const ch of JSON.stringify(o)) {
    const c = ch.charCodeAt(0);
    out += c >= 0x7f && unprintable(c) ? `\\u${c.toString(16).padStart(4, '0')}` : ch;
  }
  return `${out}\n`;
}

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The role name of an access level (GitLab's numbers, src/policy/grants.ts), or the number; `-` for none. */
async function roleNames(): Promise<(level: number) => string> {
  const { ROLE_LEVELS } = await import('../../policy/grants.ts');
  const byLevel = new Map<number, string>(Object.entries(ROLE_LEVELS).map(([name, n]) => [n, name]));
  // 0: a deploy token, which has no role.
  return (level) => (level === 0 ? '-' : (byLevel.get(level) ?? String(level)));
}

/** One grant as `--json` prints it: no token, no token hash. Optional fields absent when unknown. */
export function grantJson(
  g: Grant,
  status: string,
  role: (level: number) => string,
  redact: (s: string) => string,
): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: g.id,
    status,
    state: g.state,
    policy: g.policy,
    issuer: g.issuer,
    subject: g.subject,
    tenant: g.tenant,
    appId: g.clientId,
    objectId: g.objectId,
    target: g.targetRef,
    targetKind: g.targetKind,
    targetId: g.targetId,
    tokenKind: g.tokenKind ?? 'access-token',
    scopes: g.scopes,
    role: g.accessLevel === 0 ? undefined : role(g.accessLevel),
    created: iso(g.createdAt),
    expires: iso(g.expiresAt),
    gitlabExpires: g.gitlabExpiresAt,
    gitlabTokenId: g.gitlabTokenId,
    revokeRequested: iso(g.revokeRequestedAt),
    revoked: iso(g.revokedAt),
    lastError: g.lastError === undefined ? undefined : redact(g.lastError),
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

async function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
}

async function loadConfig(path: string, io: GrantsIo): Promise<StsConfig> {
  const { loadConfigFile } = await import('../../config/index.ts');
  return loadConfigFile(path, io.env ? { env: io.env } : {});
}

/**
 * The configured ledger, opened beside the serving process: never the SQLite
 * serving lock, never a writer thread, never created when missing.
 */
export async function openOperatorLedger(config: StsConfig): Promise<LedgerStore> {
  const ledger = await import('../../ledger/index.ts');
  const pgConfig = config.store.postgres;
  if (pgConfig) {
    await assertPostgresLedger(pgConfig);
    return ledger.openPostgresLedger({
      url: pgConfig.url,
      caFile: pgConfig.caFile,
      schema: pgConfig.schema,
      poolSize: 4,
    });
  }
  const path = config.store.sqlite;
  if (path === ':memory:') {
    throw new Error('store.sqlite is ":memory:": an in-memory ledger cannot be read by another process');
  }
  const { existsSync } = await import('node:fs');
  if (!existsSync(path)) {
    throw new Error(`no ledger at ${path} (store.sqlite): has the STS run with this configuration?`);
  }
  // WAL: this connection reads while the server writes; busy_timeout: a write waits for the server's.
  return ledger.openSqliteLedger(path, { writerThread: false, busyTimeoutMs: 10_000 });
}

/** The schema must hold a ledger already: opening would otherwise create an empty one. */
async function assertPostgresLedger(o: NonNullable<StsConfig['store']['postgres']>): Promise<void> {
  const { default: pg } = await import('pg');
  const { pgClientConfig, checkSchemaName } = await import('../../ledger/postgres-connection.ts');
  const schema = checkSchemaName(o.schema);
  const c = new pg.Client(pgClientConfig({ url: o.url, caFile: o.caFile }, 'tanuki-sts/grants'));
  c.on('error', () => {});
  let found: boolean;
  try {
    await c.connect();
    const r = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`"${schema}".grants`]);
    found = r.rows[0]?.t != null;
  } catch (err) {
    // pg's messages name the host and user, never the password.
    throw new Error(`cannot read the ledger database: ${(err as Error).message}`);
  } finally {
    await c.end().catch(() => {});
  }
  if (!found) {
    throw new Error(
      `no ledger in PostgreSQL schema "${schema}" (store.postgres.schema): has the STS run with this configuration?`,
    );
  }
}

function usage(io: GrantsIo, command: string, err: UsageError): number {
  io.stderr.write(`tanuki-sts grants ${command}: ${err.message}\n`);
  return 2;
}

/** `grants list`. */
export async function runGrantsList(o: GrantsOptions, io: GrantsIo): Promise<number> {
  let selection: GrantSelection;
  const status = (o.status ?? 'active') as StatusFilter;
  try {
    if (!(LIST_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status: one of ${LIST_STATUSES.join(', ')}`);
    }
    selection = selectionOf(o);
  } catch (err) {
    if (err instanceof UsageError) return usage(io, 'list', err);
    throw err;
  }
  const config = await loadConfig(o.config, io);
  const { grantStatus, listMatching, statusFilter } = await import('../../ledger/index.ts');
  const { redactTokens } = await import('../../service/audit.ts');
  const role = await roleNames();
  const store = await openOperatorLedger(config);
  try {
    const now = (io.now ?? Date.now)();
    const grants = listMatching(store, { ...selection, ...statusFilter(status, now) });
    if (o.json) {
      for await (const g of grants) {
        await write(io.stdout, jsonLine(grantJson(g, grantStatus(g, now), role, redactTokens)));
      }
      return 0;
    }
    const rows: string[][] = [];
    for await (const g of grants) {
      rows.push(
        [
          g.id,
          grantStatus(g, now),
          g.policy,
          g.clientId ?? g.subject,
          g.targetRef,
          role(g.accessLevel),
          g.scopes.join(','),
          iso(g.createdAt) ?? '',
          iso(g.expiresAt) ?? '',
        ].map(printable),
      );
    }
    if (rows.length === 0) {
      await write(io.stdout, `no grants match (${printable(describeSelection(selection, status))})\n`);
      return 0;
    }
    const head = [
      'ID',
      'STATUS',
      'POLICY',
      'APP ID / SUBJECT',
      'TARGET',
      'ROLE',
      'SCOPES',
      'CREATED',
      'EXPIRES',
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (r: string[]) =>
      `${r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`;
    await write(io.stdout, line(head));
    for (const r of rows) await write(io.stdout, line(r));
    await write(io.stdout, `${rows.length} grant${rows.length === 1 ? '' : 's'} (status ${status})\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/** `grants revoke`. */
export async function runGrantsRevoke(o: GrantsOptions, io: GrantsIo): Promise<number> {
  let selection: GrantSelection;
  const status = o.status ?? 'all';
  try {
    if (!(REVOKE_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(
        `--status: one of ${REVOKE_STATUSES.join(', ')} (revoked and failed grants have nothing to revoke)`,
      );
    }
    selection = selectionOf(o);
    const filtered = Object.keys(selection).length > 0;
    if (!filtered && !o.allActive) {
      throw new UsageError(
        'name what to revoke: --policy, --app-id, --subject or --target (or --all-active for every grant)',
      );
    }
    if (filtered && o.allActive) {
      throw new UsageError('--all-active means every grant: give it alone, or give filters without it');
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(io, 'revoke', err);
    throw err;
  }
  const config = await loadConfig(o.config, io);
  const { revokeMatching } = await import('../../ledger/index.ts');
  const { createGitlabClient } = await import('../../gitlab/index.ts');
  const { createAuditSink, grantAuditFields } = await import('../../service/audit.ts');
  const { randomUUID } = await import('node:crypto');
  const { openStsCredential } = await import('../../service/credential.ts');
  const store = await openOperatorLedger(config);
  // The STS's GitLab token from its source, as `serve` reads it (a Key Vault secret included; a 401
  // after a rotation by the STS reads the source again). Only read here: never rotated, never written.
  const quiet = { info() {}, warn() {}, error() {} };
  let credential: Awaited<ReturnType<typeof openStsCredential>>;
  try {
    credential = await openStsCredential(config, { log: quiet });
  } catch (err) {
    await store.close();
    throw err;
  }
  const gitlab = createGitlabClient({
    url: config.gitlab.url,
    token: credential.holder,
    caFile: config.gitlab.caFile,
    timeoutMs: config.gitlab.timeout * 1000,
    now: io.now,
  });
  // The configured audit file, or, when the STS audits to stdout, this process's stderr.
  const audit = config.audit.file
    ? createAuditSink({ file: config.audit.file })
    : createAuditSink({ destination: io.stderr });
  const runId = randomUUID();
  try {
    const r = await revokeMatching({
      store,
      gitlab,
      serverId: config.server.id,
      selection,
      ...(status === 'all' ? {} : { ttl: status === 'active' ? ('running' as const) : ('ended' as const) }),
      now: io.now,
      onResult: (x) =>
        audit.write({
          event: 'revoke',
          requestId: runId,
          outcome: 'outcome' in x ? x.outcome : 'deferred',
          reason: 'operator',
          ...grantAuditFields(x.grant),
          tenant: x.grant.tenant,
          appId: x.grant.clientId,
          objectId: x.grant.objectId,
          ...('descendants' in x && x.descendants > 0 ? { descendants: x.descendants } : {}),
        }),
    });
    const matched = r.settled.length + r.unsettled.length;
    const what = printable(describeSelection(selection, status));
    if (matched === 0) {
      await write(io.stdout, `no live grant matches (${what}): nothing to revoke\n`);
      return 0;
    }
    const minting = r.settled.filter((x) => x.wasMinting).length;
    const absent = r.settled.filter((x) => !x.wasMinting && x.outcome !== 'revoked').length;
    const notes = [
      minting > 0 && `${minting} caught mid-exchange: no client received their token`,
      absent > 0 && `${absent} had no live token left in GitLab`,
    ].filter((n): n is string => typeof n === 'string');
    await write(
      io.stdout,
      `revoked ${r.settled.length} of ${matched} grant${matched === 1 ? '' : 's'} (${what})` +
        `${notes.length ? `; ${notes.join('; ')}` : ''}\n`,
    );
    if (r.unsettled.length === 0) return 0;
    await write(
      io.stdout,
      `${r.unsettled.length} could not be revoked now; they are due, and the STS's reaper retries them ` +
        `(see them with: tanuki-sts grants list --status all --config …):\n`,
    );
    for (const u of r.unsettled) {
      const g = u.grant;
      await write(
        io.stdout,
        `  ${printable(`${g.id}  ${g.policy}  ${g.targetRef}  ${g.clientId ?? g.subject}  ${u.error}`)}\n`,
      );
    }
    return 3;
  } finally {
    await audit.close();
    await gitlab.close();
    await credential.close();
    await store.close();
  }
}

export function registerGrantsCommands(program: Command): void {
  const grants = program
    .command('grants')
    .description("see and revoke the ledger's grants while the STS runs (the kill switch)");

  const filters = (c: Command, statuses: readonly string[], statusDefault: string, statusHelp: string) =>
    c
      .requiredOption(
        '--config <file>',
        'the YAML configuration the STS runs with (its store, gitlab, audit)',
      )
      .option('--policy <name>', 'grants of this policy', once('--policy'))
      .option(
        '--app-id <id>',
        "grants of this application (Entra app ID / azp; the ledger's clientId)",
        once('--app-id'),
      )
      .option('--subject <sub>', "grants of this subject (the token's sub)", once('--subject'))
      .option(
        '--target <path>',
        'grants on this project or group (full path, or numeric id)',
        once('--target'),
      )
      .addOption(new Option('--status <status>', statusHelp).choices(statuses).default(statusDefault));

  filters(
    grants
      .command('list')
      .description('list grants (default: active), as a table or --json (one object a line)'),
    LIST_STATUSES,
    'active',
    'active (token may live, TTL running), revoked, expired (TTL passed, any state), failed, or all',
  )
    .option('--json', 'one JSON object per grant and line (never a token)')
    .action(async (opts: GrantsOptions) => {
      // `grants list | head`: a closed pipe ends the command quietly.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(0);
      });
      process.exitCode = await runGrantsList(opts, { stdout: process.stdout, stderr: process.stderr });
    });

  filters(
    grants
      .command('revoke')
      .description(
        'revoke the matching grants in GitLab and the ledger now; exit 0 when all are revoked, 3 when some are left to the reaper',
      ),
    REVOKE_STATUSES,
    'all',
    'active (TTL running), expired (TTL passed, not revoked yet), or all: every token that may still work',
  )
    .option('--all-active', 'every grant whose token may still work (instead of filters)')
    .action(async (opts: GrantsOptions) => {
      process.exitCode = await runGrantsRevoke(opts, { stdout: process.stdout, stderr: process.stderr });
    });
}
