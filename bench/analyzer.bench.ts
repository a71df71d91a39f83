// The analyzer (one full pass, as the leader runs it every analyzeInterval) over a fleet at
// HM9000's published scale (30,000 apps, 100 instances per DEA) and at the issue's target scale
// (50,000 apps / 150,000 instances). Baseline, measured in the same run: a plain loop that builds
// the same index of the heartbeats (app -> index -> instances) with Maps: the least any analyzer
// must do to look at every instance. And one app with 100,000 instances (issue 14 item 2: once
// quadratic, 100,000 did not finish in 300 s) against the same instances spread over 3-instance apps:
// a pass must cost the same per instance however the instances are grouped.
import { analyze } from '../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../src/apps/config.js';
import { MemoryStore } from '../src/apps/store/memory.js';
import { emptyPending, type InstanceHeartbeat } from '../src/apps/types.js';
import { makeFleet, medianMs, type BenchRow } from './fleet.js';

function baselineIndex(store: MemoryStore): number {
  const byApp = new Map<string, Map<number, InstanceHeartbeat[]>>();
  let n = 0;
  for (const [app, list] of store.instancesByApp()) {
    let byIndex = byApp.get(app);
    if (!byIndex) byApp.set(app, (byIndex = new Map()));
    for (const i of list) {
      const at = byIndex.get(i.index);
      if (at) at.push(i);
      else byIndex.set(i.index, [i]);
      n++;
    }
  }
  for (const app of store.desired().keys()) if (!byApp.has(app)) byApp.set(app, new Map());
  return n + byApp.size;
}

async function scenario(apps: number, perDea: number, perApp: number, target?: string): Promise<BenchRow> {
  const fleet = makeFleet(apps, perDea, perApp);
  const now = Date.now();
  const store = new MemoryStore(30_000);
  store.setDesired(fleet.desired, now);
  for (const hb of fleet.heartbeats) store.applyHeartbeat(hb, now);
  const config = resolveAppsConfig();
  let decided = 0;
  const pass = () => {
    const d = analyze({ actualFresh: true, desiredFresh: true, desired: store.desired(), instances: store.instancesByApp(), crashCounts: store.crashCounts() }, now, config, emptyPending());
    decided = d.starts.length + d.stops.length;
  };
  const base = () => baselineIndex(store);
  // Interleaved, so that both see the same machine load.
  const baselineMs = await medianMs(base, 5, 2);
  const subjectMs = await medianMs(pass, 5, 2);
  const baselineMs2 = await medianMs(base, 5, 1);
  return {
    bench: 'analyzer',
    subject: `full pass, ${apps.toLocaleString('en')} apps / ${fleet.instances.toLocaleString('en')} instances / ${fleet.heartbeats.length} DEAs`,
    subjectMs,
    baseline: 'Map index of the same heartbeats',
    baselineMs: Math.min(baselineMs, baselineMs2),
    note: `${decided} messages decided${target ? `; target ${target}` : ''}`,
  };
}

function storeOf(apps: number, perApp: number, withHeartbeats: boolean, now: number): MemoryStore {
  const fleet = makeFleet(apps, 1000, perApp);
  const store = new MemoryStore(30_000);
  store.setDesired(fleet.desired, now);
  if (withHeartbeats) for (const hb of fleet.heartbeats) store.applyHeartbeat(hb, now);
  return store;
}

async function oneBigApp(instances: number, withHeartbeats: boolean): Promise<BenchRow> {
  const now = Date.now();
  const config = resolveAppsConfig();
  const big = storeOf(1, instances, withHeartbeats, now);
  const spread = storeOf(Math.ceil(instances / 3), 3, withHeartbeats, now);
  let decided = 0;
  const pass = (store: MemoryStore) => () => {
    const d = analyze({ actualFresh: true, desiredFresh: true, desired: store.desired(), instances: store.instancesByApp(), crashCounts: store.crashCounts() }, now, config, emptyPending());
    decided = d.starts.length + d.stops.length;
  };
  const baselineMs = await medianMs(pass(spread), 5, 1);
  const subjectMs = await medianMs(pass(big), 5, 1);
  return {
    bench: 'analyzer',
    subject: `one app x ${instances.toLocaleString('en')} instances, ${withHeartbeats ? 'running (with the fleet\'s disorder)' : 'all missing (cold start)'}`,
    subjectMs,
    baseline: `${Math.ceil(instances / 3).toLocaleString('en')} apps x 3, same state`,
    baselineMs,
    note: `${decided} messages decided; linear: ratio about 1 or below`,
  };
}

export async function run(): Promise<BenchRow[]> {
  return [
    await scenario(30_000, 100, 1, undefined),
    await scenario(30_000, 100, 3),
    await scenario(50_000, 100, 3, '< 500 ms'),
    await oneBigApp(100_000, true),
    await oneBigApp(100_000, false),
  ];
}
