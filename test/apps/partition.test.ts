// Issue 14 item 6: cc_partition (the Ruby health manager's and dea_ng's). hm9k acts only on the
// heartbeat entries and droplet.exited of its policy's partition; messages that carry only other
// partitions are counted, reported by a condition and one log line per partition; while heartbeats
// show instances of other partitions only, nothing is acted on (the classic misconfiguration).
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AppHealthPolicy, AppHealthPolicyStatus } from '../../src/api/index.js';
import { resolveAppsConfig, type AppsConfig } from '../../src/apps/config.js';
import { Listener } from '../../src/apps/listener/index.js';
import { PartitionWatch } from '../../src/apps/listener/partition.js';
import { policyStatus } from '../../src/apps/status/index.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { emptyPending } from '../../src/apps/types.js';
import { waitFor } from '../support/proc.js';
import { world, type World } from './world.js';
import type { FakeRuntime } from './support/fake-runtime.js';

const NOW = 1_700_000_000_000;

function listener(config: AppsConfig = resolveAppsConfig()) {
  const registry = new Registry();
  const metrics = new AppsMetrics(registry);
  const store = new MemoryStore(30_000);
  const logs: { msg: string; partition?: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => logs.push(JSON.parse(s)) });
  let now = NOW;
  const partitions = new PartitionWatch({ config: () => config, metrics, logger, now: () => now });
  const exits: string[] = [];
  const l = new Listener({ nats: {} as NatsConnection, store, config: () => config, metrics, logger, partitions, now: () => now, onExited: (e) => exits.push(e.instance) });
  const other = async () => ((await registry.getSingleMetric('hm9k_other_partition_messages_total')?.get())?.values ?? []).map((v) => [v.labels.subject, v.value]);
  return { l, store, logs, exits, partitions, other, tick: (ms: number) => (now += ms) };
}
const entry = (instance: string, cc_partition?: string | null) => ({ ...(cc_partition !== undefined ? { cc_partition } : {}), droplet: 'a', version: 'v', instance, index: 0, state: 'RUNNING', state_timestamp: 1 });
const hb = (dea: string, ...droplets: ReturnType<typeof entry>[]) => JSON.stringify({ dea, droplets });
const exited = (instance: string, cc_partition?: string) => JSON.stringify({ ...(cc_partition ? { cc_partition } : {}), droplet: 'a', version: 'v', instance, index: 0, reason: 'CRASHED' });

