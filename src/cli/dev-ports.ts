/**
 * The ports of `tanuki-sts dev`: a fixed default base, so that exported
 * `TANUKI_STS_URL` / `AZURE_AUTHORITY_HOST` and `git-credential --install`
 * entries stay valid across restarts, and the check that every port is free
 * before the stack touches its state dir. Small on purpose: `dev.ts` imports
 * it for `--help`, so every command loads it.
 */
import { createServer } from 'node:net';

/**
 * 18600–18604: below every common ephemeral range (Linux 32768–60999, IANA,
 * Windows and macOS 49152–65535), so the kernel never lends them to outgoing
 * connections, and clear of the usual development ports (3000, 5000, 8000,
 * 8080, 9000, 9090, Prometheus' 9464).
 */
export const DEFAULT_DEV_PORT_BASE = 18600;

/** What listens on base + i, in order. */
export const DEV_PORT_ROLES = [
  'Entra ID emulator',
  'managed identity endpoint',
  'GitLab emulator',
  'STS',
  'STS metrics',
] as const;

/** The highest base whose last port is still a port (65531). */
export const MAX_DEV_PORT_BASE = 65535 - (DEV_PORT_ROLES.length - 1);

/** 0 means any free ports (what tests and `npm run demo` use). */
export function portBaseProblem(base: number): string | undefined {
  if (!Number.isInteger(base) || base < 0) {
    return `--port-base expects a whole number from 1 to ${MAX_DEV_PORT_BASE} (or 0 for any free ports)`;
  }
  if (base > MAX_DEV_PORT_BASE) {
    const last = base + DEV_PORT_ROLES.length - 1;
    return (
      `port base ${base} cannot hold the dev stack's ${DEV_PORT_ROLES.length} ports (${base} to ${last}; ` +
      `the highest port is 65535): use ${MAX_DEV_PORT_BASE} or lower, or 0 for any free ports`
    );
  }
  return undefined;
}

/** The sentence for a port the stack cannot listen on. */
export function portUnavailableMessage(port: number, base: number, code: string | undefined): string {
  const role = DEV_PORT_ROLES[port - base] ?? 'dev stack';
  const why = code === 'EADDRINUSE' ? 'is in use' : `cannot be used (${code ?? 'unknown error'})`;
  return (
    `port ${port} (${role}) on 127.0.0.1 ${why}; choose other ports with --port-base N ` +
    `(the dev stack uses N to N+${DEV_PORT_ROLES.length - 1})`
  );
}

function tryListen(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}

/** The first of the base's ports that cannot be listened on, as a sentence; undefined if all are free. */
export async function firstUnavailablePort(base: number): Promise<string | undefined> {
  for (let i = 0; i < DEV_PORT_ROLES.length; i++) {
    const code = await tryListen(base + i);
    if (code !== undefined) return portUnavailableMessage(base + i, base, code);
  }
  return undefined;
}
