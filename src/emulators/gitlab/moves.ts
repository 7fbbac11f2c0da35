/**
 * Creating, renaming and transferring projects and groups, in GitLab's order of
 * checks: Grape parameters (400 `{"error":…}`), the resource (404), the
 * caller's right (403), then the model's or the service's own errors.
 * Sources: `lib/api/projects.rb` (`PUT :id`, `PUT :id/transfer`, `POST`),
 * `lib/api/groups.rb` (`POST`, `PUT :id`, `POST :id/transfer`),
 * `app/services/projects/transfer_service.rb`, `app/services/groups/transfer_service.rb`,
 * `app/policies/project_policy.rb` (`admin_project` and `rename_project`:
 * Maintainer; `change_namespace`: Owner), `app/policies/group_policy.rb`
 * (`transfer_projects`: Maintainer; `admin_group`, `change_group`,
 * `create_subgroup` by default: Owner), `lib/gitlab/path_regex.rb`.
 * Every move leaves redirect routes (store.ts).
 */
import type { ApiCall, ApiResult } from './api.ts';
import { groupEntity, projectEntity } from './entities.ts';
import { apiErrors } from './errors.ts';
import { INVALID } from './http.ts';
import { createRepository } from './repos.ts';
import { MINIMAL_ACCESS, resourceOf } from './resources.ts';
import { MAINTAINER, OWNER } from './roles.ts';
import { type GitlabStore, type Group, leafOf, type Project } from './store.ts';

/** `PROJECT_PATH_FORMAT_REGEX`, and no `.git`/`.atom` ending. */
const PROJECT_PATH = /^[a-zA-Z0-9_.][a-zA-Z0-9_\-.]*$/;
const PROJECT_PATH_MESSAGE =
  "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', end in '.git' or end in '.atom'";
/** `NAMESPACE_FORMAT_REGEX`, and no `.git`/`.atom` ending. */
const GROUP_PATH = /^(?:[a-zA-Z0-9_.][a-zA-Z0-9_\-.]*[a-zA-Z0-9_-]|[a-zA-Z0-9_])$/;
const GROUP_PATH_MESSAGE =
  "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.";

/** Validation errors of one path segment (`Project`/`Namespace` path validators). */
function pathErrors(kind: 'project' | 'group', leaf: string): string[] {
  if (leaf.trim() === '') return ["can't be blank"];
  if (leaf.length > 255) return ['is too long (maximum is 255 characters)'];
  const format = kind === 'project' ? PROJECT_PATH : GROUP_PATH;
  if (!format.test(leaf) || /\.(git|atom)$/i.test(leaf))
    return [kind === 'project' ? PROJECT_PATH_MESSAGE : GROUP_PATH_MESSAGE];
  return [];
}

/**
 * `errors.messages.inspect` as GitLab prints it inside a message string
 * (Ruby 3.3 `Hash#inspect`): `{:path=>["has already been taken"]}`.
 */
export function rubyInspect(errors: Record<string, string[]>): string {
  const entries = Object.entries(errors).map(
    ([k, v]) => `:${k}=>[${v.map((x) => JSON.stringify(x)).join(', ')}]`,
  );
  return `{${entries.join(', ')}}`;
}

/** Optional string parameters; arrays or objects are Grape's `<name> is invalid`. */
function strings(c: ApiCall, names: string[], problems: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const n of names) {
    const v = c.params.string(n);
    if (v === INVALID) problems.push(`${n} is invalid`);
    else out[n] = v;
  }
  return out;
}

function integer(c: ApiCall, name: string, problems: string[]): number | undefined {
  const v = c.params.string(name);
  if (v === undefined || v === '') return undefined;
  if (v === INVALID || !/^\d+$/.test(v)) {
    problems.push(`${name} is invalid`);
    return undefined;
  }
  return Number(v);
}

function boolean(c: ApiCall, name: string, problems: string[]): boolean | undefined {
  const v = c.params.string(name);
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  problems.push(`${name} is invalid`);
  return undefined;
}

/** A path made from a name: lower case, runs of other characters as one `-`. */
function pathFromName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
}

