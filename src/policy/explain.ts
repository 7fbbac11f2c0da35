/**
 * `policy test`: the same decision as `decide`, plus a per-policy account of
 * why each policy does or does not apply, with expected and actual values.
 * This evaluates every policy (a linear scan): it is for operators, not for
 * the request path.
 */
import type { Identity } from '../identity/types.ts';
import type { PolicySet } from './compile.ts';
import { decide, evaluate } from './decide.ts';
import { displayTarget } from './target.ts';
import type { DecideRequest, Decision } from './types.ts';

export interface PolicyReport {
  policy: string;
  /** `granted`; refused at `caller` / `target` / `scope`; or `skipped` (not asked for, or after the granting policy). */
  outcome: 'granted' | 'caller' | 'target' | 'scope' | 'skipped';
  reasons: string[];
}

export interface Explanation {
  decision: Decision;
  policies: PolicyReport[];
}

export function explainData(set: PolicySet, identity: Identity, req: DecideRequest): Explanation {
  const decision = decide(set, identity, req);
  const policies = set.policies.map((p): PolicyReport => {
    if (req.policyName !== undefined && p.name !== req.policyName) {
      return { policy: p.name, outcome: 'skipped', reasons: ['not the requested policy'] };
    }
    if (decision.ok && p.name === decision.policy) return { policy: p.name, outcome: 'granted', reasons: [] };
    if (decision.ok && p.index > (set.byName.get(decision.policy)?.index ?? -1)) {
      return {
        policy: p.name,
        outcome: 'skipped',
        reasons: [`an earlier policy (${decision.policy}) grants`],
      };
    }
    const e = evaluate(p, identity, req, true);
    // `ok` here means: this policy would grant, but an earlier one already does. Cannot happen before the winner.
    return { policy: p.name, outcome: e.stage === 'ok' ? 'granted' : e.stage, reasons: e.reasons };
  });
  if (req.policyName !== undefined && !set.byName.has(req.policyName)) {
    policies.push({ policy: req.policyName, outcome: 'caller', reasons: ['no policy of this name'] });
  }
  return { decision, policies };
}

const MARK: Record<PolicyReport['outcome'], string> = {
  granted: '+',
  caller: 'x',
  target: 'x',
  scope: 'x',
  skipped: '-',
};
const STAGE_TEXT = {
  caller: 'caller not accepted',
  target: 'target not covered',
  scope: 'scopes not covered',
};

/** Human-readable report: one block per policy, then the result. */
export function explain(set: PolicySet, identity: Identity, req: DecideRequest): string {
  const { decision, policies } = explainData(set, identity, req);
  const lines = [
    `caller: issuer ${identity.issuer}, subject ${identity.subject}${identity.clientId ? `, client ${identity.clientId}` : ''}`,
    `target: ${req.target.explicitGroup ? 'group ' : ''}${displayTarget(req.target)}; scopes: ${req.scopes?.length ? req.scopes.join(' ') : "(the grant's)"}${req.ttlSeconds ? `; ttl: ${req.ttlSeconds}s` : ''}`,
    '',
  ];
  for (const r of policies) {
    if (r.outcome === 'granted' && decision.ok && r.policy === decision.policy) {
      lines.push(`${MARK.granted} ${r.policy}: grants`);
      continue;
    }
    const head =
      r.outcome === 'skipped' ? 'skipped' : r.outcome === 'granted' ? 'grants' : STAGE_TEXT[r.outcome];
    lines.push(`${MARK[r.outcome]} ${r.policy}: ${head}`);
    for (const reason of r.reasons) lines.push(`    ${reason}`);
  }
  lines.push('');
  if (decision.ok) {
    lines.push(
      `GRANTED by policy ${decision.policy}: ${decision.target.kind} ${decision.target.display}, scopes ${decision.scopes.join(' ')}, ${decision.role === undefined ? 'deploy token (no role)' : `role ${decision.role} (${decision.accessLevel})`}, ttl ${decision.ttlSeconds}s`,
    );
  } else {
    lines.push(`DENIED: ${decision.error}`);
  }
  return `${lines.join('\n')}\n`;
}
