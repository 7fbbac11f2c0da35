/**
 * `tanuki-sts policy test`: which policy would grant what to a token with
 * these claims, and why every other policy does not. Offline: no token is
 * verified and GitLab is never called, so no secret is read (the config is
 * loaded as `check-config --no-secrets` loads it). The config is loaded and
 * the policies compiled and decided as `serve` does it.
 *
 * Exit codes: 0 granted, 3 denied, 2 usage or unusable input (config, claims,
 * issuer), 1 unexpected.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { MIN_TTL_SECONDS } from '../../policy/grants.ts';
import { parseDurationSeconds } from '../../util/duration.ts';

export interface PolicyTestOptions {
  config: string;
  claims: string;
  resource?: string;
  audience?: string;
  scope?: string;
  issuer?: string;
  ttl?: number;
  policy?: string;
  /** The confidential client the request would authenticate as (a policy's `client`). */
  client?: string;
  json?: boolean;
}

export interface PolicyTestResult {
  exitCode: 0 | 2 | 3;
  stdout: string;
  stderr: string;
}

class InputError extends Error {
  readonly code = 'ERR_POLICY_TEST_INPUT';
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new InputError(`cannot read ${what} ${path}`);
  }
}

/** The whole command as a function: plain options in, output and exit code out. */
export async function runPolicyTest(opts: PolicyTestOptions): Promise<PolicyTestResult> {
  const policy = await import('../../policy/index.ts');
  const { ConfigError, loadConfigFile } = await import('../../config/index.ts');
  let config: ReturnType<typeof loadConfigFile>;
  let set: ReturnType<typeof policy.compilePolicies>;
  let identity: ReturnType<typeof policy.identityFromClaims>;
  let deny: ReturnType<typeof policy.compileDenyList>;
  try {
    if (opts.resource === undefined && opts.audience === undefined) {
      throw new InputError('pass --resource (a GitLab URL) or --audience (a path or numeric ID)');
    }
    // As `serve` loads it, but without reading secrets, which `policy test` never uses.
    config = loadConfigFile(opts.config, { secrets: false });
    set = policy.compilePolicies(config.policies, { gitlabUrl: config.gitlab.url });
    deny = policy.compileDenyList(config.server.deny);
    if (opts.client !== undefined && !Object.hasOwn(config.clients, opts.client)) {
      throw new InputError(`--client ${opts.client} is not a configured client (under \`clients\`)`);
    }
    let claims: unknown;
    try {
      claims = JSON.parse(readText(opts.claims, 'claims file'));
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(`claims file ${opts.claims} is not valid JSON`);
    }
    identity = policy.identityFromClaims(claims, config.issuers, opts.issuer);
  } catch (err) {
    if (
      err instanceof InputError ||
      err instanceof ConfigError ||
      err instanceof policy.PolicyCompileError ||
      err instanceof policy.DenyListError ||
      err instanceof policy.IdentityFromClaimsError
    ) {
      return { exitCode: 2, stdout: '', stderr: `tanuki-sts policy test: ${err.message}\n` };
    }
    throw err;
  }

  // server.deny comes before any policy, as in the STS.
  const denied = policy.deniedBy(deny, identity);
  if (denied !== undefined) {
    const reason = `denied by server.deny[${denied}]`;
    const decision = { ok: false, error: 'invalid_request', reasons: [{ policy: '*', reason }] };
    const stdout = opts.json
      ? `${JSON.stringify({ granted: false, decision, policies: [] }, null, 2)}\n`
      : `${reason}: refused before any policy\n\nDENIED: invalid_request\n`;
    return { exitCode: 3, stdout, stderr: '' };
  }

  const scopes = opts.scope?.split(/\s+/).filter((s) => s !== '');
  const target = policy.parseTarget(
    {
      resource: opts.resource === undefined ? [] : [opts.resource],
      audience: opts.audience === undefined ? [] : [opts.audience],
    },
    config.gitlab.url,
  );
  if (policy.isTargetError(target)) {
    // As the STS answers: a foreign target is reported only to a caller some policy accepts.
    const error = policy.targetRefusal(set, identity, target, opts.client);
    const decision = { ok: false, error, reasons: [{ policy: '*', reason: `target: ${target.reason}` }] };
    const stdout = opts.json
      ? `${JSON.stringify({ granted: false, decision, policies: [] }, null, 2)}\n`
      : `target refused: ${target.reason}\n\nDENIED: ${error}\n`;
    return { exitCode: 3, stdout, stderr: '' };
  }

  const req = {
    target,
    scopes: scopes?.length ? scopes : undefined,
    ttlSeconds: opts.ttl,
    policyName: opts.policy,
    client: opts.client,
  };
  if (opts.json) {
    const { decision, policies } = policy.explainData(set, identity, req);
    const body = { granted: decision.ok, decision, policies };
    return { exitCode: decision.ok ? 0 : 3, stdout: `${JSON.stringify(body, null, 2)}\n`, stderr: '' };
  }
  const decision = policy.decide(set, identity, req);
  return { exitCode: decision.ok ? 0 : 3, stdout: policy.explain(set, identity, req), stderr: '' };
}

export function registerPolicyCommand(program: Command): void {
  const policy = program.command('policy').description('work with trust policies offline');
  policy
    .command('test')
    .description('show which policy would grant what to a token with the given claims, and why others do not')
    .requiredOption('--config <file>', 'YAML configuration (the GitLab token is not needed)')
    .requiredOption('--claims <file>', 'JSON file with the decoded token payload (claims)')
    .option('--resource <url>', 'GitLab project or group URL, e.g. https://gitlab.example.com/group/project')
    .option('--audience <path|id>', 'project or group path (groups/<path> for a group), or numeric ID')
    .option('--scope <scopes>', 'requested scopes, space-separated (default: the policy grant)')
    .option('--issuer <name>', "configured issuer name (default: the one matching the claims' tid or iss)")
    .option(
      '--ttl <duration>',
      `requested lifetime, e.g. 15m (clamped to the policy max; at least ${MIN_TTL_SECONDS}s, as the STS requires)`,
      (v: string) => {
        let seconds: number;
        try {
          seconds = parseDurationSeconds(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
        // The STS refuses a shorter expires_in (invalid_request): so does its simulation.
        if (seconds < MIN_TTL_SECONDS) {
          throw new InvalidArgumentError(`at least ${MIN_TTL_SECONDS}s: the minimum TTL the STS grants`);
        }
        return seconds;
      },
    )
    .option('--policy <name>', 'ask for this policy only (as the `policy` exchange parameter)')
    .option('--client <name>', "the request authenticates as this configured client (a policy's `client`)")
    .option('--json', 'print the decision and the per-policy report as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 granted, 3 denied, 2 usage or unusable config/claims, 1 unexpected.',
    )
    .action(async (opts: PolicyTestOptions) => {
      const result = await runPolicyTest(opts);
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      process.exitCode = result.exitCode;
    });
}
