/**
 * The Kubernetes manifests (deploy/kubernetes) and the Dockerfile checked
 * against the code: every file parses, the container ports are the ones the
 * ConfigMap's config listens on, the probe paths are answered by a running
 * STS, the ConfigMap's config passes `tanuki-sts check-config`, and the pod
 * keeps the security settings docs/deployment.md promises.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ROOT, runCli } from '../helpers/run-cli.ts';
import { type Stack, startStack } from '../helpers/stack.ts';

const DIR = join(ROOT, 'deploy', 'kubernetes');

type Manifest = Record<string, any>;

function loadManifests(): Map<string, Manifest[]> {
  const out = new Map<string, Manifest[]>();
  for (const name of readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    const docs = parseAllDocuments(readFileSync(join(DIR, name), 'utf8'));
    const list = Array.isArray(docs) ? docs : [docs];
    for (const d of list) assert.deepEqual(d.errors, [], `${name} must be valid YAML`);
    out.set(
      name,
      list.map((d) => d.toJS() as Manifest),
    );
  }
  return out;
}

function one(all: Map<string, Manifest[]>, kind: string): Manifest {
  const found = [...all.values()].flat().filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0] as Manifest;
}

function portOf(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

describe('deploy/kubernetes manifests', () => {
  const all = loadManifests();
  const deployment = one(all, 'Deployment');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const configYaml: string = one(all, 'ConfigMap').data['config.yaml'];
  const config = parseAllDocuments(configYaml);
  const stsConfig = (Array.isArray(config) ? config[0] : config)?.toJS() as Manifest;

  it('kustomization lists every manifest, and every manifest has an apiVersion and kind', () => {
    const kustomization = all.get('kustomization.yaml')?.[0] as Manifest;
    const listed = [...kustomization.resources].sort();
    const files = [...all.keys()].filter((f) => f !== 'kustomization.yaml').sort();
    assert.deepEqual(listed, files);
    for (const [name, docs] of all) for (const d of docs) assert.ok(d.apiVersion && d.kind, name);
  });

  it('container ports are the ones the config listens on, and the Service targets the token port', () => {
    const ports = Object.fromEntries(container.ports.map((p: Manifest) => [p.name, p.containerPort]));
    assert.equal(ports.http, portOf(stsConfig.server.listen));
    assert.equal(ports.metrics, portOf(stsConfig.server.metricsListen));
    const service = one(all, 'Service');
    assert.deepEqual(
      service.spec.ports.map((p: Manifest) => p.targetPort),
      ['http'],
      'the metrics port stays off the Service',
    );
    const netpol = one(all, 'NetworkPolicy');
    const ingressPorts = netpol.spec.ingress.flatMap((r: Manifest) => r.ports.map((p: Manifest) => p.port));
    assert.ok(ingressPorts.includes(ports.http));
    const egressPorts = netpol.spec.egress.flatMap((r: Manifest) => r.ports.map((p: Manifest) => p.port));
    for (const p of [53, 443, 5432]) assert.ok(egressPorts.includes(p), `egress to port ${p}`);
  });

  it('the pod runs as non-root, read-only, without privilege escalation, with the workload identity', () => {
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.equal(deployment.spec.template.metadata.labels['azure.workload.identity/use'], 'true');
    const sa = one(all, 'ServiceAccount');
    assert.equal(pod.serviceAccountName, sa.metadata.name);
    assert.ok(sa.metadata.annotations['azure.workload.identity/client-id']);
    assert.ok(container.resources.requests.cpu && container.resources.limits.memory);
    const pdb = one(all, 'PodDisruptionBudget');
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
  });

  it("the ConfigMap's config passes check-config (PostgreSQL store)", async () => {
    assert.ok(stsConfig.store.postgres, 'the manifests are for replicas: store.postgres');
    const dir = mkdtempSync(join(tmpdir(), 'k8s-config-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, configYaml);
      const env = {
        ...process.env,
        TANUKI_POSTGRES_URL: 'postgres://tanuki@postgres.example.com:5432/tanuki',
        TANUKI_GITLAB_TOKEN: 'glpat-0123456789abcdefghij',
      };
      const run = await runCli(['check-config', '--config', file], env);
      assert.equal(run.code, 0, run.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('probe paths are the ones the STS serves', () => {
    let stack: Stack;
    before(async () => {
      stack = await startStack();
    });
    after(async () => {
      await stack?.close();
    });
    for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
      it(kind, async () => {
        const path: string = container[kind].httpGet.path;
        assert.equal(container[kind].httpGet.port, 'http');
        const res = await fetch(new URL(path, stack.sts.url));
        assert.equal(res.status, 200, `${path} answers 200 on a healthy STS`);
      });
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  it('is multi-stage, runs as non-root, with the documented default command', () => {
    assert.equal(text.match(/^FROM /gm)?.length, 2);
    assert.match(text, /^USER nonroot$/m);
    assert.match(text, /^CMD \["serve", "--config", "\/etc\/tanuki-sts\/config.yaml"\]$/m);
    assert.match(text, /npm run build/);
    assert.match(text, /npm prune --omit=dev/);
  });
  it('the image config path is the one the Deployment mounts', () => {
    const all = loadManifests();
    const pod = one(all, 'Deployment').spec.template.spec;
    const mount = pod.containers[0].volumeMounts.find((m: Manifest) => m.name === 'config');
    assert.equal(mount.mountPath, '/etc/tanuki-sts');
    assert.deepEqual(pod.containers[0].args, ['serve', '--config', '/etc/tanuki-sts/config.yaml']);
  });
});
