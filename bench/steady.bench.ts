// `npm run bench -- steady` (issue 14 item 9): hm9k's cost per instance in steady state, as HM9000
// was measured side by side (1 s heartbeats, bulk batch 500, nothing changing), at 2,000 apps x 3 on
// 20 DEAs and 10,000 apps x 3 on 100 DEAs: CPU s/min and RSS of hm9k's process (compiled JS, the real
// runtime, projection on; from /proc), and the kube-apiserver's CPU s/min and requests per minute by
// verb and resource (from its own apiserver_request_total), and which of them hm9k made (from its audit
// log: the apiserver's own controllers list Services now and then). The steady window starts once state is
// fresh, the DesiredApp objects exist and the apiserver saw no write for 20 s. HM9000 itself could
// not be built here; its figures (issue 14) are printed as the reference.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '../src/kube/client.js';
import { API_VERSION, GROUP, VERSION } from '../src/api/index.js';
import { LocalControlPlane } from '../src/devenv/controlplane.js';
import { NatsServer } from '../src/devenv/nats.js';
import { CloudControllerSim } from '../src/sim/cc.js';
import { DeaFleet } from '../src/sim/dea.js';
import { PRODUCTION_NODE_FLAGS, productionNodeEnv } from '../src/production-runtime.js';
import { apiserverRequests, auditRequests, countsPerMinute, cpuSeconds, isWrite, perMinute, rssBytes } from './apiserver.js';
import type { BenchRow } from './fleet.js';

