// The controller runtime against a real kube-apiserver: the watch loop survives an apiserver restart
// and a forced 410 (etcd compaction with the watch cache off), every change is reconciled, the cache
// converges and no key is reconciled concurrently; the status writer writes nothing for a reconcile
// that changes nothing; observedGeneration follows generation; /readyz and /metrics; leader election
// with two real processes (SIGKILL takeover; a leader cut off by a TCP proxy exits first).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { GROUP, VERSION, type DesiredApp } from '../../src/api/index.js';
import { createRuntime, type ManagedRuntime } from '../../src/kube/runtime.js';
import { CORE } from '../../src/kube/resources.js';
import type { ObjectKey, WorkQueue } from '../../src/kube/contract.js';

const logger = pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' });
let ns: string;
let kc: KubeConfig;
let api: CustomObjectsApi;
const plural = 'desiredapps';

const app = (name: string, instances: number): DesiredApp => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'DesiredApp',
  metadata: { name },
  spec: { appGuid: name, version: 'v1', instances, state: 'STARTED', packageState: 'STAGED' },
});

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const create = (name: string, instances: number) => api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, body: app(name, instances) });
const get = async (name: string) => (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, name })) as DesiredApp;
const setInstances = async (name: string, instances: number) => {
  const o = await get(name);
  o.spec.instances = instances;
  await api.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, name, body: o });
};
const remove = (name: string) => api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, name });
const serverState = async () => {
  const l = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural })) as { items: DesiredApp[] };
  return new Map(l.items.map((o) => [`${ns}/${o.metadata.name}`, o.spec.instances]));
};

/** A kubeconfig for the same cluster through another server address (the proxy). */
function viaServer(base: KubeConfig, server: string): KubeConfig {
  const k = new KubeConfig();
  k.loadFromOptions({ clusters: base.clusters.map((c) => ({ ...c, server })), users: base.users, contexts: base.contexts, currentContext: base.currentContext });
  return k;
}

beforeAll(async () => {
  kc = kubeConfig();
  api = kc.makeApiClient(CustomObjectsApi);
  ns = await testNamespace('runtime');
});

