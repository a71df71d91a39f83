// The analysis cycle runs a pass in slices, yielding to the event loop in between (issue 14 item 8).
// Sliced as finely as it goes (a budget of 0 ends a slice at every check, each 256 apps), a pass
// must decide exactly what one uninterrupted pass decides: the same starts, stops, crash counts,
// per-app summaries and counts, over a seeded fleet with every kind of disorder and apps that
// only run.
import { describe, expect, it } from 'vitest';
import { AnalyzerPass, analyze, type AnalyzerSnapshot } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { emptyPending, type DeaHeartbeat, type DesiredAppState, type InstanceHeartbeat } from '../../src/apps/types.js';
import { rng } from '../support/rng.js';

const NOW = 1_700_000_000_000;

function fleet(seed: number, apps: number): AnalyzerSnapshot {
  const r = rng(seed);
  const desired = new Map<string, DesiredAppState>();
  const instances = new Map<string, InstanceHeartbeat[]>();
  let seq = 0;
  for (let a = 0; a < apps; a++) {
    const guid = `app-${a}`;
    const n = 1 + Math.floor(r() * 4);
    // Most apps settled; some missing, crashed, extra, duplicated, old versions, stopped; some only run.
    const kind = r();
    const onlyRuns = kind > 0.97;
    if (!onlyRuns) desired.set(guid, { appGuid: guid, version: 'v2', instances: n, state: kind > 0.95 ? 'STOPPED' : 'STARTED', packageState: 'STAGED' });
    const list: InstanceHeartbeat[] = [];
    const add = (index: number, state: InstanceHeartbeat['state'], version = 'v2') =>
      list.push({ droplet: guid, version, instance: `i${++seq}`, index, state, state_timestamp: (NOW - 60_000) / 1000, dea_guid: `dea-${seq % 20}` });
    for (let i = 0; i < n; i++) {
      const x = r();
      if (kind < 0.8 || x < 0.6) add(i, 'RUNNING');
      else if (x < 0.7) continue; // missing
      else if (x < 0.8) add(i, 'CRASHED');
      else if (x < 0.9) add(i, 'RUNNING', 'v1');
      else {
        add(i, 'RUNNING');
        add(i, 'RUNNING'); // duplicate
      }
    }
    if (kind > 0.9 && kind < 0.95) add(n + 1, 'RUNNING'); // extra index
    if (list.length > 0) instances.set(guid, list);
  }
  return { actualFresh: true, desiredFresh: true, desired, instances, crashCounts: new Map() };
}

describe('analyzer pass in slices', () => {
  it.each([1, 2, 3])('seed %i: 3,000 apps sliced at every check decide what one pass decides', (seed) => {
    const snapshot = fleet(seed, 3000);
    const config = resolveAppsConfig();
    const whole = analyze(snapshot, NOW, config, emptyPending());
    const pass = new AnalyzerPass(snapshot, NOW, config, emptyPending());
    let slices = 0;
    while (!pass.done) {
      pass.step(0);
      slices++;
    }
    const sliced = pass.finish();
    expect(slices).toBeGreaterThan(10);
    expect(whole.starts.length + whole.stops.length).toBeGreaterThan(50);
    expect(sliced.starts).toEqual(whole.starts);
    expect(sliced.stops).toEqual(whole.stops);
    expect(sliced.crashCounts).toEqual(whole.crashCounts);
    expect(sliced.counts).toEqual(whole.counts);
    expect([...sliced.apps.keys()]).toEqual([...whole.apps.keys()]);
    expect([...sliced.apps.values()]).toEqual([...whole.apps.values()]);
    // Every app once: desired apps in CC's order, then the apps that only run.
    const onlyRunning = [...snapshot.instances.keys()].filter((g) => !snapshot.desired.has(g));
    expect(onlyRunning.length).toBeGreaterThan(10);
    expect([...sliced.apps.keys()]).toEqual([...snapshot.desired.keys(), ...onlyRunning]);
  });

  it.each([4, 5, 6])('seed %i: the store\'s lists (which carry the settled check\'s answer) decide what plain lists and the rule-by-rule path decide', (seed) => {
    const snapshot = fleet(seed, 3000);
    const config = resolveAppsConfig();
    const store = new MemoryStore(30_000);
    store.setDesired(snapshot.desired, NOW);
    const byDea = new Map<string, DeaHeartbeat>();
    for (const list of snapshot.instances.values()) {
      for (const { dea_guid, ...d } of list) {
        let hb = byDea.get(dea_guid);
        if (!hb) byDea.set(dea_guid, (hb = { dea: dea_guid, droplets: [] }));
        hb.droplets.push(d);
      }
    }
    // (a duplicate instance guid would collapse in the store: the fleet has none)
    for (const hb of byDea.values()) store.applyHeartbeat(hb, NOW);
    const fromStore = { ...snapshot, instances: store.instancesByApp() };
    expect(store.instanceCount()).toBe([...snapshot.instances.values()].reduce((a, l) => a + l.length, 0));
    const plain = analyze(snapshot, NOW, config, emptyPending());
    const viaStore = analyze(fromStore, NOW, config, emptyPending());
    const ruleByRule = analyze(fromStore, NOW, config, emptyPending(), { ruleByRule: true });
    const key = (d: typeof plain) => ({ starts: d.starts.map((m) => `${m.appGuid}/${m.index}/${m.reason}`).sort(), stops: d.stops.map((m) => `${m.appGuid}/${m.instanceGuid}/${m.reason}`).sort(), counts: d.counts });
    expect(key(viaStore)).toEqual(key(plain));
    expect(key(ruleByRule)).toEqual(key(plain));
    const converged = (d: typeof plain) => [...d.apps.values()].filter((a) => a.converged).map((a) => a.appGuid).sort();
    expect(converged(viaStore)).toEqual(converged(plain));
    expect(converged(viaStore).length).toBeGreaterThan(1000);
  });
});
