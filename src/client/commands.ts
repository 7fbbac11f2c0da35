/**
 * The client commands as plain async functions (the CLI in
 * src/cli/commands/client.ts only parses options and calls these). Each
 * returns the process exit code; ClientErrors carry theirs. stdout carries
 * only what the command promises (the token, git's answer); everything else
 * goes to stderr through `io`, scrubbed.
 */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { sha256Hex } from '../util/hash.ts';
import { type CacheEntry, chooseCacheDir, TokenCache } from './cache.ts';
import { ClientError, EXIT, UsageError } from './errors.ts';
import { childEnvironment, gitEnvFor, keepList, runCommand } from './exec.ts';
import { checkFormatNeeds, type ReadToken, readTokenOutput, renderToken, usernameOf } from './formats.ts';
import {
  formatCredentialOutput,
  helperErase,
  helperGet,
  matchRequest,
  parseCredentialInput,
  sessionOf,
} from './git-credential.ts';
import { type HelperEntry, otherHelpers } from './git-helpers.ts';
import { type GlobalEntry, parseGlobalList, planInstall, planUninstall } from './git-install.ts';
import { type MintDeps, metadataGitlabUrl, mint } from './mint.ts';
import { redact, redactor } from './redact.ts';
import { readCapped, readSecretFile } from './secret-input.ts';
import {
  type ClientSettings,
  type Env,
  normalizeBaseUrl,
  OUTPUT_FORMATS,
  type OutputFormat,
  type RawClientOptions,
  resolveSettings,
} from './settings.ts';
import { StsClient } from './sts.ts';
import { shellQuote } from './trust.ts';

export interface ClientIo {
  env: Env;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
}

export const processIo: ClientIo = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  // Capped: stdin carries a token or git's few credential lines, never megabytes.
  readStdin: () => readCapped(process.stdin, 'stdin'),
};

function depsFor(settings: ClientSettings, io: ClientIo, prefix = 'tanuki-sts'): MintDeps {
  const log = (line: string) => {
    if (settings.verbose) io.stderr(`${prefix}: ${redact(line)}\n`);
  };
  return {
    env: io.env,
    log,
    notice: (line) => io.stderr(`${prefix}: ${redact(line)}\n`),
    sts: new StsClient({
      baseUrl: settings.stsUrl,
      timeoutMs: settings.timeoutMs,
      retries: settings.retries,
      log,
    }),
  };
}

