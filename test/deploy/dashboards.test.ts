/**
 * deploy/grafana/tanuki-sts.json and deploy/prometheus/alerts.yaml against a
 * running STS: both parse as their formats (the dashboard with the fields
 * Grafana needs to import it: title, uid, schemaVersion, panels with type,
 * gridPos and targets; the rules as a rule file with runbook text), and every
 * metric and every label their queries use is one the STS exports on its
 * metrics listener — after a few exchanges, a refusal and a revocation, so
 * that each labelled series has a sample.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT } from '../helpers/run-cli.ts';
import { EXCHANGE, PROJECT, pipelineToken, postForm, type Stack, startStack } from '../helpers/stack.ts';

type Json = Record<string, any>;

const dashboard = JSON.parse(
  readFileSync(join(ROOT, 'deploy', 'grafana', 'tanuki-sts.json'), 'utf8'),
) as Json;
const rules = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'alerts.yaml'), 'utf8'), {
  uniqueKeys: true,
}) as Json;

/** Every PromQL expression of the dashboard (panel targets) and the rules, with where it is. */
function expressions(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const p of dashboard.panels as Json[]) {
    for (const t of (p.targets ?? []) as Json[])
      out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  }
  for (const g of rules.groups as Json[]) {
    for (const r of g.rules as Json[]) out.push({ where: `alert ${r.alert}`, expr: String(r.expr) });
  }
  return out;
}

/** name → label names seen on its samples, from the Prometheus text format. */
function exported(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const typed = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /.exec(line);
    if (typed) {
      if (!out.has(typed[1] as string)) out.set(typed[1] as string, new Set());
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? /.exec(line);
    if (!m) continue;
    const labels = out.get(m[1] as string) ?? new Set<string>();
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1] as string);
    out.set(m[1] as string, labels);
  }
  return out;
}

const METRIC = /\b(tanuki_sts_[a-z0-9_]+)\b(\{([^}]*)\})?/g;
/** Label names in `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)`, `group_right (…)`. */
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** Every metric and label an expression uses that the STS does not export. */
function unknownIn(expr: string, have: Map<string, Set<string>>): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const m of expr.matchAll(METRIC)) {
    const name = m[1] as string;
    used.add(name);
    const labels = have.get(name);
    if (!labels) {
      problems.push(`metric ${name}`);
      continue;
    }
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!labels.has(l[1] as string)) problems.push(`label ${l[1]} of ${name}`);
    }
  }
  const union = new Set([...used].flatMap((n) => [...(have.get(n) ?? [])]));
  for (const g of expr.matchAll(GROUPING)) {
    for (const l of (g[1] as string)
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      if (!union.has(l)) problems.push(`label ${l} (grouping)`);
    }
  }
  // Any other series name (`up`, another exporter's metric) is not the STS's.
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(GROUPING, '');
  for (const w of bare.match(/\b[a-z_][a-z0-9_]*\b/g) ?? []) {
    if (w.startsWith('tanuki_sts_') || PROMQL_WORDS.has(w)) continue;
    problems.push(`metric ${w}`);
  }
  return problems;
}

/** Functions, aggregations and keywords of PromQL the files may use. */
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'increase',
  'histogram_quantile',
  'absent',
  'and',
  'or',
  'unless',
  'offset',
  'le',
]);

