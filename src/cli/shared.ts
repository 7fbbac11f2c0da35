/** Small helpers shared by CLI commands. */
import { InvalidArgumentError } from 'commander';

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

/** Run `fn` once on SIGINT/SIGTERM, then exit. A second signal exits at once. */
export function onShutdown(fn: () => Promise<void> | void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    Promise.resolve()
      .then(fn)
      .then(
        () => process.exit(signal === 'SIGINT' ? 130 : 0),
        (err: unknown) => {
          process.stderr.write(`shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(1);
        },
      );
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
