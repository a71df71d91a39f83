// The analyzer (one full pass, as the leader runs it every analyzeInterval) over a fleet at
// HM9000's published scale (30,000 apps, 100 instances per DEA) and at the issue's target scale
// (50,000 apps / 150,000 instances). Baseline, measured in the same run: a plain loop that builds
// the same index of the heartbeats (app -> index -> instances) with Maps: the least any analyzer
// must do to look at every instance.
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

export async function run(): Promise<BenchRow[]> {
  return [await scenario(30_000, 100, 1, undefined), await scenario(30_000, 100, 3), await scenario(50_000, 100, 3, '< 500 ms')];
}
