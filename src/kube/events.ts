// events.k8s.io/v1 Events: MicroTime eventTime, reportingController hm9k.io/<component>,
// reportingInstance = pod name. An Event identical (object, type, reason, note) to one recorded
// within the series window is not a new Event: as client-go's events recorder does, the first one
// becomes a series (series.count, series.lastObservedTime; kubectl shows COUNT and LAST SEEN), so
// the newest occurrence of each Event is visible. New Events are limited by a token bucket per
// object (client-go's spam filter: burst 25, one per 5 minutes); series updates are coalesced (at
// most one PATCH in flight per series, the latest count wins).
// record() never throws: failures are logged and counted. Events about a namespaced object go to
// its namespace; about a cluster-scoped object to "default" (the apiserver accepts nothing else).
import { EventsV1Api, PatchStrategy, V1MicroTime, setHeaderOptions, type KubeConfig, type EventsV1Event } from './client.js';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { EventRecorder, EventType, KubeObject } from './contract.js';
import { TokenBucket, counter, errorMessage } from './util.js';

export interface EventRecorderConfig {
  /** An event identical (object, type, reason, note) to one recorded within this window updates its series. */
  dedupeWindowMs: number;
  /** Per-object budget. */
  perObjectBurst: number;
  perObjectQps: number;
  /** Most objects tracked (oldest forgotten first). */
  maxTracked: number;
}

export const DEFAULT_EVENT_CONFIG: EventRecorderConfig = {
  dedupeWindowMs: 10 * 60_000,
  perObjectBurst: 25,
  perObjectQps: 1 / 300,
  maxTracked: 4096,
};

export const NOTE_MAX_BYTES = 1024;

/** Truncates to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  let bytes = 0;
  const suffix = '...';
  for (const ch of s) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > max - suffix.length) break;
    out += ch;
    bytes += b;
  }
  return out + suffix;
}

/** 'series': a repeat of an Event recorded within the window (its series count is now `count`). */
export type EventDecision = 'send' | 'series' | 'rate_limited';

/** One recorded Event and its repeats. */
export interface SeriesState {
  /** Last occurrence (ms). */
  last: number;
  /** Occurrences so far (1 = the Event alone, no series yet). */
  count: number;
  /** Where the Event was created (unset until the create succeeded). */
  ref?: { namespace: string; name: string };
  /** A create or a series PATCH is in flight (repeats meanwhile are sent after it). */
  busy?: boolean;
  /** The count the apiserver has (1 after the create). */
  sentCount?: number;
}

/** The recorder's memory: pure decision given (now, key) so it can be table-tested. */
export class EventFilter {
  private readonly seen = new Map<string, SeriesState>();
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(readonly config: EventRecorderConfig) {}

  /** The series of `dedupeKey` (after decide() said send or series). */
  series(dedupeKey: string): SeriesState | undefined {
    return this.seen.get(dedupeKey);
  }

  decide(objectKey: string, dedupeKey: string, now: number): EventDecision {
    const prev = this.seen.get(dedupeKey);
    if (prev !== undefined && now - prev.last < this.config.dedupeWindowMs) {
      prev.last = now;
      prev.count++;
      this.seen.delete(dedupeKey); // keep LRU order
      this.seen.set(dedupeKey, prev);
      return 'series';
    }
    let b = this.buckets.get(objectKey);
    if (!b) {
      b = new TokenBucket(this.config.perObjectQps, this.config.perObjectBurst, now);
      this.buckets.set(objectKey, b);
    } else {
      this.buckets.delete(objectKey); // keep LRU order
      this.buckets.set(objectKey, b);
    }
    if (!b.tryTake(now)) return 'rate_limited';
    this.seen.delete(dedupeKey);
    this.seen.set(dedupeKey, { last: now, count: 1 });
    this.prune(now);
    return 'send';
  }

  private prune(now: number): void {
    for (const [k, st] of this.seen) {
      if (now - st.last < this.config.dedupeWindowMs && this.seen.size <= this.config.maxTracked) break;
      this.seen.delete(k);
    }
    while (this.buckets.size > this.config.maxTracked) this.buckets.delete(this.buckets.keys().next().value as string);
  }
}

export interface EventSink {
  create(namespace: string, event: EventsV1Event): Promise<unknown>;
  /** Sets series.count and series.lastObservedTime (a MicroTime string) of an Event. */
  patchSeries(namespace: string, name: string, series: { count: number; lastObservedTime: string }): Promise<unknown>;
}

export function eventsV1Sink(kc: KubeConfig): EventSink {
  const api = kc.makeApiClient(EventsV1Api);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    create: (namespace, body) => api.createNamespacedEvent({ namespace, body }),
    patchSeries: (namespace, name, series) => api.patchNamespacedEvent({ namespace, name, body: { series } }, merge),
  };
}

/** RFC 3339 with microseconds, as MicroTime is written. */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, '000Z');

