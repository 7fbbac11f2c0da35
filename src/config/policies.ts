/**
 * The `policies` section's schema: the shape of each trust policy. What a
 * policy means (unique names, a usable match, at least one target, the TTL
 * order) is checked once, by `compilePolicies` (src/policy/compile.ts), which
 * `serve`, `check-config` and `policy test` all run.
 */
import { z } from 'zod';
import { RESOURCE_SCOPES, ROLE_LEVELS, type RoleName } from '../policy/grants.ts';
import type { PolicyConfig } from '../policy/types.ts';
import { doc, duration } from './fields.ts';

const grantScope = z
  .string()
  .refine(
    (s) => s !== 'self_rotate',
    'self_rotate is never granted: a token could rotate itself past its TTL',
  )
  .pipe(z.enum(RESOURCE_SCOPES));

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** A claim matcher: exact value (type-strict), one of a list, `contains` for arrays, or an anchored `pattern`. */
const matcher = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(scalar).min(1),
  z.object({ contains: z.union([z.string(), z.number()]) }).strict(),
  z.object({ pattern: z.string().min(1) }).strict(),
]);

const targetRef = z.union([
  z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a GitLab path such as group/project'),
  z.number().int().positive(),
]);

const roles = Object.keys(ROLE_LEVELS) as [RoleName, ...RoleName[]];
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
        scopes: doc(
          z.array(grantScope).min(1),
          `GitLab scopes (project/group token scopes only): ${list(RESOURCE_SCOPES)}. \`self_rotate\` ` +
            'is refused; `api` includes self-rotation ([policies](policies.md#scopes)).',
        ),
        role: doc(z.enum(roles), `${list(roles)}.`),
        ttl: z
          .object({
            default: doc(
              duration.default(900),
              'TTL when the caller asks for none; positive and at most `grant.ttl.max`.',
            ),
            max: doc(duration.default(3600), 'The most a caller may ask for (longer requests are clamped).'),
          })
          .strict()
          .default({ default: 900, max: 3600 }),
      })
      .strict(),
  })
  .strict() satisfies z.ZodType<PolicyConfig>;

export const policiesSchema = doc(
  z.array(policySchema),
  'An ordered list of trust policies: the first, in file order, that grants the request applies ' +
    '([which policy applies](policies.md#which-policy-applies)). See the [policy reference](policies.md).',
);
