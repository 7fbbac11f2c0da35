/**
 * The `tanuki-sts` command line. This file only wires sub-commands; each
 * command lives in `src/cli/commands/` and calls the same functions that the
 * servers and tests call.
 */
import { Command, CommanderError } from 'commander';
import { registerClientCommands } from './commands/client.ts';
import { registerDevCommand } from './commands/dev.ts';
import { registerEmulateCommands } from './commands/emulate.ts';
import { registerPolicyCommand } from './commands/policy.ts';
import { registerServeCommand } from './commands/serve.ts';

export function buildProgram(): Command {
  const program = new Command('tanuki-sts')
    .description(
      'Security token service: exchange an Entra ID (or OIDC) token for a short-lived GitLab access token',
    )
    .version('0.1.0')
    .showHelpAfterError()
    // Before the sub-commands are added, so that they inherit it (usage errors exit 2).
    .exitOverride();
  registerClientCommands(program);
  registerServeCommand(program);
  registerEmulateCommands(program);
  registerDevCommand(program);
  registerPolicyCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    // Never a stack trace for the user; the message of our own errors is written for them.
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`tanuki-sts: ${message}\n`);
    if (process.env.TANUKI_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
