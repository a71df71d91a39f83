// `npm run bench -- desiredapps` (issue 14 item 11): 100,000 DesiredApp objects projected into a local
// kube-apiserver (etcd + kube-apiserver of src/devenv, as the tests use): time to create them all
// through hm9k's projection (bounded-parallel, rate-limited: DESIREDAPPS_RATE writes/s, default 1000,
// to measure the apiserver's pace; production's default is 100/s), the informer's memory for them
// (heap after GC, the real list/watch informer of src/kube), and the apiserver's write requests per
// minute in steady state (a fetch every 60 s re-delivers an unchanged desired state), counted from
// the apiserver's own apiserver_request_total. Baseline: the same objects' JSON size.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CoreV1Api, KubeConfig } from '../src/kube/client.js';
import pino from 'pino';
import { DesiredAppProjection, kubeDesiredAppApi } from '../src/apps/fetcher/projection.js';
import { ProjectionSync } from '../src/apps/fetcher/projection-sync.js';
import { MemoryStore } from '../src/apps/store/memory.js';
import type { DesiredAppState } from '../src/apps/types.js';
import type { DesiredApp } from '../src/api/index.js';
import { LocalControlPlane } from '../src/devenv/controlplane.js';
import { createRuntime } from '../src/kube/runtime.js';
import type { Informer } from '../src/kube/contract.js';
import { apiserverRequests, cpuSeconds, isWrite, perMinute } from './apiserver.js';
import type { BenchRow } from './fleet.js';

const N = Number(process.env.DESIREDAPPS ?? 100_000);
const RATE = Number(process.env.DESIREDAPPS_RATE ?? 1000);
const STEADY_MS = Number(process.env.DESIREDAPPS_STEADY_MS ?? 120_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(): Promise<BenchRow[]> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const cpDir = mkdtempSync(join(tmpdir(), 'hm9k-da-'));
  const cp = await LocalControlPlane.start({ dir: cpDir });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  const ns = 'desiredapps';
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  const desired = new Map<string, DesiredAppState>();
  for (let a = 0; a < N; a++) {
    const guid = `app-${a.toString(36).padStart(6, '0')}-0000-4000-8000-${a.toString(16).padStart(12, '0')}`;
    desired.set(guid, { appGuid: guid, version: `v-${a % 97}-${a}`, instances: 3, state: 'STARTED', packageState: 'STAGED' });
  }
  const log = pino({ level: 'warn' });
  try {
    // 1. Create every object through the projection.
    const projection = new DesiredAppProjection(kubeDesiredAppApi(kc), ns, 500, { maxInFlight: 32, writesPerSecond: RATE });
    const reqs0 = await apiserverRequests(kc);
    const api0 = cpuSeconds(cp.state.apiPid);
    const t0 = performance.now();
    const r = await projection.sync(desired, []);
    const createMs = performance.now() - t0;
    const apiCpuCreate = cpuSeconds(cp.state.apiPid) - api0;
    const creates = perMinute(reqs0, await apiserverRequests(kc), 60_000)['POST desiredapps'] ?? 0;
    process.stderr.write(`desiredapps: created ${r.created} in ${(createMs / 1000).toFixed(0)} s (${creates} POSTs counted by the apiserver)\n`);

    // 2. The informer's memory for them: heap after GC, before and after it listed them.
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const rt = await createRuntime({ component: 'bench', namespace: ns, kubeConfig: kc, logger: log, metricsPort: false, probePort: false, leaderElection: false, handleSignals: false });
    const informer = rt.informer('DesiredApp', { namespace: ns }) as Informer<DesiredApp>;
    await rt.start();
    await informer.waitForSync();
    while (informer.list().length < N) await sleep(500);
    gc();
    const informerBytes = process.memoryUsage().heapUsed - heap0;
    const jsonBytes = informer.list().reduce((a, o) => a + JSON.stringify(o).length, 0);

    // 3. Steady state: a fetch every 60 s delivers an equal desired state (a new snapshot).
    const store = new MemoryStore(30_000);
    store.setDesired(desired, Date.now());
    const sync = new ProjectionSync({ store, namespace: ns, logger: log, informer, projection });
    sync.afterFetch(new Map()); // first projection after a restart: finds every object in the cache
    await sync.idle();
    const reqA = await apiserverRequests(kc);
    const apiA = cpuSeconds(cp.state.apiPid);
    const tA = Date.now();
    while (Date.now() - tA < STEADY_MS) {
      await sleep(Math.min(60_000, STEADY_MS / 2));
      const before = store.desired();
      store.setDesired(new Map([...desired].map(([k, v]) => [k, { ...v }])), Date.now());
      sync.afterFetch(before);
      await sync.idle();
    }
    const ms = Date.now() - tA;
    const steady = perMinute(reqA, await apiserverRequests(kc), ms);
    const apiCpu = ((cpuSeconds(cp.state.apiPid) - apiA) / ms) * 60_000;
    const writes = Object.entries(steady).filter(([k]) => isWrite(k)).reduce((a, [, v]) => a + v, 0);
    await rt.stop();
    const line = `desiredapps: ${N.toLocaleString('en')} DesiredApp objects: created in ${(createMs / 1000).toFixed(0)} s (${(N / (createMs / 1000)).toFixed(0)}/s at a limit of ${RATE}/s, 32 in flight; kube-apiserver ${apiCpuCreate.toFixed(0)} CPU s); informer ${(informerBytes / 1e6).toFixed(0)} MB heap (${(informerBytes / N).toFixed(0)} B per object; JSON ${(jsonBytes / N).toFixed(0)} B); steady state ${(ms / 60_000).toFixed(1)} min: ${writes} writes/min, requests ${Object.entries(steady).map(([k, v]) => `${k} ${v}/min`).join(', ') || 'none'}, kube-apiserver ${apiCpu.toFixed(1)} CPU s/min`;
    console.log(line);
    return [
      { bench: 'desiredapps', subject: `create ${N.toLocaleString('en')} DesiredApps (limit ${RATE}/s)`, subjectMs: createMs, baseline: `${N.toLocaleString('en')} at the production limit 100/s`, baselineMs: (N / 100) * 1000, note: `informer ${(informerBytes / 1e6).toFixed(0)} MB; steady ${writes} writes/min` },
    ];
  } finally {
    await cp.stop();
    rmSync(cpDir, { recursive: true, force: true });
  }
}
