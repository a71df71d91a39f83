import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { EventsV1Event } from '@kubernetes/client-node';
import { EventFilter, RateLimitedEventRecorder, truncateUtf8, type EventSink } from './events.js';

const logger = pino({ level: 'silent' });
const node = { apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: 'n1', uid: 'u1', resourceVersion: '5' } };

function sink(fail = false) {
  const sent: { ns: string; ev: EventsV1Event }[] = [];
  const patches: { ns: string; name: string; count: number; lastObservedTime: string }[] = [];
  const s: EventSink = {
    async create(ns, ev) {
      if (fail) throw Object.assign(new Error('forbidden'), { code: 403 });
      sent.push({ ns, ev: JSON.parse(JSON.stringify(ev)) });
      return ev;
    },
    async patchSeries(ns, name, series) {
      if (fail) throw Object.assign(new Error('forbidden'), { code: 403 });
      patches.push({ ns, name, ...series });
      return {};
    },
  };
  return { s, sent, patches };
}

describe('event filter (pure)', () => {
  it('counts identical events within the window as a series, starts a new Event after it', () => {
    const f = new EventFilter({ dedupeWindowMs: 1000, perObjectBurst: 10, perObjectQps: 1, maxTracked: 100 });
    expect(f.decide('o', 'o|r|n', 0)).toBe('send');
    expect(f.decide('o', 'o|r|n', 999)).toBe('series');
    expect(f.series('o|r|n')).toMatchObject({ count: 2, last: 999 });
    expect(f.decide('o', 'o|r|other', 999)).toBe('send');
    expect(f.decide('o', 'o|r|n', 1500)).toBe('series'); // the window runs from the last occurrence
    expect(f.series('o|r|n')).toMatchObject({ count: 3, last: 1500 });
    expect(f.decide('o', 'o|r|n', 2500)).toBe('send');
    expect(f.series('o|r|n')).toMatchObject({ count: 1, last: 2500 });
  });

  it('rate-limits per object, independent of other objects', () => {
    const f = new EventFilter({ dedupeWindowMs: 0, perObjectBurst: 2, perObjectQps: 1, maxTracked: 100 });
    expect(f.decide('a', 'a1', 0)).toBe('send');
    expect(f.decide('a', 'a2', 0)).toBe('send');
    expect(f.decide('a', 'a3', 0)).toBe('rate_limited');
    expect(f.decide('b', 'b1', 0)).toBe('send');
    expect(f.decide('a', 'a4', 1000)).toBe('send');
  });

  it('truncates notes to 1 kB without splitting characters', () => {
    const s = truncateUtf8('é'.repeat(2000), 1024);
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(1024);
    expect(s.endsWith('...')).toBe(true);
    expect(truncateUtf8('short', 1024)).toBe('short');
  });
});

describe('event recorder', () => {
  it('builds events.k8s.io/v1 events with MicroTime and reporting fields', async () => {
    const { s, sent } = sink();
    const r = new RateLimitedEventRecorder(s, { component: 'nodes', instance: 'pod-1', namespace: 'hm9k', logger });
    r.record(node, 'Warning', 'FenceStarted', 'Fence', 'x'.repeat(5000));
    await r.flush();
    expect(sent).toHaveLength(1);
    const { ns, ev } = sent[0]!;
    expect(ns).toBe('default'); // cluster-scoped object: the apiserver requires default
    expect(ev).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      reportingController: 'hm9k.io/nodes',
      reportingInstance: 'pod-1',
      action: 'Fence',
      reason: 'FenceStarted',
      type: 'Warning',
      regarding: { kind: 'ComputeNode', name: 'n1', uid: 'u1', apiVersion: 'hm9k.io/v1alpha1' },
    });
    expect(ev.eventTime as unknown as string).toMatch(/\.\d{6}Z$/);
    expect(Buffer.byteLength(ev.note!)).toBeLessThanOrEqual(1024);
  });

  it('a repeat of an identical (object, reason, note) Event updates its series; never throws on API failure', async () => {
    const { s, sent, patches } = sink();
    let now = 1_700_000_000_000;
    const r = new RateLimitedEventRecorder(s, { component: 'apps', instance: 'p', namespace: 'hm9k', logger, now: () => now });
    r.record(node, 'Normal', 'R', 'A', 'same');
    now += 1000;
    r.record(node, 'Normal', 'R', 'A', 'same'); // while the create is in flight: sent after it
    r.record(node, 'Normal', 'R', 'A', 'different');
    await r.flush();
    expect(sent.map((e) => e.ev.note)).toEqual(['same', 'different']);
    const name = sent[0]!.ev.metadata!.name!;
    expect(patches).toEqual([{ ns: 'default', name, count: 2, lastObservedTime: '2023-11-14T22:13:21.000000Z' }]);
    now += 1000;
    r.record(node, 'Normal', 'R', 'A', 'same');
    now += 1000;
    r.record(node, 'Normal', 'R', 'A', 'same'); // coalesced behind the PATCH in flight
    await r.flush();
    expect(patches.map((p) => p.count)).toEqual([2, 3, 4]);
    expect(patches[2]!.lastObservedTime).toBe('2023-11-14T22:13:23.000000Z');
    expect(sent).toHaveLength(2);

    const failing = new RateLimitedEventRecorder(sink(true).s, { component: 'apps', instance: 'p', namespace: 'hm9k', logger });
    expect(() => failing.record(node, 'Normal', 'R', 'A', 'n')).not.toThrow();
    await failing.flush();
    expect(() => failing.record({ metadata: undefined } as never, 'Normal', 'R', 'A', 'n')).not.toThrow();
  });
});
