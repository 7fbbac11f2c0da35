/**
 * The secrets data plane (Key Vault REST API 7.x / 2025-07-01, "Secrets" operations; the
 * request and answer shapes of `Azure/azure-rest-api-specs`
 * `specification/keyvault/Security.KeyVault.Secrets/examples/`):
 *
 * | request                                   | data action (Azure RBAC)  | answer                                |
 * | ----------------------------------------- | ------------------------- | ------------------------------------- |
 * | `PUT /secrets/{name}`                     | `secrets/setSecret`       | 200 the new version's bundle          |
 * | `GET /secrets/{name}[/]`                  | `secrets/getSecret`       | 200 the latest version's bundle       |
 * | `GET /secrets/{name}/{version}`           | `secrets/getSecret`       | 200 that version's bundle             |
 * | `GET /secrets/{name}/versions`            | `secrets/readMetadata`    | 200 `{value: [items], nextLink}`      |
 * | `GET /secrets`                            | `secrets/readMetadata` on the vault | 200 `{value: [items], nextLink}` |
 *
 * Checks, after authentication and `api-version` (index.ts): the secret name (`400
 * BadParameter`), the caller's role assignments (`403 Forbidden`, naming the action), then
 * the secret and version (`404 SecretNotFound`), then the body.
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from './auth.ts';
import {
  isAllowed,
  type KeyVaultConfig,
  SECRET_NAME,
  type SecretDataAction,
  vaultResourceId,
} from './config.ts';
import { kvErrors } from './errors.ts';
import { readJsonObject } from './http.ts';
import type { Secret, SecretVersion, SetSecretInput, VaultStore } from './store.ts';

export type OperationName = 'setSecret' | 'getSecret' | 'getSecretVersions' | 'getSecrets';

export interface Operation {
  name: OperationName;
  action: SecretDataAction;
  /** The secret's name as given in the path (checked later); none for `getSecrets`. */
  secret?: string;
  /** `getSecret`: a version, or none for the latest. */
  version?: string;
}

/** The operation a method and path name, or a 404/501 KeyVaultError. */
export function matchOperation(method: string, pathname: string): Operation {
  const parts = pathname.split('/').slice(1);
  if (parts[0] !== 'secrets') {
    const known = ['keys', 'certificates', 'deletedsecrets', 'deletedkeys', 'deletedcertificates', 'storage'];
    if (known.includes((parts[0] ?? '').toLowerCase()))
      throw kvErrors.notImplemented(`${method} /${parts[0]}`);
    throw kvErrors.notFound();
  }
  const name = decode(parts[1] ?? '');
  const rest = parts.slice(2);
  if (name === '') {
    if (rest.length > 0) throw kvErrors.notFound();
    if (method !== 'GET') throw kvErrors.notImplemented(`${method} /secrets`);
    return { name: 'getSecrets', action: 'readMetadata' };
  }
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) {
    if (method === 'PUT') return { name: 'setSecret', action: 'setSecret', secret: name };
    if (method === 'GET') return { name: 'getSecret', action: 'getSecret', secret: name };
    throw kvErrors.notImplemented(`${method} /secrets/{name}`);
  }
  if (rest.length === 1 || (rest.length === 2 && rest[1] === '')) {
    const second = decode(rest[0] ?? '');
    if (method === 'GET' && second === 'versions') {
      return { name: 'getSecretVersions', action: 'readMetadata', secret: name };
    }
    if (method === 'GET') return { name: 'getSecret', action: 'getSecret', secret: name, version: second };
    throw kvErrors.notImplemented(
      `${method} /secrets/{name}/${second === 'versions' ? 'versions' : '{version}'}`,
    );
  }
  throw kvErrors.notFound();
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export interface SecretsContext {
  config: KeyVaultConfig;
  store: VaultStore;
  /** `https://<host the client used>:PORT`: the base of `id` and `nextLink`. */
  baseUrl: string;
  apiVersion: string;
  query: URLSearchParams;
}

export interface OperationResult {
  status: number;
  body: unknown;
}

/** Runs an authenticated operation. */
export async function runOperation(
  ctx: SecretsContext,
  op: Operation,
  caller: Principal,
  req: IncomingMessage,
): Promise<OperationResult> {
  if (op.secret !== undefined && !SECRET_NAME.test(op.secret))
    throw kvErrors.invalidName(op.secret.slice(0, 200));
  authorize(ctx.config, caller, op);
  switch (op.name) {
    case 'setSecret': {
      const input = parseSetBody(await readJsonObject(req));
      const { secret, version } = ctx.store.set(op.secret as string, input);
      return { status: 200, body: bundle(ctx.baseUrl, secret, version) };
    }
    case 'getSecret': {
      const name = op.secret as string;
      const secret = ctx.store.get(name);
      const version = op.version ? ctx.store.version(name, op.version) : ctx.store.latest(name);
      if (!secret || !version) throw kvErrors.secretNotFound(op.version ? `${name}/${op.version}` : name);
      if (!version.enabled) throw kvErrors.secretDisabled();
      return { status: 200, body: bundle(ctx.baseUrl, secret, version) };
    }
    case 'getSecretVersions': {
      const name = op.secret as string;
      const secret = ctx.store.get(name);
      if (!secret) throw kvErrors.secretNotFound(name);
      const items = secret.versions.map((v) => item(`${ctx.baseUrl}/secrets/${secret.name}/${v.version}`, v));
      return { status: 200, body: page(ctx, items, `/secrets/${secret.name}/versions`) };
    }
    case 'getSecrets': {
      const items = ctx.store.list().flatMap((s) => {
        const latest = s.versions.at(-1);
        return latest ? [item(`${ctx.baseUrl}/secrets/${s.name}`, latest)] : [];
      });
      return { status: 200, body: page(ctx, items, '/secrets') };
    }
  }
}

