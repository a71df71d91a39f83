// The Helm chart (helm/hm9k): lint and template for several value sets, the values schema, the CRD copies,
// then install / upgrade (with a changed CRD) / uninstall on a real kube-apiserver with RBAC, and each half
// run as a real `hm9k run` process with the identity of its chart ServiceAccount (impersonation), against
// real NATS, the CC and DEA simulators, real ipmi_sim BMCs and sshd, the Consul and Nova simulators. The
// apiserver's audit log records every call each identity made: none may be forbidden.
//
// This file starts its own control plane (etcd + kube-apiserver, about 5 s) instead of the run's shared one:
// helm must install the CRDs from the chart's crds/ into a cluster that has none, the upgrade test changes a
// CRD, and the chart creates cluster-scoped RBAC; none of that may leak into other test files.
/* eslint-disable @typescript-eslint/no-explicit-any -- manifests and API objects are plain JSON poked at by path */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ApiException, CoreV1Api, CustomObjectsApi, ApiextensionsV1Api, KubeConfig } from '@kubernetes/client-node';
import { ProcessConfigSchema, envToPaths, loadConfig } from '../../src/config.js';
import { GROUP, VERSION, allCrds, type ComputeNode } from '../../src/api/index.js';
import { crdFiles } from '../../src/cli/crds.js';
import { PRODUCTION_NODE_FLAGS } from '../../src/production-runtime.js';
import { imageEntrypoint } from '../support/dockerfile.js';
import { LocalControlPlane } from '../../src/devenv/controlplane.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { DeaFleet } from '../../src/sim/dea.js';
import { NatsServer } from '../support/nats.js';
import { BMC_PASSWORD, BMC_USER } from '../support/ipmi.js';
import { World } from '../nodes/world.js';
import { CHART, Hm9kProcess, all, find, helm, helmAsync, impersonatingKubeconfig, render, valuesFile, type Manifest } from '../support/helm.js';

const NS = 'hm9k-system';

// ---------------------------------------------------------------------------------------------------
// The one value without a usable default: values.yaml's CC URL is a placeholder the chart refuses to render.
const PLACEHOLDER_CC_URL = 'https://api.cf.internal';
const REQUIRED = { apps: { cc: { url: 'https://api.sys.example.org' } } };
const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(base: any, over: any): any {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}
/** Values with the required ones filled in (what an operator must set at least). */
const withRequired = (values: any): any => merge(REQUIRED, values);

// Value sets used by lint/template (and, adapted, by the install).
const RAW_VALUE_SETS: Record<string, any> = {
  defaults: {},
  appsOnly: { nodes: { enabled: false } },
  nodesOnly: { apps: { enabled: false } },
  neither: { apps: { enabled: false }, nodes: { enabled: false } },
  existingSecrets: {
    apps: {
      nats: { servers: ['tls://nats-0.cf:4222', 'tls://nats-1.cf:4222'], user: 'hm9k', existingSecret: 'nats-creds', passwordKey: 'pw', tokenKey: 'tok' },
      cc: { url: 'https://api.sys.example.org', internalUser: 'hm-internal', bulkUser: 'hm-bulk', existingSecret: 'my-cc', internalPasswordKey: 'i', bulkPasswordKey: 'b' },
      api: { user: 'cc', existingSecret: 'my-api', passwordKey: 'p', heartbeatEndpoint: false },
      policyName: 'prod',
    },
    nodes: {
      cloudsSecret: 'my-clouds', cloudName: 'region-1', rbac: { secretNames: ['my-clouds', 'bmc-creds', 'ssh-key', 'smtp-creds'] }, globalMaxUnhealthy: 4,
      smtpDefault: { smtpHost: 'smtp.example.org', smtpPort: 465, secure: true, from: 'hm9k@example.org', to: ['ops@example.org'], credentialsSecret: 'smtp-creds' },
    },
  },
  etcdStore: {
    apps: { store: { kind: 'etcd', endpoints: ['https://etcd-0.hm9k:2379', 'https://etcd-1.hm9k:2379'], prefix: '/prod/' }, sendVia: 'nats', desiredAppNamespace: 'cf-apps' },
  },
  monitoring: {
    fullnameOverride: 'h9',
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'prom' } }, prometheusRule: { enabled: true } },
    nodes: { globalMaxUnhealthy: '25%', leaseName: 'h9-nodes' },
    apps: { leaseName: 'h9-apps', replicas: 3 },
    image: { digest: `sha256:${'a'.repeat(64)}` },
  },
};

const VALUE_SETS: Record<string, any> = Object.fromEntries(Object.entries(RAW_VALUE_SETS).map(([k, v]) => [k, withRequired(v)]));

/** What kubelet would put into the env from the Secrets (any value: only the names and paths matter here). */
function envFor(container: Manifest): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) env[e.name] = 'pod-0';
    else if (e.valueFrom?.secretKeyRef) env[e.name] = `secret-${e.valueFrom.secretKeyRef.name}-${e.valueFrom.secretKeyRef.key}`;
  }
  return env;
}

/** Effective RBAC of a ServiceAccount: `namespace|apiGroup|resource|verb[|resourceNames]` (namespace * = cluster-wide). */
function effectiveRules(objs: Manifest[], ns: string, sa: string): string[] {
  const out = new Set<string>();
  for (const b of [...all(objs, 'RoleBinding'), ...all(objs, 'ClusterRoleBinding')]) {
    if (!b.subjects?.some((s: any) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === ns)) continue;
    const role = find(objs, b.roleRef.kind, b.roleRef.name, b.roleRef.kind === 'Role' ? b.metadata.namespace : undefined);
    if (!role) throw new Error(`${b.kind} ${b.metadata.name} refers to a missing ${b.roleRef.kind} ${b.roleRef.name}`);
    const where = b.kind === 'ClusterRoleBinding' ? '*' : b.metadata.namespace;
    for (const r of role.rules)
      for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.add([where, g, res, v, ...(r.resourceNames ? [r.resourceNames.join(',')] : [])].join('|'));
  }
  return [...out].sort();
}

function expectedRules(half: 'apps' | 'nodes', ns: string, opts: { lease?: string; desiredAppNs?: string; secretNames?: string[] } = {}): string[] {
  const lease = opts.lease ?? `hm9k-${half}`;
  const common = [`${ns}|coordination.k8s.io|leases|create`, `${ns}|coordination.k8s.io|leases|get|${lease}`, `${ns}|coordination.k8s.io|leases|update|${lease}`, 'default|events.k8s.io|events|create', 'default|events.k8s.io|events|patch'];
  if (half === 'apps') {
    const da = opts.desiredAppNs ?? ns;
    return [
      ...common,
      '*|hm9k.io|apphealthpolicies|list', '*|hm9k.io|apphealthpolicies|watch', '*|hm9k.io|apphealthpolicies/status|patch',
      ...['list', 'watch', 'create', 'update', 'delete'].map((v) => `${da}|hm9k.io|desiredapps|${v}`),
      `${da}|hm9k.io|desiredapps/status|patch`, `${da}|events.k8s.io|events|create`, `${da}|events.k8s.io|events|patch`,
    ].sort();
  }
  return [
    ...common,
    ...['computenodes', 'fencepolicies'].flatMap((r) => ['list', 'watch'].map((v) => `*|hm9k.io|${r}|${v}`)),
    '*|hm9k.io|computenodes|patch', '*|hm9k.io|computenodes/status|patch', '*|hm9k.io|computenodes/status|update', '*|hm9k.io|fencepolicies/status|patch',
    // Always restricted by name (never every Secret of the namespace: Helm's release Secrets live there).
    `${ns}||secrets|get|${[...new Set(opts.secretNames ?? ['openstack-clouds'])].sort().join(',')}`,
  ].sort();
}

