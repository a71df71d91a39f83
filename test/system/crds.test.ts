// The four CRDs against a real kube-apiserver: established, printer columns, explain, validation
/* eslint-disable @typescript-eslint/no-explicit-any -- test objects are plain JSON poked at by path */
// messages a person understands, and generation/status semantics.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi, ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { kubeConfig, testNamespace, controlPlane } from '../support/controlplane.js';
import { GROUP, VERSION } from '../../src/api/index.js';

let ns: string;
let api: CustomObjectsApi;
const kubectl = (...args: string[]) =>
  execFileSync('kubectl', ['--kubeconfig', controlPlane().state.kubeconfig, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const goodApp = (name: string) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'DesiredApp',
  metadata: { name },
  spec: { appGuid: name, version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED' },
});
const goodNode = (name: string) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'ComputeNode',
  metadata: { name, labels: { rack: 'r1' } },
  spec: { host: name, bmc: { address: '127.0.0.1', port: 6230, cipherSuite: 3, credentialsSecret: 'bmc-creds' } },
});
const goodPolicy = (name: string) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'FencePolicy',
  metadata: { name },
  spec: { nodeSelector: { matchLabels: { rack: 'r1' } }, networks: { storage: { consul: [{ address: 'http://127.0.0.1:8500' }], action: 'RecoverThenFence' } }, safety: { maxUnhealthy: '25%' } },
});
const goodAhp = (name: string) => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'AppHealthPolicy', metadata: { name }, spec: { guards: { maxShrinkPercent: 30 } } });

async function rejection(create: () => Promise<unknown>): Promise<string> {
  try {
    await create();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiException);
    const e = err as ApiException<string>;
    expect(e.code).toBe(422);
    return (JSON.parse(e.body) as { message: string }).message;
  }
  throw new Error('the apiserver accepted an invalid object');
}

beforeAll(async () => {
  ns = await testNamespace('crds');
  api = kubeConfig().makeApiClient(CustomObjectsApi);
});

// Cluster-scoped objects outlive the namespace: an app half started by a later file on the shared
// control plane must not find this file's AppHealthPolicies (two unnamed ones stop it).
afterAll(async () => {
  for (const [plural, name] of [['apphealthpolicies', 'ahp-cols'], ['apphealthpolicies', 'edges-ahp'], ['fencepolicies', 'fp-cols'], ['fencepolicies', 'edges-fp'], ['fencepolicies', 'edges-fp2'], ['computenodes', 'cn-cols']] as const) {
    await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural, name }).catch(() => undefined);
  }
});

