// Fuzz: random FencePolicy, ComputeNode and AppHealthPolicy objects, drawn from their own CRD schemas
// (test/fuzz/schema-arbitrary.ts), against the real kube-apiserver with the node half running on it.
// Each object is either refused at admission with a message (422 naming the field), or accepted and
// then handled: every accepted FencePolicy gets a Ready condition for its generation (Valid, or
// Invalid with the problems), every accepted ComputeNode a phase; no reconcile throws, nothing is
// left unhandled. A policy that hm9k calls Valid never drives a timer outside what Node can schedule
// (1 ms .. 2^31-1 ms: setTimeout turns anything larger into 1 ms), and an accepted AppHealthPolicy
// resolves to periods the app half can run.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, KINDS, VERSION, type ComputeNode, type FencePolicy } from '../../src/api/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { createRuntime, type ManagedRuntime } from '../../src/kube/runtime.js';
import { nodesConfig, resolvePolicy, validatePolicy } from '../../src/nodes/config.js';
import { startNodes } from '../../src/nodes/index.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';
import { until } from '../nodes/helpers.js';
import { fromSchema } from './schema-arbitrary.js';
import { budget, runs } from './support.js';

const logger = pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' });
const MAX_TIMER = 2 ** 31 - 1;
const plainSchema = (s: unknown) => JSON.parse(JSON.stringify(s)) as Record<string, unknown>;

let kc: KubeConfig;
let api: CustomObjectsApi;
let runtime: ManagedRuntime;
let nodes: { stop(): Promise<void> };
const run = `fz${Math.random().toString(36).slice(2, 6)}`;
const created: { plural: string; name: string }[] = [];

beforeAll(async () => {
  kc = kubeConfig();
  api = kc.makeApiClient(CustomObjectsApi);
  const ns = await testNamespace('fuzz');
  runtime = await createRuntime({ component: 'fuzz-nodes', namespace: ns, kubeConfig: kc, logger, leaderElection: false, metricsPort: false, probePort: false, handleSignals: false, status: { perObjectIntervalMs: 20 } });
  nodes = await startNodes(runtime, nodesConfig({ namespace: ns, cloudsSecret: 'clouds', cloudName: 'sim', globalMaxUnhealthy: '100%', consulWaitMs: 1000, consulMinLoopMs: 200, powerPollIntervalMs: 60_000, novaPollIntervalMs: 60_000, resyncMs: 5000 }));
  await runtime.start();
});
afterAll(async () => {
  await nodes?.stop();
  await runtime?.stop();
  for (const o of created) await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: o.plural, name: o.name }).catch(() => undefined);
});

/** Creates the object; returns undefined when admission refused it (asserting a clear message). */
async function admit<T>(plural: string, kind: string, name: string, spec: unknown, labels: Record<string, string> = {}): Promise<T | undefined> {
  try {
    const o = (await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name, labels }, spec } })) as T;
    created.push({ plural, name });
    return o;
  } catch (err) {
    const e = err as { code?: number; body?: string };
    expect(e.code, `unexpected error creating ${kind}: ${String(err)}`).toBe(422);
    const body = JSON.parse(e.body ?? '{}') as { message?: string; details?: { causes?: { field?: string; message?: string }[] } };
    expect(body.message ?? '').toMatch(/spec|Invalid/);
    expect(body.details?.causes?.length ?? 0).toBeGreaterThan(0);
    return undefined;
  }
}

/** Every resolved duration that drives a timer in the node half. */
function timers(p: ReturnType<typeof resolvePolicy>): Record<string, number> {
  return {
    'detection.interval': p.detection.intervalMs, 'detection.novaNodeSideInterval': p.detection.novaNodeSideIntervalMs,
    'corroboration.timeout': p.detection.corroboration.timeoutMs, 'recovery.timeout': p.recovery.timeoutMs,
    'fencing.powerOffTimeout': p.fencing.powerOffTimeoutMs, 'fencing.powerWait': p.fencing.powerWaitMs, 'fencing.pollInterval': p.fencing.pollIntervalMs, 'fencing.ipmiTimeout': p.fencing.ipmiTimeoutMs,
    'evacuation.perServerTimeout': p.evacuation.perServerTimeoutMs,
  };
}

const RUNS = 40;
/**
 * The examples' specs (examples/*.yaml), appended to every sample: a random sample of 40 can hold no
 * spec the CRD admits (CI once drew 0 of 40 FencePolicies), and the "accepted and reconciled" half of
 * each property must run in every run.
 */