// ---------------------------------------------------------------------------------------------------
describe('chart: lint, template, schema', () => {
  it.each(Object.keys(VALUE_SETS))('helm lint passes with the %s values', (name) => {
    const r = helm(['lint', CHART, '--strict', '--namespace', NS, '-f', valuesFile(VALUE_SETS[name])]);
    expect(r.stderr + r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.status).toBe(0);
  });

  it.each(Object.keys(VALUE_SETS))('helm template with the %s values renders both halves as configured', (name) => {
    const values = VALUE_SETS[name];
    const objs = render(values, { namespace: NS });
    const fullname = values.fullnameOverride ?? 'hm9k';
    // Nothing secret is rendered, and CRDs only come from crds/ (not templates).
    expect(all(objs, 'Secret')).toEqual([]);
    expect(all(objs, 'CustomResourceDefinition')).toEqual([]);
    for (const half of ['apps', 'nodes'] as const) {
      const hv = { enabled: true, ...values[half] };
      const dep = find(objs, 'Deployment', `${fullname}-${half}`, NS);
      if (!hv.enabled) {
        expect(dep).toBeUndefined();
        expect(objs.filter((o) => o.metadata?.labels?.['app.kubernetes.io/component'] === half)).toEqual([]);
        continue;
      }
      expect(dep, `${half} Deployment`).toBeDefined();
      const pod = dep!.spec.template.spec;
      const c = pod.containers[0];
      expect(dep!.spec.replicas).toBe(hv.replicas ?? 2);
      expect(c.args).toEqual(['run', `--${half}`, '--config', '/etc/hm9k/config.yaml']);
      expect(c.image).toBe(values.image?.digest ? `ghcr.io/hm9k/hm9k@${values.image.digest}` : 'ghcr.io/hm9k/hm9k:0.1.0');
      // Restricted pod security.
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      expect(pod.terminationGracePeriodSeconds).toBe(10);
      expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(pod.volumes.find((v: any) => v.name === 'tmp')).toMatchObject({ emptyDir: {} });
      expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.resources.limits).toMatchObject({ memory: expect.any(String) });
      // Probes on 8081, metrics on 8080.
      const port = (n: string) => c.ports.find((p: any) => p.name === n)?.containerPort;
      expect(port('health')).toBe(8081);
      expect(port('metrics')).toBe(8080);
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
      // Own ServiceAccount.
      const sa = pod.serviceAccountName;
      expect(sa).toBe(`${fullname}-${half}`);
      expect(find(objs, 'ServiceAccount', sa, NS)).toBeDefined();
      // Env: the pod name through the downward API, secrets only by reference, each mapped onto a config key.
      expect(c.env.find((e: any) => e.name === 'HM9K_POD_NAME')).toEqual({ name: 'HM9K_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
      for (const e of c.env) expect(e.value, `${e.name} must come from a reference`).toBeUndefined();
      const env = envFor(c);
      for (const [path] of envToPaths(env)) expect(path).toMatch(/^(podName|apps\.(nats\.(password|token)|cc\.(internalPassword|bulkPassword)|api\.password))$/);
      expect(envToPaths(env).length).toBe(Object.keys(env).filter((k) => k.startsWith('HM9K_')).length);
      // The ConfigMap holds exactly the file `hm9k run --config` accepts (src/config.ts), for this half only.
      const cmName = pod.volumes.find((v: any) => v.name === 'config').configMap.name;
      const cm = find(objs, 'ConfigMap', cmName, NS);
      expect(cm).toBeDefined();
      const dir = mkdtempSync(join(tmpdir(), 'hm9k-cfg-'));
      const file = join(dir, 'config.yaml');
      writeFileSync(file, cm!.data['config.yaml']);
      const config = loadConfig({ file, env, sets: [[`${half}.enabled`, 'true']] });
      rmSync(dir, { recursive: true, force: true });
      expect(config.namespace).toBe(NS);
      expect(config.podName).toBe('pod-0');
      expect(config.leaderElection).toMatchObject({ enabled: true, leaseName: hv.leaseName ?? `hm9k-${half}`, leaseDuration: '15s' });
      expect(config[half === 'apps' ? 'nodes' : 'apps'].enabled).toBe(false);
      expect(parse(cm!.data['config.yaml']).apps?.enabled ?? parse(cm!.data['config.yaml']).nodes?.enabled).toBeUndefined();
      if (half === 'apps') {
        expect(config.apps.nats.servers).toEqual(hv.nats?.servers ?? ['nats://nats.service.cf.internal:4222']);
        expect(config.apps.cc).toMatchObject({ url: hv.cc.url, bulkPassword: `secret-${hv.cc?.existingSecret ?? 'cc-credentials'}-${hv.cc?.bulkPasswordKey ?? 'bulkPassword'}` });
        expect(config.apps.api).toMatchObject({ port: 5155, password: `secret-${hv.api?.existingSecret ?? 'hm9k-api-credentials'}-${hv.api?.passwordKey ?? 'password'}`, heartbeatEndpoint: hv.api?.heartbeatEndpoint ?? false, heartbeatAuth: true });
        expect(config.apps.store).toMatchObject({ kind: hv.store?.kind ?? 'memory', endpoints: hv.store?.endpoints ?? [] });
        expect(config.apps.sendVia).toBe(hv.sendVia ?? 'http');
        expect(config.apps.desiredAppNamespace).toBe(hv.desiredAppNamespace ?? NS);
        if (hv.nats?.existingSecret) expect(config.apps.nats).toMatchObject({ user: hv.nats.user, password: 'secret-nats-creds-pw', token: 'secret-nats-creds-tok' });
        // The app-state API Service (5155; /dea/heartbeat is on the same server) and the metrics Service.
        const api = find(objs, 'Service', `${fullname}-apps-api`, NS);
        expect(api?.spec.ports).toEqual([{ name: 'api', port: 5155, targetPort: 'api', protocol: 'TCP' }]);
        expect(port('api')).toBe(5155);
      } else {
        expect(config.nodes).toMatchObject({ cloudsSecret: hv.cloudsSecret ?? 'openstack-clouds', cloudName: hv.cloudName ?? 'openstack', globalMaxUnhealthy: hv.globalMaxUnhealthy ?? '50%' });
        expect(config.nodes.smtpDefault).toEqual(hv.smtpDefault);
      }
      const metrics = find(objs, 'Service', `${fullname}-${half}-metrics`, NS);
      expect(metrics?.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
      expect(metrics?.spec.selector).toEqual(dep!.spec.selector.matchLabels);
      expect(find(objs, 'PodDisruptionBudget', `${fullname}-${half}`, NS)?.spec).toEqual({ minAvailable: 1, selector: dep!.spec.selector });
      // Least privilege, exactly.
      expect(effectiveRules(objs, NS, sa)).toEqual(
        expectedRules(half, NS, {
          lease: hv.leaseName, desiredAppNs: hv.desiredAppNamespace,
          secretNames: [hv.cloudsSecret ?? 'openstack-clouds', ...(hv.smtpDefault?.smtpHost && hv.smtpDefault.credentialsSecret ? [hv.smtpDefault.credentialsSecret] : []), ...(hv.rbac?.secretNames ?? [])],
        }),
      );
    }
    // No rule anywhere grants CRDs, wildcards or cluster-wide Secrets.
    for (const r of [...all(objs, 'Role'), ...all(objs, 'ClusterRole')].flatMap((x) => x.rules)) {
      expect(r.apiGroups).not.toContain('apiextensions.k8s.io');
      expect([...r.verbs, ...r.resources, ...r.apiGroups]).not.toContain('*');
    }
    for (const cr of all(objs, 'ClusterRole')) expect(cr.rules.flatMap((r: any) => r.resources)).not.toContain('secrets');
  });

  it('renders the ServiceMonitor and the PrometheusRule alerts on metrics hm9k exports', () => {
    const objs = render(VALUE_SETS.monitoring, { namespace: NS });
    const sm = find(objs, 'ServiceMonitor', 'h9', NS)!;
    expect(sm.metadata.labels.release).toBe('prom');
    expect(sm.spec.selector.matchLabels).toMatchObject({ 'app.kubernetes.io/instance': 'hm9k', 'hm9k.io/metrics': 'true' });
    for (const half of ['apps', 'nodes']) expect(find(objs, 'Service', `h9-${half}-metrics`, NS)!.metadata.labels['hm9k.io/metrics']).toBe('true');
    const rules = find(objs, 'PrometheusRule', 'h9', NS)!.spec.groups.flatMap((g: any) => g.rules);
    const byName = Object.fromEntries(rules.map((r: any) => [r.alert, r.expr]));
    expect(Object.keys(byName).sort()).toEqual(['Hm9kActualStateNotFresh', 'Hm9kAppsNoLeader', 'Hm9kDesiredStateNotFresh', 'Hm9kFenceFailed', 'Hm9kNodesNoLeader', 'Hm9kStopHold', 'Hm9kStormActive']);
    expect(byName.Hm9kActualStateNotFresh).toContain('hm9k_actual_state_fresh{job="h9-apps-metrics", namespace="hm9k-system"}');
    expect(byName.Hm9kDesiredStateNotFresh).toContain('hm9k_desired_state_fresh{');
    expect(byName.Hm9kStopHold).toContain('hm9k_stop_hold_active{');
    expect(byName.Hm9kFenceFailed).toContain('phase="FenceFailed"');
    expect(byName.Hm9kStormActive).toContain('hm9k_nodes_storm_active{');
    expect(byName.Hm9kAppsNoLeader).toContain('leader_election_master_status{job="h9-apps-metrics", namespace="hm9k-system", name="h9-apps"}');
    // Every metric an alert uses is one hm9k registers (src/apps/status/metrics.ts, src/nodes/engine.ts, src/kube/leader.ts).
    const sources = ['src/apps/status/metrics.ts', 'src/nodes/engine.ts', 'src/kube/leader.ts'].map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const expr of Object.values(byName) as string[]) {
      for (const m of expr.match(/\b(hm9k_[a-z_]+|leader_election_[a-z_]+)\{/g) ?? []) expect(sources, m).toContain(`'${m.slice(0, -1)}'`);
    }
  });

  it('covers every key of the process configuration (src/config.ts) with a value, an env var or a stated reason', () => {
    // Keys the chart sets on purpose without a value.
    const notValues: Record<string, string> = {
      namespace: 'always the release namespace',
      podName: 'downward API (HM9K_POD_NAME)',
      kubeconfig: 'in-cluster',
      bindAddress: '0.0.0.0 so that probes and Prometheus reach the pod',
      'apps.enabled': 'container args run --apps',
      'nodes.enabled': 'container args run --nodes',
      'apps.api.host': 'all addresses (the Service routes to it)',
      'apps.api.heartbeatPassword': 'HM9K_APPS__API__HEARTBEAT_PASSWORD only with heartbeatEndpoint and heartbeatPasswordKey (else the API password)',
      'leaderElection.enabled': 'always on with 2 replicas',
    };
    const leaves: string[] = [];
    const walk = (schema: any, prefix: string) => {
      for (const [k, v] of Object.entries<any>(schema.properties ?? {})) {
        const path = prefix ? `${prefix}.${k}` : k;
        if (v.type === 'object' && v.properties) walk(v, path);
        else leaves.push(path);
      }
    };
    walk(ProcessConfigSchema, '');
    const objs = render(VALUE_SETS.existingSecrets, { namespace: NS });
    const rendered = new Set<string>();
    const flat = (o: any, prefix: string) => {
      for (const [k, v] of Object.entries<any>(o)) {
        const path = prefix ? `${prefix}.${k}` : k;
        if (v && typeof v === 'object' && !Array.isArray(v)) flat(v, path);
        else rendered.add(path);
      }
    };
    for (const cm of all(objs, 'ConfigMap')) flat(parse(cm.data['config.yaml']), '');
    for (const d of all(objs, 'Deployment')) for (const [p] of envToPaths(envFor(d.spec.template.spec.containers[0]))) rendered.add(p);
    const missing = leaves.filter((l) => !rendered.has(l) && !(l in notValues));
    expect(missing).toEqual([]);
    // And nothing rendered that the configuration does not know.
    for (const p of rendered) expect(leaves, p).toContain(p);
  });

  const bad: [string, any, RegExp][] = [
    ['an unknown log level', { logLevel: 'loud' }, /at '\/logLevel': value must be one of 'trace', 'debug', 'info', 'warn', 'error'/],
    ['a typo in a key', { nodes: { workerz: 3 } }, /at '\/nodes': additional properties 'workerz' not allowed/],
    ['a password in values', { apps: { cc: { internalPassword: 'hunter2' } } }, /at '\/apps\/cc': additional properties 'internalPassword' not allowed/],
    ['a CC URL that is not http(s)', { apps: { cc: { url: 'ftp://cc' } } }, /at '\/apps\/cc\/url': 'ftp:\/\/cc' does not match pattern/],
    ['a NATS URL that is not nats/tls', { apps: { nats: { servers: ['http://nats:4222'] } } }, /at '\/apps\/nats\/servers\/0': 'http:\/\/nats:4222' does not match pattern/],
    ['the etcd store without endpoints', { apps: { store: { kind: 'etcd' } } }, /at '\/apps\/store\/endpoints': minItems: got 0, want 1/],
    ['an unknown store', { apps: { store: { kind: 'redis' } } }, /at '\/apps\/store\/kind': value must be one of 'memory', 'etcd'/],
    ['a bad duration', { nodes: { consulWait: '5 minutes' } }, /at '\/nodes\/consulWait': '5 minutes' does not match pattern/],
    ['a bad global ceiling', { nodes: { globalMaxUnhealthy: 'half' } }, /at '\/nodes\/globalMaxUnhealthy'/],
    ['a global ceiling above 100%', { nodes: { globalMaxUnhealthy: '150%' } }, /at '\/nodes\/globalMaxUnhealthy'/],
    ['a negative replica count', { apps: { replicas: -1 } }, /at '\/apps\/replicas': minimum: got -1, want 0/],
    ['a port out of range', { apps: { api: { port: 70000 } } }, /at '\/apps\/api\/port': maximum: got 70,?000, want 65,?535/],
    ['a Secret name that is not a DNS name', { nodes: { cloudsSecret: 'My_Clouds' } }, /at '\/nodes\/cloudsSecret': 'My_Clouds' does not match pattern/],
    ['a default SMTP server without recipients', { nodes: { smtpDefault: { smtpHost: 'smtp.example.org', from: 'hm9k@example.org' } } }, /at '\/nodes\/smtpDefault\/to': minItems: got 0, want 1/],
    ['no CC Secret for the app half', { apps: { cc: { existingSecret: '' } } }, /at '\/apps\/cc\/existingSecret': '' does not match pattern/],
  ];
  it.each(bad)('rejects %s at install, by the schema, naming the value', (_what, values, message) => {
    const file = valuesFile(values);
    for (const cmd of [['template', 'hm9k', CHART, '-f', file], ['lint', CHART, '-f', file]]) {
      const r = helm(cmd);
      expect(r.status, `helm ${cmd[0]}`).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/values don't meet the specifications of the schema\(s\) in the following chart\(s\):\nhm9k:/);
      expect(r.stderr + r.stdout).toMatch(message);
    }
  });

  it('rejects one Lease for both halves with a clear message', () => {
    const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired({ apps: { leaseName: 'hm9k' }, nodes: { leaseName: 'hm9k' } }))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/apps.leaseName and nodes.leaseName must differ/);
  });

  it('keeps helm/hm9k/crds byte-identical to crds/ and to what `hm9k crds` generates', () => {
    const chartFiles = readdirSync(join(CHART, 'crds')).sort();
    expect(chartFiles).toEqual(readdirSync('crds').filter((f) => f.endsWith('.yaml')).sort());
    expect(chartFiles).toEqual([...crdFiles().keys()].sort());
    for (const f of chartFiles) {
      const inChart = readFileSync(join(CHART, 'crds', f));
      expect(inChart.equals(readFileSync(join('crds', f))), `helm/hm9k/crds/${f} differs from crds/${f}: run npm run crds`).toBe(true);
      expect(inChart.toString('utf8'), f).toBe(crdFiles().get(f));
    }
    // `npm run crds` writes both copies.
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.crds).toContain('--write crds');
    expect(pkg.scripts.crds).toContain('--write helm/hm9k/crds');
  });
});

