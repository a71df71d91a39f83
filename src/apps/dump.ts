// The app half of `hm9k dump`, as HM9000's dump: the freshness line, then per app the desired state,
// heartbeats by index, crash counts, pending starts with countdowns and pending stops.
import type { MemoryStore } from './store/memory.js';
import type { InstanceHeartbeat } from './types.js';

export interface AppsDump {
  at: string;
  actualFresh: boolean;
  desiredFresh: boolean;
  lastCompleteFetch?: string;
  deas: number;
  apps: AppDumpEntry[];
}

export interface AppDumpEntry {
  appGuid: string;
  desired?: { version: string; instances: number; state: string; packageState: string };
  instances: { index: number; version: string; state: string; instance: string; dea: string }[];
  crashCounts: { version: string; index: number; count: number }[];
  pendingStarts: { version: string; index: number; reason: string; dueInMs: number; sent: boolean }[];
  pendingStops: { version: string; index: number; instance: string; reason: string; dueInMs: number; sent: boolean }[];
}

export function buildAppsDump(store: MemoryStore, now: number, desiredFresh: boolean): AppsDump {
  const apps = new Map<string, AppDumpEntry>();
  const entry = (guid: string): AppDumpEntry => {
    let e = apps.get(guid);
    if (!e) apps.set(guid, (e = { appGuid: guid, instances: [], crashCounts: [], pendingStarts: [], pendingStops: [] }));
    return e;
  };
  for (const [guid, d] of store.desired()) entry(guid).desired = { version: d.version, instances: d.instances, state: d.state, packageState: d.packageState };
  for (const [guid, list] of store.instancesByApp()) {
    entry(guid).instances = [...list]
      .sort((a: InstanceHeartbeat, b: InstanceHeartbeat) => a.index - b.index || a.instance.localeCompare(b.instance))
      .map((i) => ({ index: i.index, version: i.version, state: i.state, instance: i.instance, dea: i.dea_guid }));
  }
  for (const c of store.crashCounts().values()) entry(c.appGuid).crashCounts.push({ version: c.version, index: c.index, count: c.count });
  const pending = store.pending();
  for (const s of pending.starts.values()) entry(s.appGuid).pendingStarts.push({ version: s.version, index: s.index, reason: s.reason, dueInMs: s.sendOn - now, sent: s.sentOn > 0 });
  for (const s of pending.stops.values()) entry(s.appGuid).pendingStops.push({ version: s.version, index: s.index, instance: s.instanceGuid, reason: s.reason, dueInMs: s.sendOn - now, sent: s.sentOn > 0 });
  const last = store.lastCompleteFetch();
  return {
    at: new Date(now).toISOString(),
    actualFresh: store.actualFreshness.isFresh(now),
    desiredFresh,
    ...(last !== undefined ? { lastCompleteFetch: new Date(last).toISOString() } : {}),
    deas: store.deaIds().length,
    apps: [...apps.values()].sort((a, b) => a.appGuid.localeCompare(b.appGuid)),
  };
}

const secs = (ms: number) => (ms <= 0 ? 'due' : `in ${Math.ceil(ms / 1000)}s`);

export function renderApps(d: AppsDump, _now: Date): string {
  const lines: string[] = [];
  lines.push(`Apps: actual state ${d.actualFresh ? 'FRESH' : 'NOT FRESH'}, desired state ${d.desiredFresh ? 'FRESH' : 'NOT FRESH'}` + `${d.lastCompleteFetch ? ` (last complete fetch ${d.lastCompleteFetch})` : ''}, ${d.deas} DEA(s), ${d.apps.length} app(s)`);
  for (const a of d.apps) {
    lines.push('');
    lines.push(a.desired ? `${a.appGuid}  desired: ${a.desired.instances} x ${a.desired.version} ${a.desired.state}/${a.desired.packageState}` : `${a.appGuid}  NOT DESIRED`);
    const byIndex = new Map<number, AppDumpEntry['instances']>();
    // (no Math.max(...list): spreading 100,000+ arguments throws a RangeError)
    let maxIndex = a.desired ? a.desired.instances - 1 : -1;
    for (const i of a.instances) {
      const here = byIndex.get(i.index);
      if (here) here.push(i);
      else byIndex.set(i.index, [i]);
      if (i.index > maxIndex) maxIndex = i.index;
    }
    // Indices in order; a run of missing ones is one line, so an absurd desired count (CC says a
    // billion) costs one line, not a billion.
    const indices = [...byIndex.keys()].sort((x, y) => x - y);
    let next = 0;
    const missing = (from: number, to: number) => {
      if (to >= from) lines.push(`  [${from === to ? from : `${from}-${to}`}] MISSING`);
    };
    for (const idx of indices) {
      missing(next, idx - 1);
      const here = byIndex.get(idx)!;
      lines.push(`  [${idx}] ${here.map((i) => `${i.state}${a.desired && i.version !== a.desired.version ? ` (old version ${i.version})` : ''} on ${i.dea}`).join(', ')}`);
      next = idx + 1;
    }
    missing(next, maxIndex);
    for (const c of a.crashCounts) lines.push(`  crash count [${c.index}] ${c.count}${a.desired && c.version !== a.desired.version ? ` (version ${c.version})` : ''}`);
    for (const s of a.pendingStarts) lines.push(`  pending start [${s.index}] ${s.reason} ${s.sent ? 'sent (keep-alive)' : secs(s.dueInMs)}`);
    for (const s of a.pendingStops) lines.push(`  pending stop [${s.index}] ${s.instance} ${s.reason} ${s.sent ? 'sent (keep-alive)' : secs(s.dueInMs)}`);
  }
  return `${lines.join('\n')}\n`;
}
