// The sender: verification rules (table), order, message limit, keep-alive, retry of failed sends,
// stop hold, dryRun, freshness gate, paused apps.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Sender, sendOrder, type Transport } from '../../src/apps/sender/index.js';
import { AnalysisCycle } from '../../src/apps/analyzer/cycle.js';
import { verifyStart, verifyStop } from '../../src/apps/sender/verify.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { resolveAppsConfig, type AppsConfig } from '../../src/apps/config.js';
import { crashKey, type DesiredAppState, type InstanceHeartbeat, type InstanceState, type PendingStart, type PendingStop, type StartMessage, type StopMessage } from '../../src/apps/types.js';

const NOW = 1_700_000_000_000;
const app = (p: Partial<DesiredAppState> = {}): DesiredAppState => ({ appGuid: 'app', version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED', ...p });
let n = 0;
const inst = (index: number, state: InstanceState, p: Partial<InstanceHeartbeat> = {}): InstanceHeartbeat => ({ droplet: 'app', version: 'v1', instance: `g${++n}`, index, state, state_timestamp: n, dea_guid: 'd', ...p });
const start = (p: Partial<PendingStart> = {}): PendingStart => ({ kind: 'start', messageId: `s${++n}`, appGuid: 'app', version: 'v1', index: 1, sendOn: NOW, sentOn: 0, keepAliveMs: 0, skipVerification: false, reason: 'MISSING', priority: 0.5, ...p });
const stop = (target: InstanceHeartbeat, p: Partial<PendingStop> = {}): PendingStop => ({ kind: 'stop', messageId: `t${++n}`, appGuid: 'app', version: target.version, index: target.index, instanceGuid: target.instance, sendOn: NOW, sentOn: 0, keepAliveMs: 30_000, skipVerification: false, reason: 'EXTRA', ...p });
const state = (d: DesiredAppState | undefined, instances: InstanceHeartbeat[]) => ({ desired: new Map(d ? [['app', d]] : []), instances: new Map([['app', instances]]) });

describe('verification just before sending', () => {
  it.each([
    ['start: index still missing', start(), state(app(), [inst(0, 'RUNNING')]), true],
    ['start: index now running', start(), state(app(), [inst(0, 'RUNNING'), inst(1, 'STARTING')]), false],
    ['start: app stopped', start(), state(app({ state: 'STOPPED' }), []), false],
    ['start: app deleted', start(), state(undefined, []), false],
    ['start: package PENDING', start(), state(app({ packageState: 'PENDING' }), []), false],
    ['start: new version', start(), state(app({ version: 'v2' }), []), false],
    ['start: scaled down', start({ index: 1 }), state(app({ instances: 1 }), []), false],
    ['start: evacuation skips verification', start({ skipVerification: true, reason: 'EVACUATION' }), state(undefined, []), true],
    // Issue 14 item 1: the grace of a MISSING start must have passed under unbroken observation.
    ['start: MISSING queued within the current heartbeat streak', start({ queuedAt: NOW - 1000 }), { ...state(app(), [inst(0, 'RUNNING')]), observedSince: NOW - 60_000 }, true],
    ['start: MISSING queued before hm9k was last blind', start({ queuedAt: NOW - 60_000 }), { ...state(app(), [inst(0, 'RUNNING')]), observedSince: NOW - 1000 }, false],
    ['start: CRASHED queued before hm9k was last blind (a crash was seen)', start({ queuedAt: NOW - 60_000, reason: 'CRASHED' }), { ...state(app(), [inst(0, 'RUNNING')]), observedSince: NOW - 1000 }, true],
  ])('%s -> send=%s', (_n, m, s, send) => {
    expect(verifyStart(m, s).send).toBe(send);
  });

  const r0 = inst(0, 'RUNNING');
  const r0b = inst(0, 'RUNNING');
  const extra = inst(5, 'RUNNING');
  const evac = inst(1, 'EVACUATING');
  it.each([
    ['stop: instance vanished', stop(inst(0, 'RUNNING')), state(app(), [r0]), false, undefined],
    ['stop: extra index', stop(extra), state(app(), [r0, extra]), true, false],
    ['stop: undesired app', stop(r0), state(app({ state: 'STOPPED' }), [r0]), true, false],
    ['stop: old version', stop(r0), state(app({ version: 'v2' }), [r0]), true, false],
    ['stop: duplicate still duplicated', stop(r0, { reason: 'DUPLICATE' }), state(app(), [r0, r0b]), true, true],
    ['stop: duplicate no longer duplicated', stop(r0, { reason: 'DUPLICATE' }), state(app(), [r0]), false, undefined],
    ['stop: evacuating with a RUNNING replacement', stop(evac, { reason: 'EVACUATION_COMPLETE' }), state(app(), [evac, inst(1, 'RUNNING')]), true, true],
    ['stop: evacuating with a STARTING replacement only', stop(evac, { reason: 'EVACUATION_COMPLETE' }), state(app(), [evac, inst(1, 'STARTING')]), false, undefined],
    ['stop: crashed since (never stopped)', stop(extra), state(app(), [{ ...extra, state: 'CRASHED' }]), false, undefined],
  ])('%s -> send=%s', (_n, m, s, send, dup) => {
    const v = verifyStop(m, s);
    expect(v.send).toBe(send);
    if (v.send) expect(v.isDuplicate).toBe(dup);
  });
});

it('orders by send_on, then descending priority', () => {
  const a = start({ sendOn: NOW, priority: 0.2 });
  const b = start({ sendOn: NOW, priority: 0.9 });
  const c = start({ sendOn: NOW - 1, priority: 0.1 });
  expect([a, b, c].sort(sendOrder)).toEqual([c, b, a]);
});

function world(cfg: Partial<AppsConfig> = {}, fail = false) {
  const store = new MemoryStore(3000);
  const sent: (StartMessage | StopMessage)[] = [];
  const transport: Transport = {
    async sendStart(m) {
      if (fail) throw new Error('CC 500');
      sent.push(m);
    },
    async sendStop(m) {
      if (fail) throw new Error('CC 500');
      sent.push(m);
    },
  };
  const config = { ...resolveAppsConfig(), ...cfg };
  let release: string | undefined;
  const sender = new Sender({ store, transport, config: () => config, metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }), releaseAnnotation: () => release, now: () => NOW });
  // fresh: flushes for one TTL, and a complete fetch
  store.recordFlush(NOW - 3000);
  store.recordFlush(NOW);
  return { store, sent, sender, setRelease: (v: string) => (release = v), setFail: (v: boolean) => (fail = v) };
}

