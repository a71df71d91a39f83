// The app half under fault: real nats-server, the CC simulator and a DEA fleet publishing real
// heartbeats (test/apps/world.ts), hm9k's app half in this process at 1/10 timings, and the ledger
// every app scenario reports: wrong = a stop CC executed that was not owed, or a start beyond what
// was missing (a second instance at one index); lost = an owed start that never happened, or a
// desired index left without a running instance at the deadline.
import { world, type World } from '../../apps/world.js';
import { waitFor } from '../../../src/devenv/children.js';
import type { Ledger } from './nodes.js';

export { world, waitFor, type World };

/** Desired indices per app, from the CC simulator. */
function desiredIndices(w: World): string[] {
  const out: string[] = [];
  for (const a of w.cc.apps.values()) if (a.state === 'STARTED' && a.package_state === 'STAGED') for (let i = 0; i < a.instances; i++) out.push(`${a.guid}/${i}`);
  return out;
}

/** Running or starting instances per app/index in the fleet. */
function running(w: World): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of w.fleet.instances()) if (i.state === 'RUNNING' || i.state === 'STARTING') m.set(`${i.appGuid}/${i.index}`, (m.get(`${i.appGuid}/${i.index}`) ?? 0) + 1);
  return m;
}

/** Executed CC starts/stops since `since` (index into cc.requests), by app/index. */
export function executed(w: World, since = 0): { starts: Map<string, number>; stops: number } {
  const starts = new Map<string, number>();
  let stops = 0;
  for (const r of w.cc.requests.slice(since)) {
    if (!r.executed) continue;
    const b = r.body as { droplet: string; instance_index: number };
    if (r.endpoint === 'start') starts.set(`${b.droplet}/${b.instance_index}`, (starts.get(`${b.droplet}/${b.instance_index}`) ?? 0) + 1);
    if (r.endpoint === 'stop') stops++;
  }
  return { starts, stops };
}

/** Waits until every desired index runs exactly once (or the deadline), then counts. */
export async function appLedger(w: World, owed: string[], since: number, opts: { stopsOwed?: number; deadlineMs?: number } = {}): Promise<Ledger> {
  const whole = () => { const r = running(w); return desiredIndices(w).every((k) => (r.get(k) ?? 0) === 1); };
  await waitFor(() => whole() && owed.every((k) => (executed(w, since).starts.get(k) ?? 0) >= 1), 'every owed start executed and the fleet whole', opts.deadlineMs ?? 30_000).catch(() => undefined);
  // A little longer: a late duplicate start or a wrong stop must have had its chance to show.
  await new Promise((r) => setTimeout(r, 2500));
  const out: Ledger = { wrong: 0, lost: 0, detail: [] };
  const e = executed(w, since);
  for (const [k, n] of e.starts) {
    const want = owed.filter((o) => o === k).length;
    if (n > want) { out.wrong += n - want; out.detail.push(`${n - want} start(s) of ${k} not owed`); }
  }
  for (const k of owed) if ((e.starts.get(k) ?? 0) === 0) { out.lost++; out.detail.push(`owed start of ${k} never executed`); }
  const stopsOwed = opts.stopsOwed ?? 0;
  if (e.stops > stopsOwed) { out.wrong += e.stops - stopsOwed; out.detail.push(`${e.stops - stopsOwed} stop(s) not owed`); }
  const r = running(w);
  for (const k of desiredIndices(w)) {
    const n = r.get(k) ?? 0;
    if (n === 0 && !owed.includes(k)) { out.lost++; out.detail.push(`${k} not running`); }
    if (n > 1 && !out.detail.some((d) => d.includes(k))) { out.wrong += n - 1; out.detail.push(`${k} runs ${n} times`); }
  }
  return out;
}
