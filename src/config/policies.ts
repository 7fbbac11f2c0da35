/**
 * The `policies` section's schema: the shape of each trust policy. What a
 * policy means (unique names, a usable match, at least one target, the TTL
 * order) is checked once, by `compilePolicies` (src/policy/compile.ts), which
 * `serve`, `check-config` and `policy test` all run.
 */
import { z } from 'zod';
import {
  DEPLOY_TOKEN_SCOPES,
  GRANT_SCOPES,
  RESOURCE_SCOPES,
  ROLE_LEVELS,
  type RoleName,
} from '../policy/grants.ts';
import type { DenyRule, PolicyConfig } from '../policy/types.ts';
import { TOKEN_KINDS } from '../util/token-kind.ts';
import { CLIENT_NAME, CLIENT_NAME_RULE } from './clients.ts';
import { doc, duration } from './fields.ts';

const grantScope = z
  .string()
  .refine(
    (s) => s !== 'self_rotate',
    'self_rotate is never granted: a token could rotate itself past its TTL',
  )
  .pipe(z.enum(GRANT_SCOPES));

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** A claim matcher: exact value (type-strict), one of a list, `contains` for arrays, or an anchored `pattern`. */
const matcher = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(scalar).min(1).meta({ expected: 'a list of values (the claim equals one of them)' }),
  z.object({ contains: z.union([z.string(), z.number()]) }).strict(),
  z.object({ pattern: z.string().min(1) }).strict(),
]);

const targetRef = z
  .union([
    z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a GitLab path such as group/project'),
    z.number().int().positive(),
  ])
  .meta({ expected: 'a GitLab path (`group/project`) or a numeric ID' });

const roles = Object.keys(ROLE_LEVELS) as [RoleName, ...RoleName[]];

const DEPLOY_SCOPES: ReadonlySet<string> = new Set(DEPLOY_TOKEN_SCOPES);
const ACCESS_SCOPES: ReadonlySet<string> = new Set(RESOURCE_SCOPES);

/**
 * The keys each kind of token takes (`compilePolicies` checks the same for policies built in
 * code): an access token needs a role and access-token scopes; a deploy token has no role and
 * deploy-token scopes only. Each problem names its key.
 */
function checkGrantKind(
  g: { via: string; scopes: readonly string[]; role?: string },
  ctx: z.RefinementCtx,
): void {
  const deploy = g.via === 'deploy-token';
  if (deploy && g.role !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['role'],
      message:
        'does not apply to a deploy token (`via: deploy-token`): a deploy token has no user, hence no role; remove it',
    });
  }
  if (!deploy && g.role === undefined) {
    ctx.addIssue({ code: 'custom', path: ['role'], message: `required for an access token: ${list(roles)}` });
  }
  g.scopes.forEach((s, i) => {
    if (deploy && !DEPLOY_SCOPES.has(s)) {
      ctx.addIssue({
        code: 'custom',
        path: ['scopes', i],
        message: `\`${s}\` is not a deploy-token scope (\`via: deploy-token\`): expected one of ${list(DEPLOY_TOKEN_SCOPES)}`,
      });
    } else if (!deploy && !ACCESS_SCOPES.has(s)) {
      ctx.addIssue({
        code: 'custom',
        path: ['scopes', i],
        message: `\`${s}\` is a deploy-token scope: add \`via: deploy-token\` to the grant, or use an access-token scope`,
      });
    }
  });
}
const list = (words: readonly string[]) =>
  `${words
    .slice(0, -1)
    .map((w) => `\`${w}\``)
    .join(', ')} or \`${words.at(-1)}\``;

export const policySchema = z
  .object({
    name: doc(
      z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"'),
      "Unique; appears in the minted token's name, the audit log and metrics. 1–64 of `A-Za-z0-9_.-`.",
    ),
    issuer: doc(z.string().min(1), 'The name of an entry under `issuers`.'),
    match: doc(
      z.record(z.string(), matcher),
      'Claim name → matcher; every entry must hold, and there must be at least one. A matcher is an ' +
        'exact value (type-strict), a list (one of), `{ contains: V }` (an array claim holding V) or ' +
        '`{ pattern: RE }` (anchored); see [matchers](policies.md#match-claim-matchers).',
    ),
    client: doc(
      z.string().regex(CLIENT_NAME, CLIENT_NAME_RULE).optional(),
      'The name of an entry under `clients`: the request must also authenticate as this confidential ' +
        'client (`client_id` + `client_secret`, in the body or HTTP Basic; RFC 6749 §2.3), a second factor ' +
        'beside the subject token ([clients](policies.md#client-a-second-factor)).',
    ),
    grant: z
      .object({
        projects: doc(
          z.array(targetRef).default([]),
          'Projects the token may be for: paths (`group/project`) or numeric IDs.',
        ),
        groups: doc(
          z.array(targetRef).default([]),
          'Groups the token may be for: paths or numeric IDs. `grant.projects` and `grant.groups` ' +
            'together name at least one target ([the target](policies.md#the-target)).',
        ),
        via: doc(
          z.enum(TOKEN_KINDS).default('access-token'),
          'What the grant mints: `access-token` (a project/group access token: API scopes, a role, a bot user; ' +
            'Premium on GitLab.com) or `deploy-token` (a project/group deploy token: git, registry and package ' +
            'scopes only, no user, every tier); see [via](policies.md#via-which-kind-of-token).',
        ),
        scopes: doc(
          z.array(grantScope).min(1),
          `GitLab scopes. Access tokens: ${list(RESOURCE_SCOPES)}; \`self_rotate\` is refused, \`api\` includes ` +
            `self-rotation ([policies](policies.md#scopes)). Deploy tokens: ${list(DEPLOY_TOKEN_SCOPES)}.`,
        ),
        role: doc(
          z.enum(roles).optional(),
          `The access token's role: ${list(roles)}. Required for \`via: access-token\`; refused for ` +
            '`via: deploy-token` (a deploy token has no user, hence no role).',
        ),
        ttl: z
          .object({
            default: doc(
              duration.default(900),
              'TTL when the caller asks for none; at least `60s` (the minimum TTL) and at most `grant.ttl.max`.',
            ),
            max: doc(
              duration.default(3600),
              'The most a caller may ask for (longer requests are clamped); at least `60s` (the minimum TTL, ' +
                'below which a request is refused: [TTLs](policies.md#ttls)).',
            ),
          })
          .strict()
          .default({ default: 900, max: 3600 }),
      })
      .strict()
      .superRefine(checkGrantKind),
  })
  .strict() satisfies z.ZodType<PolicyConfig>;

export const policiesSchema = doc(
  z.array(policySchema).min(1, 'at least one policy is required: without one, every exchange is refused'),
  'At least one. An ordered list of trust policies: the first, in file order, that grants the request applies ' +
    '([which policy applies](policies.md#which-policy-applies)). See the [policy reference](policies.md).',
);

/** One entry of `server.deny`: the same matchers as a policy's `match`, optionally for one issuer. */
export const denyRuleSchema = z
  .object({
    issuer: z.string().min(1).optional(),
    match: z.record(z.string(), matcher),
  })
  .strict() satisfies z.ZodType<DenyRule>;
