// The node half at 1,000 ComputeNodes.
// 1. Reconcile cost: per reconcile the engine computes a fleet summary over every node (policy match,
//    isUnhealthy; NodesEngine.fleet, replicated here with the same exported functions) and calls the
//    pure decide(). Measured: reconciling all 1,000 nodes once. Baseline: a plain loop over the same
//    1,000 snapshots.
// 2. Consul requests per minute in steady state: ConsulWatcher (the shared blocking-query pair per
//    observer) against src/sim/consul.ts with 1,000 nodes, counted by the simulator for WINDOW_MS
//    with a short wait, reported per observer and scaled to the production wait (300 s). Baseline in
//    the same run: a naive poller doing one GET per detection interval (= the short wait).
// 3. Time from a failure to the fence decision (pure: decide() driven with one sample per interval,
//    recoveries failing, corroboration failing) compared with failureThreshold x interval.
import type { FencePolicySpec } from '../src/api/index.js';
import { ConsulWatcher } from '../src/clients/consul.js';
import { resolvePolicy } from '../src/nodes/config.js';
import { applyOutcome, decide, IN_FLIGHT_PHASES, isUnhealthy } from '../src/nodes/fence/machine.js';
import type { DecideContext, FleetSummary, NetworkObservation, NodeSnapshot } from '../src/nodes/fence/types.js';
import { matchesSelector } from '../src/nodes/match.js';
import { ConsulSim } from '../src/sim/consul.js';
import { medianMs, type BenchRow } from './fleet.js';

const N = 1000;
const WAIT_MS = 1000;
const WINDOW_MS = 15_000;
const PROD_WAIT_MS = 300_000;

const spec: FencePolicySpec = {
  nodeSelector: { matchLabels: { role: 'compute' } },
  networks: { management: { consul: [{ address: 'http://127.0.0.1:1' }] }, storage: { consul: [{ address: 'http://127.0.0.1:2' }] }, tenant: { consul: [{ address: 'http://127.0.0.1:3' }] } },
};
const policy = resolvePolicy(spec);
const T0 = Date.parse('2025-01-01T00:00:00Z');
const up = (): NetworkObservation => ({ state: 'up', since: T0 - 3_600_000, consecutiveDown: 0, observersUp: 1, observersDown: 0, observersUnknown: 0 });
const ctx = (now: number): DecideContext => ({ now, lease: { holder: 'hm9k-0', transitions: 1 }, globalMaxUnhealthy: '50%', globalMaxConcurrentRemediations: 5 });

