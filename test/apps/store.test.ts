import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActualFreshness, desiredIsFresh } from '../../src/apps/store/freshness.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { EtcdStore } from '../../src/apps/store/etcd.js';
import type { DeaHeartbeat, PendingStart } from '../../src/apps/types.js';
import { EtcdServer } from '../support/etcd.js';
import { waitFor } from '../support/proc.js';

const S = 1000;
const T0 = 1_700_000_000_000;

describe('actual freshness (section 5)', () => {
  const ttl = 30 * S;
  it.each([
    ['cold start, no flush', [], 0, false],
    ['flushing for less than one TTL', [0, 10, 20], 29, false],
    ['flushing for one TTL', [0, 10, 20, 30], 30, true],
    ['a gap longer than the TTL restarts the streak', [0, 10, 20, 30, 61], 61, false],
    ['... and needs another TTL', [0, 10, 20, 30, 61, 71, 81, 91], 91, true],
    ['no flush for longer than the TTL: stale', [0, 10, 20, 30], 61, false],
    ['a gap of exactly the TTL keeps the streak', [0, 30], 30, true],
  ] as [string, number[], number, boolean][])('%s', (_n, flushes, at, fresh) => {
    const f = new ActualFreshness(ttl);
    for (const t of flushes) f.recordFlush(T0 + t * S);
    expect(f.isFresh(T0 + at * S)).toBe(fresh);
  });
  it('revoke (slow flush, store write error) makes it stale and needs a new streak', () => {
    const f = new ActualFreshness(ttl);
    for (const t of [0, 10, 20, 30, 40]) f.recordFlush(T0 + t * S);
    expect(f.isFresh(T0 + 40 * S)).toBe(true);
    f.revoke();
    expect(f.isFresh(T0 + 40 * S)).toBe(false);
    f.recordFlush(T0 + 41 * S);
    expect(f.isFresh(T0 + 41 * S)).toBe(false);
    f.recordFlush(T0 + 71 * S);
    expect(f.isFresh(T0 + 71 * S)).toBe(true);
  });
  it('desired: fresh within the TTL of the last complete fetch', () => {
    expect(desiredIsFresh(undefined, T0, 120 * S)).toBe(false);
    expect(desiredIsFresh(T0, T0 + 120 * S, 120 * S)).toBe(true);
    expect(desiredIsFresh(T0, T0 + 121 * S, 120 * S)).toBe(false);
  });
});

const hb = (dea: string, ...droplets: [string, number, string][]): DeaHeartbeat => ({
  dea,
  droplets: droplets.map(([instance, index, state]) => ({ droplet: 'app', version: 'v1', instance, index, state: state as 'RUNNING', state_timestamp: 1 })),
});

