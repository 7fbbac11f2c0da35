/**
 * A minimal `tanuki-sts` with only the client commands, for tests that need
 * to run the CLI as a separate process (git runs the credential helper that
 * way) without depending on the rest of the binary.
 * Run: node --import tsx test/helpers/cli-entry.ts <command> …
 */
import { Command, CommanderError } from 'commander';
import { registerClientCommands } from '../../src/cli/commands/client.ts';

const program = new Command('tanuki-sts').exitOverride();
registerClientCommands(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = err instanceof CommanderError ? (err.exitCode === 0 ? 0 : 2) : 1;
  if (!(err instanceof CommanderError)) process.stderr.write(`tanuki-sts: ${(err as Error).message}\n`);
}
