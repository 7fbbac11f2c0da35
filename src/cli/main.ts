/**
 * The `tanuki-sts` command line. This file only wires sub-commands; each
 * command lives in `src/cli/commands/` and calls the same functions that the
 * servers and tests call.
 */
import { Command } from 'commander';
import { registerClientCommands } from './commands/client.ts';
import { registerCredentialCommands } from './commands/credential.ts';
import { registerDevCommand } from './commands/dev.ts';
import { registerEmulateCommands } from './commands/emulate.ts';
import { registerGrantsCommands } from './commands/grants.ts';
import { registerMigrateCommand } from './commands/migrate.ts';
import { registerPolicyCommand } from './commands/policy.ts';
import { registerReloadCommand } from './commands/reload.ts';
import { registerServeCommand } from './commands/serve.ts';
import { runProgram, VERSION } from './program.ts';

export function buildProgram(): Command {
  const program = new Command('tanuki-sts')
    .description(
      'Security token service: exchange an Entra ID (or OIDC) token for a short-lived GitLab access token',
    )
    .version(VERSION)
    .showHelpAfterError()
    // Before the sub-commands are added, so that they inherit it (usage errors exit 2).
    .exitOverride();
  registerClientCommands(program);
  registerServeCommand(program);
  registerReloadCommand(program);
  registerMigrateCommand(program);
  registerCredentialCommands(program);
  registerGrantsCommands(program);
  registerEmulateCommands(program);
  registerDevCommand(program);
  registerPolicyCommand(program);
  return program;
}

/** Exit codes: commander's (help, version) 0, usage 2, anything else 1, one line, no stack trace (program.ts). */
export async function main(argv: string[]): Promise<void> {
  await runProgram(buildProgram(), argv);
}
