// events.k8s.io/v1 Events: MicroTime eventTime, reportingController hm9k.io/<component>,
// reportingInstance = pod name; identical (object, reason, note) within a window are dropped, and
// each object has its own token bucket (client-go's spam filter: burst 25, one per 5 minutes).
// record() never throws: failures are logged and counted. Events about a namespaced object go to
// its namespace; about a cluster-scoped object to "default" (the apiserver accepts nothing else).
import { EventsV1Api, V1MicroTime, type KubeConfig, type EventsV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { EventRecorder, EventType, KubeObject } from './contract.js';
import { TokenBucket, counter, errorMessage } from './util.js';

export interface EventRecorderConfig {
  /** Identical events (object, type, reason, note) within this window are dropped. */
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

export type EventDecision = 'send' | 'duplicate' | 'rate_limited';

/** The recorder's memory: pure decision given (now, key) so it can be table-tested. */
export class EventFilter {
  private readonly seen = new Map<string, number>();
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(readonly config: EventRecorderConfig) {}

  decide(objectKey: string, dedupeKey: string, now: number): EventDecision {
    const last = this.seen.get(dedupeKey);
    if (last !== undefined && now - last < this.config.dedupeWindowMs) return 'duplicate';
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
    this.seen.set(dedupeKey, now);
    this.prune(now);
    return 'send';
  }

  private prune(now: number): void {
    for (const [k, t] of this.seen) {
      if (now - t < this.config.dedupeWindowMs && this.seen.size <= this.config.maxTracked) break;
      this.seen.delete(k);
    }
    while (this.buckets.size > this.config.maxTracked) this.buckets.delete(this.buckets.keys().next().value as string);
  }
}

export interface EventSink {
  create(namespace: string, event: EventsV1Event): Promise<unknown>;
}

export function eventsV1Sink(kc: KubeConfig): EventSink {
  const api = kc.makeApiClient(EventsV1Api);
  return { create: (namespace, body) => api.createNamespacedEvent({ namespace, body }) };
}

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
    this.m = { events: counter(reg, 'hm9k_events_total', 'Kubernetes Events by outcome (sent, duplicate, rate_limited, error).', ['type', 'result']) };
  }

  record(regarding: KubeObject & { kind?: string; apiVersion?: string }, type: EventType, reason: string, action: string, note: string): void {
    try {
      const md = regarding.metadata;
      const objectKey = `${regarding.kind ?? ''}/${md.namespace ?? ''}/${md.name}/${md.uid ?? ''}`;
      const noteT = truncateUtf8(note, NOTE_MAX_BYTES);
      const decision = this.filter.decide(objectKey, `${objectKey}\u0000${type}\u0000${reason}\u0000${noteT}`, this.now());
      if (decision !== 'send') {
        this.m.events.inc({ type, result: decision });
        return;
      }
      const event = this.build(regarding, type, reason, action, noteT);
      const ns = event.metadata?.namespace ?? this.opts.namespace;
      const p = this.sink
        .create(ns, event)
        .then(() => this.m.events.inc({ type, result: 'sent' }))
        .catch((err: unknown) => {
          this.m.events.inc({ type, result: 'error' });
          this.log.warn({ err: errorMessage(err), reason, object: objectKey }, 'could not record event');
        })
        .finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    } catch (err) {
      this.m.events.inc({ type, result: 'error' });
      this.log.warn({ err: errorMessage(err), reason }, 'could not build event');
    }
  }

  /** Resolves when the events sent so far have been answered (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.inflight]);
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
