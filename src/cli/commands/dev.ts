/**
 * `tanuki-sts dev` (what `npm start` runs): the Entra ID and GitLab emulators
 * and the STS on loopback, wired together, with a SQLite ledger in the state
 * dir, on fixed ports (`--port-base`, default 18600) so exported URLs and
 * git credential entries survive a restart. One stack per state dir: a second
 * start is refused before it touches anything. `dev.json` is written once,
 * atomically, only after every server it lists accepts connections, and
 * removed when the stack stops: its presence means ready.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_DEV_PORT_BASE, portBaseProblem } from '../dev-ports.ts';
import { onShutdown } from '../shared.ts';

function parsePortBase(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  const problem = portBaseProblem(n);
  if (problem) throw new InvalidArgumentError(`${problem}.`);
  return n;
}

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description(
      'run the local dev stack: Entra ID and GitLab emulators and the STS, on loopback, on fixed ports ' +
        '(one stack per state dir)',
    )
    .option('--state-dir <dir>', 'folder for CA, keys, repositories, ledger and dev.json', '.tanuki-dev')
    .option(
      '--port-base <n>',
      'ports N (Entra ID), N+1 (managed identity), N+2 (GitLab), N+3 (STS), N+4 (STS metrics); ' +
        '0: any free ports',
      parsePortBase,
      DEFAULT_DEV_PORT_BASE,
    )
    .option('--quiet', 'print only the ready line', false)
    .action(async (opts: { stateDir: string; portBase: number; quiet: boolean }) => {
      // Loaded on demand: the pipeline client commands must not pay for the emulators.
      const { startDevStack } = await import('../dev-stack.ts');
      const starting = startDevStack({
        stateDir: opts.stateDir,
        portBase: opts.portBase,
        notice: (line) => process.stderr.write(`tanuki-sts: ${line}\n`),
      });
      // A signal during the start waits for it, then stops what started: dev.json never outlives the stack.
      const stop = async () => (await starting.catch(() => undefined))?.close();
      onShutdown(stop);
      // Closing the terminal (SIGHUP) stops the stack as cleanly as Ctrl-C.
      process.once('SIGHUP', () => {
        stop().then(
          () => process.exit(129),
          () => process.exit(1),
        );
      });
      const stack = await starting;
      process.stdout.write(opts.quiet ? `ready: ${stack.devJsonPath}\n` : stack.banner());
    });
}