export interface RecorderOptions {
  /** e.g. 'apps' -> reportingController 'hm9k.io/apps'. */
  component: string;
  /** Pod name (reportingInstance). */
  instance: string;
  /** Fallback namespace when an object carries none (unused for cluster-scoped objects, see below). */
  namespace: string;
  /**
   * Namespace of events about cluster-scoped objects. The apiserver requires "default" there
   * (events.k8s.io validation: regarding.namespace "" must match event namespace "" or "default"),
   * as client-go does; RBAC must allow creating events in it.
   */
  clusterScopedNamespace?: string;
  logger: Logger;
  metrics?: Registry;
  config?: Partial<EventRecorderConfig>;
  now?: () => number;
}

export class RateLimitedEventRecorder implements EventRecorder {
  readonly filter: EventFilter;
  private readonly log: Logger;
  private readonly m;
  private readonly now: () => number;
  private inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly sink: EventSink,
    private readonly opts: RecorderOptions,
  ) {
    this.filter = new EventFilter({ ...DEFAULT_EVENT_CONFIG, ...opts.config });
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    const reg = opts.metrics ?? new Registry();
    this.m = { events: counter(reg, 'hm9k_events_total', 'Kubernetes Events by outcome (sent, series = a repeat counted in its series, rate_limited, error).', ['type', 'result']) };
  }

  record(regarding: KubeObject & { kind?: string; apiVersion?: string }, type: EventType, reason: string, action: string, note: string): void {
    try {
      const md = regarding.metadata;
      const objectKey = `${regarding.kind ?? ''}/${md.namespace ?? ''}/${md.name}/${md.uid ?? ''}`;
      const noteT = truncateUtf8(note, NOTE_MAX_BYTES);
      const key = `${objectKey}\u0000${type}\u0000${reason}\u0000${noteT}`;
      const decision = this.filter.decide(objectKey, key, this.now());
      if (decision === 'rate_limited') {
        this.m.events.inc({ type, result: decision });
        return;
      }
      const st = this.filter.series(key)!;
      if (decision === 'series') {
        this.m.events.inc({ type, result: 'series' });
        if (!st.busy && st.ref) this.track(this.patchSeries(st, type, reason, objectKey));
        return;
      }
      const event = this.build(regarding, type, reason, action, noteT);
      const ns = event.metadata?.namespace ?? this.opts.namespace;
      st.busy = true;
      this.track(
        this.sink
          .create(ns, event)
          .then(() => {
            this.m.events.inc({ type, result: 'sent' });
            st.ref = { namespace: ns, name: event.metadata!.name! };
          })
          .catch((err: unknown) => {
            this.m.events.inc({ type, result: 'error' });
            this.log.error({ err: errorMessage(err), reason, object: objectKey }, 'could not record event');
          })
          .finally(() => this.settle(st, type, reason, objectKey)),
      );
    } catch (err) {
      this.m.events.inc({ type, result: 'error' });
      this.log.warn({ err: errorMessage(err), reason }, 'could not build event');
    }
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** After a create or a PATCH: send the latest count if repeats arrived meanwhile. */
  private settle(st: SeriesState, type: EventType, reason: string, objectKey: string): void {
    st.busy = false;
    if (st.ref && st.count !== (st.sentCount ?? 1)) this.track(this.patchSeries(st, type, reason, objectKey));
  }

  private patchSeries(st: SeriesState, type: EventType, reason: string, objectKey: string): Promise<unknown> {
    const ref = st.ref!;
    st.busy = true;
    const count = st.count;
    return this.sink
      .patchSeries(ref.namespace, ref.name, { count, lastObservedTime: microTime(st.last) })
      .then(() => void (st.sentCount = count))
      .catch((err: unknown) => {
        this.m.events.inc({ type, result: 'error' });
        this.log.error({ err: errorMessage(err), reason, object: objectKey, count }, 'could not update event series');
        st.sentCount = count; // not retried in a loop: the next repeat sends its count
      })
      .finally(() => this.settle(st, type, reason, objectKey));
  }

  /** Resolves when the events sent so far have been answered (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
  }

  build(regarding: KubeObject & { kind?: string; apiVersion?: string }, type: EventType, reason: string, action: string, note: string): EventsV1Event {
    const md = regarding.metadata;
    const now = this.now();
    const ns = md.namespace || (this.opts.clusterScopedNamespace ?? 'default');
    const name = `${md.name.slice(0, 200)}.${(BigInt(now) * 1_000_000n).toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: ns },
      eventTime: new V1MicroTime(now),
      reportingController: `hm9k.io/${this.opts.component}`.slice(0, 128),
      reportingInstance: this.opts.instance.slice(0, 128),
      action: action.slice(0, 128),
      reason: reason.slice(0, 128),
      type,
      note,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: md.name,
        namespace: md.namespace,
        uid: md.uid,
        resourceVersion: md.resourceVersion,
      },
    };
  }
}
