// Event series against a real apiserver (src/kube/events.ts): a storm that ends, starts and ends
// again leaves the newest StormEnded visible as the series of the first one (count 2, last observed
// after the second StormActive), as client-go's events recorder does, not dropped for 10 minutes.
import { CoreV1Api, EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventsV1Sink, RateLimitedEventRecorder } from '../../src/kube/events.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';

let ns: string;

beforeAll(async () => {
  ns = await testNamespace('events');
});

describe('Event series on a real apiserver', () => {
  it('StormActive, StormEnded, StormActive, StormEnded: two Events, each a series of 2, the last one the newest', async () => {
    const kc = kubeConfig();
    const cm = await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'policy' }, data: {} } });
    const regarding = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'policy', namespace: ns, uid: cm.metadata!.uid! } };
    let now = Date.now();
    const r = new RateLimitedEventRecorder(eventsV1Sink(kc), { component: 'nodes', instance: 'hm9k-nodes-0', namespace: ns, logger: pino({ level: 'silent' }), now: () => now });
    for (const reason of ['StormActive', 'StormEnded', 'StormActive', 'StormEnded']) {
      r.record(regarding, reason === 'StormActive' ? 'Warning' : 'Normal', reason, 'Report', reason === 'StormActive' ? '6 of 6 nodes unhealthy exceeds maxUnhealthy 30%: no node is fenced' : 'storm over');
      await r.flush();
      now += 2000;
    }
    const list = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
    const ours = list.items.filter((e: EventsV1Event) => e.regarding?.name === 'policy');
    expect(ours.map((e) => e.reason).sort()).toEqual(['StormActive', 'StormEnded']);
    const active = ours.find((e) => e.reason === 'StormActive')!;
    const ended = ours.find((e) => e.reason === 'StormEnded')!;
    expect(active.series?.count).toBe(2);
    expect(ended.series?.count).toBe(2);
    const last = (e: EventsV1Event) => new Date(String(e.series!.lastObservedTime)).getTime();
    expect(last(ended)).toBeGreaterThan(last(active));
    // The core/v1 view (kubectl get events): COUNT and LAST SEEN come from the series.
    const core = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
    const coreEnded = core.items.find((e) => e.reason === 'StormEnded' && e.involvedObject.name === 'policy')!;
    expect(coreEnded.series?.count).toBe(2);
  });
});
