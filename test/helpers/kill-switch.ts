/**
 * For the kill-switch tests (`tanuki-sts grants list` / `grants revoke`): a
 * stack whose STS serves two Entra applications, each with a policy of its
 * own (the dev pipeline app: `image-build`; the system-assigned managed
 * identity: `mi-build`), and the configuration file an operator passes to
 * `grants`: the STS's own settings, the GitLab token from the environment.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEV_SYSTEM_MI_CLIENT_ID } from '../../src/emulators/entra/dev-seed.ts';
import { EXCHANGE, PROJECT, postForm, type Stack, type StackOptions, startStack } from './stack.ts';

export { DEV_SYSTEM_MI_CLIENT_ID };

/** The variable the operator's config file reads `gitlab.token` from. */
export const GITLAB_TOKEN_VAR = 'TANUKI_TEST_OPERATOR_GITLAB_TOKEN';

export interface KillSwitchStack {
  s: Stack;
  /** The raw STS configuration (as startStack parsed it). */
  raw: Record<string, any>;
  /** Writes an operator config file (the STS's settings, changed by `over`) and returns its path. */
  configFile(over?: (raw: Record<string, any>) => void): string;
  /** The environment `grants` runs with (the GitLab token in GITLAB_TOKEN_VAR). */
  env(): NodeJS.ProcessEnv;
}

export async function startKillSwitchStack(
  o: { store?: Record<string, unknown> } & Pick<StackOptions, 'background'> = {},
): Promise<KillSwitchStack> {
  let raw: Record<string, any> = {};
  const s = await startStack({
    background: o.background,
    tweak: (r) => {
      if (o.store) r.store = o.store;
      r.policies.push({
        name: 'mi-build',
        issuer: 'contoso',
        match: { appid: DEV_SYSTEM_MI_CLIENT_ID, roles: { contains: 'GitLab.Read' } },
        grant: {
          projects: [PROJECT],
          scopes: ['read_api'],
          role: 'reporter',
          ttl: { default: '15m', max: '1h' },
        },
      });
      raw = structuredClone(r);
    },
  });
  let n = 0;
  return {
    s,
    raw,
    configFile(over) {
      const r = structuredClone(raw);
      r.gitlab.token = { env: GITLAB_TOKEN_VAR };
      over?.(r);
      const file = join(s.dir, `operator-${n++}.yaml`);
      writeFileSync(file, stringify(r));
      return file;
    },
    env: () => ({ ...process.env, [GITLAB_TOKEN_VAR]: s.gitlab.adminToken }),
  };
}

/** An exchange for the stack's project that must succeed; the GitLab token. */
export async function exchangeFor(s: Stack, subjectToken: string): Promise<string> {
  const res = await postForm(`${s.sts.url}/token`, {
    ...EXCHANGE,
    subject_token: subjectToken,
    resource: PROJECT,
  });
  assert.equal(res.status, 200, res.text);
  return res.json.access_token as string;
}

/** What GitLab answers a token (200 while it lives, 401 once revoked). */
export async function gitlabStatus(s: Stack, token: string): Promise<number> {
  const res = await fetch(`${s.gitlab.url}/api/v4/personal_access_tokens/self`, {
    headers: { 'PRIVATE-TOKEN': token },
  });
  await res.arrayBuffer();
  return res.status;
}