describe('CRDs on a real apiserver', () => {
  it('are established and listed in the hm9k category with their printer columns', async () => {
    await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', body: goodApp('app-cols') });
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body: goodNode('cn-cols') });
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: goodPolicy('fp-cols') });
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', body: goodAhp('ahp-cols') });
    const all = kubectl('get', 'hm9k', '-A');
    expect(all).toMatch(/computenode\.hm9k\.io\/cn-cols/);
    expect(all).toMatch(/desiredapp\.hm9k\.io\/app-cols/);
    const cn = kubectl('get', 'cn', 'cn-cols');
    expect(cn.split('\n')[0]).toMatch(/NAME\s+PHASE\s+MGMT\s+STORAGE\s+TENANT\s+NOVA\s+POWER\s+SERVERS\s+LEFT\s+MIGRATED\s+FAILED\s+AGE/);
    const da = kubectl('get', 'da', '-n', ns);
    expect(da.split('\n')[0]).toMatch(/NAME\s+DESIRED\s+RUNNING\s+CRASHED\s+STATE\s+CONVERGED\s+AGE/);
    expect(da).toMatch(/app-cols\s+2\s+.*STARTED/);
    expect(kubectl('get', 'fp').split('\n')[0]).toMatch(/NAME\s+MATCHED\s+HEALTHY\s+UNHEALTHY\s+IN-FLIGHT\s+STORM\s+READY\s+AGE/);
    expect(kubectl('get', 'ahp').split('\n')[0]).toMatch(/NAME\s+FOLLOWED\s+ACTUAL-FRESH\s+DESIRED-FRESH\s+APPS\s+RUNNING\s+MISSING\s+CRASHED\s+HOLD\s+AGE/);
  });

  it('kubectl explain computenode.spec shows descriptions', () => {
    const out = kubectl('explain', 'computenode.spec');
    expect(out).toMatch(/One hypervisor/);
    expect(out).toMatch(/maintenance\s+<boolean>/);
    expect(out).toMatch(/Exclude this node from every action/);
    expect(kubectl('explain', 'fencepolicy.spec.safety.maxUnhealthy')).toMatch(/percentage/);
  });

  const cases: { kind: string; plural: string; namespaced: boolean; mutate: (o: Record<string, any>) => void; expect: RegExp }[] = [
    // Reason: the cases poke at arbitrary nested fields of plain JSON objects.
    { kind: 'DesiredApp', plural: 'desiredapps', namespaced: true, mutate: (o) => (o.spec.instances = -1), expect: /spec.instances: Invalid value: -1: spec.instances in body should be greater than or equal to 0/ },
    { kind: 'DesiredApp', plural: 'desiredapps', namespaced: true, mutate: (o) => (o.spec.state = 'RUNNING'), expect: /spec.state: Unsupported value: "RUNNING": supported values: "STARTED", "STOPPED"/ },
    { kind: 'DesiredApp', plural: 'desiredapps', namespaced: true, mutate: (o) => delete o.spec.version, expect: /spec.version: Required value/ },
    { kind: 'DesiredApp', plural: 'desiredapps', namespaced: true, mutate: (o) => (o.spec.crashBackoff = { maxBackoff: 'ten minutes' }), expect: /spec.crashBackoff.maxBackoff in body should match/ },
    { kind: 'ComputeNode', plural: 'computenodes', namespaced: false, mutate: (o) => (o.spec.bmc.port = 70000), expect: /spec.bmc.port in body should be less than or equal to 65535/ },
    { kind: 'ComputeNode', plural: 'computenodes', namespaced: false, mutate: (o) => (o.spec.bmc.privilege = 'ROOT'), expect: /spec.bmc.privilege: Unsupported value: "ROOT"/ },
    { kind: 'ComputeNode', plural: 'computenodes', namespaced: false, mutate: (o) => (o.spec.host = 'bad host!'), expect: /spec.host in body should match/ },
    { kind: 'ComputeNode', plural: 'computenodes', namespaced: false, mutate: (o) => (o.spec.bmc.credentialsSecret = 'Has_Capitals'), expect: /spec.bmc.credentialsSecret in body should match/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.safety.maxUnhealthy = 'half'), expect: /spec.safety.maxUnhealthy in body should match '\^\[0-9\]\+%\?\$'/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.networks.storage.action = 'Reboot'), expect: /Unsupported value: "Reboot": supported values: "Notify", "Recover", "RecoverThenFence"/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.networks = {}), expect: /networks must name at least one of management, storage, tenant/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.networks.storage.consul = []), expect: /spec.networks.storage.consul in body should have at least 1 items/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.guards.maxShrinkPercent = 150), expect: /spec.guards.maxShrinkPercent in body should be less than or equal to 100/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { heartbeatPeriod: '10 seconds' }), expect: /spec.timings.heartbeatPeriod in body should match/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.crashBackoff = { crashesBeforeBackoff: -2 }), expect: /spec.crashBackoff.crashesBeforeBackoff in body should be greater than or equal to 0/ },
    // Values the CRD used to accept and hm9k then refused at run time (issue 10, item 7).
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.safety.maxUnhealthy = '150%'), expect: /spec.safety.maxUnhealthy: Invalid value: "[^"]*": a percentage must be at most 100%/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.detection = { interval: '0s' }), expect: /spec.detection.interval: Invalid value: "string": must be a positive duration such as 10s, at least 1ms \(0 makes no sense here\)/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.fencing = { powerOffTimeout: '1s', powerWait: '2s' }), expect: /spec.fencing: Invalid value: "object": powerOffTimeout must be at least powerWait/ },
    // Defaults take part: powerWait defaults to 2s.
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.fencing = { powerOffTimeout: '1500ms' }), expect: /powerOffTimeout must be at least powerWait/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.fencing = { pollInterval: '0ms' }), expect: /spec.fencing.pollInterval: Invalid value: "string": must be a positive duration/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { heartbeatPeriod: '0s', presenceTTL: '30s' }), expect: /spec.timings.heartbeatPeriod: Invalid value: "string": must be a positive duration/ },
    // 0.4ms is > 0 to CEL but rounds to 0 ms in hm9k: refused at the door, not a 0 ms timer at run time.
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { heartbeatPeriod: '0.4ms', presenceTTL: '30s' }), expect: /spec.timings.heartbeatPeriod: Invalid value: "string": must be a positive duration/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { presenceTTL: '0s' }), expect: /spec.timings.presenceTTL: Invalid value: "string": must be a positive duration/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { heartbeatPeriod: '10s', presenceTTL: '5s' }), expect: /spec.timings: Invalid value: "object": presenceTTL must be at least heartbeatPeriod/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.timings = { fetchInterval: '5m' }), expect: /desiredFreshnessTTL must be at least fetchInterval/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.crashBackoff = { startingBackoff: '2m', maxBackoff: '1m' }), expect: /spec.crashBackoff: Invalid value: "object": crashBackoff.maxBackoff must be at least crashBackoff.startingBackoff/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.crashBackoff = { delayNoise: '20m' }), expect: /crashBackoff.delayNoise must be at most crashBackoff.maxBackoff/ },
    { kind: 'AppHealthPolicy', plural: 'apphealthpolicies', namespaced: false, mutate: (o) => (o.spec.ccPartition = 'two words'), expect: /spec.ccPartition in body should match/ },
    // Hardware rules (issue 12): a Drain never on a single reading; defaults take part (cpuTemperatureCritical defaults to Drain).
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.hardware = { samples: 1 }), expect: /hardware.samples must be at least 2 while any condition is Drain/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.hardware = { samples: 1, rules: { cpuTemperatureCritical: 'Notify', powerRedundancyLost: 'Notify', driveFault: 'Drain' } }), expect: /hardware.samples must be at least 2/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.hardware = { rules: { fanFailure: 'Reboot' } }), expect: /Unsupported value: "Reboot": supported values: "Ignore", "Notify", "Drain"/ },
    { kind: 'FencePolicy', plural: 'fencepolicies', namespaced: false, mutate: (o) => (o.spec.hardware = { interval: '0s' }), expect: /spec.hardware.interval: Invalid value: "string": must be a positive duration/ },
  ];
  const make: Record<string, (n: string) => Record<string, any>> = { DesiredApp: goodApp, ComputeNode: goodNode, FencePolicy: goodPolicy, AppHealthPolicy: goodAhp };

  it.each(cases.map((c, i) => ({ ...c, i })))('rejects an invalid $kind (case $i) with a clear message', async (c) => {
    const body = make[c.kind]!(`bad-${c.i}`);
    c.mutate(body);
    const message = await rejection(() =>
      c.namespaced
        ? api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: c.plural, body })
        : api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: c.plural, body }),
    );
    expect(message).toMatch(c.expect);
  });

  it('accepts the edges of those rules: 100%, a plain count, equal durations, durations in ms and h', async () => {
    const fp = goodPolicy('edges-fp');
    fp.spec.safety.maxUnhealthy = '100%';
    fp.spec.fencing = { powerOffTimeout: '2s', powerWait: '2000ms', pollInterval: '500ms' };
    fp.spec.detection = { interval: '1h' };
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: fp });
    const fp2 = goodPolicy('edges-fp2');
    fp2.spec.safety.maxUnhealthy = 150; // a count, not a percentage
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: fp2 });
    const fp3 = goodPolicy('edges-fp3');
    fp3.spec.hardware = { samples: 1, rules: { cpuTemperatureCritical: 'Notify', powerRedundancyLost: 'Ignore' } }; // no Drain: one reading may notify
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: fp3 });
    const ahp = goodAhp('edges-ahp');
    ahp.spec = { ...ahp.spec, timings: { heartbeatPeriod: '10s', presenceTTL: '10s', desiredFreshnessTTL: '1m', fetchInterval: '60s' }, crashBackoff: { startingBackoff: '30s', maxBackoff: '30s' } };
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', body: ahp });
  });

  it('bumps generation on spec changes only; observedGeneration follows a status patch', async () => {
    const created = (await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', body: goodApp('gen') })) as any;
    expect(created.metadata.generation).toBe(1);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const afterStatus = (await api.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', name: 'gen', body: { status: { observedGeneration: 1, running: 2 } } },
      merge,
    )) as any;
    expect(afterStatus.metadata.generation).toBe(1);
    expect(afterStatus.status.running).toBe(2);
    const afterSpec = (await api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', name: 'gen', body: { spec: { instances: 3 } } },
      merge,
    )) as any;
    expect(afterSpec.metadata.generation).toBe(2);
    expect(afterSpec.status.observedGeneration).toBe(1);
    // A status write through the main resource is ignored (status subresource).
    const ignored = (await api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', name: 'gen', body: { status: { running: 9 } } },
      merge,
    )) as any;
    expect(ignored.status.running).toBe(2);
    expect(ignored.metadata.generation).toBe(2);
  });

  it('applies schema defaults', async () => {
    const obj = (await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body: goodNode('cn-defaults') })) as any;
    expect(obj.spec.maintenance).toBe(false);
    expect(obj.spec.bmc.privilege).toBe('ADMINISTRATOR');
  });
});
