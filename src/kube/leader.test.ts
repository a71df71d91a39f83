import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaseElector, decideLease, fingerprint, releaseRecord, validateLeaderConfig, type LeaseClient, type LeaseRecord, type Observation } from './leader.js';

const LEASE = 15_000;
const other: LeaseRecord = { holderIdentity: 'b', leaseDurationSeconds: 15, acquireTime: 't0', renewTime: 't1', leaseTransitions: 3 };
const obs = (r: LeaseRecord, at: number): Observation => ({ fingerprint: fingerprint(r), at });

describe('decideLease (pure)', () => {
  const cases: {
    name: string;
    current: LeaseRecord | undefined;
    observed: Observation | undefined;
    now: number;
    want: string;
    transitions?: number;
    observedAt?: number;
  }[] = [
    { name: 'no lease: create it', current: undefined, observed: undefined, now: 1000, want: 'create', transitions: 0 },
    { name: 'held by another, first sight: wait a full duration from now', current: other, observed: undefined, now: 1000, want: 'wait', observedAt: 1000 },
    { name: 'held by another, unchanged for less than the duration: wait', current: other, observed: obs(other, 1000), now: 1000 + LEASE - 1, want: 'wait', observedAt: 1000 },
    { name: 'held by another, unchanged for the full duration: take over', current: other, observed: obs(other, 1000), now: 1000 + LEASE, want: 'update', transitions: 4 },
    {
      name: 'holder renewed meanwhile (record changed): clock restarts',
      current: { ...other, renewTime: 't2' },
      observed: obs(other, 1000),
      now: 1000 + LEASE + 5,
      want: 'wait',
      observedAt: 1000 + LEASE + 5,
    },
    { name: 'our own lease: renew, transitions kept', current: { ...other, holderIdentity: 'a' }, observed: undefined, now: 5, want: 'update', transitions: 3 },
    { name: 'released lease (empty holder): take at once', current: { ...other, holderIdentity: '', leaseDurationSeconds: 1 }, observed: undefined, now: 5, want: 'update', transitions: 4 },
    {
      name: 'the record\'s own (short) duration counts, as client-go',
      current: { ...other, leaseDurationSeconds: 2 },
      observed: obs({ ...other, leaseDurationSeconds: 2 }, 1000),
      now: 3000,
      want: 'update',
      transitions: 4,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { decision, observed } = decideLease({ current: c.current, observed: c.observed, now: c.now, identity: 'a', leaseDurationMs: LEASE });
      expect(decision.action).toBe(c.want);
      if (decision.action !== 'wait') {
        expect(decision.record.holderIdentity).toBe('a');
        expect(decision.record.leaseDurationSeconds).toBe(15);
        expect(decision.record.leaseTransitions).toBe(c.transitions);
        expect(decision.record.renewTime).toMatch(/\.\d{6}Z$/); // MicroTime
      }
      if (c.observedAt !== undefined) expect(observed?.at).toBe(c.observedAt);
    });
  }

  it('renewal keeps acquireTime; takeover sets a new one', () => {
    const mine = { ...other, holderIdentity: 'a', acquireTime: '2020-01-01T00:00:00.000000Z' };
    const r = decideLease({ current: mine, observed: undefined, now: 1e12, identity: 'a', leaseDurationMs: LEASE });
    expect(r.decision.action === 'update' && r.decision.record.acquireTime).toBe('2020-01-01T00:00:00.000000Z');
    const t = decideLease({ current: other, observed: obs(other, 0), now: 1e12, identity: 'a', leaseDurationMs: LEASE });
    expect(t.decision.action === 'update' && t.decision.record.acquireTime).toBe(new Date(1e12).toISOString().replace('Z', '000Z'));
  });

  it('release empties the holder with a 1 s duration and keeps transitions', () => {
    const r = releaseRecord({ ...other, holderIdentity: 'a' }, 0);
    expect(r).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 });
  });

  it('rejects inconsistent timings', () => {
    expect(() => validateLeaderConfig({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 })).toThrow(/leaseDuration/);
    expect(() => validateLeaderConfig({ leaseDurationMs: 15_000, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(/renewDeadline/);
    expect(() => validateLeaderConfig({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 })).not.toThrow();
  });
});

/** An in-memory Lease store with resourceVersion checks, and a switch to make it unreachable. */
function memoryLeases() {
  let stored: V1Lease | undefined;
  let rv = 0;
  const state = { down: new Set<string>(), requests: 0 };
  let who = '';
  const check = () => {
    state.requests++;
    if (state.down.has(who)) return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    return Promise.resolve();
  };
  const conflict = () => Object.assign(new Error('Conflict'), { code: 409 });
  const client: LeaseClient = {
    async get() {
      await check();
      return stored && structuredClone(stored);
    },
    async create(_ns, lease) {
      await check();
      if (stored) throw conflict();
      stored = JSON.parse(JSON.stringify({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(++rv) } }));
      return structuredClone(stored!);
    },
    async replace(_ns, _name, lease) {
      await check();
      if (!stored || lease.metadata?.resourceVersion !== stored.metadata?.resourceVersion) throw conflict();
      stored = JSON.parse(JSON.stringify({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(++rv) } }));
      return structuredClone(stored!);
    },
  };
  /** The client as seen by one process (`state.down.add(name)` cuts it off). */
  const clientFor = (name: string): LeaseClient => ({
    get: (ns, n) => ((who = name), client.get(ns, n)),
    create: (ns, l) => ((who = name), client.create(ns, l)),
    replace: (ns, n, l) => ((who = name), client.replace(ns, n, l)),
  });
  return { client, clientFor, state, lease: () => stored };
}