function siblingNamed(store: GitlabStore, namespaceId: number, name: string, self?: Project): boolean {
  for (const p of store.projects.values())
    if (p !== self && p.namespaceId === namespaceId && p.name === name) return true;
  return false;
}

/** A full path used by another resource than `self`. */
function takenByOther(store: GitlabStore, fullPath: string, self: Project | Group): boolean {
  const key = fullPath.toLowerCase();
  const holder = store.projectsByPath.get(key) ?? store.groupsByPath.get(key);
  return holder ? holder !== self : store.pathTaken(fullPath);
}

function projectAnswer(c: ApiCall, project: Project, status: number): ApiResult {
  return { status, body: projectEntity(c.ctx.store, c.ctx.baseUrl, project, c.caller.user) };
}

// ------------------------------------------------------------------ projects

/**
 * `POST /projects` (`name` and/or `path`, `namespace_id`, `description`,
 * `initialize_with_readme`) → 201. Creating needs Maintainer on the group
 * (else `400 {"message":{"namespace":["is not valid"]}}`). The emulator has no
 * personal namespaces: `namespace_id` is required. Without
 * `initialize_with_readme` the project has no repository (git: 404).
 */
export async function createProject(c: ApiCall): Promise<ApiResult> {
  const { store } = c.ctx;
  const problems: string[] = [];
  const p = strings(c, ['name', 'path', 'description'], problems);
  const namespaceId = integer(c, 'namespace_id', problems);
  const readme = boolean(c, 'initialize_with_readme', problems);
  if (problems.length === 0 && p.name === undefined && p.path === undefined)
    problems.push('name, path are missing, at least one parameter must be provided');
  if (problems.length > 0) throw apiErrors.invalidParams(problems);
  if (namespaceId === undefined)
    throw apiErrors.badRequest('namespace_id is required (the emulator has no personal namespaces)');

  const namespace = store.groups.get(namespaceId);
  // Projects::CreateService: `create_projects` on the namespace, else the namespace "is not valid".
  if (!namespace || store.groupRole(c.caller.user, namespace) < MAINTAINER)
    throw apiErrors.validation({ namespace: ['is not valid'] });
  const name = p.name ?? (p.path as string);
  const leaf = p.path ?? pathFromName(name);
  const errors: Record<string, string[]> = {};
  if (name.trim() === '') errors.name = ["can't be blank"];
  else if (siblingNamed(store, namespace.id, name)) errors.name = ['has already been taken'];
  const pathProblems = pathErrors('project', leaf);
  if (pathProblems.length > 0) errors.path = pathProblems;
  else if (store.pathTaken(`${namespace.path}/${leaf}`)) errors.path = ['has already been taken'];
  if (Object.keys(errors).length > 0) throw apiErrors.validation(errors);

  const project = store.addProject({
    path: `${namespace.path}/${leaf}`,
    name,
    description: p.description ?? '',
    namespaceId: namespace.id,
    hasRepository: false,
    creatorId: c.caller.user.id,
  });
  if (readme) {
    await createRepository(c.ctx.stateDir, project.id, { 'README.md': `# ${name}\n` });
    project.hasRepository = true;
    store.onChange();
  }
  return projectAnswer(c, project, 201);
}

/**
 * `PUT /projects/:id` with `name`, `path`, `description` → 200. Needs
 * Maintainer (`admin_project`; `rename_project` for `name`). A new `path`
 * renames the project in its namespace and leaves a redirect route.
 * Errors: `403 {"message":"403 Forbidden"}`; `400 {"message":{"path":["has already been taken"]}}`.
 */