const exampleSpec = (file: string, kind: string): Record<string, unknown> => {
  const docs = parseAllDocuments(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: Record<string, unknown> });
  const doc = docs.find((d) => d?.kind === kind);
  if (!doc?.spec) throw new Error(`examples/${file} has no ${kind}`);
  return doc.spec;
};
describe('fuzz: resource specs against the real apiserver', () => {
  it('found: a duration longer than Node can schedule (576h) is refused at admission, in every kind', async () => {
    const fp = await admit('fencepolicies', 'FencePolicy', `${run}-long`, { networks: { storage: { consul: [{ address: 'http://127.0.0.1:1' }], action: 'Notify' } }, detection: { interval: '10000000h' } });
    expect(fp).toBeUndefined();
    const ahp = await admit('apphealthpolicies', 'AppHealthPolicy', `${run}-long`, { timings: { analyzeInterval: '1000h' } });
    expect(ahp).toBeUndefined();
    const ok = await admit('apphealthpolicies', 'AppHealthPolicy', `${run}-ok`, { timings: { analyzeInterval: '576h', flushInterval: '1h30m' } });
    expect(ok).toBeDefined();
  });

  it('FencePolicy and ComputeNode: refused with a message, or accepted and reconciled', { timeout: budget(RUNS, 1500, 120_000) }, async () => {
    const n = runs(RUNS);
    const seed = Number(process.env.HM9K_FUZZ_SEED ?? Date.now() % 1_000_000);
    const fpSpecs = fc.sample(fromSchema(plainSchema(KINDS.FencePolicy.spec), 0.01), { numRuns: n, seed });
    const cnSpecs = fc.sample(fromSchema(plainSchema(KINDS.ComputeNode.spec), 0.01), { numRuns: n, seed: seed + 1 });
    fpSpecs.push(exampleSpec('fencepolicy.yaml', 'FencePolicy'));
    cnSpecs.push(exampleSpec('computenodes.yaml', 'ComputeNode'));
    const policies: FencePolicy[] = [];
    const computeNodes: ComputeNode[] = [];
    let refused = 0;
    for (let i = 0; i < fpSpecs.length; i++) {
      // Half of the policies select this run's nodes by label, so that nodes and policies meet.
      const spec = fpSpecs[i] as Record<string, unknown> | null;
      if (spec && typeof spec === 'object' && i % 2 === 0) spec.nodeSelector = { matchLabels: { 'hm9k.io/fuzz': `${run}-${i % 4}` } };
      const fp = await admit<FencePolicy>('fencepolicies', 'FencePolicy', `${run}-fp-${i}`, spec);
      if (fp) policies.push(fp); else refused++;
      const cn = await admit<ComputeNode>('computenodes', 'ComputeNode', `${run}-cn-${i}`, cnSpecs[i], { 'hm9k.io/fuzz': `${run}-${i % 4}` });
      if (cn) computeNodes.push(cn); else refused++;
    }
    console.log(`fuzz resources: ${n} FencePolicies + ${n} ComputeNodes (and the examples'), ${policies.length} + ${computeNodes.length} accepted, ${refused} refused at admission, seed ${seed}`);
    expect(policies.length).toBeGreaterThan(0);
    expect(computeNodes.length).toBeGreaterThan(0);
    for (const fp of policies) {
      const got = await until(`FencePolicy ${fp.metadata.name} reconciled`, async () => {
        const o = (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: fp.metadata.name })) as FencePolicy;
        return o.status?.observedGeneration === o.metadata.generation && o.status?.conditions?.some((c) => c.type === 'Ready') ? o : undefined;
      }, 60_000);
      const ready = got.status!.conditions!.find((c) => c.type === 'Ready')!;
      const problems = validatePolicy(got.spec);
      expect(ready.status).toBe(problems.length ? 'False' : 'True');
      if (ready.status === 'False') expect(ready.message.length).toBeGreaterThan(0);
      else for (const [field, ms] of Object.entries(timers(resolvePolicy(got.spec)))) {
        expect(Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMER, `Valid policy ${fp.metadata.name}: ${field} = ${ms} ms cannot be scheduled (${JSON.stringify(got.spec)})`).toBe(true);
      }
    }
    for (const cn of computeNodes) {
      await until(`ComputeNode ${cn.metadata.name} reconciled`, async () => {
        const o = (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn.metadata.name })) as ComputeNode;
        return !!o.status?.phase;
      }, 60_000);
    }
  });

  it('AppHealthPolicy: refused with a message, or accepted with periods the app half can run', { timeout: budget(RUNS, 500, 60_000) }, async () => {
    const n = runs(RUNS);
    const seed = Number(process.env.HM9K_FUZZ_SEED ?? Date.now() % 1_000_000);
    const specs = fc.sample(fromSchema(plainSchema(KINDS.AppHealthPolicy.spec), 0.01), { numRuns: n, seed });
    specs.push(exampleSpec('apphealthpolicy.yaml', 'AppHealthPolicy'));
    let accepted = 0;
    for (let i = 0; i < specs.length; i++) {
      const o = await admit<{ spec: Parameters<typeof resolveAppsConfig>[0] }>('apphealthpolicies', 'AppHealthPolicy', `${run}-ahp-${i}`, specs[i]);
      if (!o) continue;
      accepted++;
      const c = resolveAppsConfig(o.spec);
      const timersMs = { flushIntervalMs: c.flushIntervalMs, analyzeIntervalMs: c.analyzeIntervalMs, sendIntervalMs: c.sendIntervalMs, fetchIntervalMs: c.fetchIntervalMs, fetchTimeoutMs: c.fetchTimeoutMs, heartbeatPeriodMs: c.heartbeatPeriodMs };
      for (const [k, v] of Object.entries(timersMs)) expect(Number.isFinite(v) && v >= 0 && v <= MAX_TIMER, `AppHealthPolicy ${JSON.stringify(o.spec)}: ${k} = ${v}`).toBe(true);
    }
    console.log(`fuzz resources: ${n} AppHealthPolicies, ${accepted} accepted, seed ${seed}`);
    expect(accepted).toBeGreaterThan(0);
  });
});