/** Runs a command body; turns errors into one scrubbed stderr line and the documented exit code. */
export async function guarded(io: ClientIo, prefix: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ClientError) {
      io.stderr(`${prefix}: ${redact(err.message)}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`${prefix}: unexpected error: ${redact(message).slice(0, 500)}\n`);
    return EXIT.internal;
  }
}

export interface TokenOptions extends RawClientOptions {
  format?: string;
  registry?: string;
}

function formatOf(opts: TokenOptions, env: Env): OutputFormat {
  const f = (opts.format ?? env.TANUKI_FORMAT ?? 'raw').trim() as OutputFormat;
  if (!OUTPUT_FORMATS.includes(f)) {
    throw new UsageError(
      `--format / TANUKI_FORMAT: unknown format "${f.slice(0, 30)}"; use one of ${OUTPUT_FORMATS.join(', ')}`,
    );
  }
  return f;
}

/** `tanuki-sts token`: print the GitLab token, and only it, on stdout. */
export function runToken(opts: TokenOptions, io: ClientIo = processIo): Promise<number> {
  return guarded(io, 'tanuki-sts', async () => {
    const settings = resolveSettings(opts, io.env);
    const format = formatOf(opts, io.env);
    const registry = opts.registry ?? io.env.TANUKI_REGISTRY;
    // Checked before signing in: nothing is minted for a command that cannot succeed.
    if (format === 'docker-config' && !registry) {
      throw new UsageError(
        '--format docker-config needs --registry HOST (or TANUKI_REGISTRY), e.g. registry.gitlab.example.com',
      );
    }
    const deps = depsFor(settings, io);
    const { result, target, ttlEndMs } = await minted(settings, deps);
    const input = { result, gitlabUrl: target.gitlabUrl, registry };
    try {
      checkFormatNeeds(format, input);
    } catch (err) {
      // The token will not be shown, so it must not stay valid either.
      await deps.sts.revoke(result.accessToken).catch((e: Error) => {
        deps.notice(`could not revoke the token that was not printed: ${e.message}; ${stillValid(ttlEndMs)}`);
      });
      throw err;
    }
    io.stdout(renderToken(format, input));
    return EXIT.ok;
  });
}

export interface ExecOptions extends RawClientOptions {
  /** Credential variables to pass to the command anyway (`--keep-env NAME`, repeatable). */
  keepEnv?: string[];
}

/** `tanuki-sts exec -- cmd args…`: run with the token, revoke afterwards, exit with the command's code. */
export function runExec(command: string[], opts: ExecOptions, io: ClientIo = processIo): Promise<number> {
  return guarded(io, 'tanuki-sts', async () => {
    if (command.length === 0)
      throw new UsageError('exec needs a command: tanuki-sts exec [options] -- <command> [args…]');
    const settings = resolveSettings(opts, io.env);
    const keep = keepList(opts.keepEnv, io.env);
    const deps = depsFor(settings, io);
    const { result, target, ttlEndMs } = await minted(settings, deps);
    const extra = gitEnvFor(target.gitlabUrl, result.accessToken, io.env, usernameOf(result));
    const child = childEnvironment(io.env, settings, keep);
    deps.log(
      `exec: ${command[0]} with GITLAB_TOKEN, GITLAB_USERNAME (${usernameOf(result)})${target.gitlabUrl ? ` and git auth for ${target.gitlabUrl}/` : ''} (expires in ${result.expiresIn ?? '?'}s)`,
    );
    if (child.stripped.length > 0)
      deps.log(`exec: not passing ${child.stripped.join(', ')} to the command (--keep-env NAME passes one)`);
    return runCommand({
      command,
      env: { ...child.env, ...extra },
      warn: (line) => io.stderr(`tanuki-sts: ${redact(line)}\n`),
      after: async () => {
        try {
          await deps.sts.revoke(result.accessToken);
        } catch (err) {
          throw new Error(`could not revoke the token: ${(err as Error).message}; ${stillValid(ttlEndMs)}`);
        }
      },
    });
  });
}

/** `mint`, and when the token's TTL ends (for what to say if it cannot be revoked). */
async function minted(settings: ClientSettings, deps: MintDeps) {
  const m = await mint(settings, deps);
  const ttlEndMs = m.result.expiresIn === undefined ? undefined : Date.now() + m.result.expiresIn * 1000;
  return { ...m, ttlEndMs };
}

/**
 * How long a token the client could not revoke stays valid: the STS's reaper revokes it
 * once its TTL has ended and the STS runs (so later than the TTL if the STS is still down
 * then); GitLab's `expires_at` date is the backstop (src/gitlab/expiry.ts: the first
 * 00:00 UTC after the TTL, with a few minutes' margin).
 */
export function stillValid(ttlEndMs?: number): string {
  const end =
    ttlEndMs === undefined ? '' : ` (${new Date(ttlEndMs).toISOString().replace(/\.\d{3}Z$/, 'Z')})`;
  return `it stays valid until the STS's reaper revokes it after its TTL ends${end} — later if the STS is not reachable by then; at the latest GitLab ends it on its expiry date (00:00 UTC after the TTL, up to about a day later)`;
}

/**
 * `tanuki-sts revoke`: revoke a token read from a file or stdin. RFC 7009 has the STS
 * answer 200 for a token it does not know, so "the STS said 200" proves nothing: the input
 * is checked here instead — exactly the formats `token` prints, holding a GitLab token
 * (formats.ts `readTokenOutput`) — and anything else is exit 2 before anything is sent.
 */
export function runRevoke(
  opts: RawClientOptions & { tokenFile?: string },
  io: ClientIo = processIo,
): Promise<number> {
  return guarded(io, 'tanuki-sts', async () => {
    const settings = resolveSettings(opts, io.env);
    const text = opts.tokenFile ? readSecretFile(opts.tokenFile, '--token-file') : await io.readStdin();
    const where = opts.tokenFile ? `--token-file ${opts.tokenFile}` : 'stdin';
    let read: ReadToken;
    try {
      read = readTokenOutput(text);
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`revoke: ${where}: ${err.message}`);
      throw err;
    }
    redactor.add(read.token);
    const deps = depsFor(settings, io);
    deps.log(
      `revoke: a GitLab token in ${read.format} format from ${where} (sha256 ${sha256Hex(read.token).slice(0, 16)}…)`,
    );
    try {
      await deps.sts.revoke(read.token);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      throw new ClientError(err.code, err.exitCode, `${err.message}; ${stillValid()}`, { cause: err });
    }
    deps.log(
      'revoke: the STS answered 200; it answers 200 for a token it does not know (or already revoked) too (RFC 7009 §2.2), so the server cannot confirm this token was one it issued',
    );
    return EXIT.ok;
  });
}