// ---------------------------------------------------------------------------------------------------
describe('chart: values an operator adapts without forking (issue 10)', () => {
  const container = (objs: Manifest[], half: string) => find(objs, 'Deployment', `hm9k-${half}`, NS)!.spec.template.spec.containers[0];
  const podSpec = (objs: Manifest[], half: string) => find(objs, 'Deployment', `hm9k-${half}`, NS)!.spec.template.spec;

  it('extraEnv / extraVolumes / extraVolumeMounts: the private-CA recipe of values.yaml renders, global then per half', () => {
    const ca = {
      extraVolumes: [{ name: 'private-ca', configMap: { name: 'private-ca' } }],
      extraVolumeMounts: [{ name: 'private-ca', mountPath: '/etc/ssl/private-ca', readOnly: true }],
      extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/private-ca/ca.crt' }],
    };
    // The recipe in values.yaml's comments is exactly these values (so it can be followed as written).
    const comments = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n').filter((l) => l.startsWith('#   ')).map((l) => l.slice(4)).join('\n');
    const recipe = parse(comments.split('\n').filter((l) => !l.startsWith('kubectl')).join('\n'));
    expect(recipe).toEqual(ca);
    const objs = render(withRequired({ ...ca, nodes: { extraEnv: [{ name: 'HTTPS_PROXY', value: 'http://proxy:3128' }], extraVolumes: [{ name: 'scratch', emptyDir: {} }], extraVolumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] } }), { namespace: NS });
    for (const half of ['apps', 'nodes']) {
      const c = container(objs, half);
      expect(c.env).toContainEqual(ca.extraEnv[0]);
      expect(c.env.find((e: any) => e.name === 'HM9K_POD_NAME')).toBeDefined();
      expect(c.volumeMounts).toContainEqual(ca.extraVolumeMounts[0]);
      expect(c.volumeMounts.map((m: any) => m.name).slice(0, 2)).toEqual(['config', 'tmp']);
      expect(podSpec(objs, half).volumes).toContainEqual(ca.extraVolumes[0]);
    }
    const n = container(objs, 'nodes');
    expect(n.env.slice(-2).map((e: any) => e.name)).toEqual(['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY']);
    expect(n.volumeMounts.at(-1)).toEqual({ name: 'scratch', mountPath: '/scratch' });
    expect(podSpec(objs, 'nodes').volumes.at(-1)).toEqual({ name: 'scratch', emptyDir: {} });
    const a = container(objs, 'apps');
    expect(a.env.map((e: any) => e.name)).not.toContain('HTTPS_PROXY');
    expect(podSpec(objs, 'apps').volumes.map((v: any) => v.name)).toEqual(['config', 'tmp', 'private-ca']);
    // Defaults add nothing.
    const plain = render(withRequired({}), { namespace: NS });
    expect(podSpec(plain, 'apps').volumes.map((v: any) => v.name)).toEqual(['config', 'tmp']);
    expect(container(plain, 'apps').volumeMounts.map((v: any) => v.name)).toEqual(['config', 'tmp']);
  });

  it('nodeFlags: null keeps the image\'s command (with PRODUCTION_NODE_FLAGS); a list replaces the flags of that half only; a flag that is not one is refused', () => {
    // The image's ENTRYPOINT is tini -- node <PRODUCTION_NODE_FLAGS> /app/bin/hm9k.js.
    expect(imageEntrypoint()).toEqual(['/usr/bin/tini', '--', 'node', ...PRODUCTION_NODE_FLAGS, '/app/bin/hm9k.js']);
    const plain = render(withRequired({}), { namespace: NS });
    for (const half of ['apps', 'nodes']) expect(container(plain, half).command).toBeUndefined();
    const objs = render(withRequired({ apps: { nodeFlags: ['--max-old-space-size=8192'] }, nodes: { nodeFlags: [] } }), { namespace: NS });
    expect(container(objs, 'apps').command).toEqual(['/usr/bin/tini', '--', 'node', '--max-old-space-size=8192', '/app/bin/hm9k.js']);
    expect(container(objs, 'nodes').command).toEqual(['/usr/bin/tini', '--', 'node', '/app/bin/hm9k.js']);
    expect(container(objs, 'apps').args).toEqual(['run', '--apps', '--config', '/etc/hm9k/config.yaml']);
    const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired({ apps: { nodeFlags: ['--ok', '; rm -rf /'] } }))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/apps\/nodeFlags\/1.*does not match/);
  });

  it('serviceAccount.create=false uses the named ServiceAccount; rbac.create=false renders no RBAC for that half', () => {
    const objs = render(withRequired({ apps: { serviceAccount: { create: false, name: 'cf-hm' }, rbac: { create: false } }, nodes: { rbac: { create: false } } }), { namespace: NS });
    expect(podSpec(objs, 'apps').serviceAccountName).toBe('cf-hm');
    expect(all(objs, 'ServiceAccount').map((o) => o.metadata.name)).toEqual(['hm9k-nodes']);
    for (const kind of ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']) expect(all(objs, kind), kind).toEqual([]);
    // One half only: the other keeps its RBAC.
    const mixed = render(withRequired({ apps: { rbac: { create: false } } }), { namespace: NS });
    expect(all(mixed, 'Role').length).toBeGreaterThan(0);
    expect([...all(mixed, 'Role'), ...all(mixed, 'ClusterRole')].every((o) => o.metadata.labels['app.kubernetes.io/component'] === 'nodes')).toBe(true);
    expect(effectiveRules(mixed, NS, 'hm9k-nodes')).toEqual(expectedRules('nodes', NS));
    const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired({ nodes: { serviceAccount: { create: false } } }))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/nodes\.serviceAccount\.name is required when nodes\.serviceAccount\.create=false/);
  });

  it('spreads the 2 replicas softly by default (anti-affinity per node, spread per zone); affinity / topologySpreadConstraints override', () => {
    const objs = render(withRequired({}), { namespace: NS });
    for (const half of ['apps', 'nodes']) {
      const pod = podSpec(objs, half);
      const sel = find(objs, 'Deployment', `hm9k-${half}`, NS)!.spec.selector;
      expect(pod.affinity).toEqual({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: sel } }] } });
      expect(pod.topologySpreadConstraints).toEqual([{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: sel }]);
    }
    const own = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'role', operator: 'In', values: ['infra'] }] }] } } };
    const tsc = [{ maxSkew: 2, topologyKey: 'rack', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { a: 'b' } } }];
    const o = render(withRequired({ apps: { affinity: own, topologySpreadConstraints: tsc }, nodes: { defaultSpread: false } }), { namespace: NS });
    expect(podSpec(o, 'apps').affinity).toEqual(own);
    expect(podSpec(o, 'apps').topologySpreadConstraints).toEqual(tsc);
    expect(podSpec(o, 'nodes').affinity).toBeUndefined();
    expect(podSpec(o, 'nodes').topologySpreadConstraints).toBeUndefined();
  });

  it('renders no PodDisruptionBudget that would block kubectl drain', () => {
    const one = render(withRequired({ apps: { replicas: 1 }, nodes: { replicas: 0 } }), { namespace: NS });
    expect(all(one, 'PodDisruptionBudget')).toEqual([]);
    const three = render(withRequired({ apps: { replicas: 3, pdb: { minAvailable: 2 } } }), { namespace: NS });
    expect(find(three, 'PodDisruptionBudget', 'hm9k-apps', NS)!.spec.minAvailable).toBe(2);
    expect(find(three, 'PodDisruptionBudget', 'hm9k-nodes', NS)!.spec.minAvailable).toBe(1);
    for (const values of [{ apps: { pdb: { minAvailable: 2 } } }, { nodes: { replicas: 3, pdb: { minAvailable: 3 } } }]) {
      const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired(values))]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/pdb\.minAvailable=\d with (apps|nodes)\.replicas=\d would block kubectl drain/);
    }
    // --set gives integers of another Go type: the check still fires.
    const r = helm(['template', 'hm9k', CHART, '--set', 'apps.pdb.minAvailable=2', '--set', `apps.cc.url=${REQUIRED.apps.cc.url}`]);
    expect(r.stderr).toMatch(/apps\.pdb\.minAvailable=2 with apps\.replicas=2 would block kubectl drain/);
  });

  it('renders no NetworkPolicy by default; enabled: ingress only to 5155 / 8080 / 8081, egress per half to the configured CIDRs and ports', () => {
    expect(all(render(withRequired({}), { namespace: NS }), 'NetworkPolicy')).toEqual([]);
    const cc = [{ ipBlock: { cidr: '10.0.16.0/24' } }];
    const prom = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }];
    const objs = render(withRequired({
      networkPolicy: {
        enabled: true,
        ingress: { api: { from: cc }, metrics: { from: prom } },
        egress: { nats: { cidrs: ['10.0.16.5/32'] }, bmc: { cidrs: ['10.9.0.0/16', '10.10.0.0/16'] }, smtp: { ports: [{ port: 2525 }] }, consul: { ports: [] } },
        extraEgress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 3128, protocol: 'TCP' }] }],
      },
      apps: { store: { kind: 'etcd', endpoints: ['https://etcd:2379'] } },
    }), { namespace: NS });
    const rule = (ports: [number, string][], cidrs?: string[]) => ({ ports: ports.map(([port, protocol]) => ({ port, protocol })), ...(cidrs ? { to: cidrs.map((cidr) => ({ ipBlock: { cidr } })) } : {}) });
    const dns = rule([[53, 'UDP'], [53, 'TCP']]);
    const api = rule([[443, 'TCP'], [6443, 'TCP']]);
    const extra = { to: [{ ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 3128, protocol: 'TCP' }] };
    for (const half of ['apps', 'nodes']) {
      const np = find(objs, 'NetworkPolicy', `hm9k-${half}`, NS)!;
      expect(np.spec.podSelector).toEqual(find(objs, 'Deployment', `hm9k-${half}`, NS)!.spec.selector);
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      const metrics = { ports: [{ port: 8080, protocol: 'TCP' }, { port: 8081, protocol: 'TCP' }], from: prom };
      expect(np.spec.ingress).toEqual(half === 'apps' ? [{ ports: [{ port: 5155, protocol: 'TCP' }], from: cc }, metrics] : [metrics]);
    }
    expect(find(objs, 'NetworkPolicy', 'hm9k-apps', NS)!.spec.egress).toEqual([dns, api, rule([[4222, 'TCP']], ['10.0.16.5/32']), rule([[443, 'TCP']]), rule([[2379, 'TCP']]), extra]);
    // consul with no ports: no rule (nothing allowed there); smtp with its own port.
    expect(find(objs, 'NetworkPolicy', 'hm9k-nodes', NS)!.spec.egress).toEqual([
      dns, api, rule([[623, 'UDP']], ['10.9.0.0/16', '10.10.0.0/16']), rule([[22, 'TCP']]), rule([[5000, 'TCP'], [8774, 'TCP'], [443, 'TCP']]), rule([[2525, 'TCP']]), extra,
    ]);
    // Without the etcd store, no etcd rule; a half switched off, no policy.
    const mem = render(withRequired({ networkPolicy: { enabled: true }, nodes: { enabled: false } }), { namespace: NS });
    expect(all(mem, 'NetworkPolicy').map((o) => o.metadata.name)).toEqual(['hm9k-apps']);
    expect(find(mem, 'NetworkPolicy', 'hm9k-apps', NS)!.spec.egress).toEqual([dns, api, rule([[4222, 'TCP']]), rule([[443, 'TCP']])]);
    const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired({ networkPolicy: { enabled: true, egress: { bmc: { cidrs: ['bmc-net'] } } } }))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/networkPolicy\/egress\/bmc\/cidrs\/0/);
  });

  it('refuses to render while apps.cc.url is the placeholder of values.yaml (the schema refuses it empty), naming the value', () => {
    expect(parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')).apps.cc.url).toBe(PLACEHOLDER_CC_URL);
    for (const [cmd, values] of [[['template', 'hm9k', CHART], {}], [['template', 'hm9k', CHART, '--namespace', NS], { nodes: { enabled: false } }]] as const) {
      const r = helm([...cmd, '-f', valuesFile(values)]);
      expect(r.status, cmd.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(/apps\.cc\.url is required when apps\.enabled=true: set it to your Cloud Controller's base URL \(e\.g\. https:\/\/api\.sys\.example\.org\)/);
    }
    expect(helm(['template', 'hm9k', CHART]).stderr).toContain(`still the placeholder ${PLACEHOLDER_CC_URL}`);
    expect(helm(['template', 'hm9k', CHART, '-f', valuesFile({ apps: { cc: { url: '' } } })]).stderr).toMatch(/at '\/apps\/cc\/url': minLength: got 0, want 1/);
    // Not needed without the app half; a real URL renders.
    expect(render({ apps: { enabled: false } }, { namespace: NS }).length).toBeGreaterThan(0);
    expect(find(render(withRequired({}), { namespace: NS }), 'ConfigMap', 'hm9k-apps-config', NS)!.data['config.yaml']).toContain('url: https://api.sys.example.org');
  });

  it('Chart.yaml carries kubeVersion (README\'s supported versions), home, sources and maintainers, and helm enforces kubeVersion', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    expect(chart.kubeVersion).toBe('>=1.28.0-0');
    expect(readFileSync('README.md', 'utf8')).toContain('Kubernetes 1.28 or newer');
    expect(chart.home).toMatch(/^https:\/\//);
    expect(chart.sources).toEqual(expect.arrayContaining([expect.stringMatching(/^https:\/\/github\.com\//)]));
    expect(chart.maintainers).toEqual([expect.objectContaining({ name: expect.any(String), url: expect.stringMatching(/^https:\/\//) })]);
    const old = helm(['template', 'hm9k', CHART, '--kube-version', '1.27.9', '-f', valuesFile(withRequired({}))]);
    expect(old.status).not.toBe(0);
    expect(old.stderr).toMatch(/chart requires kubeVersion: >=1\.28\.0-0 which is incompatible with Kubernetes v1\.27\.9/);
    expect(helm(['template', 'hm9k', CHART, '--kube-version', '1.32.0', '-f', valuesFile(withRequired({}))]).status).toBe(0);
  });

  it('helm/hm9k/README.md carries the values table generated from values.schema.json, and the check fails on drift', () => {
    const check = (chart: string) => spawnSync(process.execPath, ['scripts/chart-readme.mjs', '--check', '--chart', chart], { encoding: 'utf8' });
    const ok = check(CHART);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    // Every leaf of the schema has a row with its description and default (values.yaml).
    expect(readme).toContain('| `networkPolicy.egress.bmc.ports` | array | `[{"port":623,"protocol":"UDP"}]` |');
    expect(readme).toContain('| `apps.serviceAccount.create` | boolean | `true` |');
    expect(readme).toContain('| `extraEnv` | array | `[]` |');
    // `npm run docs` regenerates it.
    expect((JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts.docs).toContain('node scripts/chart-readme.mjs');
    // A schema change without regenerating the README is caught (a copy of the chart, one description changed).
    const dir = mkdtempSync(join(tmpdir(), 'hm9k-chart-'));
    cpSync(CHART, dir, { recursive: true });
    const schema = JSON.parse(readFileSync(join(dir, 'values.schema.json'), 'utf8'));
    schema.properties.logLevel.description = 'Changed.';
    writeFileSync(join(dir, 'values.schema.json'), JSON.stringify(schema, null, 2));
    const drift = check(dir);
    expect(drift.status).toBe(1);
    expect(drift.stderr).toMatch(/README\.md is out of date with values\.schema\.json \/ values\.yaml: run npm run docs/);
    // A new value without a row, too.
    schema.properties.logLevel.description = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')).properties.logLevel.description;
    schema.properties.newValue = { type: 'string', description: 'New.' };
    writeFileSync(join(dir, 'values.schema.json'), JSON.stringify(schema, null, 2));
    expect(check(dir).status).toBe(1);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['a volume named like the chart\'s own', { extraVolumes: [{ name: 'tmp', emptyDir: {} }] }, /extraVolumes\/0\/name/],
    ['a mount over the config directory', { apps: { extraVolumeMounts: [{ name: 'x', mountPath: '/etc/hm9k' }] } }, /apps\/extraVolumeMounts\/0\/mountPath/],
    ['an env var without a name', { nodes: { extraEnv: [{ value: 'x' }] } }, /nodes\/extraEnv\/0/],
  ])('rejects %s by the schema', (_what, values, message) => {
    const r = helm(['template', 'hm9k', CHART, '-f', valuesFile(withRequired(values))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------------
describe('chart on a real apiserver with RBAC', { timeout: 180_000 }, () => {
  let cp: LocalControlPlane;
  let work: string;
  let kubeconfig: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let auditLog: string;
  let ns: string;
  const run = Math.random().toString(36).slice(2, 7);
  const procs: Hm9kProcess[] = [];
  // App world.
  let nats: NatsServer;
  let nc: NatsConnection;
  let fleet: DeaFleet;
  let cc: CloudControllerSim;
  // Node world.
  let world: World;
  const ahpName = `helm-${run}`;
  const fpName = `helm-${run}`;
  const cnName = (n: string) => `helm-${run}-${n}`;
  const appGuid = (n: string) => `app-${n}-${run}`;

  const kubectl = (...args: string[]) => execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const canI = (sa: string, ...args: string[]): boolean => {
    const r = spawnSync('kubectl', ['--kubeconfig', kubeconfig, 'auth', 'can-i', '--as', `system:serviceaccount:${ns}:${sa}`, ...args], { encoding: 'utf8' });
    if (r.status !== 0 && r.stdout.trim() !== 'no') throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() === 'yes';
  };
  const audit = () =>
    existsSync(auditLog)
      ? readFileSync(auditLog, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as any)
      : [];
  // Every request by the identity: completed ones, and watches (long-running: ResponseStarted until they end).
  const callsBy = (sa: string) => audit().filter((e) => (e.stage === 'ResponseComplete' || e.stage === 'ResponseStarted') && e.impersonatedUser?.username === `system:serviceaccount:${ns}:${sa}`);
  const callKey = (e: any) => `${e.verb} ${e.objectRef?.apiGroup ?? ''}/${e.objectRef?.resource ?? ''}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.namespace ?? '*'}`;

  async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      for (const p of procs) if (!p.alive()) throw new Error(`hm9k exited while waiting for ${what}:\n${p.log().slice(-4000)}`);
      try {
        const v = await fn();
        if (v) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${procs.map((p) => p.log().slice(-3000)).join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Values of the test install: the chart's own values, pointed at the simulators and tuned to 1/10 timings. */
  const installValues = () => ({
    // Validated by the real apiserver (no CNI here enforces it; the template test checks the rules).
    networkPolicy: { enabled: true, ingress: { api: { from: [{ ipBlock: { cidr: '127.0.0.0/8' } }] } }, egress: { nats: { cidrs: ['127.0.0.1/32'] }, bmc: { cidrs: ['127.0.0.0/8'] } } },
    apps: {
      nats: { servers: [nats.url] },
      cc: { url: cc.url, internalUser: 'internal_api', bulkUser: 'bulk_api', existingSecret: 'cc-credentials' },
      api: { user: 'bulk_app_state', existingSecret: 'hm9k-api-credentials' },
      policyName: ahpName,
    },
    nodes: {
      cloudsSecret: 'openstack-clouds',
      cloudName: 'sim',
      // The Secrets the ComputeNodes name (the chart adds cloudsSecret itself).
      rbac: { secretNames: ['bmc', 'ssh'] },
      globalMaxUnhealthy: '50%',
      consulWait: '2s',
      consulMinLoop: '50ms',
      powerPollInterval: '1s',
      novaPollInterval: '300ms',
      resync: '3s',
    },
  });

  /** Starts one half as a real process: the config file from the installed ConfigMap, env from the installed Deployment + Secrets, identity = the chart's ServiceAccount. */
  async function startHalf(half: 'apps' | 'nodes', extraSets: string[] = []): Promise<Hm9kProcess> {
    const cm = await core.readNamespacedConfigMap({ name: `hm9k-${half}-config`, namespace: ns });
    const file = join(work, `${half}-config.yaml`);
    writeFileSync(file, cm.data!['config.yaml']!);
    const dep = JSON.parse(kubectl('get', 'deployment', `hm9k-${half}`, '-n', ns, '-o', 'json')) as Manifest;
    const c = dep.spec.template.spec.containers[0];
    // What kubelet does: resolve fieldRef and secretKeyRef into the container's environment.
    const env: Record<string, string> = {};
    for (const e of c.env) {
      if (e.valueFrom?.fieldRef) env[e.name] = `hm9k-${half}-local-0`;
      else if (e.valueFrom?.secretKeyRef) {
        const s = await core.readNamespacedSecret({ name: e.valueFrom.secretKeyRef.name, namespace: ns });
        env[e.name] = Buffer.from(s.data![e.valueFrom.secretKeyRef.key]!, 'base64').toString('utf8');
      }
    }
    const sa = dep.spec.template.spec.serviceAccountName as string;
    const impersonated = impersonatingKubeconfig(kubeconfig, `system:serviceaccount:${ns}:${sa}`, work);
    const args = c.args.map((a: string) => (a === '/etc/hm9k/config.yaml' ? file : a));
    const p = await Hm9kProcess.start([...args, '--kubeconfig', impersonated, ...extraSets], env, join(work, `${half}.log`));
    procs.push(p);
    return p;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hm9k-helm-test-'));
    auditLog = join(work, 'audit.log');
    writeFileSync(join(work, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n');
    cp = await LocalControlPlane.start({
      installCrds: false,
      apiExtraFlags: [`--audit-policy-file=${join(work, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-mode=blocking'],
    });
    kubeconfig = cp.state.kubeconfig;
    kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    ns = `helm-${run}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespace({ body: { metadata: { name: 'elsewhere' } } });
    await core.createNamespacedSecret({ namespace: 'elsewhere', body: { metadata: { name: 'not-yours' }, stringData: { token: 'x' } } });

    // The app world: real nats-server, CC simulator, DEA fleet with real heartbeats.
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    fleet = new DeaFleet({ nats: nc, count: 2, heartbeatPeriodMs: 1000, startupMs: 200, evacuationTimeoutMs: 3000 });
    cc = new CloudControllerSim({ dea: fleet });
    await cc.listen();
    for (const [n, instances, placed] of [['a', 2, 2], ['b', 2, 1], ['c', 1, 1]] as const) {
      cc.setApp({ guid: appGuid(n), version: `${appGuid(n)}-v1`, instances, state: 'STARTED', package_state: 'STAGED' });
      for (let i = 0; i < placed; i++) fleet.place(fleet.deaIds()[i % 2]!, appGuid(n), `${appGuid(n)}-v1`, i);
    }
    fleet.start();

    // The node world: ipmi_sim BMCs, sshd, Consul and Nova simulators, SMTP.
    world = new World();
    await world.start(2);
    world.nova.addServer('cmp1', { name: 'vm-1' });
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) await p.stop().catch(() => undefined);
    await fleet?.stopAll().catch(() => undefined);
    await cc?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    await world?.stop().catch(() => undefined);
    await cp?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('helm install creates the CRDs (established), Deployments, Services, ServiceAccounts, RBAC, and prints what to run next', async () => {
    // The Secrets exist before the install, as the chart expects (it only references them).
    const secret = (name: string, data: Record<string, string>) => core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: data } });
    await secret('cc-credentials', { internalPassword: cc.opts.internalPassword, bulkPassword: cc.opts.bulkPassword });
    await secret('hm9k-api-credentials', { password: 'api-password' });
    await secret('openstack-clouds', { 'clouds.yaml': world.nova.cloudsYaml('sim') });
    await secret('bmc', { username: BMC_USER, password: BMC_PASSWORD });
    await secret('ssh', { privateKey: world.sshd.privateKey, knownHosts: world.sshd.knownHosts });

    const out = await helmAsync(['install', 'hm9k', CHART, '--namespace', ns, '-f', valuesFile(installValues(), work)], { kubeconfig, timeoutMs: 120_000 });
    expect(out).toMatch(/STATUS: deployed/);
    expect(out).toMatch(/kubectl get hm9k -A/);
    expect(out).toMatch(/hm9k dump/);
    expect(out).toMatch(/kubectl annotate cn <node> hm9k.io\/acknowledge-fence=<fence id>/);
    expect(out).toMatch(/kubectl annotate ahp <name> hm9k.io\/release-stop-hold=<hold id>/);
    expect(out).toMatch(/kubectl apply --server-side --force-conflicts -f <chart>\/crds\//);

    const ext = kc.makeApiClient(ApiextensionsV1Api);
    for (const f of readdirSync(join(CHART, 'crds'))) {
      const name = f.replace(/\.yaml$/, '');
      const crd = await until(`CRD ${name} established`, async () => {
        const c = await ext.readCustomResourceDefinition({ name });
        return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? c : undefined;
      });
      expect(crd.spec.group).toBe(GROUP);
      // What helm read from crds/ (a YAML 1.1 parser: `on` would be a boolean) is exactly what src/api defines.
      const generated = allCrds().find((c) => (c.metadata as { name: string }).name === name) as any;
      const installed = JSON.parse(kubectl('get', 'crd', name, '-o', 'json'));
      // (The apiserver drops empty `properties: {}`; nothing else may differ.)
      const norm = (x: any): any =>
        Array.isArray(x) ? x.map(norm) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).filter(([k, v]) => !(k === 'properties' && v && typeof v === 'object' && !Object.keys(v).length)).map(([k, v]) => [k, norm(v)])) : x;
      expect(norm(installed.spec.versions.map((v: any) => v.schema))).toEqual(norm(generated.spec.versions.map((v: any) => v.schema)));
    }
    expect(kubectl('get', 'deployments', '-n', ns, '-o', 'name').split('\n').filter(Boolean).sort()).toEqual(['deployment.apps/hm9k-apps', 'deployment.apps/hm9k-nodes']);
    expect(kubectl('get', 'services', '-n', ns, '-o', 'name').split('\n').filter(Boolean).sort()).toEqual(['service/hm9k-apps-api', 'service/hm9k-apps-metrics', 'service/hm9k-nodes-metrics']);
    expect(kubectl('get', 'serviceaccounts', '-n', ns, '-o', 'name')).toMatch(/serviceaccount\/hm9k-apps\nserviceaccount\/hm9k-nodes/);
    expect(kubectl('get', 'configmaps', '-n', ns, '-o', 'name')).toMatch(/configmap\/hm9k-apps-config\nconfigmap\/hm9k-nodes-config/);
    expect(kubectl('get', 'pdb', '-n', ns, '-o', 'name').split('\n').filter(Boolean).sort()).toEqual(['poddisruptionbudget.policy/hm9k-apps', 'poddisruptionbudget.policy/hm9k-nodes']);
    expect(kubectl('get', 'networkpolicies', '-n', ns, '-o', 'name').split('\n').filter(Boolean).sort()).toEqual(['networkpolicy.networking.k8s.io/hm9k-apps', 'networkpolicy.networking.k8s.io/hm9k-nodes']);
    expect(kubectl('get', 'roles,rolebindings', '-n', ns, '-o', 'name').split('\n').filter(Boolean).sort()).toEqual([
      'role.rbac.authorization.k8s.io/hm9k-apps', 'role.rbac.authorization.k8s.io/hm9k-apps-desiredapps', 'role.rbac.authorization.k8s.io/hm9k-nodes',
      'rolebinding.rbac.authorization.k8s.io/hm9k-apps', 'rolebinding.rbac.authorization.k8s.io/hm9k-apps-desiredapps', 'rolebinding.rbac.authorization.k8s.io/hm9k-nodes',
    ].sort());
    expect(kubectl('get', 'roles,rolebindings', '-n', 'default', '-o', 'name')).toContain(`role.rbac.authorization.k8s.io/hm9k:${ns}:hm9k-apps-events`);
    for (const half of ['apps', 'nodes']) {
      expect(kubectl('get', 'clusterrole', `hm9k:${ns}:hm9k-${half}`, '-o', 'name')).toContain(`hm9k:${ns}:hm9k-${half}`);
      expect(kubectl('get', 'clusterrolebinding', `hm9k:${ns}:hm9k-${half}`, '-o', 'name')).toContain(`hm9k:${ns}:hm9k-${half}`);
    }
  });

  it('the app half, as its ServiceAccount, leads, projects DesiredApps, starts a missing instance, writes status and Events, with no forbidden call', async () => {
    await custom.createClusterCustomObject({
      group: GROUP, version: VERSION, plural: 'apphealthpolicies',
      body: {
        apiVersion: `${GROUP}/${VERSION}`, kind: 'AppHealthPolicy', metadata: { name: ahpName },
        spec: {
          timings: { heartbeatPeriod: '1s', presenceTTL: '3s', actualFreshnessTTL: '3s', desiredFreshnessTTL: '12s', gracePeriod: '3s', fetchInterval: '2s', fetchTimeout: '3s', analyzeInterval: '1s', sendInterval: '1s', flushInterval: '100ms', keepAlive: '3s' },
          guards: { maxShrinkPercent: 100 },
        },
      },
    });
    const apps = await startHalf('apps', ['--set', 'apps.api.host=127.0.0.1', '--set', 'apps.api.port=0', '--set', `apps.policyName=${ahpName}`]);
    await apps.waitForLeader('hm9k-apps');
    // DesiredApps projected from CC into the release namespace.
    const listApps = async () => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps' })) as { items: any[] }).items;
    await until('DesiredApps projected', async () => (await listApps()).length === 3);
    expect((await listApps()).find((o) => o.metadata.name === appGuid('b')).spec).toMatchObject({ appGuid: appGuid('b'), instances: 2, state: 'STARTED' });
    // The missing index of app b is started through CC (HTTP, basic auth from the chart's Secret).
    await until('start of the missing instance', () => cc.requests.some((r) => r.endpoint === 'start' && r.path.includes(appGuid('b')) && r.status === 200));
    await until('app b running 2 instances', () => fleet.instances(appGuid('b')).filter((i) => i.state === 'RUNNING').length === 2);
    // Status: AppHealthPolicy (cluster-scoped) and DesiredApp.
    const ahp = await until('AppHealthPolicy status fresh', async () => {
      const o = (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', name: ahpName })) as any;
      const c = (t: string) => o.status?.conditions?.find((x: any) => x.type === t)?.status;
      return c('ActualStateFresh') === 'True' && c('DesiredStateFresh') === 'True' ? o : undefined;
    });
    expect(ahp.status.counts.desiredApps).toBe(3);
    await until('DesiredApp status written', async () => (await listApps()).find((o) => o.metadata.name === appGuid('a'))?.status?.running === 2);
    // An Event about the DesiredApp, in its namespace.
    await until('Event about the start', async () => {
      const evs = (await custom.listNamespacedCustomObject({ group: 'events.k8s.io', version: 'v1', namespace: ns, plural: 'events' })) as { items: any[] };
      return evs.items.some((e) => e.regarding?.name === appGuid('b') && /^Start/.test(e.reason));
    });
    // An app whose desired state changes in CC: its DesiredApp is updated (with its resourceVersion).
    cc.updateApp(appGuid('a'), { instances: 3 });
    await until('DesiredApp updated', async () => (await listApps()).find((o) => o.metadata.name === appGuid('a'))?.spec.instances === 3);
    // An app CC no longer lists: its DesiredApp (created by hm9k) is deleted.
    cc.deleteApp(appGuid('c'));
    await until('DesiredApp of a deleted app removed', async () => !(await listApps()).some((o) => o.metadata.name === appGuid('c')));
    // The Lease is hm9k-apps, held by this process.
    const lease = JSON.parse(kubectl('get', 'lease', 'hm9k-apps', '-n', ns, '-o', 'json'));
    // The pod name itself (issue 10): kubectl get lease names the pod that leads.
    expect(lease.spec.holderIdentity).toBe('hm9k-apps-local-0');
    // Nothing forbidden: not in the audit log, not in the process's log, not in its metrics.
    const calls = callsBy('hm9k-apps');
    if (process.env.HM9K_HELM_AUDIT) console.log(`hm9k-apps called:\n  ${[...new Set(calls.map((e) => `${callKey(e)} -> ${e.responseStatus?.code}`))].sort().join('\n  ')}`);
    expect(calls.length).toBeGreaterThan(10);
    expect(calls.filter((e) => e.responseStatus?.code === 403).map(callKey)).toEqual([]);
    const used = new Set(calls.map(callKey));
    for (const k of [
      `create coordination.k8s.io/leases ${ns}`, `update coordination.k8s.io/leases ${ns}`,
      'list hm9k.io/apphealthpolicies *', 'watch hm9k.io/apphealthpolicies *', 'patch hm9k.io/apphealthpolicies/status *',
      `list hm9k.io/desiredapps ${ns}`, `watch hm9k.io/desiredapps ${ns}`, `create hm9k.io/desiredapps ${ns}`, `update hm9k.io/desiredapps ${ns}`, `delete hm9k.io/desiredapps ${ns}`, `patch hm9k.io/desiredapps/status ${ns}`,
      `create events.k8s.io/events ${ns}`,
    ]) expect([...used], k).toContain(k);
    expect(apps.log()).not.toMatch(/\b403\b|forbidden/i);
    const m = await apps.metrics();
    expect(m).not.toMatch(/hm9k_status_writes_total\{[^}]*result="(error|forbidden|failed)"[^}]*\} [1-9]/);
    expect(m).not.toMatch(/hm9k_events_total\{[^}]*result="error"[^}]*\} [1-9]/);
    expect(m).not.toMatch(/hm9k_informer_errors_total\{[^}]*\} [1-9]/);
  });

  it('the node half, as its ServiceAccount, leads, reads its Secrets and fences a node (intent writes, Events in default), with no forbidden call', async () => {
    const obs = (c: { url: string }) => ({ consul: [{ address: c.url }] });
    const dir = world.sshd.dir;
    await custom.createClusterCustomObject({
      group: GROUP, version: VERSION, plural: 'fencepolicies',
      body: {
        apiVersion: `${GROUP}/${VERSION}`, kind: 'FencePolicy', metadata: { name: fpName },
        spec: {
          nodeSelector: { matchLabels: { 'hm9k.io/test-run': run } },
          networks: { management: obs(world.consul.management), storage: obs(world.consul.storage), tenant: obs(world.consul.tenant) },
          detection: { interval: '300ms', failureThreshold: 3, recoveryGracePeriod: '1s', healthyDelay: '1s', corroboration: { sshCommand: `${dir}/check.sh storage`, timeout: '5s' } },
          recovery: { commands: { storage: `${dir}/recover.sh storage`, novaCompute: `${dir}/recover.sh nova` }, attempts: 1, timeout: '5s', settleTime: '1s' },
          fencing: { powerOffTimeout: '5s', powerWait: '200ms', pollInterval: '200ms', ipmiTimeout: '5s' },
          evacuation: { concurrency: 2, perServerTimeout: '20s' },
          safety: { maxUnhealthy: '50%', maxConcurrentRemediations: 1 },
        },
      },
    });
    for (const n of world.nodes) {
      const body: ComputeNode = {
        apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: cnName(n.name), labels: { 'hm9k.io/test-run': run } },
        spec: { host: n.name, bmc: { address: '127.0.0.1', port: n.bmc.port, cipherSuite: 3, credentialsSecret: 'bmc' }, ssh: { address: '127.0.0.1', port: n.sshPort, user: world.sshd.user, credentialsSecret: 'ssh' } },
      };
      await custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body });
    }
    const nodesProc = await startHalf('nodes');
    await nodesProc.waitForLeader('hm9k-nodes');
    const getNode = async (n: string) => (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cnName(n) })) as ComputeNode;
    for (const n of world.nodes) await until(`${n.name} Healthy`, async () => (await getNode(n.name)).status?.phase === 'Healthy');
    // cmp1 loses its storage network for good: recovered over SSH (fails), corroborated, fenced over IPMI, evacuated.
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const fenced = await until('cmp1 Fenced', async () => {
      const n = await getNode('cmp1');
      return n.status?.phase === 'Fenced' ? n : undefined;
    }, 90_000);
    expect(await world.node('cmp1')!.bmc.power()).toBe('off');
    expect(fenced.status!.fence!.steps.map((s) => `${s.name}:${s.state}`)).toContain('powerOff:succeeded');
    expect(fenced.status!.fence!.leaseHolder).toBe('hm9k-nodes-local-0');
    const fp = (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: fpName })) as any;
    expect(fp.status.matchedNodes).toBe(2);
    // Events about the cluster-scoped ComputeNode live in `default`.
    await until('Events about the fence in default', async () => {
      const evs = (await custom.listNamespacedCustomObject({ group: 'events.k8s.io', version: 'v1', namespace: 'default', plural: 'events' })) as { items: any[] };
      return evs.items.some((e) => e.regarding?.name === cnName('cmp1') && e.reportingController === 'hm9k.io/nodes');
    });
    const calls = callsBy('hm9k-nodes');
    if (process.env.HM9K_HELM_AUDIT) console.log(`hm9k-nodes called:\n  ${[...new Set(calls.map((e) => `${callKey(e)} -> ${e.responseStatus?.code}`))].sort().join('\n  ')}`);
    expect(calls.filter((e) => e.responseStatus?.code === 403).map(callKey)).toEqual([]);
    const used = new Set(calls.map(callKey));
    for (const k of [
      `create coordination.k8s.io/leases ${ns}`, `update coordination.k8s.io/leases ${ns}`,
      'list hm9k.io/computenodes *', 'watch hm9k.io/computenodes *', 'list hm9k.io/fencepolicies *', 'watch hm9k.io/fencepolicies *',
      'patch hm9k.io/computenodes *', 'patch hm9k.io/computenodes/status *', 'update hm9k.io/computenodes/status *', 'patch hm9k.io/fencepolicies/status *',
      `get /secrets ${ns}`, 'create events.k8s.io/events default',
    ]) expect([...used], k).toContain(k);
    // Secrets were read by name in the release namespace only.
    for (const e of calls.filter((x) => x.objectRef?.resource === 'secrets')) expect(`${e.verb} ${e.objectRef.namespace} ${e.objectRef.name}`).toMatch(new RegExp(`^get ${ns} (openstack-clouds|bmc|ssh)$`));
    expect(nodesProc.log()).not.toMatch(/\b403\b|forbidden/i);
    const m = await nodesProc.metrics();
    expect(m).not.toMatch(/hm9k_informer_errors_total\{[^}]*\} [1-9]/);
    expect(m).not.toMatch(/hm9k_events_total\{[^}]*result="error"[^}]*\} [1-9]/);
  });

  it('forbids what each half must not do: Secrets (apps: any; nodes: outside its namespace, or listing), CRDs, spec writes', async () => {
    const apps = 'hm9k-apps';
    const nodes = 'hm9k-nodes';
    // The grants the halves use (positive controls: the same check says yes where it should).
    for (const name of ['openstack-clouds', 'bmc', 'ssh']) expect(canI(nodes, 'get', `secrets/${name}`, '-n', ns), `nodes get secret ${name}`).toBe(true);
    expect(canI(apps, 'create', 'desiredapps.hm9k.io', '-n', ns)).toBe(true);
    // Not every Secret of its namespace: never Helm's release Secrets, the app half's credentials, or any
    // Secret not named in the values (the chart default restricts get by resourceNames).
    const release = (await core.listNamespacedSecret({ namespace: ns, labelSelector: 'owner=helm' })).items.map((x) => x.metadata!.name!);
    expect(release.length).toBeGreaterThan(0);
    for (const name of [...release, 'cc-credentials', 'hm9k-api-credentials', 'anything-else']) expect(canI(nodes, 'get', `secrets/${name}`, '-n', ns), `nodes get secret ${name}`).toBe(false);
    expect(canI(nodes, 'get', 'secrets', '-n', ns), 'nodes get any secret').toBe(false);
    expect(canI(nodes, 'update', 'computenodes.hm9k.io', '--subresource=status')).toBe(true);
    // The app half reads no Secret anywhere.
    for (const where of [ns, 'default', 'elsewhere']) for (const verb of ['get', 'list', 'watch']) expect(canI(apps, verb, 'secrets', '-n', where), `apps ${verb} secrets in ${where}`).toBe(false);
    // The node half reads Secrets by name in its namespace only: never elsewhere, never list/watch.
    for (const where of ['default', 'elsewhere', 'kube-system']) expect(canI(nodes, 'get', 'secrets', '-n', where), `nodes get secrets in ${where}`).toBe(false);
    for (const verb of ['list', 'watch', 'create', 'update', 'delete']) expect(canI(nodes, verb, 'secrets', '-n', ns), `nodes ${verb} secrets`).toBe(false);
    // Neither touches CRDs, nor the specs that are root on the hypervisors, nor the other half's kinds.
    for (const sa of [apps, nodes]) {
      for (const verb of ['delete', 'update', 'create', 'patch']) expect(canI(sa, verb, 'customresourcedefinitions.apiextensions.k8s.io'), `${sa} ${verb} CRDs`).toBe(false);
      for (const r of ['computenodes', 'fencepolicies', 'apphealthpolicies']) {
        for (const verb of ['update', 'create', 'delete', 'deletecollection']) expect(canI(sa, verb, `${r}.hm9k.io`), `${sa} ${verb} ${r}`).toBe(false);
        // patch: only the node half on ComputeNode, for its fence finalizer.
        expect(canI(sa, 'patch', `${r}.hm9k.io`), `${sa} patch ${r}`).toBe(sa === nodes && r === 'computenodes');
      }
      expect(canI(sa, 'create', 'events.k8s.io', '-n', 'elsewhere')).toBe(false);
    }
    expect(canI(apps, 'list', 'computenodes.hm9k.io')).toBe(false);
    expect(canI(nodes, 'list', 'desiredapps.hm9k.io', '-n', ns)).toBe(false);
    expect(canI(apps, 'create', 'desiredapps.hm9k.io', '-n', 'elsewhere')).toBe(false);

    // Direct API calls with the impersonating kubeconfigs (the same client code hm9k uses): 403.
    const asSa = (sa: string) => {
      const k = new KubeConfig();
      k.loadFromFile(impersonatingKubeconfig(kubeconfig, `system:serviceaccount:${ns}:${sa}`, work));
      return k;
    };
    const forbidden = async (call: () => Promise<unknown>) => {
      try {
        await call();
      } catch (err) {
        expect(err).toBeInstanceOf(ApiException);
        return (err as ApiException<string>).code;
      }
      return 200;
    };
    const appsCore = asSa(apps).makeApiClient(CoreV1Api);
    const nodesCore = asSa(nodes).makeApiClient(CoreV1Api);
    expect(await forbidden(() => appsCore.readNamespacedSecret({ name: 'openstack-clouds', namespace: ns }))).toBe(403);
    expect(await forbidden(() => appsCore.listNamespacedSecret({ namespace: ns }))).toBe(403);
    expect(await forbidden(() => nodesCore.readNamespacedSecret({ name: 'not-yours', namespace: 'elsewhere' }))).toBe(403);
    expect(await forbidden(() => nodesCore.listNamespacedSecret({ namespace: ns }))).toBe(403);
    expect(await forbidden(() => nodesCore.readNamespacedSecret({ name: 'openstack-clouds', namespace: ns }))).toBe(200);
    for (const sa of [apps, nodes]) {
      const ext = asSa(sa).makeApiClient(ApiextensionsV1Api);
      expect(await forbidden(() => ext.deleteCustomResourceDefinition({ name: 'computenodes.hm9k.io' }))).toBe(403);
    }
    expect(await forbidden(() => asSa(nodes).makeApiClient(CustomObjectsApi).replaceClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cnName('cmp2'), body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: cnName('cmp2') }, spec: { host: 'cmp2' } } }))).toBe(403);
    expect(await forbidden(() => asSa(apps).makeApiClient(CustomObjectsApi).patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cnName('cmp2'), body: [{ op: 'add', path: '/spec/maintenance', value: true }] }))).toBe(403);
    // Every CRD is still there.
    expect(kubectl('get', 'crd', '-o', 'name').split('\n').filter((l) => l.includes('hm9k.io')).length).toBe(4);
  });

  it('upgrades: helm upgrade leaves crds/ alone; kubectl apply --server-side -f crds/ changes the CRD; the release upgrades', async () => {
    for (const p of procs.splice(0)) await p.stop();
    // A new chart version whose ComputeNode CRD has a new spec field.
    const next = join(work, 'chart-next');
    cpSync(CHART, next, { recursive: true });
    const crdFile = join(next, 'crds', 'computenodes.hm9k.io.yaml');
    const crd = parse(readFileSync(crdFile, 'utf8'));
    crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.rack = { type: 'string', description: 'Rack of the hypervisor (added in the next chart version).' };
    writeFileSync(crdFile, stringify(crd, { lineWidth: 0 }));
    const chartYaml = parse(readFileSync(join(next, 'Chart.yaml'), 'utf8'));
    writeFileSync(join(next, 'Chart.yaml'), stringify({ ...chartYaml, version: '0.1.1' }));
    const hasRack = () => JSON.parse(kubectl('get', 'crd', 'computenodes.hm9k.io', '-o', 'json')).spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.rack !== undefined;

    // helm upgrade alone never touches crds/.
    const values = valuesFile({ ...installValues(), logLevel: 'debug' }, work);
    await helmAsync(['upgrade', 'hm9k', next, '--namespace', ns, '-f', values], { kubeconfig, timeoutMs: 120_000 });
    expect(hasRack()).toBe(false);
    // The documented upgrade path: apply the chart's CRDs server-side first (README "Upgrading").
    kubectl('apply', '--server-side', '--force-conflicts', '-f', join(next, 'crds'));
    expect(hasRack()).toBe(true);
    await until('new CRD established', () => JSON.parse(kubectl('get', 'crd', 'computenodes.hm9k.io', '-o', 'json')).status.conditions.some((c: any) => c.type === 'Established' && c.status === 'True'));
    const out = await helmAsync(['upgrade', 'hm9k', next, '--namespace', ns, '-f', values], { kubeconfig, timeoutMs: 120_000 });
    expect(out).toMatch(/STATUS: deployed/);
    expect(out).toMatch(/REVISION: 3/);
    expect(kubectl('get', 'configmap', 'hm9k-apps-config', '-n', ns, '-o', 'jsonpath={.data.config\\.yaml}')).toMatch(/logLevel: debug/);
    expect(JSON.parse(kubectl('get', 'deploy', 'hm9k-apps', '-n', ns, '-o', 'json')).metadata.labels['helm.sh/chart']).toBe('hm9k-0.1.1');
    // The new field is kept (not pruned) on a ComputeNode, and existing objects still validate.
    await custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cnName('cmp2'), body: [{ op: 'add', path: '/spec/rack', value: 'r7' }] });
    expect(((await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cnName('cmp2') })) as any).spec.rack).toBe('r7');
    // The upgraded release still runs: the app half starts again with the upgraded config and leads.
    const apps = await startHalf('apps', ['--set', 'apps.api.host=127.0.0.1', '--set', 'apps.api.port=0', '--set', `apps.policyName=${ahpName}`]);
    await apps.waitForLeader('hm9k-apps');
    expect(apps.log()).toMatch(/"level":"debug"/); // debug logging from the upgraded ConfigMap
    await apps.stop();
    procs.splice(procs.indexOf(apps), 1);
  });

  it('helm uninstall removes the release and leaves the CRDs and every custom resource in place', async () => {
    await helmAsync(['uninstall', 'hm9k', '--namespace', ns], { kubeconfig, timeoutMs: 120_000 });
    expect(kubectl('get', 'deployments,services,serviceaccounts,configmaps,roles,rolebindings,pdb,networkpolicies', '-n', ns, '-o', 'name')).not.toMatch(/hm9k-(apps|nodes)/);
    expect(kubectl('get', 'clusterroles,clusterrolebindings', '-o', 'name')).not.toContain(`hm9k:${ns}:`);
    expect(kubectl('get', 'roles,rolebindings', '-n', 'default', '-o', 'name')).not.toContain(`hm9k:${ns}:`);
    expect(helm(['status', 'hm9k', '--namespace', ns], { kubeconfig }).status).not.toBe(0);
    expect(kubectl('get', 'crd', '-o', 'name').split('\n').filter((l) => l.includes('hm9k.io')).sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/apphealthpolicies.hm9k.io',
      'customresourcedefinition.apiextensions.k8s.io/computenodes.hm9k.io',
      'customresourcedefinition.apiextensions.k8s.io/desiredapps.hm9k.io',
      'customresourcedefinition.apiextensions.k8s.io/fencepolicies.hm9k.io',
    ]);
    expect(kubectl('get', 'cn', '-o', 'name')).toContain(cnName('cmp1'));
    expect(kubectl('get', 'fp', fpName, '-o', 'name')).toContain(fpName);
    expect(kubectl('get', 'ahp', ahpName, '-o', 'name')).toContain(ahpName);
    expect(kubectl('get', 'da', '-n', ns, '-o', 'name')).toContain(appGuid('a'));
    // Secrets the user created are theirs: untouched.
    expect(kubectl('get', 'secret', 'cc-credentials', '-n', ns, '-o', 'name')).toContain('cc-credentials');
  });
});
