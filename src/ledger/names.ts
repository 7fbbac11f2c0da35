/**
 * GitLab token names carry the deployment and the grant:
 * `tanuki-sts/<server.id>/<policy>/<grant-id>` (docs/configuration.md, `server.id`).
 * The reconciler only ever touches names with its own `server.id`.
 */

const PREFIX = 'tanuki-sts';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `tanuki-sts/<serverId>/`: everything this deployment mints starts with it. */
export function tokenNamePrefix(serverId: string): string {
  return `${PREFIX}/${serverId}/`;
}

export function tokenName(serverId: string, policy: string, grantId: string): string {
  return `${tokenNamePrefix(serverId)}${policy}/${grantId}`;
}

/**
 * The grant id in one of this deployment's token names; undefined when the
 * name is not this deployment's (`belongs: false`) or has no valid grant id.
 */
export function parseTokenName(name: string, serverId: string): { belongs: boolean; grantId?: string } {
  const prefix = tokenNamePrefix(serverId);
  if (!name.startsWith(prefix)) return { belongs: false };
  const rest = name.slice(prefix.length).split('/');
  const grantId = rest[1];
  if (rest.length !== 2 || !rest[0] || grantId === undefined || !UUID.test(grantId)) return { belongs: true };
  return { belongs: true, grantId };
}
