/**
 * Project and group deploy tokens (`lib/api/deploy_tokens.rb`, `app/models/deploy_token.rb`,
 * `app/services/concerns/deploy_token_methods.rb`, `lib/api/entities/deploy_token.rb`,
 * `doc/api/deploy_tokens.md`), as the public recordings of 17.11–19.1 show them
 * (`ilijamt/vault-plugin-secrets-gitlab`, `tests/integration/testdata/e2e/<version>/TestWithProjectDeployToken.yaml`
 * and `TestWithGroupDeployToken.yaml`).
 *
 * Checks run in GitLab's order: Grape parameter validation (`400 {"error":"… is missing"}`), the
 * project or group (`404 Project Not Found`), the caller's right (`authorize!`: `403 {"message":"403 Forbidden"}`;
 * Maintainer on a project, Maintainer to list a group's tokens and Owner to create or delete them),
 * then the model's validations (`400 {"message":"<errors as one sentence>"}`, `render_api_error!`).
 * A token that does not exist (or belongs elsewhere) is `ActiveRecord::RecordNotFound`:
 * `404 {"message":"404 Not found"}`.
 *
 * `expires_at` is a `DateTime` parameter, stored as a time and enforced to the second when the token
 * authenticates (`DeployToken.active`: `expires_at >= NOW()`); GitLab answers it with milliseconds
 * (`"2026-06-30T00:00:00.000Z"`). An expiry in the past is not refused (GitLab has no such
 * validation): the token is created and never authenticates. `DELETE` destroys the token.
 */
import type { Caller } from './auth.ts';
import { deployTokenEntity } from './entities.ts';
import { apiErrors } from './errors.ts';
import { INVALID, type Params } from './http.ts';
import { pageRequest, paginate } from './pagination.ts';
import type { Resource } from './resources.ts';
import { DEPLOY_TOKEN_SCOPES, MAINTAINER, OWNER } from './roles.ts';
import { type DeployTokenRecord, type GitlabStore, generateDeployTokenValue } from './store.ts';

export interface DeployTokenResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** `DeployToken` username rule: `/\A[a-zA-Z0-9\.\+_-]+\z/`, at most 255 characters. */
const USERNAME = /^[a-zA-Z0-9.+_-]+$/;
const USERNAME_RULE = "Username can contain only letters, digits, '_', '-', '+', and '.'";
/**
 * What Grape's `DateTime` coercion takes here: a date (midnight UTC) or an ISO 8601 date-time,
 * seconds and fractions optional, a zone (`Z`, `+02:00`) optional (UTC without one).
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * Who may read (list, get) a resource's deploy tokens: Maintainers, of a project or a group
 * (`read_deploy_token`). Who may create and delete them: Maintainers of a project, Owners of a
 * group (`create_deploy_token`, `destroy_deploy_token`; `doc/api/deploy_tokens.md`).
 */
const READ_LEVEL = MAINTAINER;
function manageLevel(resource: Resource): number {
  return resource.type === 'project' ? MAINTAINER : OWNER;
}

/** An `expires_at` as GitLab stores and shows it (UTC, milliseconds), undefined when not a date-time. */
export function parseDeployExpiry(value: string): string | undefined {
  const m = DATE_TIME.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) return undefined;
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
    if (!z) return undefined;
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? '0'));
  }
  const ms =
    Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) +
    Math.floor(Number(`0.${frac || '0'}`) * 1000) -
    offsetMinutes * 60_000;
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** Grape's `Boolean` for `active`: absent (no filter), true or false, else `active is invalid`. */
function activeFilter(params: Params): boolean | undefined {
  const v = params.string('active');
  if (v === undefined || v === '') return undefined;
  if (v !== INVALID) {
    const l = v.toLowerCase();
    if (l === 'true' || l === '1') return true;
    if (l === 'false' || l === '0') return false;
  }
  throw apiErrors.invalidParams(['active is invalid']);
}

/** `requires :token_id, type: Integer`. */
function tokenIdParam(raw: string): number {
  if (!/^\d+$/.test(raw)) throw apiErrors.invalidParams(['token_id is invalid']);
  return Number(raw);
}

function listed(
  store: GitlabStore,
  tokens: DeployTokenRecord[],
  params: Params,
  requestUrl: URL,
): DeployTokenResult {
  const active = activeFilter(params);
  const pageReq = pageRequest(params);
  const matching = active ? tokens.filter((t) => store.isDeployTokenActive(t)) : tokens;
  const { page, headers } = paginate(matching, pageReq, requestUrl);
  return { status: 200, body: page.map((t) => deployTokenEntity(store, t)), headers };
}

/** `GET /deploy_tokens` (administrators only: `authenticated_as_admin!`). */
export function listAllDeployTokens(
  store: GitlabStore,
  caller: Caller,
  params: Params,
  requestUrl: URL,
): DeployTokenResult {
  if (!caller.user.admin) throw apiErrors.forbidden();
  return listed(store, store.allDeployTokens(), params, requestUrl);
}

