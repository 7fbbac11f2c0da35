/**
 * The kind of GitLab token a grant mints (a policy's `grant.via`): a project/group **access token**
 * (GitLab creates a bot user; API scopes; a role) or a **deploy token** (no user; git, registry and
 * package scopes only; a username of its own; `doc/api/deploy_tokens.md`). Shared by the policy
 * engine, the GitLab client, the ledger and the service.
 */
export const TOKEN_KINDS = ['access-token', 'deploy-token'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];
