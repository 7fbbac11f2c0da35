/**
 * Operator controls for tests and the dev stack, under `/_emulator/` (no authentication,
 * never faulted; Key Vault has no such paths). Secret values never leave through them:
 * a SHA-256 of each version instead.
 *
 * - `GET /_emulator/secrets`: `[{name, versions: [{version, enabled, created, contentType, sha256}]}]`
 * - `PUT /_emulator/secrets/{name}` `{value, contentType?}`: a new version without a token
 *   (seeding) → `{name, version, sha256}`
 * - `GET|POST|DELETE /_emulator/faults`: `{status (400-599), code?, message?, operations?
 *   ([setSecret|getSecret|getSecretVersions|getSecrets]), count?}`: the next `count` (default:
 *   every) authenticated data-plane requests of those operations answer `status` with a Key
 *   Vault error body instead of running (a failed write-back, a vault outage); `DELETE` clears
 * - `GET /_emulator/stats`, `POST /_emulator/stats/reset`: `{byOperation, byStatus, challenges}`
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SECRET_NAME } from './config.ts';
import { KeyVaultError } from './errors.ts';
import { readJsonObject, sendJson } from './http.ts';
import type { OperationName } from './secrets.ts';
import type { VaultStore } from './store.ts';

const OPERATIONS: OperationName[] = ['setSecret', 'getSecret', 'getSecretVersions', 'getSecrets'];

export interface Fault {
  status: number;
  code: string;
  message: string;
  operations: OperationName[] | null;
  /** Requests left to fail; null = every one. */
  remaining: number | null;
}

export class Faults {
  current: Fault | null = null;

  /** The fault this operation meets, counting it down; undefined when none applies. */
  take(op: OperationName): KeyVaultError | undefined {
    const f = this.current;
    if (!f || (f.operations && !f.operations.includes(op))) return undefined;
    if (f.remaining !== null) {
      f.remaining--;
      if (f.remaining <= 0) this.current = null;
    }
    return new KeyVaultError(f.status, f.code, f.message);
  }
}

export interface Stats {
  byOperation: Record<string, number>;
  byStatus: Record<string, number>;
  /** Requests answered with the authentication challenge (no or a refused token). */
  challenges: number;
}

export const newStats = (): Stats => ({ byOperation: {}, byStatus: {}, challenges: 0 });

export class AdminRequestError extends Error {
  static readonly code = 'ERR_KEYVAULT_EMULATOR_ADMIN_REQUEST';
  readonly code = AdminRequestError.code;
  override name = 'AdminRequestError';
}

export async function handleAdminRequest(
  ctx: { store: VaultStore; faults: Faults; stats: Stats },
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const p = path.replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  if (p === '/_emulator/secrets' && method === 'GET') return sendJson(res, 200, ctx.store.describe());
  const put = /^\/_emulator\/secrets\/([^/]+)$/.exec(p);
  if (put && method === 'PUT') {
    const name = decodeURIComponent(put[1] ?? '');
    if (!SECRET_NAME.test(name)) throw new AdminRequestError('the name must be 1-127 of 0-9 a-z A-Z -');
    const body = await readJsonObject(req);
    if (typeof body.value !== 'string') throw new AdminRequestError('value must be a string');
    if (body.contentType !== undefined && typeof body.contentType !== 'string') {
      throw new AdminRequestError('contentType must be a string');
    }
    const { secret, version } = ctx.store.set(name, {
      value: body.value,
      ...(body.contentType === undefined ? {} : { contentType: body.contentType as string }),
    });
    return sendJson(res, 200, {
      name: secret.name,
      version: version.version,
      sha256: createHash('sha256').update(version.value).digest('hex'),
    });
  }
  if (p === '/_emulator/faults') {
    if (method === 'GET') return sendJson(res, 200, ctx.faults.current ?? {});
    if (method === 'DELETE') {
      ctx.faults.current = null;
      res.writeHead(204).end();
      return;
    }
    if (method === 'POST') {
      ctx.faults.current = parseFault(await readJsonObject(req));
      return sendJson(res, 200, ctx.faults.current);
    }
  }
  if (p === '/_emulator/stats' && method === 'GET') return sendJson(res, 200, ctx.stats);
  if (p === '/_emulator/stats/reset' && method === 'POST') {
    Object.assign(ctx.stats, newStats());
    res.writeHead(204).end();
    return;
  }
  sendJson(res, 404, {
    error: { code: 'NotFound', message: `no operator endpoint ${method} ${p.slice(0, 200)}` },
  });
}

function parseFault(b: Record<string, unknown>): Fault {
  const status = b.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new AdminRequestError('status must be an integer from 400 to 599');
  }
  for (const k of ['code', 'message'] as const) {
    if (b[k] !== undefined && (typeof b[k] !== 'string' || b[k] === '')) {
      throw new AdminRequestError(`${k} must be a non-empty string`);
    }
  }
  let operations: OperationName[] | null = null;
  if (b.operations !== undefined) {
    if (!Array.isArray(b.operations) || !b.operations.every((o) => OPERATIONS.includes(o as OperationName))) {
      throw new AdminRequestError(`operations must be a list of ${OPERATIONS.join(', ')}`);
    }
    operations = b.operations as OperationName[];
  }
  let remaining: number | null = null;
  if (b.count !== undefined) {
    if (typeof b.count !== 'number' || !Number.isInteger(b.count) || b.count < 1) {
      throw new AdminRequestError('count must be a positive integer');
    }
    remaining = b.count;
  }
  return {
    status,
    code:
      (b.code as string | undefined) ??
      (status === 429 ? 'Throttled' : status >= 500 ? 'ServiceUnavailable' : 'BadParameter'),
    message: (b.message as string | undefined) ?? 'Injected fault (emulator).',
    operations,
    remaining,
  };
}