describe('memory store', () => {
  it('a buffered heartbeat keeps the stored record of each unchanged entry, not its parsed copy (issue 14 item 9: parsed copies promoted to the old generation)', () => {
    const store = new MemoryStore(30 * S);
    store.applyHeartbeat(hb('dea-1', ['i0', 0, 'RUNNING'], ['i1', 1, 'RUNNING'], ['i2', 2, 'RUNNING']), T0);
    const stored = store.instancesOf('app');
    const next = hb('dea-1', ['i0', 0, 'RUNNING'], ['i1', 1, 'CRASHED'], ['i3', 3, 'RUNNING']);
    const parsed = [...next.droplets];
    const shared = store.shareUnchanged(next);
    expect(shared.droplets[0]).toBe(stored.find((i) => i.instance === 'i0'));
    expect(shared.droplets[1]).toBe(parsed[1]); // changed: the parsed entry
    expect(shared.droplets[2]).toBe(parsed[2]); // new
    // Applying it changes the store exactly as the parsed heartbeat would have.
    const twin = new MemoryStore(30 * S);
    twin.applyHeartbeat(hb('dea-1', ['i0', 0, 'RUNNING'], ['i1', 1, 'RUNNING'], ['i2', 2, 'RUNNING']), T0);
    expect(store.applyHeartbeat(shared, T0 + S).changed).toBe(twin.applyHeartbeat(hb('dea-1', ['i0', 0, 'RUNNING'], ['i1', 1, 'CRASHED'], ['i3', 3, 'RUNNING']), T0 + S).changed);
    const view = (m: MemoryStore) => m.instancesOf('app').map((i) => `${i.instance}:${i.index}:${i.state}:${i.dea_guid}`).sort();
    expect(view(store)).toEqual(view(twin));
    expect(view(store)).toEqual(['i0:0:RUNNING:dea-1', 'i1:1:CRASHED:dea-1', 'i3:3:RUNNING:dea-1']);
    // A DEA the store does not know yet: nothing to share.
    const fresh = hb('dea-2', ['j0', 0, 'RUNNING']);
    const entry = fresh.droplets[0];
    expect(store.shareUnchanged(fresh).droplets[0]).toBe(entry);
  });

  it('applies only changes, drops instances a DEA no longer reports, expires a silent DEA', () => {
    const s = new MemoryStore(30 * S);
    expect(s.applyHeartbeat(hb('d1', ['a', 0, 'RUNNING'], ['b', 1, 'RUNNING']), T0).changed).toBe(2);
    expect(s.applyHeartbeat(hb('d1', ['a', 0, 'RUNNING'], ['b', 1, 'RUNNING']), T0 + S).changed).toBe(0);
    expect(s.applyHeartbeat(hb('d1', ['a', 0, 'CRASHED']), T0 + 2 * S).changed).toBe(2);
    expect(s.instancesOf('app').map((i) => `${i.instance}:${i.state}`)).toEqual(['a:CRASHED']);
    s.applyHeartbeat(hb('d2', ['c', 1, 'RUNNING']), T0 + 20 * S);
    expect(s.expireDeas({ from: T0, until: T0 + 33 * S }, 30 * S)).toEqual(['d1']);
    expect(s.instancesOf('app').map((i) => i.instance)).toEqual(['c']);
  });
  // Issue 14 item 1: a DEA's silence counts only while heartbeats (of others) are observed.
  const flush = (s: MemoryStore, at: number, heartbeats: DeaHeartbeat[]) => {
    for (const h of heartbeats) s.applyHeartbeat(h, at);
    const gone = s.expireDeas(s.actualFreshness.observedSpan(at, heartbeats.length > 0), 30 * S);
    if (heartbeats.length > 0) s.recordFlush(at);
    return gone;
  };
  it('a DEA does not expire while hm9k is blind (no intake), and gets a whole presence TTL once heartbeats flow again', () => {
    const s = new MemoryStore(30 * S);
    const quiet = hb('quiet', ['q', 0, 'RUNNING']);
    const other = hb('other', ['o', 1, 'RUNNING']);
    for (let t = 0; t <= 40; t += 10) flush(s, T0 + t * S, t <= 30 ? [quiet, other] : [other]); // quiet since 30 s
    // NATS down from 45 s to 105 s: flushes carry nothing; wall-clock expiry would have dropped both.
    for (let t = 41; t <= 105; t++) expect(flush(s, T0 + t * S, [])).toEqual([]);
    expect(s.deaIds().sort()).toEqual(['other', 'quiet']);
    // Intake resumes at 106 s (a new streak): the quiet DEA is missing only 30 s of observation later.
    for (let t = 106; t <= 136; t += 10) expect(flush(s, T0 + t * S, [other])).toEqual([]);
    expect(flush(s, T0 + 137 * S, [other])).toEqual(['quiet']);
    expect(s.instancesOf('app').map((i) => i.instance)).toEqual(['o']);
  });
  it('during a gap shorter than the freshness TTL no DEA expires either: silence is counted up to the last flush that carried heartbeats', () => {
    const s = new MemoryStore(30 * S);
    const quiet = hb('quiet', ['q', 0, 'RUNNING']);
    const other = hb('other', ['o', 1, 'RUNNING']);
    flush(s, T0, [quiet, other]);
    flush(s, T0 + 10 * S, [other]);
    for (let t = 11; t <= 35; t++) expect(flush(s, T0 + t * S, [])).toEqual([]); // 25 s without any heartbeat
    expect(flush(s, T0 + 36 * S, [other])).toEqual(['quiet']); // observed again: 36 s of silence within one streak
  });
  it('droplet.exited: CRASHED marks crashed at once; DEA_EVACUATION marks it evacuating (it still runs); STOPPED removes it', () => {
    const s = new MemoryStore(30 * S);
    s.applyHeartbeat(hb('d1', ['a', 0, 'RUNNING'], ['b', 1, 'RUNNING']), T0);
    s.applyExited({ droplet: 'app', version: 'v1', instance: 'a', index: 0, reason: 'CRASHED', crash_timestamp: 5 }, T0);
    s.applyExited({ droplet: 'app', version: 'v1', instance: 'b', index: 1, reason: 'DEA_EVACUATION' }, T0);
    expect(s.instancesOf('app').map((i) => `${i.instance}:${i.state}`).sort()).toEqual(['a:CRASHED', 'b:EVACUATING']);
    s.applyExited({ droplet: 'app', version: 'v1', instance: 'b', index: 1, reason: 'STOPPED' }, T0);
    expect(s.instancesOf('app').map((i) => `${i.instance}:${i.state}`)).toEqual(['a:CRASHED']);
    expect(s.applyExited({ droplet: 'app', version: 'v1', instance: 'zzz', index: 1, reason: 'CRASHED' }, T0)).toBeUndefined();
  });

  it('a crash count rolled back (start dropped unsent) restores the record before, or deletes a new one, unless it changed since', () => {
    const s = new MemoryStore(30 * S);
    const c = (count: number, at: number) => ({ appGuid: 'app', version: 'v1', index: 0, count, createdAt: T0, updatedAt: at });
    s.putCrashCounts([c(2, T0 + S)]);
    expect(s.rollBackCrashCount(c(2, T0 + S), c(1, T0))).toBe(true);
    expect(s.crashCounts().get('app/v1/0')).toEqual(c(1, T0));
    expect(s.rollBackCrashCount(c(1, T0), undefined)).toBe(true);
    expect(s.crashCounts().has('app/v1/0')).toBe(false);
    // Raised again since (or expired): the newer record stays.
    s.putCrashCounts([c(3, T0 + 2 * S)]);
    expect(s.rollBackCrashCount(c(2, T0 + S), c(1, T0))).toBe(false);
    expect(s.crashCounts().get('app/v1/0')).toEqual(c(3, T0 + 2 * S));
    expect(new MemoryStore(30 * S).rollBackCrashCount(c(1, T0), undefined)).toBe(false);
  });
});