const dir = dirname(fileURLToPath(import.meta.url));
const WINDOW_MS = Number(process.env.STEADY_WINDOW_MS ?? 60_000);
const HM9000 = { 2000: { cpu: 7.4, rssMb: 68 }, 10000: { cpu: 33.0, rssMb: 135 } } as Record<number, { cpu: number; rssMb: number }>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function size(cp: LocalControlPlane, kc: KubeConfig, apps: number, deas: number, auditLog: string): Promise<{ row: BenchRow; line: string }> {
  const ns = `steady-${apps}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  const co = kc.makeApiClient(CustomObjectsApi);
  const policy = `steady-${apps}`;
  await co.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', body: { apiVersion: API_VERSION, kind: 'AppHealthPolicy', metadata: { name: policy }, spec: { timings: { heartbeatPeriod: '1s' }, bulkBatchSize: 500, projection: { writesPerSecond: 200 } } } });
  const nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url });
  const fleet = new DeaFleet({ nats: nc, count: deas, heartbeatPeriodMs: 1000 });
  const cc = new CloudControllerSim({ dea: fleet });
  await cc.listen();
  for (let a = 0; a < apps; a++) {
    const guid = `app-${a}`;
    cc.setApp({ guid, version: `${guid}-v1`, instances: 3, state: 'STARTED', package_state: 'STAGED' });
    for (let i = 0; i < 3; i++) fleet.place(fleet.deaIds()[(a * 3 + i) % deas]!, guid, `${guid}-v1`, i);
  }
  fleet.start();
  const hm9k: ChildProcess = fork(join(dir, 'steady', 'hm9k.js'), {
    // Node as the image runs it (src/production-runtime.ts), then STEADY_NODE_FLAGS (experiments, e.g. --cpu-prof).
    execArgv: [...PRODUCTION_NODE_FLAGS, ...(process.env.STEADY_NODE_FLAGS ?? '').split(' ').filter(Boolean)],
    env: { ...productionNodeEnv(), KUBECONFIG_FILE: cp.state.kubeconfig, NS: ns, NATS_URL: nats.url, CC_URL: cc.url, POLICY: policy },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let state = { fresh: false, acted: false };
  let exited: number | null | undefined;
  hm9k.on('message', (m: { op: string; fresh: boolean; acted: boolean }) => m.op === 'state' && (state = m));
  hm9k.once('exit', (code) => (exited = code));
  const t0 = Date.now();
  // Warm-up: fresh and acting, every object projected, then no apiserver write for 20 s.
  const count = async () => ((await co.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', limit: 1 })) as { metadata?: { remainingItemCount?: number }; items: unknown[] });
  for (;;) {
    const l = await count();
    const objects = l.items.length + (l.metadata?.remainingItemCount ?? 0);
    if (state.acted && objects >= apps) break;
    if (exited !== undefined) throw new Error(`steady ${apps}: hm9k exited (${exited}) before steady state (${objects} objects); see its log above`);
    if (Date.now() - t0 > 900_000) throw new Error(`steady ${apps}: not settled (fresh ${state.fresh}, ${objects} objects)`);
    await sleep(2000);
  }
  const projectedMs = Date.now() - t0;
  let quietSince = Date.now();
  let prev = await apiserverRequests(kc);
  while (Date.now() - quietSince < 20_000) {
    await sleep(5000);
    const cur = await apiserverRequests(kc);
    // (Lease renewals, hm9k's and the apiserver's own, go on for ever: not counted as activity.)
    if (Object.keys(perMinute(prev, cur, 5000)).some((k) => isWrite(k) && !k.endsWith(' leases'))) quietSince = Date.now();
    prev = cur;
    if (Date.now() - t0 > 1_200_000) break;
  }
  // The steady window.
  const reqA = await apiserverRequests(kc);
  const auditFrom = auditRequests(auditLog).end;
  const cpuA = { hm9k: cpuSeconds(hm9k.pid!), api: cpuSeconds(cp.state.apiPid), at: Date.now() };
  await sleep(WINDOW_MS);
  const reqB = await apiserverRequests(kc);
  const ms = Date.now() - cpuA.at;
  const audit = auditRequests(auditLog, auditFrom);
  const hmCpu = ((cpuSeconds(hm9k.pid!) - cpuA.hm9k) / ms) * 60_000;
  const apiCpu = ((cpuSeconds(cp.state.apiPid) - cpuA.api) / ms) * 60_000;
  const rss = rssBytes(hm9k.pid!);
  const req = perMinute(reqA, reqB, ms);
  const writes = Object.entries(req).filter(([k]) => isWrite(k)).reduce((a, [, v]) => a + v, 0);
  const ref = HM9000[apps];
  hm9k.send({ op: 'stop' });
  await new Promise((r) => hm9k.once('exit', r));
  await fleet.stopAll();
  await cc.close();
  await nc.close();
  await nats.stop();
  const text = (r: Record<string, number>) => Object.entries(r).sort().map(([k, v]) => `${k} ${v}/min`).join(', ') || 'none';
  const reqText = text(req);
  const byHm9k = countsPerMinute(audit.clients, ms);
  // The goal (issue 14 item 9): hm9k only watches (and renews its Lease) in steady state.
  const onlyWatches = Object.keys(byHm9k).every((k) => k.startsWith('WATCH ') || k === 'UPDATE leases');
  const line = `steady ${apps.toLocaleString('en')} apps x 3 / ${deas} DEAs: hm9k ${hmCpu.toFixed(1)} CPU s/min, RSS ${(rss / 1e6).toFixed(0)} MB (HM9000 ${ref?.cpu} CPU s/min, ${ref?.rssMb} MB: ratio ${(hmCpu / (ref?.cpu ?? NaN)).toFixed(2)}x CPU, ${(rss / 1e6 / (ref?.rssMb ?? NaN)).toFixed(1)}x RSS); kube-apiserver ${apiCpu.toFixed(1)} CPU s/min; apiserver requests in steady state: ${reqText}; writes ${writes}/min; of them hm9k's (audit log): ${text(byHm9k)} (${onlyWatches ? 'only watches and Lease renewals' : 'NOT only watches and Lease renewals'}), the apiserver's own controllers': ${text(countsPerMinute(audit.apiserver, ms))} (projection settled ${(projectedMs / 1000).toFixed(0)} s after start)`;
  console.log(line);
  return {
    line,
    row: { bench: 'steady', subject: `hm9k CPU, ${apps.toLocaleString('en')} apps x 3 / ${deas} DEAs`, subjectMs: hmCpu, baseline: 'HM9000 (issue 14 figures)', baselineMs: ref?.cpu ?? NaN, unit: 'CPU s/min', note: `RSS ${(rss / 1e6).toFixed(0)} MB vs ${ref?.rssMb} MB; apiserver ${apiCpu.toFixed(1)} CPU s/min, writes ${writes}/min` },
  };
}

export async function run(): Promise<BenchRow[]> {
  const cpDir = mkdtempSync(join(tmpdir(), 'hm9k-steady-'));
  // An audit log (Metadata level), to tell hm9k's requests from the apiserver's own controllers'.
  writeFileSync(join(cpDir, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n');
  const auditLog = join(cpDir, 'audit.log');
  const cp = await LocalControlPlane.start({ dir: cpDir, apiExtraFlags: [`--audit-policy-file=${join(cpDir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-mode=blocking', '--audit-log-maxsize=0'] });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  const rows: BenchRow[] = [];
  try {
    const sizes = (process.env.STEADY_SIZES ?? '2000:20,10000:100').split(',').map((s) => s.split(':').map(Number) as [number, number]);
    for (const [apps, deas] of sizes) rows.push((await size(cp, kc, apps, deas, auditLog)).row);
  } finally {
    await cp.stop();
    rmSync(cpDir, { recursive: true, force: true });
  }
  return rows;
}
