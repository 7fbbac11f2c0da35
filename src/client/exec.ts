/**
 * `tanuki-sts exec`: run a command with the token in its environment and
 * git configured to use it, then revoke the token whatever happens.
 *
 * Git is configured through GIT_CONFIG_COUNT/GIT_CONFIG_KEY_n/VALUE_n
 * (git ≥ 2.31, "command" scope, see git-config(1) ENVIRONMENT): nothing is
 * written to any git config file, and the token lives only in environment
 * values, never in an argv that `ps` shows. We set
 * `http.<gitlab>/.extraHeader = Authorization: Basic base64(USERNAME:TOKEN)` (the STS's
 * `gitlab_username`: a deploy token works only with its own; else `oauth2`)
 * rather than a credential helper, so no other configured helper (store,
 * osxkeychain…) is ever handed the token to persist.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { UsageError } from './errors.ts';
import { BASIC_USERNAME, basicAuth } from './formats.ts';
import type { ClientSettings, Env } from './settings.ts';

/**
 * The pipeline's own long-lived credentials, and what reaches them. `exec`
 * revokes its token when the command ends; a command that still held these
 * could mint fresh tokens (or Azure tokens) afterwards, so the child does not
 * get them unless `--keep-env NAME` says so. Paths (certificate, federated
 * token file) are removed as variables; the files stay readable to the same
 * user (documented). IMDS on an Azure VM is a network endpoint and cannot be
 * hidden this way.
 */
export const CREDENTIAL_VARIABLES = [
  // @azure/identity EnvironmentCredential / ClientCertificateCredential / WorkloadIdentityCredential
  'AZURE_CLIENT_SECRET',
  'AZURE_CLIENT_CERTIFICATE_PATH',
  'AZURE_CLIENT_CERTIFICATE_PASSWORD',
  'AZURE_FEDERATED_TOKEN_FILE',
  'AZURE_USERNAME',
  'AZURE_PASSWORD',
  // Terraform's azurerm/azuread providers read the same credentials under ARM_* names
  'ARM_CLIENT_SECRET',
  'ARM_CLIENT_CERTIFICATE_PASSWORD',
  'ARM_CLIENT_CERTIFICATE_PATH',
  'ARM_OIDC_TOKEN',
  'ARM_OIDC_TOKEN_FILE_PATH',
  'ARM_OIDC_REQUEST_TOKEN',
  'ARM_OIDC_REQUEST_URL',
  // Azure Pipelines: the job token that asks for OIDC tokens (AzurePipelinesCredential)
  'SYSTEM_ACCESSTOKEN',
  // GitHub Actions OIDC
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  'ACTIONS_ID_TOKEN_REQUEST_URL',
  // Managed identity on App Service / Functions / Arc (ManagedIdentityCredential)
  'IDENTITY_ENDPOINT',
  'IDENTITY_HEADER',
  'MSI_ENDPOINT',
  'MSI_SECRET',
  'IMDS_ENDPOINT',
  // tanuki-sts's own subject token sources (default names; configured names are added at run time)
  'TANUKI_ID_TOKEN',
  'TANUKI_SUBJECT_TOKEN',
  'TANUKI_SUBJECT_TOKEN_FILE',
] as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `--keep-env` values and `TANUKI_KEEP_ENV` (space- or comma-separated), checked. */
export function keepList(flags: string[] | undefined, env: Env): string[] {
  const names = [...(flags ?? []), ...(env.TANUKI_KEEP_ENV ?? '').split(/[\s,]+/)].filter(Boolean);
  for (const n of names) {
    if (!ENV_NAME.test(n))
      throw new UsageError(`--keep-env / TANUKI_KEEP_ENV: "${n.slice(0, 40)}" is not a variable name`);
  }
  return names;
}