describe('watch loop, cache and reconcile against a real apiserver', () => {
  let rt: ManagedRuntime;
  let proxy: TcpProxy;
  /** What the reconciler last saw per key (spec.instances, or -1 for absent). */
  const reconciled = new Map<ObjectKey, number>();
  const active = new Set<ObjectKey>();
  let overlaps = 0;
  let reconciles = 0;

  beforeAll(async () => {
    // The watch cache hides compaction: run this file's apiserver without it (restored in afterAll).
    await controlPlane().restartApiserver(['--watch-cache=false']);
    proxy = await TcpProxy.start(controlPlane().state.apiPort);
    rt = await createRuntime({
      component: 'rt-test',
      namespace: ns,
      kubeConfig: viaServer(kc, `https://127.0.0.1:${proxy.port}`),
      logger,
      leaderElection: false,
      bindAddress: '127.0.0.1',
      metricsPort: 0,
      probePort: 0,
      handleSignals: false,
      defaultMetrics: false,
      informer: { watchTimeoutSeconds: 30, watchdogMs: 5000, relistPeriodMs: 0, backoffInitialMs: 50, backoffMaxMs: 300 },
    });
    const inf = rt.informer('DesiredApp', { namespace: ns });
    const q = rt.addController(
      {
        name: 'desiredapp-probe',
        async reconcile(key) {
          reconciles++;
          if (active.has(key)) overlaps++;
          active.add(key);
          try {
            await new Promise((r) => setTimeout(r, 2));
            reconciled.set(key, inf.get(key)?.spec.instances ?? -1);
          } finally {
            active.delete(key);
          }
        },
      },
      { workers: 4 },
    );
    const enqueue = (o: { metadata: { name: string; namespace?: string } }) => q.add(`${o.metadata.namespace}/${o.metadata.name}`);
    inf.on('add', enqueue);
    inf.on('update', enqueue);
    inf.on('delete', enqueue);
    await rt.start();
    await inf.waitForSync();
  });

  afterAll(async () => {
    await rt?.stop();
    await proxy?.close();
    await controlPlane().restartApiserver([]);
  });

  const converged = async () => {
    const server = await serverState();
    const inf = rt.informer('DesiredApp', { namespace: ns });
    const cacheOk = inf.list().length === server.size && [...server].every(([k, v]) => inf.get(k)?.spec.instances === v);
    const reconciledOk = [...server].every(([k, v]) => reconciled.get(k) === v) && [...reconciled].every(([k, v]) => v === -1 || server.has(k));
    return cacheOk && reconciledOk;
  };

  it('reconciles every change, reports ready and exports metrics', async () => {
    for (let i = 0; i < 5; i++) await create(`a${i}`, i);
    await setInstances('a1', 10);
    await remove('a0');
    await until(converged, 'cache and reconciles converge');
    expect(reconciled.get(`${ns}/a0`)).toBe(-1);
    const probes = rt.ports().probes!;
    expect((await fetch(`http://127.0.0.1:${probes}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${probes}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${rt.ports().metrics!}/metrics`)).text();
    expect(metrics).toMatch(/controller_runtime_reconcile_total\{controller="desiredapp-probe",result="success"\} [1-9]/);
    expect(metrics).toMatch(/workqueue_adds_total\{name="desiredapp-probe"\} [1-9]/);
  });

  it('informs on core kinds by path (Secrets) and on cluster-scoped kinds', async () => {
    const secrets = rt.informerFor<{ metadata: { name: string; namespace?: string }; data?: Record<string, string> } & { kind?: string }>(CORE.Secret, { namespace: ns });
    const nodes = rt.informer('ComputeNode');
    await secrets.waitForSync();
    await nodes.waitForSync();
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'bmc' }, stringData: { password: 'x' } } });
    await until(() => !!secrets.get(`${ns}/bmc`), 'secret in cache');
    expect(secrets.get(`${ns}/bmc`)?.data?.password).toBe(Buffer.from('x').toString('base64'));
  });

  it('survives a kube-apiserver restart', async () => {
    await controlPlane().restartApiserver(['--watch-cache=false']);
    await create('b1', 1);
    await setInstances('a2', 20);
    await remove('a3');
    await until(converged, 'convergence after restart');
    expect(overlaps).toBe(0);
  });

  it('relists after a forced 410 (changes made while cut off, etcd compacted)', async () => {
    const listsGone = async () => {
      const m = await rt.metrics.getSingleMetric('hm9k_informer_lists_total')!.get();
      return m.values.filter((v) => v.labels.reason === 'gone').reduce((a, v) => a + v.value, 0);
    };
    const before = await listsGone();
    proxy.cut('reset');
    // changes the informer cannot see
    await create('c1', 3);
    await setInstances('a4', 40);
    await remove('a1');
    await controlPlane().compactEtcd();
    proxy.restore();
    await until(converged, 'convergence after 410');
    expect(await listsGone()).toBeGreaterThan(before); // the 410 path was taken, not a lucky re-watch
    expect(reconciled.get(`${ns}/a1`)).toBe(-1); // the delete found by the relist was reconciled
    expect(overlaps).toBe(0);
    expect(reconciles).toBeGreaterThan(0);
  });
});

