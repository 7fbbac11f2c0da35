/** Shared fixtures for the policy tests: policies go through the real config schema. */
import { parseConfig, type StsConfig } from '../config/index.ts';
import type { Identity } from '../identity/types.ts';
import type { PolicyConfig } from './types.ts';

export const GITLAB = 'https://gitlab.example.com';
export const TENANT = '11111111-2222-4333-8444-555555555555';
export const APP = 'aaaaaaaa-0000-4000-8000-000000000001';
export const OTHER_APP = 'aaaaaaaa-0000-4000-8000-000000000002';

/** Confidential clients the fixtures' configuration declares (policies may require them: `client`). */
export const CLIENTS = {
  runner: { secret: 'runner-secret-0123456789' },
  deployer: { secret: 'deployer-secret-0123456789' },
};

export type PolicyInput = { name: string; match: Record<string, unknown> } & Record<string, unknown>;

/** A minimal valid config around these policies (defaults: issuer contoso, project platform/app). */
export function configWith(policies: PolicyInput[], gitlabUrl = GITLAB): StsConfig {
  return parseConfig(
    {
      server: { publicUrl: 'https://sts.example.com' },
      gitlab: { url: gitlabUrl, token: 'glpat-placeholder' },
      issuers: {
        contoso: { entra: { tenant: TENANT }, audiences: [`api://${TENANT}/tanuki-sts`] },
        ci: { oidc: { issuer: 'https://gitlab.example.com' }, audiences: ['https://sts.example.com'] },
      },
      // What a policy's `client` may name.
      clients: CLIENTS,
      policies: policies.map((p) => ({
        issuer: 'contoso',
        ...p,
        grant: {
          projects: ['platform/app'],
          scopes: ['read_repository', 'read_api'],
          role: 'reporter',
          ...(p.grant as object),
        },
      })),
    },
    { env: {} },
  );
}

export function policies(list: PolicyInput[]): PolicyConfig[] {
  return configWith(list).policies;
}

/** An identity as the validator would build it; Entra identities get both appid and azp. */
export function identity(claims: Record<string, unknown>, issuer = 'contoso'): Identity {
  const c = { ...claims };
  if (issuer === 'contoso') {
    const app = (c.appid ?? c.azp) as string | undefined;
    if (app !== undefined) {
      c.appid ??= app;
      c.azp ??= app;
    }
  }
  return {
    issuer,
    kind: issuer === 'contoso' ? 'entra' : 'oidc',
    subject: typeof c.sub === 'string' ? c.sub : 'subject',
    roles: Array.isArray(c.roles) ? (c.roles as string[]) : [],
    expiresAt: 2_000_000_000,
    claims: c,
  };
}