function snapshot(i: number): NodeSnapshot & { labels: Record<string, string> } {
  return {
    name: `cmp${i}`,
    labels: { role: 'compute' },
    spec: { host: `cmp${i}`, bmc: { address: '127.0.0.1', credentialsSecret: 'bmc' }, ssh: { address: '127.0.0.1', credentialsSecret: 'ssh' } },
    annotations: {},
    status: { phase: 'Healthy' },
    obs: {
      networks: { management: up(), storage: up(), tenant: up() },
      nova: { apiState: 'up', status: 'enabled', forcedDown: false, nodeSide: 'up', evacuationMigrations: 0, servers: 20 },
      power: { state: 'on', since: T0 - 3_600_000 },
    },
  };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];

  // 1. Reconcile cost.
  const nodes = Array.from({ length: N }, (_, i) => snapshot(i));
  // Healthy decisions first, so every snapshot carries its steady status.
  for (const n of nodes) n.status = decide(n, policy, { policy: { matched: N, unhealthy: 0, inFlight: 0 }, global: { total: N, unhealthy: 0, inFlight: 0 } }, ctx(T0)).status;
  const policies = [{ name: 'compute', spec, resolved: policy }];
  const fleet = (name: string): FleetSummary => {
    const s: FleetSummary = { policy: { matched: 0, unhealthy: 0, inFlight: 0 }, global: { total: 0, unhealthy: 0, inFlight: 0 } };
    for (const n of nodes) {
      if (n.spec.maintenance) continue;
      const matching = policies.filter((p) => matchesSelector(p.spec.nodeSelector, n.labels));
      const pe = matching.length === 1 ? matching[0]! : null;
      const unhealthy = isUnhealthy(n, pe?.resolved ?? null);
      const busy = n.name !== name && IN_FLIGHT_PHASES.includes(n.status.phase as never);
      s.global.total++;
      if (unhealthy) s.global.unhealthy++;
      if (busy) s.global.inFlight++;
      if (pe && pe.name === 'compute') {
        s.policy.matched++;
        if (unhealthy) s.policy.unhealthy++;
        if (busy) s.policy.inFlight++;
      }
    }
    return s;
  };
  let phases = 0;
  const sweep = () => {
    for (const n of nodes) if (decide(n, policy, fleet(n.name), ctx(T0 + 60_000)).status.phase === 'Healthy') phases++;
  };
  const decideOnly = () => {
    const f = fleet('x');
    for (const n of nodes) if (decide(n, policy, f, ctx(T0 + 60_000)).status.phase === 'Healthy') phases++;
  };
  const plain = () => {
    let up = 0;
    for (const n of nodes) if (n.obs.networks.storage?.state === 'up' && n.status.phase === 'Healthy') up++;
    return up;
  };
  const baseMs = await medianMs(plain, 5, 2);
  const sweepMs = await medianMs(sweep, 5, 1);
  const decideMs = await medianMs(decideOnly, 5, 1);
  rows.push({ bench: 'nodes', subject: `reconcile all ${N} ComputeNodes: fleet summary (O(N) per reconcile) + decide()`, subjectMs: sweepMs, baseline: `plain loop over the same ${N} snapshots`, baselineMs: baseMs, note: `${(sweepMs / N * 1000).toFixed(0)} us per reconcile; decide() alone with one shared summary: ${decideMs.toFixed(1)} ms for ${N} (${(decideMs / N * 1000).toFixed(0)} us each)` });

  // 2. Consul steady-state requests (3 observers: one Consul cluster per network).
  const sims = [new ConsulSim(), new ConsulSim(), new ConsulSim()];
  const watchers: ConsulWatcher[] = [];
  let poller: NodeJS.Timeout | undefined;
  try {
    for (const s of sims) {
      await s.start();
      for (let i = 0; i < N; i++) s.addNode(`cmp${i}`);
    }
    const total = (s: ConsulSim) => [...s.requestCount.values()].reduce((a, b) => a + b, 0);
    for (const s of sims) {
      const w = new ConsulWatcher({ address: s.url, waitMs: WAIT_MS, minLoopMs: 1000 });
      watchers.push(w);
      w.start();
    }
    const deadline = Date.now() + 20_000;
    while (!watchers.every((w) => w.view.healthy) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 2 * WAIT_MS)); // past the first answers: steady state
    const before = sims.map(total);
    const t = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const perObserver = sims.map((s, i) => ((total(s) - before[i]!) / (Date.now() - t)) * 60_000);
    const perObs = perObserver.reduce((a, b) => a + b, 0) / perObserver.length;
    for (const w of watchers) await w.stop();
    watchers.length = 0;

    // Baseline: a naive poller (one non-blocking GET per interval = WAIT_MS) on the first observer.
    const s0 = sims[0]!;
    const b0 = total(s0);
    const tb = Date.now();
    poller = setInterval(() => void fetch(`${s0.url}/v1/health/state/any`).then((r) => r.arrayBuffer()).catch(() => undefined), WAIT_MS);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    clearInterval(poller);
    poller = undefined;
    const pollPerMin = ((total(s0) - b0) / (Date.now() - tb)) * 60_000;
    const scaled = perObs * (WAIT_MS / PROD_WAIT_MS);
    rows.push({
      bench: 'nodes',
      subject: `Consul requests/min per observer, steady, ${N} nodes, wait ${WAIT_MS} ms, ${WINDOW_MS / 1000} s window`,
      subjectMs: perObs,
      baseline: `naive poller, 1 GET per ${WAIT_MS} ms`,
      baselineMs: pollPerMin,
      unit: 'req/min',
      note: `per observer ${perObserver.map((x) => x.toFixed(0)).join(' / ')}; 3 observers ${(perObs * 3).toFixed(0)}/min; at the production wait (${PROD_WAIT_MS / 1000} s): ${scaled.toFixed(2)}/min per observer, ${(scaled * 3).toFixed(2)}/min for 3`,
    });
  } finally {
    if (poller) clearInterval(poller);
    for (const w of watchers) await w.stop();
    for (const s of sims) await s.stop().catch(() => undefined);
  }

  // 3. Failure -> fence decision (pure, production defaults).
  const det = policy.detection;
  const n = snapshot(0);
  n.status = decide(n, policy, { policy: { matched: N, unhealthy: 0, inFlight: 0 }, global: { total: N, unhealthy: 0, inFlight: 0 } }, ctx(T0)).status;
  const failAt = T0 + 1; // storage fails just after a sample
  const calm: FleetSummary = { policy: { matched: N, unhealthy: 1, inFlight: 0 }, global: { total: N, unhealthy: 1, inFlight: 0 } };
  let firstRemediation = -1;
  let fenceAt = -1;
  let suspectAt = -1;
  const t3 = process.hrtime.bigint();
  let decisions = 0;
  for (let k = 1; k <= 10_000 && fenceAt < 0; k++) {
    const now = T0 + k * det.intervalMs;
    n.obs.networks.storage = { state: 'down', since: failAt, consecutiveDown: k, observersUp: 0, observersDown: 1, observersUnknown: 0, reason: 'serfHealth critical' };
    const d = decide(n, policy, calm, ctx(now));
    decisions++;
    n.status = d.status;
    if (suspectAt < 0 && d.status.phase === 'Suspect') suspectAt = now;
    for (const a of d.actions) {
      if (a.type === 'recover') {
        if (firstRemediation < 0) firstRemediation = now;
        n.status = applyOutcome(n.status, { type: 'recover', ok: true, message: 'ran; storage still down' }, now);
      }
      if (a.type === 'corroborate') n.obs.corroboration = { network: 'storage', at: now, result: 'failing' };
      if (a.type === 'powerOff') fenceAt = now;
    }
  }
  const pureMs = Number(process.hrtime.bigint() - t3) / 1e6;
  const thr = det.failureThreshold * det.intervalMs;
  rows.push({
    bench: 'nodes',
    subject: `failure -> fence decision (powerOff), production defaults (interval ${det.intervalMs} ms, threshold ${det.failureThreshold})`,
    subjectMs: fenceAt < 0 ? Number.NaN : fenceAt - failAt,
    baseline: 'failureThreshold x interval',
    baselineMs: thr,
    note: `detected (Suspect) after ${suspectAt < 0 ? 'never' : `${suspectAt - failAt} ms`}; first recovery after ${firstRemediation < 0 ? 'never' : `${firstRemediation - failAt} ms`}; the rest is recoveryGracePeriod + recovery attempts x settleTime + corroboration; ${decisions} decisions in ${pureMs.toFixed(2)} ms`,
  });
  void phases;
  return rows;
}