/** The child's environment without the pipeline's credentials; returns the names removed (never values). */
export function childEnvironment(
  env: Env,
  settings: ClientSettings,
  keep: string[],
): { env: Env; stripped: string[] } {
  const names = new Set<string>(CREDENTIAL_VARIABLES);
  // The variables this run was told to read a token from (flags or environment), whatever their names.
  const s = settings.subject;
  if (s.kind === 'var') names.add(s.name);
  if (s.kind === 'azure') names.add(s.azure.idTokenVar);
  for (const pointer of ['TANUKI_ID_TOKEN_VAR', 'TANUKI_SUBJECT_TOKEN_VAR']) {
    const n = env[pointer]?.trim();
    if (n && ENV_NAME.test(n)) names.add(n);
  }
  for (const k of keep) names.delete(k);
  const out: Env = { ...env };
  const stripped: string[] = [];
  for (const n of names) {
    if (out[n] !== undefined) {
      delete out[n];
      stripped.push(n);
    }
  }
  return { env: out, stripped: stripped.sort() };
}

/**
 * Environment additions for the child: GITLAB_TOKEN and GITLAB_USERNAME, plus git config entries
 * appended after any existing ones.
 */
export function gitEnvFor(
  gitlabUrl: string | undefined,
  token: string,
  env: Env,
  username: string = BASIC_USERNAME,
): Record<string, string> {
  const out: Record<string, string> = { GITLAB_TOKEN: token, GITLAB_USERNAME: username };
  if (!gitlabUrl) return out;
  const countText = env.GIT_CONFIG_COUNT?.trim();
  const count = countText ? Number(countText) : 0;
  if (!Number.isInteger(count) || count < 0) {
    throw new UsageError(
      `GIT_CONFIG_COUNT is "${countText?.slice(0, 20)}", not a count; git would refuse it too`,
    );
  }
  const url = `${gitlabUrl.replace(/\/+$/, '')}/`;
  out[`GIT_CONFIG_KEY_${count}`] = `http.${url}.extraHeader`;
  out[`GIT_CONFIG_VALUE_${count}`] = `Authorization: Basic ${basicAuth(token, username)}`;
  out.GIT_CONFIG_COUNT = String(count + 1);
  return out;
}

export interface RunOptions {
  command: string[];
  env: NodeJS.ProcessEnv;
  /** Runs after the child has ended (any way); its failure is reported, not thrown. */
  after: () => Promise<void>;
  warn: (line: string) => void;
  /** For tests: which process receives signals (default: this one). */
  signalSource?: NodeJS.EventEmitter;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs the command with inherited stdio; returns its exit code, 128+n when
 * it died of signal n, 127 when it could not be found, 126 when not executable.
 * SIGINT/SIGTERM/SIGHUP sent to us are forwarded to the child; we then wait
 * for it, run `after` (revocation), and return.
 */
export async function runCommand(opts: RunOptions): Promise<number> {
  const [file, ...args] = opts.command;
  if (!file) throw new UsageError('exec needs a command: tanuki-sts exec [options] -- <command> [args…]');
  const source = opts.signalSource ?? process;
  let child: ReturnType<typeof spawn> | undefined;
  // Installed until revocation is over: a signal during `after` must not kill us before the token is revoked.
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED) {
    const h = () => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    handlers.set(sig, h);
    source.on(sig, h);
  }
  try {
    const code = await new Promise<number>((resolve) => {
      let settled = false;
      const done = (n: number) => {
        if (!settled) resolve(n);
        settled = true;
      };
      child = spawn(file, args, { stdio: 'inherit', env: opts.env });
      child.once('error', (err: NodeJS.ErrnoException) => {
        opts.warn(
          err.code === 'ENOENT'
            ? `command not found: ${file}`
            : `cannot run ${file}: ${err.code ?? err.message}`,
        );
        done(err.code === 'ENOENT' ? 127 : 126);
      });
      child.once('exit', (exitCode, signal) => {
        if (signal) done(128 + (constants.signals[signal] ?? 0));
        else done(exitCode ?? 1);
      });
    });
    try {
      await opts.after();
    } catch (err) {
      opts.warn((err as Error).message);
    }
    return code;
  } finally {
    for (const [sig, h] of handlers) source.removeListener(sig, h);
  }
}
