/**
 * Operator controls for tests under `/_emulator/…` (no GitLab API lives
 * there; no authentication; faults never apply here). See README.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ApiSettings } from './api.ts';
import { type Faults, faultSchema, type RateLimiter, type Stats } from './faults.ts';
import { readBody, sendJson, sendNoContent } from './http.ts';
import type { DeployTokenRecord, GitlabStore, TokenRecord } from './store.ts';

export interface AdminContext {
  store: GitlabStore;
  faults: Faults;
  rateLimiter: RateLimiter;
  stats: Stats;
  /** The API settings; `movedProjects` can be changed at run time. */
  settings: ApiSettings;
}

const clockSchema = z.strictObject({ offsetSeconds: z.number().finite() });
const settingsSchema = z.strictObject({ movedProjects: z.enum(['redirect', 'not_found', 'follow']) });

export async function handleAdminRequest(
  ctx: AdminContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const key = `${req.method} ${path.replace(/\/+$/, '')}`;
  switch (key) {
    case 'GET /_emulator/faults':
      return sendJson(res, 200, ctx.faults.describe());
    case 'POST /_emulator/faults': {
      const parsed = faultSchema.safeParse(await jsonBody(req));
      if (!parsed.success) return badRequest(res, parsed.error);
      ctx.faults.set(parsed.data);
      ctx.rateLimiter.reset();
      return sendJson(res, 200, ctx.faults.describe());
    }
    case 'DELETE /_emulator/faults':
      ctx.faults.clear();
      ctx.rateLimiter.reset();
      return sendNoContent(res);
    case 'GET /_emulator/tokens':
      return sendJson(
        res,
        200,
        [...ctx.store.tokens.values()].map((t) => describeToken(ctx.store, t)),
      );
    case 'GET /_emulator/deploy_tokens':
      return sendJson(
        res,
        200,
        [...ctx.store.deployTokens.values()].map((t) => describeDeployToken(ctx.store, t)),
      );
    case 'GET /_emulator/stats':
      return sendJson(res, 200, ctx.stats.toJSON());
    case 'POST /_emulator/stats/reset':
      ctx.stats.reset();
      return sendNoContent(res);
    case 'GET /_emulator/redirects':
      return sendJson(
        res,
        200,
        [...ctx.store.redirects.values()].map((r) => ({
          path: r.path,
          type: r.type,
          id: r.id,
          target_path:
            (r.type === 'project' ? ctx.store.projects.get(r.id) : ctx.store.groups.get(r.id))?.path ?? null,
          created_at: r.createdAt,
        })),
      );
    case 'GET /_emulator/settings':
      return sendJson(res, 200, { movedProjects: ctx.settings.movedProjects });
    case 'POST /_emulator/settings': {
      const parsed = settingsSchema.safeParse(await jsonBody(req));
      if (!parsed.success) return badRequest(res, parsed.error);
      ctx.settings.movedProjects = parsed.data.movedProjects;
      return sendJson(res, 200, { movedProjects: ctx.settings.movedProjects });
    }
    case 'GET /_emulator/clock':
      return sendJson(res, 200, clockState(ctx.store));
    case 'POST /_emulator/clock': {
      const parsed = clockSchema.safeParse(await jsonBody(req));
      if (!parsed.success) return badRequest(res, parsed.error);
      ctx.store.clockOffsetSeconds = parsed.data.offsetSeconds;
      return sendJson(res, 200, clockState(ctx.store));
    }
    default:
      return sendJson(res, 404, { error: 'not_found', error_description: 'no such emulator endpoint' });
  }
}

function clockState(store: GitlabStore) {
  return { offsetSeconds: store.clockOffsetSeconds, now: store.nowIso() };
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = (await readBody(req)).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return Symbol('invalid json');
  }
}

function badRequest(res: ServerResponse, err: z.ZodError): void {
  const issue = err.issues[0];
  sendJson(res, 400, {
    error: 'invalid_request',
    error_description: `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
  });
}

/** A token as the inspection endpoint shows it: everything but the value (its SHA-256 instead). */
export function describeToken(store: GitlabStore, t: TokenRecord) {
  const user = store.users.get(t.userId);
  const resource =
    t.kind === 'project' && t.resourceId !== null
      ? { type: 'project', id: t.resourceId, path: store.projects.get(t.resourceId)?.path ?? null }
      : t.kind === 'group' && t.resourceId !== null
        ? { type: 'group', id: t.resourceId, path: store.groups.get(t.resourceId)?.path ?? null }
        : null;
  return {
    id: t.id,
    kind: t.kind,
    resource,
    user_id: t.userId,
    username: user?.username ?? null,
    name: t.name,
    description: t.description,
    scopes: [...t.scopes],
    access_level: t.accessLevel,
    expires_at: t.expiresAt,
    revoked: t.revoked,
    active: store.isActive(t),
    created_at: t.createdAt,
    last_used_at: t.lastUsedAt,
    previous_id: t.previousId,
    sha256: t.sha256,
  };
}

/** A deploy token as the inspection endpoint shows it: everything but the value (its SHA-256 instead). */
export function describeDeployToken(store: GitlabStore, t: DeployTokenRecord) {
  const path = (t.kind === 'project' ? store.projects.get(t.resourceId) : store.groups.get(t.resourceId))
    ?.path;
  return {
    id: t.id,
    resource: { type: t.kind, id: t.resourceId, path: path ?? null },
    name: t.name,
    username: store.deployTokenUsername(t),
    scopes: [...t.scopes],
    expires_at: t.expiresAt,
    revoked: t.revoked,
    deleted: t.deletedAt !== null,
    deleted_at: t.deletedAt,
    active: store.isDeployTokenActive(t),
    created_at: t.createdAt,
    creator_id: t.creatorId,
    last_used_at: t.lastUsedAt,
    sha256: t.sha256,
  };
}
