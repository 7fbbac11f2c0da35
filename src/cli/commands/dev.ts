/**
 * `tanuki-sts dev` (what `npm start` runs): the Entra ID and GitLab emulators
 * and the STS on loopback, wired together, with a SQLite ledger in the state
 * dir. `dev.json` is removed at start and written once, atomically, only
 * after every server it lists accepts connections: its presence means ready.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { onShutdown, parsePort } from '../shared.ts';

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run the local dev stack: Entra ID and GitLab emulators and the STS, on loopback')
    .option('--state-dir <dir>', 'folder for CA, keys, repositories, ledger and dev.json', '.tanuki-dev')
    .option(
      '--port-base <n>',
      'use ports N (Entra), N+1 (managed identity), N+2 (GitLab), N+3 (STS), N+4 (STS metrics)',
      parsePort,
    )
    .option('--quiet', 'print only the ready line', false)
    .action(async (opts: { stateDir: string; portBase?: number; quiet: boolean }) => {
      // Loaded on demand: the pipeline client commands must not pay for the emulators.
      const { startDevStack } = await import('../dev-stack.ts');
      const stack = await startDevStack({ stateDir: resolve(opts.stateDir), portBase: opts.portBase });
      onShutdown(() => stack.close());
      process.stdout.write(opts.quiet ? `ready: ${stack.devJsonPath}\n` : stack.banner());
    });
}