export interface GitCredentialOptions extends RawClientOptions {
  gitlab?: string;
  install?: boolean;
  uninstall?: boolean;
  dryRun?: boolean;
}

function gitlabUrlOf(opts: GitCredentialOptions, env: Env): string | undefined {
  const g = opts.gitlab ?? env.TANUKI_GITLAB_URL;
  return g ? normalizeBaseUrl(g, '--gitlab / TANUKI_GITLAB_URL') : undefined;
}

/** `tanuki-sts git-credential <get|store|erase|revoke-all>` (git calls the first three), `--install` and `--uninstall`. */
export function runGitCredential(
  action: string | undefined,
  opts: GitCredentialOptions,
  io: ClientIo = processIo,
): Promise<number> {
  const prefix = 'tanuki-sts git-credential';
  return guarded(io, prefix, async () => {
    if (opts.install && opts.uninstall)
      throw new UsageError('give either --install or --uninstall, not both');
    if (opts.install) return installHelper(opts, io);
    if (opts.uninstall) return uninstallHelper(opts, io);
    if (action === undefined)
      throw new UsageError(
        'git-credential needs an action (get, store, erase, revoke-all), --install or --uninstall',
      );
    // Unknown actions must be ignored (gitcredentials(7)).
    if (!['get', 'store', 'erase', 'revoke-all'].includes(action)) return EXIT.ok;
    // The URL rule for every action that may send a token to the STS, also when it turns out to have
    // nothing to send (revoke-all with an empty cache): a plain-http remote STS is refused up front.
    const stsGiven = opts.sts ?? io.env.TANUKI_STS_URL;
    if (stsGiven?.trim()) normalizeBaseUrl(stsGiven.trim(), '--sts / TANUKI_STS_URL');
    if (action === 'revoke-all') return revokeAll(opts, io, prefix);
    if (action === 'store') return storeCheck(opts, io, prefix);
    const input = parseCredentialInput(await io.readStdin());
    const settings = resolveSettings(opts, io.env);
    const mintDeps = depsFor(settings, io, prefix);
    const gitlabUrl = gitlabUrlOf(opts, io.env) ?? metadataGitlabUrl(await mintDeps.sts.metadata());
    if (!gitlabUrl)
      throw new UsageError('the GitLab URL is unknown: pass --gitlab URL or set TANUKI_GITLAB_URL');
    const req = matchRequest(input, gitlabUrl, settings.resource);
    if (!req) {
      mintDeps.log(`not our host (${input.get('protocol')}://${input.get('host')}); staying silent`);
      return EXIT.ok;
    }
    // Only now, for a request we answer, is the cache folder chosen (and created).
    const choice = chooseCacheDir(io.env);
    const deps = { ...mintDeps, cache: new TokenCache(choice.dir) };
    if (choice.notice && action === 'get') deps.notice(choice.notice);
    if (action === 'erase') {
      const revoked = await helperErase(settings, deps, req, input.get('password'));
      deps.log(
        revoked ? `erase: revoked and forgot the token for ${req.path}` : 'erase: no token of ours to forget',
      );
      return EXIT.ok;
    }
    const got = await helperGet(settings, deps, req);
    io.stdout(formatCredentialOutput(got.token, got.expiresAt, got.username));
    return EXIT.ok;
  });
}