export function updateProject(c: ApiCall): ApiResult {
  const { store } = c.ctx;
  const problems: string[] = [];
  const p = strings(c, ['name', 'path', 'description'], problems);
  if (problems.length === 0 && p.name === undefined && p.path === undefined && p.description === undefined)
    problems.push('name, path, description are missing, at least one parameter must be provided');
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const project = resourceOf(c, 'project').project!;
  if (store.projectRole(c.caller.user, project) < MAINTAINER) throw apiErrors.forbidden();
  const namespace = store.groups.get(project.namespaceId)!;
  const errors: Record<string, string[]> = {};
  if (p.name !== undefined) {
    if (p.name.trim() === '') errors.name = ["can't be blank"];
    else if (siblingNamed(store, namespace.id, p.name, project)) errors.name = ['has already been taken'];
  }
  if (p.path !== undefined) {
    const pathProblems = pathErrors('project', p.path);
    if (pathProblems.length > 0) errors.path = pathProblems;
    else if (takenByOther(store, `${namespace.path}/${p.path}`, project))
      errors.path = ['has already been taken'];
  }
  if (Object.keys(errors).length > 0) throw apiErrors.validation(errors);

  if (p.name !== undefined) project.name = p.name;
  if (p.description !== undefined) project.description = p.description;
  if (p.path !== undefined) store.moveProject(project, namespace, p.path);
  else store.onChange();
  return projectAnswer(c, project, 200);
}

/**
 * `PUT /projects/:id/transfer` with `namespace` (group id or full path) → 200.
 * Needs Owner on the project (`change_namespace`, else 403) and Maintainer on
 * the target (`transfer_projects`). The target must be visible
 * (`404 {"message":"404 Namespace Not Found"}`); TransferService refusals are
 * `400 {"message":"Failed to transfer project {:new_namespace=>[\"…\"]}"}`.
 */
export function transferProject(c: ApiCall): ApiResult {
  const { store } = c.ctx;
  const ref = c.params.string('namespace');
  if (ref === undefined) throw apiErrors.invalidParams(['namespace is missing']);
  if (ref === INVALID) throw apiErrors.invalidParams(['namespace is invalid']);

  const project = resourceOf(c, 'project').project!;
  const user = c.caller.user;
  if (store.projectRole(user, project) < OWNER) throw apiErrors.forbidden();
  const target = store.findGroup(ref);
  if (!target || store.groupRole(user, target) < MINIMAL_ACCESS) throw apiErrors.notFound('Namespace');
  const fail = (message: string) =>
    apiErrors.plain(400, `Failed to transfer project ${rubyInspect({ new_namespace: [message] })}`);
  if (target.id === project.namespaceId) throw fail('Project is already in this namespace.');
  if (store.groupRole(user, target) < MAINTAINER)
    throw fail("You don't have permission to transfer projects into that namespace.");
  const leaf = leafOf(project.path);
  if (
    siblingNamed(store, target.id, project.name, project) ||
    takenByOther(store, `${target.path}/${leaf}`, project)
  ) {
    throw fail('Project with same name or path in target namespace already exists');
  }
  store.moveProject(project, target, leaf);
  return projectAnswer(c, project, 200);
}

// ------------------------------------------------------------------ groups

/**
 * `POST /groups` with `name`, `path`, optional `parent_id`, `description` → 201;
 * the creator becomes its Owner (Groups::CreateService). A subgroup needs
 * Owner on the parent (`create_subgroup`); a top-level group any human user
 * (`create_group`, GitLab's default `can_create_group`), never a bot.
 * Refusals: 403; a bad or taken path: `400 {"message":"Failed to save group {:path=>[…]}"}`.
 */
export function createGroup(c: ApiCall): ApiResult {
  const { store } = c.ctx;
  const problems: string[] = [];
  const required = (n: string) => {
    const v = c.params.string(n);
    if (v === undefined) problems.push(`${n} is missing`);
    else if (v === INVALID) problems.push(`${n} is invalid`);
    else return v;
    return undefined;
  };
  const p = {
    name: required('name'),
    path: required('path'),
    description: strings(c, ['description'], problems).description,
  };
  const parentId = integer(c, 'parent_id', problems);
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const user = c.caller.user;
  let parent: Group | null = null;
  if (parentId !== undefined) {
    parent = store.groups.get(parentId) ?? null;
    if (!parent || store.groupRole(user, parent) < MINIMAL_ACCESS) throw apiErrors.notFound('Group');
    if (store.groupRole(user, parent) < OWNER) throw apiErrors.forbidden();
  } else if (user.bot !== null) {
    throw apiErrors.forbidden();
  }
  const name = p.name as string;
  const leaf = p.path as string;
  const fullPath = parent ? `${parent.path}/${leaf}` : leaf;
  const errors: Record<string, string[]> = {};
  if (name.trim() === '') errors.name = ["can't be blank"];
  const pathProblems = pathErrors('group', leaf);
  if (pathProblems.length > 0) errors.path = pathProblems;
  else if (store.pathTaken(fullPath)) errors.path = ['has already been taken'];
  if (Object.keys(errors).length > 0)
    throw apiErrors.plain(400, `Failed to save group ${rubyInspect(errors)}`);

  const group = store.addGroup({
    path: fullPath,
    name,
    description: p.description ?? '',
    parentId: parent?.id ?? null,
  });
  group.members.set(user.id, OWNER);
  store.onChange();
  return { status: 201, body: groupEntity(store, c.ctx.baseUrl, group, c.caller.user) };
}

