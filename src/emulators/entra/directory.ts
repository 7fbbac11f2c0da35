/** Look-ups in the resolved config: tenants, apps, resource APIs, managed identities, role assignments. */
import type {
  AppConfig,
  EntraConfig,
  ManagedIdentityConfig,
  ResourceConfig,
  RoleAssignment,
  TenantConfig,
} from './config.ts';
import { matchesResource } from './config.ts';
import { FIRST_PARTY_RESOURCES } from './first-party.ts';

export function findTenant(cfg: EntraConfig, id: string): TenantConfig | undefined {
  const key = id.toLowerCase();
  return cfg.tenants.find((t) => t.id.toLowerCase() === key);
}

export function findApp(t: TenantConfig, clientId: string): AppConfig | undefined {
  const key = clientId.toLowerCase();
  return t.apps.find((a) => a.clientId.toLowerCase() === key);
}

/**
 * The resource a request names, by identifier URI or client ID (as Entra
 * resolves `scope=<X>/.default` or `resource=<X>`); a trailing slash is ignored.
 * The tenant's own resource APIs first, then the Microsoft first-party APIs every
 * tenant has a service principal for (first-party.ts).
 */
export function findResource(t: TenantConfig, requested: string): ResourceConfig | undefined {
  const ref = requested.length > 1 ? requested.replace(/\/$/, '') : requested;
  const key = ref.toLowerCase();
  const matches = (r: ResourceConfig) =>
    r.clientId.toLowerCase() === key || r.identifierUris.some((u) => u.replace(/\/$/, '') === ref);
  return t.resources.find(matches) ?? FIRST_PARTY_RESOURCES.find(matches);
}

/** The app roles the assignments grant on this resource (the token's `roles`). */
export function rolesOn(resource: ResourceConfig, assignments: RoleAssignment[]): string[] {
  const roles = assignments.filter((a) => matchesResource(resource, a.resource)).map((a) => a.role);
  return [...new Set(roles)];
}

export interface ManagedIdentitySelector {
  clientId?: string;
  objectId?: string;
  resourceId?: string;
}

/**
 * The managed identity a request selects: by client ID, object ID or ARM
 * resource ID, or the system-assigned one when none is given. Searches every
 * tenant (an emulated host may hold identities of any tenant).
 */
export function findManagedIdentity(
  cfg: EntraConfig,
  sel: ManagedIdentitySelector,
): { tenant: TenantConfig; identity: ManagedIdentityConfig } | undefined {
  for (const tenant of cfg.tenants) {
    const identity = tenant.managedIdentities.find((m) => {
      if (sel.clientId) return m.clientId.toLowerCase() === sel.clientId.toLowerCase();
      if (sel.objectId) return m.objectId.toLowerCase() === sel.objectId.toLowerCase();
      if (sel.resourceId) return m.resourceId?.toLowerCase() === sel.resourceId.toLowerCase();
      return m.type === 'systemAssigned';
    });
    if (identity) return { tenant, identity };
  }
  return undefined;
}
