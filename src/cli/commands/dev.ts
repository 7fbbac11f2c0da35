/** `tanuki-sts dev`: the embedded default stack (emulators + STS). Placeholder until wired. */
import type { Command } from 'commander';

export function registerDevCommand(program: Command): void {
  program.command('dev').description('run the local dev stack (Entra ID and GitLab emulators, STS)');
}