/** An StsClient for revocations outside a full exchange (store, revoke-all): flags/env timeouts when given. */
function revocationClient(base: string, opts: RawClientOptions, io: ClientIo, prefix: string): StsClient {
  let timeoutMs = 30_000;
  let retries = 2;
  let verbose = false;
  try {
    const s = resolveSettings({ ...opts, sts: base }, io.env);
    ({ timeoutMs, retries, verbose } = s);
  } catch {}
  return new StsClient({
    baseUrl: normalizeBaseUrl(base, 'the STS that issued a cached token'),
    timeoutMs,
    retries,
    log: (line) => {
      if (verbose) io.stderr(`${prefix}: ${redact(line)}\n`);
    },
  });
}

/** Where a cached token goes back to: the STS that issued it (never another), else the configured one. */
function issuerOf(entry: CacheEntry, opts: RawClientOptions, env: Env): string | undefined {
  return entry.sts ?? opts.sts ?? env.TANUKI_STS_URL;
}

/** Helper commands can embed secrets (`!f() { echo password=…; }; f`): shortened and scrubbed. */
function describeHelpers(helpers: HelperEntry[]): string {
  return redact(helpers.map((h) => `${h.value.slice(0, 80)} (${h.where})`).join(', '));
}

/**
 * `store`: git hands every helper the credential it just used. We keep
 * nothing (we mint), but when the password is a token we issued and another
 * helper in git's list for this URL will keep it (store, cache, a keychain),
 * we revoke it: a copy in ~/.git-credentials must be dead. Tokens we did not
 * issue are never sent anywhere.
 */
async function storeCheck(opts: GitCredentialOptions, io: ClientIo, prefix: string): Promise<number> {
  const input = parseCredentialInput(await io.readStdin());
  const password = input.get('password');
  const protocol = input.get('protocol');
  const host = input.get('host');
  if (!password || !protocol || !host) return EXIT.ok;
  const cache = new TokenCache(chooseCacheDir(io.env).dir);
  const ours = cache.entries().find((e) => e.entry.token === password);
  if (!ours) return EXIT.ok;
  let url: URL;
  try {
    url = new URL(`${protocol}://${host}/${input.get('path') ?? ''}`);
  } catch {
    return EXIT.ok;
  }
  const others = otherHelpers(io.env, url);
  if (others.length === 0) return EXIT.ok;
  const sts = issuerOf(ours.entry, opts, io.env);
  cache.delete(ours.key);
  const advice = `make tanuki-sts the only credential helper for ${url.origin} (docs/pipelines.md §7)`;
  if (!sts) {
    io.stderr(
      `${prefix}: git also hands this token to ${describeHelpers(others)}; cannot revoke it (no STS known), it stays valid until it expires — ${advice}\n`,
    );
    return EXIT.usage;
  }
  await revocationClient(sts, opts, io, prefix).revoke(ours.entry.token);
  io.stderr(
    `${prefix}: git also hands this token to ${describeHelpers(others)}, which may keep it: revoked it (the next git command gets a fresh one) — ${advice}\n`,
  );
  return EXIT.ok;
}

/**
 * `revoke-all` (for after_script): revokes, at the STS that issued each,
 * every token the helper cached for this CI job, and deletes the files.
 * Tokens of other jobs sharing the user's cache are left alone unless
 * expired; a token whose revocation fails is kept so a retry can revoke it.
 */