/**
 * `PUT /groups/:id` with `name`, `path`, `description` → 200. Needs Owner
 * (`admin_group`). A new `path` moves the group, its subgroups and projects,
 * and leaves redirect routes for all their old paths.
 * Errors: 403; `400 {"message":{"path":["has already been taken"]}}`.
 */
export function updateGroup(c: ApiCall): ApiResult {
  const { store } = c.ctx;
  const problems: string[] = [];
  const p = strings(c, ['name', 'path', 'description'], problems);
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const group = resourceOf(c, 'group').group!;
  if (store.groupRole(c.caller.user, group) < OWNER) throw apiErrors.forbidden();
  const parent = group.parentId === null ? null : (store.groups.get(group.parentId) ?? null);
  const errors: Record<string, string[]> = {};
  if (p.name !== undefined && p.name.trim() === '') errors.name = ["can't be blank"];
  if (p.path !== undefined) {
    const pathProblems = pathErrors('group', p.path);
    if (pathProblems.length > 0) errors.path = pathProblems;
    else if (takenByOther(store, parent ? `${parent.path}/${p.path}` : p.path, group))
      errors.path = ['has already been taken'];
  }
  if (Object.keys(errors).length > 0) throw apiErrors.validation(errors);

  if (p.name !== undefined) group.name = p.name;
  if (p.description !== undefined) group.description = p.description;
  if (p.path !== undefined) store.moveGroup(group, parent, p.path);
  else store.onChange();
  return { status: 200, body: groupEntity(store, c.ctx.baseUrl, group, c.caller.user) };
}

/**
 * `POST /groups/:id/transfer` with `group_id` (omitted: to the top level) → 201.
 * Needs Owner on the group (`change_group`, else 403), and Owner on the new
 * parent (`create_subgroup`) or a human user for the top level. Refusals:
 * `400 {"message":"Transfer failed: <reason>"}` (Groups::TransferService).
 */
export function transferGroup(c: ApiCall): ApiResult {
  const { store } = c.ctx;
  const problems: string[] = [];
  const parentId = integer(c, 'group_id', problems);
  if (problems.length > 0) throw apiErrors.invalidParams(problems);

  const group = resourceOf(c, 'group').group!;
  const user = c.caller.user;
  if (store.groupRole(user, group) < OWNER) throw apiErrors.forbidden();
  let parent: Group | null = null;
  if (parentId !== undefined) {
    parent = store.groups.get(parentId) ?? null;
    if (!parent || store.groupRole(user, parent) < MINIMAL_ACCESS) throw apiErrors.notFound('Group');
  }
  const fail = (reason: string) => apiErrors.plain(400, `Transfer failed: ${reason}`);
  if (!parent && group.parentId === null) throw fail('Group is already a root group.');
  if (parent && parent.id === group.parentId) throw fail('Group is already associated to the parent group.');
  const allowed = parent ? store.groupRole(user, parent) >= OWNER : user.bot === null;
  if (!allowed) throw fail("You don't have enough permissions.");
  const leaf = leafOf(group.path);
  if (store.pathTaken(parent ? `${parent.path}/${leaf}` : leaf))
    throw fail('The parent group already has a subgroup or a project with the same path.');
  if (parent && store.isSelfOrDescendant(group, parent))
    throw fail('Cannot transfer group to one of its subgroup.');
  store.moveGroup(group, parent, leaf);
  return { status: 201, body: groupEntity(store, c.ctx.baseUrl, group, c.caller.user) };
}