/** Azure RBAC: a role assignment of the caller's `oid` whose role carries the action, on the vault or the secret. */
function authorize(config: KeyVaultConfig, caller: Principal, op: Operation): void {
  if (isAllowed(config, caller.objectId, op.action, op.secret)) return;
  const vault = vaultResourceId(config);
  throw kvErrors.forbidden({
    action: `Microsoft.KeyVault/vaults/secrets/${op.action}/action`,
    appId: caller.appId,
    objectId: caller.objectId,
    issuer: caller.issuer,
    resource: op.secret === undefined ? vault : `${vault}/secrets/${op.secret}`,
    vaultName: config.name,
    location: config.location,
  });
}

/** `SecretSetParameters`: `value` (required), `contentType`, `attributes {enabled, nbf, exp}`, `tags` (≤ 15). */
function parseSetBody(body: Record<string, unknown>): SetSecretInput {
  const { value, contentType, attributes, tags } = body;
  if (typeof value !== 'string')
    throw kvErrors.badParameter("The secret's value must be a string (emulator).");
  if (Buffer.byteLength(value) > 25 * 1024) {
    throw kvErrors.badParameter('The secret value is larger than 25 KB (emulator).');
  }
  const input: SetSecretInput = { value };
  if (contentType !== undefined && contentType !== null) {
    if (typeof contentType !== 'string' || contentType.length > 255) {
      throw kvErrors.badParameter('contentType must be a string of at most 255 characters (emulator).');
    }
    input.contentType = contentType;
  }
  if (attributes !== undefined && attributes !== null) {
    if (typeof attributes !== 'object' || Array.isArray(attributes)) {
      throw kvErrors.badParameter('attributes must be an object (emulator).');
    }
    const a = attributes as Record<string, unknown>;
    if (a.enabled !== undefined && a.enabled !== null) {
      if (typeof a.enabled !== 'boolean')
        throw kvErrors.badParameter('attributes.enabled must be a boolean (emulator).');
      input.enabled = a.enabled;
    }
    for (const k of ['nbf', 'exp'] as const) {
      const v = a[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw kvErrors.badParameter(`attributes.${k} must be Unix seconds (emulator).`);
      }
      input[k] = v;
    }
  }
  if (tags !== undefined && tags !== null) {
    if (typeof tags !== 'object' || Array.isArray(tags))
      throw kvErrors.badParameter('tags must be an object (emulator).');
    const entries = Object.entries(tags as Record<string, unknown>);
    if (entries.length > 15 || entries.some(([, v]) => typeof v !== 'string')) {
      throw kvErrors.badParameter('tags must be at most 15 string values (emulator).');
    }
    input.tags = Object.fromEntries(entries) as Record<string, string>;
  }
  return input;
}

function attributes(v: SecretVersion) {
  return {
    enabled: v.enabled,
    ...(v.nbf === undefined ? {} : { nbf: v.nbf }),
    ...(v.exp === undefined ? {} : { exp: v.exp }),
    created: v.created,
    updated: v.updated,
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
  };
}

/** `SecretBundle`: `value`, `contentType`, `id` (`<vault>/secrets/<name>/<version>`), `attributes`, `tags`. */
function bundle(baseUrl: string, s: Secret, v: SecretVersion) {
  return {
    value: v.value,
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    id: `${baseUrl}/secrets/${s.name}/${v.version}`,
    attributes: attributes(v),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
  };
}

/** `SecretItem`: no value. */
function item(id: string, v: SecretVersion) {
  return {
    id,
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    attributes: attributes(v),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
  };
}

/**
 * A page of a list: `maxresults` 1-25 (default 25, "Maximum number of results to return in a
 * page. If not specified the service will return up to 25 results."), and a `nextLink` carrying
 * `api-version`, an opaque `$skiptoken` and `maxresults`, or `null` on the last page.
 */
function page(ctx: SecretsContext, items: unknown[], path: string) {
  const maxRaw = ctx.query.get('maxresults');
  let max = 25;
  if (maxRaw !== null) {
    if (!/^\d{1,3}$/.test(maxRaw) || Number(maxRaw) < 1 || Number(maxRaw) > 25) {
      throw kvErrors.badParameter('maxresults must be an integer from 1 to 25 (emulator).');
    }
    max = Number(maxRaw);
  }
  let offset = 0;
  const skip = ctx.query.get('$skiptoken');
  if (skip !== null) {
    try {
      const parsed = JSON.parse(Buffer.from(skip, 'base64url').toString('utf8')) as { offset?: unknown };
      if (typeof parsed.offset !== 'number' || !Number.isInteger(parsed.offset) || parsed.offset < 0) {
        throw new Error('bad offset');
      }
      offset = parsed.offset;
    } catch {
      throw kvErrors.badParameter('The $skiptoken is invalid (emulator).');
    }
  }
  const value = items.slice(offset, offset + max);
  let nextLink: string | null = null;
  if (offset + max < items.length) {
    const token = Buffer.from(JSON.stringify({ offset: offset + max })).toString('base64url');
    const q = new URLSearchParams({ 'api-version': ctx.apiVersion, $skiptoken: token });
    if (maxRaw !== null) q.set('maxresults', String(max));
    nextLink = `${ctx.baseUrl}${path}?${q.toString()}`;
  }
  return { value, nextLink };
}