async function revokeAll(opts: GitCredentialOptions, io: ClientIo, prefix: string): Promise<number> {
  const cache = new TokenCache(chooseCacheDir(io.env).dir);
  const session = sessionOf(io.env);
  const now = Date.now();
  let revoked = 0;
  let others = 0;
  let failure: ClientError | undefined;
  for (const { key, entry } of cache.entries()) {
    const mine = entry.session === undefined || session === '' || entry.session === session;
    if (!mine) {
      if (now > entry.expiresAt) cache.delete(key);
      else others++;
      continue;
    }
    const sts = issuerOf(entry, opts, io.env);
    try {
      if (!sts) throw new UsageError('no STS known for a cached token: pass --sts or set TANUKI_STS_URL');
      await revocationClient(sts, opts, io, prefix).revoke(entry.token);
      cache.delete(key);
      revoked++;
    } catch (err) {
      const e = err instanceof ClientError ? err : new ClientError('ERR_REVOKE', EXIT.internal, String(err));
      failure ??= e;
      io.stderr(`${prefix}: ${redact(e.message)}\n`);
    }
  }
  cache.removeLeftovers(10_000);
  io.stderr(
    `${prefix}: revoked ${revoked} cached token${revoked === 1 ? '' : 's'}${others ? `; left ${others} of other CI jobs` : ''}${failure ? "; some could not be revoked: they stay cached so that revoke-all can retry, and valid until the STS's reaper revokes them after their TTL (once the STS is reachable again), at the latest until GitLab's expiry date" : ''}\n`,
  );
  return failure?.exitCode ?? EXIT.ok;
}

/** The helper command git will run (it appends the action). Absolute paths: git's PATH may differ. */
export function helperCommand(stsUrl: string | undefined, argv1 = process.argv[1] ?? 'tanuki-sts'): string {
  let script = argv1;
  try {
    script = realpathSync(argv1);
  } catch {}
  const sts = stsUrl ? ` --sts ${shellQuote(stsUrl)}` : '';
  return `!${shellQuote(process.execPath)} ${shellQuote(script)} git-credential${sts}`;
}

