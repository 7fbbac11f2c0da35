/**
 * Finding a project or group for a caller, as `find_project!` / `find_group!`
 * do (`lib/api/helpers.rb`): a resource the caller cannot see answers exactly
 * like a missing one, `404 Project Not Found` / `404 Group Not Found`.
 * All resources are private: seeing one needs a role on it (admins see all).
 */
import { apiErrors } from './errors.ts';
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

const GUEST = 10;
const MINIMAL_ACCESS = 5;

export function findResource(store: GitlabStore, type: ResourceType, ref: string, user: User): Resource {
  if (type === 'project') {
    const project = store.findProject(ref);
    if (!project || store.projectRole(user, project) < GUEST) throw apiErrors.notFound('Project');
    return {
      type,
      id: project.id,
      name: project.name,
      path: project.path,
      roleOf: (u) => store.projectRole(u, project),
      manageLevel: MAINTAINER,
      project,
    };
  }
  const group = store.findGroup(ref);
  if (!group || store.groupRole(user, group) < MINIMAL_ACCESS) throw apiErrors.notFound('Group');
  return {
    type,
    id: group.id,
    name: group.name,
    path: group.path,
    roleOf: (u) => store.groupRole(u, group),
    manageLevel: OWNER,
    group,
  };
}