describe('sender runs', () => {
  it('sends nothing when state is not fresh', async () => {
    const w = world();
    w.store.applyHeartbeat({ dea: 'd', droplets: [] }, NOW);
    w.store.putPending([start()]);
    expect(await w.sender.run(NOW)).toEqual([]); // desired never fetched
    expect(w.sent).toEqual([]);
  });

  it('at most messageLimit starts per run; keep-alive keeps sent messages', async () => {
    const w = world({ messageLimit: 2 });
    w.store.setDesired(new Map([['app', app({ instances: 5 })]]), NOW);
    const extras = [inst(7, 'RUNNING'), inst(8, 'RUNNING'), inst(9, 'RUNNING')];
    w.store.applyHeartbeat({ dea: 'd', droplets: extras }, NOW);
    w.store.putPending([0, 1, 2, 3].map((index) => start({ index, keepAliveMs: index === 0 ? 30_000 : 0 })));
    w.store.putPending(extras.map((e) => stop(e)));
    await w.sender.run(NOW);
    expect(w.sent.filter((m) => !('instance_guid' in m))).toHaveLength(2);
    expect(w.sent.filter((m) => 'instance_guid' in m)).toHaveLength(3);
    expect(w.store.pending().starts.get('app/v1/0')?.sentOn).toBe(NOW); // kept for its keep-alive
    expect(w.store.pending().starts.has('app/v1/1')).toBe(false); // keep-alive 0: done
    expect([...w.store.pending().starts.values()].filter((m) => m.sentOn === 0)).toHaveLength(2); // next run
  });

  it('a failed send stays queued and is retried', async () => {
    const w = world({}, true);
    w.store.setDesired(new Map([['app', app()]]), NOW);
    w.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING')] }, NOW);
    w.store.putPending([start()]);
    const r = await w.sender.run(NOW);
    expect(r.map((x) => x.outcome)).toEqual(['failed']);
    expect(w.store.pending().starts.get('app/v1/1')?.sentOn).toBe(0);
    w.setFail(false);
    expect((await w.sender.run(NOW + 1000)).map((x) => x.outcome)).toEqual(['sent']);
    expect(w.sender.stats).toMatchObject({ sent: 1, failed: 1 });
  });

  it('intent first: each message is stored with attemptedAt before its request goes out; a store that cannot write sends nothing', async () => {
    const w = world();
    w.store.setDesired(new Map([['app', app()]]), NOW);
    w.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING')] }, NOW);
    w.store.putPending([start()]);
    const persisted: (number | undefined)[] = [];
    const persist = w.store.persist.bind(w.store);
    w.store.persist = async () => { persisted.push(w.store.pending().starts.get('app/v1/1')?.attemptedAt); return persist(); };
    const seenAtSend: (number | undefined)[] = [];
    const sendStart = w.sender['deps'].transport.sendStart;
    w.sender['deps'].transport.sendStart = async (m) => { seenAtSend.push(persisted.length); return sendStart(m); };
    expect((await w.sender.run(NOW)).map((x) => x.outcome)).toEqual(['sent']);
    expect(persisted[0]).toBe(NOW); // the first persist carried the intent...
    expect(seenAtSend).toEqual([1]); // ...and happened before the request
    // A store write error before sending: no request, freshness revoked, the message stays queued.
    const v = world();
    v.store.setDesired(new Map([['app', app()]]), NOW);
    v.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING')] }, NOW);
    v.store.putPending([start()]);
    v.store.persist = async () => { throw new Error('etcd unavailable'); };
    expect((await v.sender.run(NOW)).map((x) => x.outcome)).toEqual(['failed']);
    expect(v.sent).toEqual([]);
    expect(v.store.actualFreshness.isFresh(NOW)).toBe(false);
    expect(v.store.pending().starts.get('app/v1/1')?.sentOn).toBe(0);
  });

  it('dryRun decides and reports but sends nothing', async () => {
    const w = world({ dryRun: true });
    w.store.setDesired(new Map([['app', app()]]), NOW);
    w.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING')] }, NOW);
    w.store.putPending([start()]);
    expect((await w.sender.run(NOW)).map((x) => x.outcome)).toEqual(['dryRun']);
    expect(w.sent).toEqual([]);
  });

  it('mass stops are held (starts go on) until the annotation carries the hold id', async () => {
    const w = world();
    w.store.setDesired(new Map([['app', app({ state: 'STOPPED' })], ['other', { ...app(), appGuid: 'other', instances: 1 }]]), NOW);
    const running = Array.from({ length: 10 }, (_, i) => inst(i, 'RUNNING'));
    w.store.applyHeartbeat({ dea: 'd', droplets: running }, NOW);
    w.store.putPending(running.map((r) => stop(r)));
    w.store.putPending([start({ appGuid: 'other', index: 0 })]);
    const r = await w.sender.run(NOW);
    expect(r.filter((x) => x.outcome === 'held')).toHaveLength(10);
    expect(w.sent).toHaveLength(1); // the start
    const id = w.sender.hold!.id;
    w.setRelease('hold-stale');
    await w.sender.run(NOW + 1000);
    expect(w.sent).toHaveLength(1);
    w.setRelease(id);
    await w.sender.run(NOW + 2000);
    expect(w.sent).toHaveLength(11);
    expect(w.sender.hold).toBeUndefined();
  });
});