/** `GET /{projects,groups}/:id/deploy_tokens` (`active` filter, pagination). */
export function listDeployTokens(
  store: GitlabStore,
  caller: Caller,
  resourceOf: () => Resource,
  params: Params,
  requestUrl: URL,
): DeployTokenResult {
  activeFilter(params);
  pageRequest(params);
  const resource = resourceOf();
  if (resource.roleOf(caller.user) < READ_LEVEL) throw apiErrors.forbidden();
  return listed(store, store.resourceDeployTokens(resource.type, resource.id), params, requestUrl);
}

function findDeployToken(store: GitlabStore, resource: Resource, id: number): DeployTokenRecord {
  const t = store.deployTokens.get(id);
  // `user_project.deploy_tokens.find(id)`: another resource's token, or a deleted one, is not found.
  if (!t || t.deletedAt !== null || t.kind !== resource.type || t.resourceId !== resource.id)
    throw apiErrors.notFound();
  return t;
}

/** `GET /{projects,groups}/:id/deploy_tokens/:token_id`. */
export function getDeployToken(
  store: GitlabStore,
  caller: Caller,
  resourceOf: () => Resource,
  tokenId: string,
): DeployTokenResult {
  const id = tokenIdParam(tokenId);
  const resource = resourceOf();
  if (resource.roleOf(caller.user) < READ_LEVEL) throw apiErrors.forbidden();
  return { status: 200, body: deployTokenEntity(store, findDeployToken(store, resource, id)) };
}

/** `DELETE /{projects,groups}/:id/deploy_tokens/:token_id` → 204; the token is destroyed. */
export function deleteDeployToken(
  store: GitlabStore,
  caller: Caller,
  resourceOf: () => Resource,
  tokenId: string,
): DeployTokenResult {
  const id = tokenIdParam(tokenId);
  const resource = resourceOf();
  if (resource.roleOf(caller.user) < manageLevel(resource)) throw apiErrors.forbidden();
  store.deleteDeployToken(findDeployToken(store, resource, id));
  return { status: 204 };
}

/** `ActiveModel::Errors#full_messages.to_sentence`: "a", "a and b", "a, b, and c". */
function toSentence(messages: string[]): string {
  if (messages.length <= 2) return messages.join(' and ');
  return `${messages.slice(0, -1).join(', ')}, and ${messages.at(-1)}`;
}

/** `POST /{projects,groups}/:id/deploy_tokens` → 201 with `token` (`DeployTokenWithToken`). */
export function createDeployToken(
  store: GitlabStore,
  caller: Caller,
  resourceOf: () => Resource,
  params: Params,
): DeployTokenResult {
  // Grape validation, in the order the parameters are declared.
  const problems: string[] = [];
  const name = params.string('name');
  if (name === undefined) problems.push('name is missing');
  else if (name === INVALID) problems.push('name is invalid');
  const rawScopes = params.array('scopes');
  let scopes: string[] = [];
  if (rawScopes === undefined) problems.push('scopes is missing');
  else if (rawScopes === INVALID) problems.push('scopes is invalid');
  else {
    // `coerce_with: CommaSeparatedToArray`: "read_repository,read_registry" is two scopes.
    scopes = rawScopes.flatMap((s) => s.split(',')).map((s) => s.trim());
    if (!scopes.every((s) => DEPLOY_TOKEN_SCOPES.includes(s)))
      problems.push('scopes does not have a valid value');
  }
  const expiresRaw = params.string('expires_at');
  let expiresAt: string | null = null;
  if (expiresRaw === INVALID) problems.push('expires_at is invalid');
  else if (typeof expiresRaw === 'string' && expiresRaw !== '') {
    const parsed = parseDeployExpiry(expiresRaw);
    if (parsed === undefined) problems.push('expires_at is invalid');
    else expiresAt = parsed;
  }
  const usernameRaw = params.string('username');
  if (usernameRaw === INVALID) problems.push('username is invalid');
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const resource = resourceOf();
  if (resource.roleOf(caller.user) < manageLevel(resource)) throw apiErrors.forbidden();

  // DeployToken validations, in the order the model declares them.
  const username = typeof usernameRaw === 'string' && usernameRaw.trim() !== '' ? usernameRaw : null;
  const tokenName = name as string;
  const invalid: string[] = [];
  if (scopes.length === 0) invalid.push("Scopes can't be blank");
  if (username !== null && username.length > 255)
    invalid.push('Username is too long (maximum is 255 characters)');
  if (username !== null && !USERNAME.test(username)) invalid.push(USERNAME_RULE);
  if (tokenName.length > 255) invalid.push('Name is too long (maximum is 255 characters)');
  if (invalid.length > 0) throw apiErrors.plain(400, toSentence(invalid));

  const value = generateDeployTokenValue();
  const token = store.addDeployToken(value, {
    kind: resource.type,
    resourceId: resource.id,
    name: tokenName,
    username,
    scopes: DEPLOY_TOKEN_SCOPES.filter((s) => scopes.includes(s)),
    expiresAt,
    creatorId: caller.user.id,
  });
  return { status: 201, body: deployTokenEntity(store, token, value) };
}
