/** What a GitLab access token is minted on: a project or a group. Used by the policy engine, the GitLab client and the ledger. */
export type TargetKind = 'project' | 'group';