// Issue 14 item 4: one run against a slow CC can last minutes; freshness and each message are
// checked again right before it is sent, and a run is bounded.
describe('sender runs against a slow Cloud Controller', () => {
  function slowWorld(cfg: Partial<AppsConfig> = {}) {
    const store = new MemoryStore(30_000);
    let clock = NOW;
    const sent: (StartMessage | StopMessage)[] = [];
    // Each request takes 10 s of the sender's clock (CC answering at its timeout); the test acts
    // between requests through `during`.
    let during: (n: number) => void = () => {};
    const slow = async (m: StartMessage | StopMessage) => {
      await new Promise((r) => setImmediate(r));
      clock += 10_000;
      sent.push(m);
      during(sent.length);
    };
    const transport: Transport = { sendStart: slow, sendStop: slow };
    const config = { ...resolveAppsConfig(), ...cfg };
    const sender = new Sender({ store, transport, config: () => config, metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }), now: () => clock, concurrency: 1 });
    store.recordFlush(NOW - 30_000);
    store.recordFlush(NOW);
    store.setDesired(new Map([['app', app({ instances: 1 })]]), NOW);
    return { store, sent, sender, onSend: (fn: (n: number) => void) => (during = fn), flushAt: (t: number) => store.recordFlush(t) };
  }

  it('a stop whose instance vanished while earlier requests were in flight is not sent', async () => {
    const w = slowWorld();
    const extras = [inst(5, 'RUNNING'), inst(6, 'RUNNING'), inst(7, 'RUNNING')];
    const first = inst(0, 'RUNNING');
    w.store.applyHeartbeat({ dea: 'd', droplets: [first, ...extras] }, NOW);
    w.store.putPending(extras.map((e) => stop(e)));
    // After the first stop is sent, the DEA reports that extras[1] is gone (and keeps flushing).
    w.onSend((n) => {
      if (n !== 1) return;
      w.store.applyHeartbeat({ dea: 'd', droplets: [first, extras[0]!, extras[2]!] }, NOW + 10_000);
      w.flushAt(NOW + 10_000);
    });
    const records = await w.sender.run(NOW);
    expect(w.sent.map((m) => (m as StopMessage).instance_guid)).toEqual([extras[0]!.instance, extras[2]!.instance]);
    expect(records.find((r) => r.outcome === 'dropped')?.detail).toBe('instance vanished');
  });

  it('once actual state is no longer fresh mid-run, the rest stays queued', async () => {
    const w = slowWorld({ guards: { ...resolveAppsConfig().guards, maxStopPercent: 100 } });
    const extras = Array.from({ length: 6 }, (_, i) => inst(1 + i, 'RUNNING'));
    w.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING'), ...extras] }, NOW);
    w.store.putPending(extras.map((e) => stop(e)));
    // No flush after NOW: at 10 s per request, freshness (TTL 30 s) lapses after the fourth request.
    await w.sender.run(NOW);
    expect(w.sent).toHaveLength(4);
    expect([...w.store.pending().stops.values()].filter((m) => m.sentOn === 0)).toHaveLength(2);
  });

  it('a run sends at most stopLimit stops; the rest go in the next run', async () => {
    const w = slowWorld({ stopLimit: 4, guards: { ...resolveAppsConfig().guards, maxStopPercent: 100 } });
    const extras = Array.from({ length: 10 }, (_, i) => inst(1 + i, 'RUNNING'));
    w.store.applyHeartbeat({ dea: 'd', droplets: [inst(0, 'RUNNING'), ...extras] }, NOW);
    w.store.putPending(extras.map((e) => stop(e)));
    w.onSend(() => w.flushAt(NOW + w.sent.length * 10_000)); // heartbeats keep flowing
    await w.sender.run(NOW);
    expect(w.sent).toHaveLength(4);
    await w.sender.run(NOW + 40_000);
    expect(w.sent).toHaveLength(8);
    expect(resolveAppsConfig().stopLimit).toBe(60);
  });
});