describe('status writer against a real apiserver', () => {
  let rt: ManagedRuntime;
  let queue: WorkQueue;
  let reconciles = 0;
  beforeAll(async () => {
    rt = await createRuntime({
      component: 'rt-status',
      namespace: ns,
      kubeConfig: kc,
      logger,
      leaderElection: false,
      metricsPort: false,
      probePort: false,
      handleSignals: false,
      defaultMetrics: false,
      status: { perObjectIntervalMs: 0 },
    });
    const inf = rt.informer('DesiredApp', { namespace: ns });
    queue = rt.addController({
      name: 'status-probe',
      async reconcile(key) {
        reconciles++;
        const o = inf.get(key);
        if (!o || !o.metadata.name.startsWith('s')) return;
        // A pure function of spec and generation: nothing that changes every pass.
        await rt.status.patchStatus('DesiredApp', o, { ...o.status, observedGeneration: o.metadata.generation, running: o.spec.instances });
      },
    });
    const enqueue = (o: { metadata: { name: string; namespace?: string } }) => queue.add(`${o.metadata.namespace}/${o.metadata.name}`);
    inf.on('add', enqueue);
    inf.on('update', enqueue); // our own status writes come back as updates: they must not write again
    await rt.start();
    await inf.waitForSync();
  });
  afterAll(async () => {
    await rt?.stop();
  });

  it('writes once per change, nothing for a reconcile that changes nothing; observedGeneration follows generation', async () => {
    const inf = rt.informer('DesiredApp', { namespace: ns });
    const writes = () => rt.status.requestCount('DesiredApp');
    const start = await writes();
    await create('s1', 2);
    await until(async () => (await get('s1')).status?.observedGeneration === 1, 'status written');
    const o1 = await get('s1');
    expect(o1.status).toMatchObject({ observedGeneration: 1, running: 2 });
    expect(o1.metadata.generation).toBe(1); // a status write does not bump generation
    await inf.waitForVersion(`${ns}/s1`, o1.metadata.resourceVersion!);
    // steady state: more reconciles, zero requests
    const r0 = reconciles;
    for (let i = 0; i < 10; i++) {
      queue.add(`${ns}/s1`);
      await until(() => reconciles > r0 + i, 'reconcile');
    }
    expect(await writes()).toBe(start + 1);
    // a spec change bumps generation; the reconcile writes observedGeneration 2, once
    await setInstances('s1', 5);
    await until(async () => (await get('s1')).status?.observedGeneration === 2, 'observedGeneration 2');
    const o2 = await get('s1');
    expect(o2.metadata.generation).toBe(2);
    expect(o2.status).toMatchObject({ observedGeneration: 2, running: 5 });
    await inf.waitForVersion(`${ns}/s1`, o2.metadata.resourceVersion!);
    const r1 = reconciles;
    queue.add(`${ns}/s1`);
    await until(() => reconciles > r1, 'reconcile');
    expect(await writes()).toBe(start + 2);
  });

  it('updateStatus carries resourceVersion: a stale one is a ConflictError', async () => {
    const o = await get('s1');
    const stored = await rt.status.updateStatus('DesiredApp', { ...o, status: { ...o.status, crashed: 1 } });
    expect(stored.status?.crashed).toBe(1);
    await expect(rt.status.updateStatus('DesiredApp', { ...o, status: { ...o.status, crashed: 2 } })).rejects.toMatchObject({ name: 'ConflictError' });
    expect((await get('s1')).status?.crashed).toBe(1);
  });

  it('records events.k8s.io/v1 events (MicroTime accepted by the apiserver)', async () => {
    const o = await get('s1');
    rt.events.record(o, 'Normal', 'Probe', 'Test', 'hello from the runtime test');
    rt.events.record(o, 'Normal', 'Probe', 'Test', 'hello from the runtime test'); // deduplicated
    await rt.events.flush();
    const evs = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
    const mine = evs.items.filter((e) => e.reason === 'Probe' && e.regarding?.name === 's1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ reportingController: 'hm9k.io/rt-status', action: 'Test', type: 'Normal' });
    // about a cluster-scoped object: the event goes to "default" (the only namespace the apiserver accepts)
    const uid = `u-ghost-${ns}`;
    rt.events.record({ apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: 'ghost', uid } }, 'Warning', 'Probe', 'Test', 'cluster-scoped');
    await rt.events.flush();
    const errors = (await rt.metrics.getSingleMetric('hm9k_events_total')!.get()).values.filter((v) => v.labels.result === 'error');
    expect(errors.reduce((a, v) => a + v.value, 0)).toBe(0);
    const all = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: 'default' });
    expect(all.items.filter((e) => e.regarding?.uid === uid)).toHaveLength(1);
  });
});