describe('etcd store (real etcd)', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await EtcdServer.start();
  });
  afterAll(async () => {
    await etcd?.destroy();
  });
  const open = (prefix: string) => new EtcdStore({ endpoints: [etcd.endpoint], prefix, actualFreshnessTtlMs: 30 * S, crashTtlMs: 64 * S });
  const start: PendingStart = { kind: 'start', messageId: 'm1', appGuid: 'app', version: 'v1', index: 0, sendOn: T0, sentOn: 0, keepAliveMs: 30 * S, skipVerification: false, reason: 'CRASHED', priority: 1 };

  it('instances, crash counts, pending actions, desired (with its unconfirmed removals) and freshness survive a restart', async () => {
    const a = open('t1/');
    a.setWriter(true);
    a.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING']), T0);
    a.putCrashCounts([{ appGuid: 'app', version: 'v1', index: 0, count: 4, createdAt: T0, updatedAt: T0 }]);
    a.putPending([start]);
    a.setDesired(new Map([['app', { appGuid: 'app', version: 'v1', instances: 1, state: 'STARTED', packageState: 'STAGED' }]]), T0, new Set(['gone']));
    const now = Date.now();
    a.recordFlush(now);
    expect(await a.persist()).toBeGreaterThanOrEqual(6);
    await a.close();

    const b = open('t1/');
    const loaded = await b.load(now);
    expect(loaded).toMatchObject({ loadedPending: 1, loadedCrashCounts: 1, loadedInstances: 1, loadedDesired: 1 });
    expect(b.pending().starts.get('app/v1/0')).toEqual(start);
    expect(b.crashCounts().get('app/v1/0')?.count).toBe(4);
    expect(b.instancesOf('app').map((i) => i.instance)).toEqual(['x']);
    expect(b.lastCompleteFetch()).toBe(T0);
    // An app absent from the predecessor's last fetch only stays unconfirmed (not stopped on restart).
    expect([...b.unconfirmedRemovals()]).toEqual(['gone']);
    expect(b.freshnessState().streakStart).toBe(now);
    await b.close();
  });

  it('writes only what changed, and nothing when not the writer', async () => {
    const a = open('t2/');
    a.setWriter(true);
    a.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING'], ['y', 1, 'RUNNING']), T0);
    expect(await a.persist()).toBe(2);
    a.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING'], ['y', 1, 'RUNNING']), T0 + S);
    expect(await a.persist()).toBe(0);
    a.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING']), T0 + 2 * S);
    expect(await a.persist()).toBe(1);
    a.setWriter(false);
    a.applyHeartbeat(hb('d1'), T0 + 3 * S);
    expect(await a.persist()).toBe(0);
    const keys = Object.keys(await a.client.getAll().prefix('t2/').strings());
    expect(keys).toEqual(['t2/i/d1/x']);
    // a new leader writes the difference between its memory and etcd
    a.setWriter(true);
    expect(await a.syncInstances()).toBe(1);
    expect(Object.keys(await a.client.getAll().prefix('t2/').strings())).toEqual([]);
    await a.close();
  });

  it('crash counts are written with a lease (TTL)', async () => {
    const a = open('t3/');
    a.setWriter(true);
    a.putCrashCounts([{ appGuid: 'app', version: 'v1', index: 0, count: 1, createdAt: T0, updatedAt: T0 }]);
    await a.persist();
    const res = await a.client.kv.range({ key: Buffer.from('t3/c/app/v1/0') });
    expect(Number(res.kvs[0]!.lease)).toBeGreaterThan(0);
    await a.close();
  });

  it('a write error is thrown (the caller revokes freshness) and retried later', async () => {
    const a = open('t4/');
    a.setWriter(true);
    a.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING']), T0);
    await etcd.stop();
    const b = new EtcdStore({ endpoints: [etcd.endpoint], prefix: 't4/', actualFreshnessTtlMs: 30 * S, crashTtlMs: 64 * S, etcdOptions: { dialTimeout: 300, retry: false } as never });
    b.setWriter(true);
    b.applyHeartbeat(hb('d1', ['x', 0, 'RUNNING']), T0);
    await expect(b.persist()).rejects.toThrow();
    await etcd.restart();
    // the client's circuit breaker half-opens after a while: retry as the flush loop does
    let written = -1;
    await waitFor(async () => {
      written = await b.persist().catch(() => -1);
      return written >= 0;
    }, 'etcd write after restart', 30_000, 500);
    expect(written).toBe(1);
    await a.close();
    await b.close();
  });
});
