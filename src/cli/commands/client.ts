/**
 * The pipeline client commands: `token`, `exec`, `git-credential`, `revoke`.
 * Only option parsing lives here; the work is in src/client/commands.ts,
 * loaded on demand so that `serve` never loads @azure/identity. Every option
 * also reads an environment variable (listed in the help and in
 * docs/pipelines.md), so pipeline templates need no flags.
 *
 * Exit codes (set through process.exitCode; nothing is thrown to main.ts):
 * 0 ok, 1 unexpected, 2 usage, 3 Azure sign-in failed, 4 the STS refused,
 * 5 STS/GitLab unavailable; `exec` exits with the command's own code. Each
 * command's --help lists only the codes it can exit with (`revoke` never
 * signs in, so never 3); client.test.ts holds them to that.
 */
import { type Command, Option } from 'commander';
import { AZURE_AUTH_MODES, OUTPUT_FORMATS } from '../../client/settings.ts';

/** Options shared by token, exec and git-credential (and --sts/--verbose by revoke). */
function addExchangeOptions(cmd: Command, { resource = true } = {}): Command {
  if (resource) {
    cmd.option(
      '--resource <url|path>',
      'GitLab project or group: URL, or path such as group/project [env TANUKI_RESOURCE]',
    );
  }
  return cmd
    .option(
      '--scope <scopes>',
      'GitLab scopes, space-separated, e.g. "read_repository read_api" [env TANUKI_SCOPE]',
    )
    .option('--ttl <duration>', 'token lifetime, e.g. 15m (capped by the policy) [env TANUKI_TTL]')
    .addOption(
      new Option(
        '--azure-auth <mode>',
        'how to get the Entra ID token (default auto) [env TANUKI_AZURE_AUTH]',
      ).choices(AZURE_AUTH_MODES),
    )
    .option(
      '--azure-scope <scope>',
      "Entra ID scope (default: the STS metadata's azure_scope) [env TANUKI_AZURE_SCOPE]",
    )
    .option('--tenant-id <id>', 'Entra ID tenant [env AZURE_TENANT_ID]')
    .option(
      '--client-id <id>',
      'app (client) ID, or user-assigned managed identity client ID [env AZURE_CLIENT_ID]',
    )
    .option(
      '--authority-host <url>',
      'Entra ID authority for sovereign clouds or emulators [env AZURE_AUTHORITY_HOST]',
    )
    .option(
      '--id-token-var <name>',
      'gitlab-oidc: CI variable holding the id_token (default TANUKI_ID_TOKEN) [env TANUKI_ID_TOKEN_VAR]',
    )
    .option(
      '--service-connection-id <id>',
      'azure-pipelines: service connection ID [env AZURESUBSCRIPTION_SERVICE_CONNECTION_ID]',
    )
    .option(
      '--subject-token-file <file>',
      'direct OIDC: send this token to the STS, skip Azure [env TANUKI_SUBJECT_TOKEN_FILE]',
    )
    .option(
      '--subject-token-var <name>',
      'direct OIDC: send the token in this variable [env TANUKI_SUBJECT_TOKEN_VAR]',
    )
    .option('--timeout <duration>', 'per HTTP request (default 30s) [env TANUKI_TIMEOUT]')
    .option(
      '--retries <n>',
      'retries on connection errors, 429 and 502-504 (default 2) [env TANUKI_RETRIES]',
    );
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--sts <url>', 'STS base URL [env TANUKI_STS_URL]')
    .option('--verbose', 'explain each step on stderr (never shows tokens) [env TANUKI_VERBOSE=1]');
}

/** The exit codes of the commands that exchange a token (token, exec, git-credential get). */
const EXCHANGE_EXIT_HELP = `
Exit codes: 0 ok, 1 unexpected, 2 usage, 3 Azure sign-in failed,
4 the STS refused (policy, resource, scope), 5 STS or GitLab unavailable (network, 429, 5xx).
See docs/pipelines.md §10.`;

const GIT_CREDENTIAL_EXIT_HELP = `
Exit codes: 0 ok (also: git asked about another host, and got no answer), 1 unexpected
(unsafe cache, git config failed), 2 usage, 3 Azure sign-in failed (get), 4 the STS refused,
5 STS or GitLab unavailable. See docs/pipelines.md §10.`;

