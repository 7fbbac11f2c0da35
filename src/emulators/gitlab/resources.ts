/**
 * Finding a project or group for a caller, as `find_project!` / `find_group!`
 * do (`lib/api/helpers.rb`): a resource the caller cannot see answers exactly
 * like a missing one, `404 Project Not Found` / `404 Group Not Found`.
 * All resources are private: seeing one needs a role on it (admins see all).
 *
 * Moved resources (`lib/api/helpers.rb`, `find_project` and `find_group`):
 * a project `:id` that is the old full path of a moved project (a redirect
 * route) is found, and then, in the default `redirect` mode, a GET answers
 * `301` to the same URL with the project's id and any other method `405`
 * (`project_moved?`); the caller must see the project first (else `404`).
 * Groups never follow redirect routes in the REST API (`find_by_full_path(id)`
 * without `follow_redirects`). See `settings.movedProjects` in config.ts.
 */
import type { ApiCall } from './api.ts';
import type { MovedProjectsMode } from './config.ts';
import { apiErrors, GitlabRedirect } from './errors.ts';
import { MAINTAINER, OWNER } from './roles.ts';
import type { GitlabStore, Group, Project, ResourceType, User } from './store.ts';

export interface Resource {
  type: ResourceType;
  id: number;
  name: string;
  path: string;
  /** The caller's role on it (admins: Owner). */
  roleOf(user: User): number;
  /** The role needed to manage its access tokens: Maintainer (project), Owner (group). */
  manageLevel: number;
  project?: Project;
  group?: Group;
}

/** The request, for answering a moved project's old path. */
export interface MovedLookup {
  mode: MovedProjectsMode;
  method: string;
  /** The request URL as the client sent it (the `301` keeps everything but the `:id` segment). */
  url: URL;
}

export const GUEST = 10;
export const MINIMAL_ACCESS = 5;

/**
 * The `Location` of a moved project: the request URL with the `:id` segment
 * (`/api/v4/projects/<here>/…`) replaced by the numeric id, the rest and the
 * query string kept (`url_with_project_id`).
 */
export function movedLocation(url: URL, projectId: number): string {
  const parts = url.pathname.split('/');
  const at = parts.indexOf('projects');
  if (at >= 0 && at + 1 < parts.length) parts[at + 1] = String(projectId);
  return `${url.origin}${parts.join('/')}${url.search}`;
}

export function findResource(
  store: GitlabStore,
  type: ResourceType,
  ref: string,
  user: User,
  moved?: MovedLookup,
): Resource {
  const mode = moved?.mode ?? 'not_found';
  if (type === 'project') {
    const found = store.resolveProject(ref);
    const project = found && (!found.redirected || mode !== 'not_found') ? found.resource : undefined;
    if (!project || store.projectRole(user, project) < GUEST) throw apiErrors.notFound('Project');
    if (found?.redirected && mode === 'redirect' && moved) {
      if (moved.method !== 'GET') throw apiErrors.movedProjectNotGet();
      throw new GitlabRedirect(movedLocation(moved.url, project.id));
    }
    return projectResource(store, project);
  }
  const found = store.resolveGroup(ref);
  const group = found && (!found.redirected || mode === 'follow') ? found.resource : undefined;
  if (!group || store.groupRole(user, group) < MINIMAL_ACCESS) throw apiErrors.notFound('Group');
  return groupResource(store, group);
}

/** The project or group of the route's `:id` for the caller; a moved project's old path as `settings.movedProjects` says. */
export function resourceOf(c: ApiCall, type: ResourceType): Resource {
  return findResource(c.ctx.store, type, c.path.id!, c.caller.user, {
    mode: c.ctx.settings.movedProjects,
    method: c.req.method ?? 'GET',
    url: c.url,
  });
}

export function projectResource(store: GitlabStore, project: Project): Resource {
  return {
    type: 'project',
    id: project.id,
    name: project.name,
    path: project.path,
    roleOf: (u) => store.projectRole(u, project),
    manageLevel: MAINTAINER,
    project,
  };
}

export function groupResource(store: GitlabStore, group: Group): Resource {
  return {
    type: 'group',
    id: group.id,
    name: group.name,
    path: group.path,
    roleOf: (u) => store.groupRole(u, group),
    manageLevel: OWNER,
    group,
  };
}