// Issue 10 item 2: under load a CRASHED start's keep-alive ran out before the DEA's heartbeat showed
// the restarted instance; the analyzer queued a second start (raising the crash count), which
// verification then dropped: a crash counted with no restart, backoff reached one crash early.
describe('crash counts and starts dropped unsent', () => {
  function crashWorld() {
    const config = { ...resolveAppsConfig(), keepAliveMs: 3000 }; // the demo's keep-alive
    const store = new MemoryStore(config.actualFreshnessTtlMs);
    let clock = NOW;
    const sent: StartMessage[] = [];
    const transport: Transport = {
      async sendStart(m) {
        sent.push(m);
      },
      async sendStop() {
        throw new Error('no stop expected');
      },
    };
    const metrics = new AppsMetrics(new Registry());
    const logger = pino({ level: 'silent' });
    const cycle = new AnalysisCycle({ store, config: () => config, overrides: () => new Map(), metrics, logger, random: () => 0.5 });
    const sender = new Sender({ store, transport, config: () => config, metrics, logger, now: () => clock });
    store.setDesired(new Map([['crashy', app({ appGuid: 'crashy', instances: 1 })]]), NOW);
    store.recordFlush(NOW - config.actualFreshnessTtlMs);
    return {
      config,
      store,
      sent,
      cycle,
      sender,
      get clock() {
        return clock;
      },
      advance: (ms: number) => (clock += ms),
      /** The DEA's heartbeat now (and a flush: actual state stays fresh). */
      beat: (...instances: InstanceHeartbeat[]) => {
        store.applyHeartbeat({ dea: 'd', droplets: instances }, clock);
        store.recordFlush(clock);
      },
      crash: () => store.crashCounts().get(crashKey('crashy', 'v1', 0)),
    };
  }
  const crashed = () => inst(0, 'CRASHED', { droplet: 'crashy' });

  it('a start re-queued after its keep-alive and dropped by verification gives its crash count back', async () => {
    const w = crashWorld();
    w.beat(crashed());
    await w.cycle.run(w.clock);
    await w.sender.run(w.clock);
    expect(w.sent).toHaveLength(1);
    const afterFirst = w.crash();
    expect(afterFirst?.count).toBe(1);

    // The keep-alive runs out while the DEA still reports only the crashed instance: a second start
    // is queued and the count raised...
    w.advance(w.config.keepAliveMs);
    w.beat(crashed());
    await w.cycle.run(w.clock);
    expect(w.crash()?.count).toBe(2);
    // ...then the heartbeat shows the instance the first start started: the second is dropped.
    w.advance(500);
    w.beat(crashed(), inst(0, 'STARTING', { droplet: 'crashy' }));
    const records = await w.sender.run(w.clock);
    expect(records.map((r) => [r.outcome, r.detail])).toEqual([['dropped', 'index is running']]);
    expect(w.sent).toHaveLength(1);
    expect(w.crash()).toEqual(afterFirst);
  });

  it('restarts at once crashesBeforeBackoff times before backoff, keep-alives running out or not', async () => {
    const w = crashWorld();
    const { crashesBeforeBackoff, startingBackoffMs } = w.config.crashBackoff;
    const down = [crashed()];
    for (let crash = 0; crash < crashesBeforeBackoff; crash++) {
      w.beat(...down);
      await w.cycle.run(w.clock);
      await w.sender.run(w.clock);
      // Every restart's keep-alive runs out before its instance is seen, and a second start is
      // queued; the instance then shows up STARTING and crashes.
      w.advance(w.config.keepAliveMs);
      w.beat(...down);
      await w.cycle.run(w.clock);
      w.advance(500);
      const up = inst(0, 'STARTING', { droplet: 'crashy' });
      w.beat(...down, up);
      await w.sender.run(w.clock);
      w.advance(500);
      down.push({ ...up, state: 'CRASHED' });
    }
    expect(w.sent).toHaveLength(crashesBeforeBackoff);
    // The next restart waits for the backoff, then goes out: one crash counted per restart sent.
    w.beat(...down);
    await w.cycle.run(w.clock);
    const next = w.store.pending().starts.get('crashy/v1/0')!;
    expect(next.sendOn - next.queuedAt!).toBe(startingBackoffMs);
    w.advance(startingBackoffMs);
    w.beat(...down);
    await w.sender.run(w.clock);
    expect(w.sent).toHaveLength(crashesBeforeBackoff + 1);
    expect(w.crash()?.count).toBe(crashesBeforeBackoff + 1);
  });
});