/** revoke never signs in (no 3). */
const REVOKE_EXIT_HELP = `
The input must be one GitLab token in a format \`tanuki-sts token\` prints (raw, env, netrc,
git-credentials, docker-config, json); anything else is refused before anything is sent.
RFC 7009 has the STS answer 200 for tokens it does not know too, so exit 0 means the STS
accepted the request, not that it knew the token.
Exit codes: 0 the STS accepted the revocation, 1 unexpected, 2 usage (no GitLab token in the
input; nothing was sent), 4 the STS refused the request, 5 STS unavailable (network, 429, 5xx).
See docs/pipelines.md §10.`;

/** commander collector: a repeatable option becomes a list. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function load() {
  return import('../../client/commands.ts');
}

export function registerClientCommands(program: Command): void {
  // Usage errors must exit 2 (main.ts maps a thrown CommanderError to 2). Subcommands only
  // inherit exitOverride when the program had it before they were created, so set it here.
  const token = program
    .command('token')
    .exitOverride()
    .description('exchange an Entra ID (or OIDC) token for a GitLab token and print it (only it) on stdout');
  addCommonOptions(token);
  addExchangeOptions(token)
    .addOption(
      new Option('--format <format>', 'output format (default raw) [env TANUKI_FORMAT]').choices(
        OUTPUT_FORMATS,
      ),
    )
    .option('--registry <host>', 'docker-config: container registry host [env TANUKI_REGISTRY]')
    .addHelpText('after', EXCHANGE_EXIT_HELP)
    .action(async (opts) => {
      process.exitCode = await (await load()).runToken(opts);
    });

  const exec = program
    .command('exec')
    .exitOverride()
    .description(
      'run a command with GITLAB_TOKEN set and git authenticated for GitLab, then revoke the token (use -- before the command)',
    )
    .argument('<command...>', 'the command and its arguments, after --');
  addCommonOptions(exec);
  addExchangeOptions(exec)
    .option(
      '--keep-env <name>',
      "pass this credential variable to the command anyway (repeatable); by default the pipeline's own credentials (AZURE_CLIENT_SECRET, SYSTEM_ACCESSTOKEN, the id_token variable…) are not passed [env TANUKI_KEEP_ENV]",
      collect,
    )
    .addHelpText(
      'after',
      `${EXCHANGE_EXIT_HELP} Once the command ran, exec exits with the command's code
(128+n if killed by signal n, 127 not found, 126 not executable), also when revoking fails.
The token is revoked when the command exits: background processes it started lose access then.`,
    )
    .action(async (command: string[], opts) => {
      process.exitCode = await (await load()).runExec(command, opts);
    });

  const cred = program
    .command('git-credential')
    .exitOverride()
    .description('git credential helper: mints (and caches) a token for the repository git asks about')
    .argument(
      '[action]',
      'get, store or erase (git supplies it); revoke-all revokes and deletes every token cached for this job (after_script)',
    );
  addCommonOptions(cred);
  addExchangeOptions(cred)
    .option(
      '--gitlab <url>',
      "GitLab base URL (default: the STS metadata's gitlab_url) [env TANUKI_GITLAB_URL]",
    )
    .option('--install', "write the helper into the user's global git config for the GitLab URL")
    .option(
      '--uninstall',
      "remove what --install wrote from the user's global git config (for --gitlab, else for the installs naming --sts, else all)",
    )
    .option('--dry-run', 'with --install or --uninstall: print the git config commands, change nothing')
    .addHelpText(
      'after',
      `
Setup: tanuki-sts git-credential --install --sts https://sts.example.com
  (sets credential.<gitlab>.helper and credential.<gitlab>.useHttpPath=true in ~/.gitconfig;
  tanuki-sts must be the only helper for that URL: a token another helper would keep is revoked)
Undo: tanuki-sts git-credential --uninstall --gitlab https://gitlab.example.com
End of job: tanuki-sts git-credential revoke-all${GIT_CREDENTIAL_EXIT_HELP}`,
    )
    .action(async (action: string | undefined, opts) => {
      process.exitCode = await (await load()).runGitCredential(action, opts);
    });

  const revoke = program
    .command('revoke')
    .exitOverride()
    .description('revoke a token issued by the STS (read from --token-file or stdin)');
  addCommonOptions(revoke)
    .option(
      '--token-file <file>',
      'file holding the token, as `tanuki-sts token` wrote it (raw, env, netrc, git-credentials, docker-config or json)',
    )
    .option('--timeout <duration>', 'per HTTP request (default 30s) [env TANUKI_TIMEOUT]')
    .option('--retries <n>', 'retries (default 2) [env TANUKI_RETRIES]')
    .addHelpText('after', REVOKE_EXIT_HELP)
    .action(async (opts) => {
      process.exitCode = await (await load()).runRevoke(opts);
    });
}