describe('LeaseElector (in-memory API)', () => {
  const logger = pino({ level: 'silent' });
  const timings = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

  it('exactly one of two leads; the other takes over after release', async () => {
    const mem = memoryLeases();
    const reg = new Registry();
    const a = new LeaseElector(mem.client, { ...timings, namespace: 'n', name: 'l', identity: 'a', logger, metrics: reg, onLost: () => {} });
    const b = new LeaseElector(mem.client, { ...timings, namespace: 'n', name: 'l', identity: 'b', logger, onLost: () => {} });
    expect(await reg.metrics()).toContain('leader_election_master_status{name="l"} 0');
    a.start();
    await a.waitForLeadership();
    expect(await reg.metrics()).toContain('leader_election_master_status{name="l"} 1');
    b.start();
    await new Promise((r) => setTimeout(r, 300));
    expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
    expect(mem.lease()?.spec?.renewTime).toMatch(/\.\d{6}Z$/);
    await a.stop();
    expect(await reg.metrics()).toContain('leader_election_master_status{name="l"} 0');
    expect(mem.lease()?.spec?.holderIdentity ?? '').toBe('');
    await b.waitForLeadership();
    expect(b.isLeader()).toBe(true);
    expect(b.transitions()).toBe(1);
    await b.stop();
  });

  it('a leader cut off from the API calls onLost before the other can take over', async () => {
    const mem = memoryLeases();
    let lost = false;
    let aLostWhenBStarted: boolean | undefined;
    const a = new LeaseElector(mem.clientFor('a'), { ...timings, namespace: 'n', name: 'l', identity: 'a', logger, onLost: () => (lost = true) });
    const b = new LeaseElector(mem.clientFor('b'), {
      ...timings,
      namespace: 'n',
      name: 'l',
      identity: 'b',
      logger,
      onLost: () => {},
      onStartedLeading: () => (aLostWhenBStarted = lost && !a.isLeader()),
    });
    a.start();
    await a.waitForLeadership();
    b.start();
    mem.state.down.add('a');
    await b.waitForLeadership();
    expect(aLostWhenBStarted).toBe(true);
    expect(a.isLeader()).toBe(false);
    expect(b.transitions()).toBe(1);
    await a.stop();
    await b.stop();
  });
});