describe('deploy/grafana and deploy/prometheus match what the STS exports', () => {
  let s: Stack;
  let have: Map<string, Set<string>>;

  before(async () => {
    s = await startStack();
    // A grant, its revocation, a refusal: every labelled series gets a sample.
    const subject = await pipelineToken(s);
    const ok = await postForm(`${s.sts.url}/token`, {
      ...EXCHANGE,
      subject_token: subject,
      audience: PROJECT,
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await postForm(`${s.sts.url}/revoke`, { token: ok.json.access_token })).status, 200);
    await postForm(`${s.sts.url}/token`, { ...EXCHANGE, subject_token: 'not.a.token', audience: PROJECT });
    const res = await fetch(s.sts.metricsUrl ?? '');
    assert.equal(res.status, 200);
    have = exported(await res.text());
  });
  after(() => s.close());

  it('the dashboard has what Grafana needs to import it', () => {
    assert.equal(typeof dashboard.title, 'string');
    assert.ok(dashboard.title.length > 0);
    assert.match(dashboard.uid, /^[A-Za-z0-9_-]{8,40}$/, 'uid: 8-40 characters');
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36, 'schemaVersion');
    assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length >= 10);
    const ids = new Set<number>();
    const cells = new Set<string>();
    for (const p of dashboard.panels as Json[]) {
      assert.equal(typeof p.type, 'string', `panel ${p.title}: type`);
      assert.equal(typeof p.title, 'string');
      assert.ok(Number.isInteger(p.id) && !ids.has(p.id), `panel ${p.title}: a unique id`);
      ids.add(p.id);
      const g = p.gridPos as Json;
      for (const k of ['h', 'w', 'x', 'y'])
        assert.ok(Number.isInteger(g?.[k]), `panel ${p.title}: gridPos.${k}`);
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `panel ${p.title}: within the 24 columns`);
      // No two panels overlap.
      for (let dy = 0; dy < g.h; dy++) {
        for (let dx = 0; dx < g.w; dx++) {
          const cell = `${g.x + dx},${g.y + dy}`;
          assert.ok(!cells.has(cell), `panel ${p.title} overlaps another at ${cell}`);
          cells.add(cell);
        }
      }
      if (p.type === 'row') continue;
      assert.ok(Array.isArray(p.targets) && p.targets.length > 0, `panel ${p.title}: targets`);
      for (const t of p.targets as Json[]) {
        assert.equal(typeof t.expr, 'string');
        assert.match(t.refId, /^[A-Z]$/);
        // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
        assert.equal(t.datasource?.uid, '${datasource}');
      }
    }
    const ds = (dashboard.templating.list as Json[]).find((v) => v.name === 'datasource');
    assert.deepEqual([ds?.type, ds?.query], ['datasource', 'prometheus']);
  });

  it('the dashboard shows what docs/operations.md says it shows', () => {
    const titles = (dashboard.panels as Json[]).map((p) => p.title as string);
    for (const t of [
      'Exchanges per second by outcome',
      'Refusals by reason',
      'Exchange latency (granted)',
      'Active grants',
      'Reaper lag',
      'Revocations by source and outcome',
      'GitLab calls by status',
      'GitLab errors',
      'GitLab latency by route (p99)',
      'Replicas and leader',
      'STS GitLab token: time to expiry',
    ]) {
      assert.ok(titles.includes(t), `panel ${t}`);
    }
  });

  it('the rules are a Prometheus rule file; every alert has a severity, a summary and runbook text', () => {
    assert.ok(Array.isArray(rules.groups) && rules.groups.length > 0);
    const names = new Set<string>();
    for (const g of rules.groups as Json[]) {
      assert.equal(typeof g.name, 'string');
      assert.deepEqual(Object.keys(g).sort(), ['name', 'rules']);
      for (const r of g.rules as Json[]) {
        assert.match(r.alert, /^TanukiSts[A-Za-z]+$/);
        assert.ok(!names.has(r.alert), `alert ${r.alert} once`);
        names.add(r.alert);
        for (const k of Object.keys(r))
          assert.ok(['alert', 'expr', 'for', 'labels', 'annotations'].includes(k), k);
        if (r.for !== undefined) assert.match(r.for, /^[0-9]+[smh]$/);
        assert.ok(['critical', 'warning'].includes(r.labels?.severity), `${r.alert}: severity`);
        for (const k of ['summary', 'description', 'runbook']) {
          assert.ok(
            typeof r.annotations?.[k] === 'string' && r.annotations[k].length > 20,
            `${r.alert}: ${k}`,
          );
        }
      }
    }
    for (const a of [
      'TanukiStsGrantsOverdue',
      'TanukiStsGitlabUnreachable',
      'TanukiStsRefusalSpike',
      'TanukiStsReconcilerFoundOrphans',
      'TanukiStsNoLeader',
      'TanukiStsCredentialExpiring',
    ]) {
      assert.ok(names.has(a), `alert ${a}`);
    }
  });

  it('every expression is balanced, and uses only metrics and labels the STS exports', () => {
    assert.ok(have.size > 10, 'the scrape has metrics');
    const problems: string[] = [];
    for (const { where, expr } of expressions()) {
      for (const [open, close] of ['()', '{}', '[]']) {
        let depth = 0;
        for (const ch of expr.replace(/"[^"]*"/g, '""')) {
          if (ch === open) depth++;
          if (ch === close) depth--;
          assert.ok(depth >= 0, `${where}: unbalanced ${open}${close}`);
        }
        assert.equal(depth, 0, `${where}: unbalanced ${open}${close}`);
      }
      for (const p of unknownIn(expr, have)) problems.push(`${where}: ${p}`);
    }
    assert.deepEqual(problems, []);
  });

  it('the check catches what it should: an unknown metric, label or series', () => {
    assert.deepEqual(unknownIn('sum(rate(tanuki_sts_nope_total[5m]))', have), [
      'metric tanuki_sts_nope_total',
    ]);
    assert.deepEqual(unknownIn('sum by (tenant) (rate(tanuki_sts_exchanges_total{outcom="x"}[5m]))', have), [
      'label outcom of tanuki_sts_exchanges_total',
      'label tenant (grouping)',
    ]);
    assert.deepEqual(unknownIn('up == 0', have), ['metric up']);
  });
});
