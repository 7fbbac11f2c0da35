/**
 * What both programs share (`tanuki-sts`, main.ts, and the pipeline client
 * alone, client-main.ts): the version and how a parse ends — commander's own
 * exits (help, version: 0; usage errors: 2), anything else one line on stderr
 * and exit 1, never a stack trace (TANUKI_DEBUG=1 shows it).
 */
import { type Command, CommanderError } from 'commander';

/** What `--version` prints; a test keeps it equal to package.json's `version`. */
export const VERSION = '0.1.0';

export async function runProgram(program: Command, argv: string[]): Promise<void> {
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