/** The user's global git config (`GIT_CONFIG_GLOBAL`, else ~/.gitconfig), as entries; none when there is no file. */
function readGlobalConfig(io: ClientIo): GlobalEntry[] {
  try {
    return parseGlobalList(
      execFileSync('git', ['config', '--global', '--null', '--list'], {
        env: io.env as NodeJS.ProcessEnv,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  } catch (err) {
    const e = err as { status?: number; stderr?: string; message: string };
    if (e.status === 128 && /unable to read config file/.test(e.stderr ?? '')) return [];
    throw new ClientError(
      'ERR_GIT_CONFIG',
      EXIT.internal,
      `git config --global --list failed: ${(e.stderr || e.message).split('\n')[0]}`,
    );
  }
}

/** Prints each `git config --global …` step, and runs it unless --dry-run. */
function runGitConfigSteps(steps: string[][], dryRun: boolean | undefined, io: ClientIo): void {
  for (const step of steps) {
    const args = ['config', '--global', ...step];
    io.stderr(`git ${args.map((a) => (a === '' || /\s|'|!/.test(a) ? shellQuote(a) : a)).join(' ')}\n`);
    if (dryRun) continue;
    try {
      execFileSync('git', args, { stdio: ['ignore', 'ignore', 'pipe'], env: io.env as NodeJS.ProcessEnv });
    } catch (err) {
      // --unset-all exits 5 when there was nothing to unset.
      if (args[2] === '--unset-all' && (err as { status?: number }).status === 5) continue;
      throw new ClientError(
        'ERR_GIT_CONFIG',
        EXIT.internal,
        `git ${args.slice(0, 3).join(' ')} failed: ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }
}

/**
 * Writes the helper into the user's global git config — the one place this
 * tool writes git config, because the user asked for it. An empty helper
 * value first resets helpers inherited from earlier config for this URL, so
 * e.g. `credential.helper=store` is never handed our short-lived tokens.
 * A helper an earlier `--install` wrote there is replaced; nothing else is
 * touched, so `--uninstall` can take out exactly what was added (git-install.ts).
 */
async function installHelper(opts: GitCredentialOptions, io: ClientIo): Promise<number> {
  const stsFlag = opts.sts ?? io.env.TANUKI_STS_URL;
  const sts = stsFlag ? normalizeBaseUrl(stsFlag, '--sts / TANUKI_STS_URL') : undefined;
  let gitlab = gitlabUrlOf(opts, io.env);
  if (!gitlab) {
    if (!sts)
      throw new UsageError(
        '--install needs --gitlab URL, or --sts URL to read gitlab_url from the STS metadata',
      );
    gitlab = metadataGitlabUrl(await new StsClient({ baseUrl: sts }).metadata());
    if (!gitlab) throw new UsageError('the STS metadata names no gitlab_url: pass --gitlab URL');
  }
  const helper = helperCommand(sts);
  runGitConfigSteps(planInstall(readGlobalConfig(io), gitlab, helper), opts.dryRun, io);
  io.stderr(
    `${opts.dryRun ? 'would configure' : 'configured'} git to ask tanuki-sts for ${gitlab} credentials${sts ? '' : ' (set TANUKI_STS_URL where git runs)'}; undo with: tanuki-sts git-credential --uninstall --gitlab ${gitlab}\n`,
  );
  if (!opts.dryRun) warnAboutOtherHelpers(gitlab, helper, io);
  return EXIT.ok;
}

/**
 * `--uninstall`: removes from the global git config what `--install` added — for
 * `--gitlab` (else for the installs naming `--sts`, else all of them), plus the
 * sections earlier versions left for old dev-stack ports when the target is a
 * loopback dev stack (git-install.ts `planUninstall`). Needs no network.
 */
function uninstallHelper(opts: GitCredentialOptions, io: ClientIo): number {
  const gitlab = gitlabUrlOf(opts, io.env);
  const stsFlag = opts.sts ?? io.env.TANUKI_STS_URL;
  const sts = stsFlag ? normalizeBaseUrl(stsFlag, '--sts / TANUKI_STS_URL') : undefined;
  const plan = planUninstall(readGlobalConfig(io), gitlab ? { gitlab } : { sts });
  const what = gitlab ? `for ${gitlab}` : sts ? `naming the STS ${sts}` : 'at all';
  if (plan.urls.length === 0) {
    io.stderr(
      `nothing to remove: no credential helper written by \`tanuki-sts git-credential --install\` ${what} in the global git config\n`,
    );
    return EXIT.ok;
  }
  runGitConfigSteps(plan.steps, opts.dryRun, io);
  io.stderr(
    `${opts.dryRun ? 'would remove' : 'removed'} the tanuki-sts credential helper for ${plan.urls.join(', ')} from the global git config\n`,
  );
  return EXIT.ok;
}

/**
 * After install: helpers configured later (later in ~/.gitconfig, in the
 * repository's config, in GIT_CONFIG_* or -c) come after our reset, and git
 * hands them every approved token. Warn; `store` then revokes what they keep.
 */
function warnAboutOtherHelpers(gitlab: string, installed: string, io: ClientIo): void {
  let others: HelperEntry[];
  try {
    others = otherHelpers(io.env, new URL(`${gitlab}/`), { anyPath: true, installed });
  } catch {
    return;
  }
  if (others.length === 0) return;
  io.stderr(
    `warning: tanuki-sts is not the only credential helper git will use for ${gitlab}: also ${describeHelpers(others)}. ` +
      `Git hands every helper the token it used; tanuki-sts revokes a token when it sees another helper will keep it, so each git command then mints anew. ` +
      `Remove those helpers, or configure them before the tanuki-sts section (an empty credential.${gitlab}.helper resets the ones before it)\n`,
  );
}
