// The evacuation engine against the Nova simulator: bounded concurrency, preconditions, restart
// safety (never twice), 2.95+ restart of servers that were active.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ComputeNodeStatus } from '../../src/api/index.js';
import { KeystoneClient, parseCloudsYaml } from '../../src/clients/keystone.js';
import { NovaClient } from '../../src/clients/nova.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { evacuationTick, planEvacuation } from '../../src/nodes/evacuate.js';
import { evacuationSummary } from '../../src/nodes/engine.js';
import { NovaSim } from '../../src/sim/nova.js';

type Evac = NonNullable<ComputeNodeStatus['evacuation']>;

describe('evacuation engine', () => {
  let sim: NovaSim;
  let nova: NovaClient;
  const policy = (mv = '2.94', concurrency = 2) => resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:1' }] } }, evacuation: { concurrency, microversion: mv, perServerTimeout: '30s' } });
  beforeEach(async () => {
    sim = new NovaSim({ migrationStepMs: 30 });
    await sim.start();
    sim.addHost('src');
    sim.addHost('dst');
    nova = new NovaClient(new KeystoneClient(parseCloudsYaml(sim.cloudsYaml(), 'sim')));
    sim.setAlive('src', false);
    await nova.forceDown(sim.services.get('src')!.id, true);
  });
  afterEach(async () => { await sim.stop(); });

  async function runToEnd(e: Evac, p = policy(), writes: Evac[] = [], settleMs = 200) {
    const io = { now: () => Date.now(), log: () => undefined, settleMs, write: async (x: Evac) => { writes.push(structuredClone(x)); } };
    let maxRequested = 0;
    for (let i = 0; i < 200; i++) {
      const r = await evacuationTick(nova, e, 'src', p, io);
      e = r.evacuation;
      maxRequested = Math.max(maxRequested, e.servers.filter((s) => s.state === 'requested').length);
      if (r.finished) return { e, maxRequested };
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('evacuation did not finish');
  }

  it('evacuates every server once, with bounded concurrency; intent is written before each request', async () => {
    for (let i = 0; i < 5; i++) sim.addServer('src');
    const writes: Evac[] = [];
    const plan = await planEvacuation(nova, 'src', policy(), Date.now());
    expect(plan.total).toBe(5);
    const { e, maxRequested } = await runToEnd(plan, policy('2.94', 2), writes);
    expect(e).toMatchObject({ done: 5, failed: 0 });
    expect(maxRequested).toBeLessThanOrEqual(2);
    expect(sim.migrations).toHaveLength(5);
    expect(writes.length).toBeGreaterThanOrEqual(5);
    expect([...sim.servers.values()].every((s) => s.host === 'dst')).toBe(true);
  });

  it('after a restart between intent and request, asks Nova and requests exactly once', async () => {
    const s = sim.addServer('src');
    const plan = await planEvacuation(nova, 'src', policy(), Date.now());
    // The intent says requested, but the controller died before the POST.
    plan.servers[0]!.state = 'requested';
    const { e } = await runToEnd(plan);
    expect(e.done).toBe(1);
    expect(sim.migrations.filter((m) => m.instance_uuid === s.id)).toHaveLength(1);
  });

  it('a request still in flight when its sender gave up (outcome unknown) is never sent again; once Nova carries it out it is done', async () => {
    const s = sim.addServer('src');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // nova-api has read the request but not carried it out yet (a slow API, a stopped leader).
    sim.beforeAction = (id, action) => (id === s.id && action === 'evacuate' ? held : undefined);
    const impatient = new NovaClient(new KeystoneClient(parseCloudsYaml(sim.cloudsYaml(), 'sim')), { timeoutMs: 300 });
    const plan = await planEvacuation(impatient, 'src', policy(), Date.now());
    const io = { now: () => Date.now(), log: () => undefined, settleMs: 60_000, write: async () => undefined };
    const r1 = await evacuationTick(impatient, plan, 'src', policy(), io);
    expect(r1.evacuation.servers[0]).toMatchObject({ state: 'requested', answer: 'unknown' });
    expect(r1.evacuation.servers[0]!.since).toBeTruthy();
    // The next ticks (this leader or the next) find no trace in Nova yet: ask again, never re-send.
    let e = r1.evacuation;
    for (let i = 0; i < 3; i++) e = (await evacuationTick(impatient, e, 'src', policy(), io)).evacuation;
    const posts = () => sim.requests.filter((x) => x === `POST /compute/v2.1/servers/${s.id}/action`).length;
    expect(posts()).toBe(1);
    expect(e.servers[0]!.state).toBe('requested');
    release();
    const { e: end } = await runToEnd(e, policy(), [], 60_000);
    expect(end).toMatchObject({ done: 1, failed: 0 });
    expect(posts()).toBe(1);
    expect(sim.migrations.filter((m) => m.instance_uuid === s.id)).toHaveLength(1);
  });

  it('a server already evacuated before the restart is not requested again', async () => {
    const s = sim.addServer('src');
    const plan = await planEvacuation(nova, 'src', policy(), Date.now());
    await nova.evacuate(s.id, { microversion: '2.94' });
    const { e } = await runToEnd(plan);
    expect(e.done).toBe(1);
    expect(sim.migrations).toHaveLength(1);
  });

  it('preconditions: a busy server waits, a building one is skipped', async () => {
    const busy = sim.addServer('src', { task_state: 'rebooting' });
    sim.addServer('src', { vm_state: 'building' });
    const plan = await planEvacuation(nova, 'src', policy(), Date.now());
    const io = { now: () => Date.now(), log: () => undefined, write: async () => undefined };
    const r = await evacuationTick(nova, plan, 'src', policy(), io);
    expect(r.evacuation.servers.find((x) => x.id === busy.id)?.state).toBe('pending');
    expect(r.evacuation.servers.find((x) => x.id !== busy.id)).toMatchObject({ state: 'skipped' });
    busy.task_state = null;
    const { e } = await runToEnd(r.evacuation);
    expect(e).toMatchObject({ done: 1, failed: 1 });
  });

  it('at 2.95+ servers end stopped: those that were active are started again', async () => {
    const a = sim.addServer('src');
    const st = sim.addServer('src', { vm_state: 'stopped' });
    const plan = await planEvacuation(nova, 'src', policy('2.95'), Date.now());
    expect(plan.microversion).toBe('2.95');
    const { e } = await runToEnd(plan, policy('2.95'));
    expect(e.done).toBe(2);
    expect(sim.servers.get(a.id)?.vm_state).toBe('active');
    expect(sim.servers.get(st.id)?.vm_state).toBe('stopped');
  });

  /** Ticks with a clock that can be moved forward (deadlines), until finished or `ticks` run out. */
  async function tickUntil(e: Evac, p: ReturnType<typeof policy>, clock: { t: number }, ticks = 200, writes: Evac[] = []) {
    const io = { now: () => clock.t, log: () => undefined, write: async (x: Evac) => { writes.push(structuredClone(x)); } };
    for (let i = 0; i < ticks; i++) {
      const r = await evacuationTick(nova, e, 'src', p, io);
      e = r.evacuation;
      if (r.finished) return { e, finished: true };
      await new Promise((res) => setTimeout(res, 20));
    }
    return { e, finished: false };
  }

  it('issue 9 item 6: a second fence evacuates again a server that fence 1 evacuated and that migrated back', async () => {
    const s = sim.addServer('src');
    const first = await runToEnd(await planEvacuation(nova, 'src', policy(), Date.now()));
    expect(first.e.done).toBe(1);
    expect(sim.servers.get(s.id)!.host).toBe('dst');
    // Repaired, returned to service, the server migrated back; then the host fails again.
    sim.servers.get(s.id)!.host = 'src';
    const second = await runToEnd(await planEvacuation(nova, 'src', policy(), Date.now()));
    expect(second.e).toMatchObject({ done: 1, failed: 0 });
    expect(sim.servers.get(s.id)!.host).toBe('dst');
    expect(sim.migrations.filter((m) => m.instance_uuid === s.id)).toHaveLength(2);
  });

  it('issue 9 item 7: a server stuck in a task_state is failed after perServerTimeout and the record finishes', async () => {
    const stuck = sim.addServer('src', { task_state: 'rebooting' });
    const ok = sim.addServer('src');
    const clock = { t: Date.now() };
    const p = policy();
    const plan = await planEvacuation(nova, 'src', p, clock.t);
    const waiting = await tickUntil(plan, p, clock, 15);
    expect(waiting.finished).toBe(false);
    expect(waiting.e.servers.find((x) => x.id === stuck.id)).toMatchObject({ state: 'pending', since: expect.any(String) });
    expect(sim.servers.get(ok.id)!.host).toBe('dst');
    clock.t += 31_000;
    const end = await tickUntil(waiting.e, p, clock);
    expect(end.finished).toBe(true);
    expect(end.e).toMatchObject({ total: 2, done: 1, failed: 1 });
    expect(end.e.servers.find((x) => x.id === stuck.id)).toMatchObject({ state: 'failed', error: expect.stringMatching(/task_state rebooting .*needs an operator/) });
    expect(sim.migrations.filter((m) => m.instance_uuid === stuck.id)).toHaveLength(0);
  });

  it('issue 9 item 7: with resetStuckServers, a stuck server is reset (os-resetState) and evacuated once', async () => {
    const stuck = sim.addServer('src', { task_state: 'rebooting' });
    const clock = { t: Date.now() };
    const p = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:1' }] } }, evacuation: { concurrency: 2, perServerTimeout: '30s', resetStuckServers: true } });
    const plan = await planEvacuation(nova, 'src', p, clock.t);
    const waiting = await tickUntil(plan, p, clock, 3);
    expect(waiting.finished).toBe(false);
    clock.t += 31_000;
    const end = await tickUntil(waiting.e, p, clock);
    expect(end.finished).toBe(true);
    expect(end.e).toMatchObject({ done: 1, failed: 0 });
    expect(end.e.servers[0]).toMatchObject({ id: stuck.id, state: 'done', reset: true, to: 'dst' });
    expect(sim.migrations.filter((m) => m.instance_uuid === stuck.id)).toHaveLength(1);
  });

  it('issue 9 item 8: a host with 230 servers gets every one evacuated exactly once; status stays bounded', async () => {
    const ids = Array.from({ length: 230 }, () => sim.addServer('src').id);
    const p = policy('2.94', 50);
    const writes: Evac[] = [];
    const plan = await planEvacuation(nova, 'src', p, Date.now());
    expect(plan.total).toBe(230);
    expect(plan.servers.length).toBeLessThanOrEqual(200);
    const { e } = await runToEnd(plan, p, writes);
    expect(e).toMatchObject({ total: 230, done: 230, failed: 0 });
    for (const id of ids) {
      expect(sim.servers.get(id)!.host).toBe('dst');
      expect(sim.migrations.filter((m) => m.instance_uuid === id)).toHaveLength(1);
    }
    for (const w of [plan, ...writes, e]) expect(w.servers.length).toBeLessThanOrEqual(200);
    expect(e.servers.filter((s) => s.state === 'done').length + (e.omitted?.done ?? 0)).toBe(230);
  });

  it('issue 9 item 8: more failures than the list holds are counted exactly, the rest listed', async () => {
    for (let i = 0; i < 130; i++) sim.addServer('src', { vm_state: 'building' });
    const p = policy('2.94', 3);
    const { e } = await runToEnd(await planEvacuation(nova, 'src', p, Date.now()), p);
    expect(e).toMatchObject({ total: 130, done: 0, failed: 130, omitted: { done: 0, failed: 30 } });
    expect(e.servers.length).toBe(100);
    // The Event note counts every failure, not only the listed ones.
    expect(evacuationSummary(e)).toMatch(/^0 of 130 server\(s\) evacuated; 130 failed: /);
  });
});