describe('cc_partition filter (listener)', () => {
  it('applies only entries of the policy partition (or without one); a heartbeat of other partitions only is counted and logged once', async () => {
    const { l, store, logs, other, partitions } = listener();
    l.ingestHeartbeat(hb('d1', entry('ours', 'default'), entry('theirs', 'ng'), entry('legacy'), entry('null', null)));
    l.ingestHeartbeat(hb('d2', entry('ng-1', 'ng')));
    l.ingestHeartbeat(hb('d3', entry('ng-2', 'ng')));
    await l.flush();
    expect(store.instancesOf('a').map((i) => i.instance).sort()).toEqual(['legacy', 'null', 'ours']);
    expect(store.deaIds().sort()).toEqual(['d1', 'd2', 'd3']); // the DEAs of other partitions are present, with nothing of ours
    expect(await other()).toEqual([['dea.heartbeat', 2]]); // d2, d3 (d1 carried ours too)
    expect(logs.filter((x) => x.partition === 'ng')).toHaveLength(1);
    expect(logs[0]!.msg).toMatch(/cc_partition "ng" only, not this policy's "default"/);
    expect(partitions.otherPartitions(NOW, 30_000)).toEqual(['ng']);
    expect(partitions.onlyOthers(NOW, 30_000)).toBe(false); // ours were seen too
  });

  it('droplet.exited of another partition is ignored (no crash applied, no fast path); ours and unlabelled ones act', async () => {
    const { l, store, exits, other } = listener();
    l.ingestHeartbeat(hb('d1', entry('i1', 'default'), entry('i2', 'default')));
    await l.flush();
    l.ingestExited(exited('i1', 'ng'));
    l.ingestExited(exited('i2'));
    expect(exits).toEqual(['i2']);
    expect(store.instancesOf('a').map((i) => `${i.instance}:${i.state}`).sort()).toEqual(['i1:RUNNING', 'i2:CRASHED']);
    expect(await other()).toEqual([['droplet.exited', 1]]);
  });

  it('heartbeats with instances of other partitions only: not trusted (onlyOthers) until an entry of ours arrives; the configured partition is honoured', async () => {
    const ng = { ...resolveAppsConfig(), ccPartition: 'ng' };
    const a = listener();
    a.l.ingestHeartbeat(hb('d1', entry('x', 'ng')));
    expect(a.partitions.onlyOthers(NOW, 30_000)).toBe(true);
    a.l.ingestHeartbeat(hb('d2', entry('y', 'default')));
    expect(a.partitions.onlyOthers(NOW, 30_000)).toBe(false);
    a.tick(31_000);
    a.l.ingestHeartbeat(hb('d1', entry('x', 'ng')));
    expect(a.partitions.onlyOthers(NOW + 31_000, 30_000)).toBe(true); // ours not seen within the window
    const b = listener(ng);
    b.l.ingestHeartbeat(hb('d1', entry('x', 'ng')));
    await b.l.flush();
    expect(b.store.instancesOf('a').map((i) => i.instance)).toEqual(['x']);
    expect(b.partitions.onlyOthers(NOW, 30_000)).toBe(false);
  });

  it('the condition says which partitions are ignored, and that hm9k is not acting when it sees only them; stable when nothing changes', () => {
    const base = { now: NOW, actualFresh: true, desiredFresh: true, pending: emptyPending(), sender: { sent: 0, failed: 0 }, paused: false, dryRun: false, ccPartition: 'default' };
    const cond = (st: AppHealthPolicyStatus) => st.conditions!.find((c) => c.type === 'OtherPartitions')!;
    expect(cond(policyStatus(undefined, base))).toMatchObject({ status: 'False', reason: 'NoneSeen' });
    expect(cond(policyStatus(undefined, { ...base, otherPartitions: ['ng'] }))).toMatchObject({ status: 'True', reason: 'OtherPartitionsIgnored' });
    const only = cond(policyStatus(undefined, { ...base, otherPartitions: ['ng'], onlyOtherPartitions: true }));
    expect(only).toMatchObject({ status: 'True', reason: 'OnlyOtherPartitions' });
    expect(only.message).toMatch(/cc_partition ng only, none of this policy's "default": hm9k is not acting/);
  });
});

describe('cc_partition, whole app half (real NATS, CC and DEA simulators)', () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });
  const setPolicy = (rt: FakeRuntime, spec: Record<string, unknown>) =>
    (rt.informer('AppHealthPolicy') as unknown as { set(o: AppHealthPolicy): void }).set({ apiVersion: 'hm9k.io/v1alpha1', kind: 'AppHealthPolicy', metadata: { name: 'cf', generation: 1 }, spec } as unknown as AppHealthPolicy);
  const lastCondition = (rt: FakeRuntime) => {
    const writes = rt.statusWrites.filter((x) => x.kind === 'AppHealthPolicy');
    return (writes.at(-1)?.status as AppHealthPolicyStatus | undefined)?.conditions?.find((c) => c.type === 'OtherPartitions');
  };

  it('DEAs on "ng", policy on "default": a dead DEA is not acted on and the condition says why; with ccPartition ng it is', async () => {
    w = await world([['web', 3]], { ccPartition: 'ng' });
    const { apps, rt } = await w.start();
    setPolicy(rt, {});
    await waitFor(() => lastCondition(rt)?.reason === 'OnlyOtherPartitions', 'OtherPartitions condition', 60_000);
    const victim = w.fleet.instances('web')[0]!.dea;
    w.fleet.kill(victim);
    await waitFor(() => !apps.store.deaIds().includes(victim), 'the dead DEA expired', 30_000);
    const after = apps.lastDecisions();
    await waitFor(() => apps.lastDecisions() !== after, 'an analysis pass after it', 30_000);
    expect(apps.lastDecisions()).toMatchObject({ acted: false, notActingReason: 'ActualStateNotFresh' });
    expect(apps.store.pending().starts.size).toBe(0);
    expect(w.cc.starts()).toEqual([]);
    // The operator sets the policy's partition: the dead DEA's instances are restarted.
    setPolicy(rt, { ccPartition: 'ng' });
    await waitFor(() => w!.fleet.instances('web').length === 3 && w!.cc.starts().length > 0, 'restarted', 60_000);
    await waitFor(() => lastCondition(rt)?.reason === 'NoneSeen', 'condition cleared', 60_000);
  }, 180_000);
});