describe('leader election with two real processes', () => {
  // Lease timings with room for a loaded 2-core CI machine: a 1.4 s renew deadline was missed there
  // and the standby legitimately took over before the test's first check.
  const timings = { lease: 8000, renew: 6000, retry: 1000 };
  const children = new Set<ChildProcess>();
  type Line = { event: string; identity: string; t: number; transitions?: number };

  function elector(identity: string, lease: string, server?: string) {
    const lines: Line[] = [];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/leader-elector.ts', controlPlane().state.kubeconfig, ns, lease, identity, String(timings.lease), String(timings.renew), String(timings.retry), ...(server ? [server] : [])],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() },
    );
    children.add(child);
    let exitCode: number | null | undefined;
    child.on('exit', (code) => {
      exitCode = code;
      children.delete(child);
    });
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l) as Line);
      } catch {
        /* not ours */
      }
    });
    return { child, lines, has: (e: string) => lines.find((l) => l.event === e), exitCode: () => exitCode };
  }

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  const leaseApi = () => kc.makeApiClient(CoordinationV1Api);

  it('exactly one leads; after SIGKILL of the leader the other takes over, only after a full lease duration', async () => {
    const a = elector('proc-a', 'two-procs');
    await until(() => !!a.has('leading'), 'a leads', 30_000);
    const b = elector('proc-b', 'two-procs');
    await until(() => !!b.has('started'), 'b started', 30_000);
    await new Promise((r) => setTimeout(r, timings.lease + 2 * timings.retry));
    expect(b.has('leading')).toBeUndefined();
    expect((await leaseApi().readNamespacedLease({ name: 'two-procs', namespace: ns })).spec?.holderIdentity).toBe('proc-a');

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    const lastRenew = new Date(String((await leaseApi().readNamespacedLease({ name: 'two-procs', namespace: ns })).spec?.renewTime)).getTime();
    // liveness only (safety is the acquireTime check below): leaseDuration + retryPeriod, with slack
    await until(() => !!b.has('leading'), 'b takes over', 2 * timings.lease + 5 * timings.retry);
    const lease = await leaseApi().readNamespacedLease({ name: 'two-procs', namespace: ns });
    expect(lease.spec?.holderIdentity).toBe('proc-b');
    expect(lease.spec?.leaseTransitions).toBe(1);
    const acquired = new Date(String(lease.spec?.acquireTime)).getTime();
    // safety: not before the dead holder's record stood unchanged for a full lease duration
    expect(acquired - lastRenew).toBeGreaterThanOrEqual(timings.lease);
    expect(b.has('leading')!.t).toBeGreaterThan(killedAt);
    b.child.kill('SIGTERM');
    await until(() => b.exitCode() !== undefined, 'b exits');
    expect(b.exitCode()).toBe(0);
    expect((await leaseApi().readNamespacedLease({ name: 'two-procs', namespace: ns })).spec?.holderIdentity ?? '').toBe(''); // released
  });

  it('a leader cut off from the apiserver by a proxy exits before its lease can be taken over', async () => {
    const proxy = await TcpProxy.start(controlPlane().state.apiPort);
    try {
      const a = elector('cut-a', 'partition', `https://127.0.0.1:${proxy.port}`);
      await until(() => !!a.has('leading'), 'a leads', 30_000);
      const b = elector('cut-b', 'partition');
      await until(() => !!b.has('started'), 'b started', 30_000);
      proxy.cut('blackhole'); // requests hang: the worst case for a renew loop
      await until(() => !!b.has('leading'), 'b takes over', 30_000);
      await until(() => a.exitCode() !== undefined, 'a exits', 10_000);
      expect(a.exitCode()).toBe(1);
      expect(a.has('lost')).toBeDefined();
      expect(a.has('lost')!.t).toBeLessThan(b.has('leading')!.t);
      b.child.kill('SIGTERM');
      await until(() => b.exitCode() !== undefined, 'b exits');
    } finally {
      await proxy.close();
    }
  });

  it('whole runtimes: only the leader reconciles; SIGTERM releases the lease and the other takes over at once', async () => {
    const t = { lease: 8000, renew: 6000, retry: 500 };
    const run = (identity: string) => {
      const lines: (Line & { key?: string; probes?: number })[] = [];
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/leader-runtime.ts', controlPlane().state.kubeconfig, ns, identity, String(t.lease), String(t.renew), String(t.retry)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      let exitCode: number | null | undefined;
      child.on('exit', (code) => {
        exitCode = code;
        children.delete(child);
      });
      createInterface({ input: child.stdout! }).on('line', (l) => {
        try {
          lines.push(JSON.parse(l));
        } catch {
          /* not ours */
        }
      });
      return { child, lines, has: (e: string) => lines.find((l) => l.event === e), exitCode: () => exitCode };
    };
    await create('l1', 1);
    const a = run('rt-a');
    await until(() => !!a.has('leading'), 'a leads', 30_000);
    await until(() => a.lines.some((l) => l.event === 'reconcile' && l.key === `${ns}/l1`), 'a reconciles l1', 30_000);
    const b = run('rt-b');
    await until(() => !!b.has('started'), 'b started', 30_000);
    const probes = b.has('started')!.probes!;
    await until(async () => (await fetch(`http://127.0.0.1:${probes}/readyz`)).status === 200, 'b ready (caches synced) while not leading');
    await setInstances('l1', 2);
    await until(() => a.lines.filter((l) => l.event === 'reconcile').length >= 2, 'a reconciles the change');
    expect(b.has('reconcile')).toBeUndefined(); // not the leader: no reconcile
    expect(b.has('leading')).toBeUndefined();
    const before = await leaseApi().readNamespacedLease({ name: 'runtime-lease', namespace: ns });
    const aLastRenew = new Date(String(before.spec?.renewTime)).getTime();
    a.child.kill('SIGTERM');
    await until(() => a.exitCode() !== undefined, 'a exits');
    expect(a.exitCode()).toBe(0);
    expect(a.has('stopping')).toBeDefined();
    await until(() => !!b.has('leading'), 'b takes over', 30_000);
    await until(() => b.lines.some((l) => l.event === 'reconcile' && l.key === `${ns}/l1`), 'b reconciles l1', 30_000);
    const after = await leaseApi().readNamespacedLease({ name: 'runtime-lease', namespace: ns });
    expect(after.spec?.holderIdentity).toBe('rt-b');
    // released: b did not have to wait for a's lease to run out
    expect(new Date(String(after.spec?.acquireTime)).getTime()).toBeLessThan(aLastRenew + t.lease);
    b.child.kill('SIGTERM');
    await until(() => b.exitCode() !== undefined, 'b exits');
    expect(b.exitCode()).toBe(0);
  });
});
