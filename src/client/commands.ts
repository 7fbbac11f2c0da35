/**
 * The client commands as plain async functions (the CLI in
 * src/cli/commands/client.ts only parses options and calls these). Each
 * returns the process exit code; ClientErrors carry theirs. stdout carries
 * only what the command promises (the token, git's answer); everything else
 * goes to stderr through `io`, scrubbed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { defaultCacheDir, TokenCache } from './cache.ts';
import { ClientError, EXIT, UsageError } from './errors.ts';
import { gitEnvFor, runCommand } from './exec.ts';
import { checkFormatNeeds, renderToken } from './formats.ts';
import {
  formatCredentialOutput,
  helperErase,
  helperGet,
  matchRequest,
  parseCredentialInput,
} from './git-credential.ts';
import { type MintDeps, mint } from './mint.ts';
import { redact } from './redact.ts';
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
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
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
    const { result, target } = await mint(settings, deps);
    const input = { result, gitlabUrl: target.gitlabUrl, registry };
    try {
      checkFormatNeeds(format, input);
    } catch (err) {
      // The token will not be shown, so it must not stay valid either.
      await deps.sts.revoke(result.accessToken).catch(() => {});
      throw err;
    }
    io.stdout(renderToken(format, input));
    return EXIT.ok;
  });
}

/** `tanuki-sts exec -- cmd args…`: run with the token, revoke afterwards, exit with the command's code. */
export function runExec(
  command: string[],
  opts: RawClientOptions,
  io: ClientIo = processIo,
): Promise<number> {
  return guarded(io, 'tanuki-sts', async () => {
    if (command.length === 0)
      throw new UsageError('exec needs a command: tanuki-sts exec [options] -- <command> [args…]');
    const settings = resolveSettings(opts, io.env);
    const deps = depsFor(settings, io);
    const { result, target } = await mint(settings, deps);
    const extra = gitEnvFor(target.gitlabUrl, result.accessToken, io.env);
    deps.log(
      `exec: ${command[0]} with GITLAB_TOKEN${target.gitlabUrl ? ` and git auth for ${target.gitlabUrl}/` : ''} (expires in ${result.expiresIn ?? '?'}s)`,
    );
    return runCommand({
      command,
      env: { ...io.env, ...extra },
      warn: (line) => io.stderr(`tanuki-sts: ${redact(line)}\n`),
      after: async () => {
        try {
          await deps.sts.revoke(result.accessToken);
        } catch (err) {
          const left = result.expiresIn ? `; it stays valid for up to ${result.expiresIn}s` : '';
          throw new Error(`could not revoke the token: ${(err as Error).message}${left}`);
        }
      },
    });
  });
}

/** `tanuki-sts revoke`: revoke a token read from a file or stdin. */
export function runRevoke(
  opts: RawClientOptions & { tokenFile?: string },
  io: ClientIo = processIo,
): Promise<number> {
  return guarded(io, 'tanuki-sts', async () => {
    const settings = resolveSettings(opts, io.env);
    let text: string;
    if (opts.tokenFile) {
      try {
        text = readFileSync(opts.tokenFile, 'utf8');
      } catch (err) {
        throw new UsageError(
          `cannot read --token-file ${opts.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    } else text = await io.readStdin();
    // Accept the formats `token` prints: raw, env, or the JSON response.
    let token = text.trim();
    if (token.startsWith('{')) {
      try {
        token = String((JSON.parse(token) as { access_token?: unknown }).access_token ?? '');
      } catch {}
    }
    token = token.replace(/^GITLAB_TOKEN=/, '').trim();
    if (!token || /\s/.test(token))
      throw new UsageError('revoke needs one token on stdin or in --token-file');
    await depsFor(settings, io).sts.revoke(token);
    return EXIT.ok;
  });
}

export interface GitCredentialOptions extends RawClientOptions {
  gitlab?: string;
  install?: boolean;
  dryRun?: boolean;
}

function gitlabUrlOf(opts: GitCredentialOptions, env: Env): string | undefined {
  const g = opts.gitlab ?? env.TANUKI_GITLAB_URL;
  return g ? normalizeBaseUrl(g, '--gitlab / TANUKI_GITLAB_URL') : undefined;
}

/** `tanuki-sts git-credential <get|store|erase>` (git calls it) and `--install`. */
export function runGitCredential(
  action: string | undefined,
  opts: GitCredentialOptions,
  io: ClientIo = processIo,
): Promise<number> {
  const prefix = 'tanuki-sts git-credential';
  return guarded(io, prefix, async () => {
    if (opts.install) return installHelper(opts, io);
    if (action === undefined)
      throw new UsageError('git-credential needs an action (get, store, erase) or --install');
    // Unknown actions must be ignored (gitcredentials(7)); `store` is a no-op: we mint, we do not keep what git hands us.
    if (action !== 'get' && action !== 'erase') return EXIT.ok;
    const input = parseCredentialInput(await io.readStdin());
    const settings = resolveSettings(opts, io.env);
    const deps = { ...depsFor(settings, io, prefix), cache: new TokenCache(defaultCacheDir(io.env)) };
    const gitlabUrl = gitlabUrlOf(opts, io.env) ?? (await deps.sts.metadata()).gitlab_url;
    if (!gitlabUrl)
      throw new UsageError('the GitLab URL is unknown: pass --gitlab URL or set TANUKI_GITLAB_URL');
    const req = matchRequest(input, gitlabUrl, settings.resource);
    if (!req) {
      deps.log(`not our host (${input.get('protocol')}://${input.get('host')}); staying silent`);
      return EXIT.ok;
    }
    if (action === 'erase') {
      const revoked = await helperErase(settings, deps, req, input.get('password'));
      deps.log(
        revoked ? `erase: revoked and forgot the token for ${req.path}` : 'erase: no token of ours to forget',
      );
      return EXIT.ok;
    }
    const got = await helperGet(settings, deps, req);
    io.stdout(formatCredentialOutput(got.token, got.expiresAt));
    return EXIT.ok;
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
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

/**
 * Writes the helper into the user's global git config — the one place this
 * tool writes git config, because the user asked for it. An empty helper
 * value first resets helpers inherited from earlier config for this URL, so
 * e.g. `credential.helper=store` is never handed our short-lived tokens.
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
    gitlab = (await new StsClient({ baseUrl: sts }).metadata()).gitlab_url;
    if (!gitlab) throw new UsageError('the STS metadata names no gitlab_url: pass --gitlab URL');
  }
  const section = `credential.${gitlab}`;
  const helper = helperCommand(sts);
  const steps: string[][] = [
    ['config', '--global', '--unset-all', `${section}.helper`],
    ['config', '--global', '--add', `${section}.helper`, ''],
    ['config', '--global', '--add', `${section}.helper`, helper],
    ['config', '--global', `${section}.useHttpPath`, 'true'],
  ];
  for (const args of steps) {
    io.stderr(`git ${args.map((a) => (a === '' || /\s|'|!/.test(a) ? shellQuote(a) : a)).join(' ')}\n`);
    if (opts.dryRun) continue;
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
  io.stderr(
    `${opts.dryRun ? 'would configure' : 'configured'} git to ask tanuki-sts for ${gitlab} credentials${sts ? '' : ' (set TANUKI_STS_URL where git runs)'}\n`,
  );
  return EXIT.ok;
}
