// hm9k's app half as in production, in its own process, for bench/steady.bench.ts: the real
// controller runtime (informers, status writer, events, Lease election) against the bench's
// kube-apiserver, startApps with the DesiredApp projection on. Prints "ready" on IPC once started.
import { KubeConfig } from '../../src/kube/client.js';
import pino from 'pino';
import { startApps } from '../../src/apps/index.js';
import { createRuntime } from '../../src/kube/runtime.js';

const kc = new KubeConfig();
kc.loadFromFile(process.env.KUBECONFIG_FILE!);
const ns = process.env.NS!;
const rt = await createRuntime({
  component: 'apps',
  namespace: ns,
  kubeConfig: kc,
  logger: pino({ level: process.env.HM9K_BENCH_LOG ?? 'warn' }, process.stderr),
  bindAddress: '127.0.0.1',
  probePort: 0,
  metricsPort: 0,
  handleSignals: false,
  leaderElection: { leaseName: 'hm9k-apps' },
});
const apps = await startApps(rt, {
  nats: { servers: [process.env.NATS_URL!] },
  cc: { url: process.env.CC_URL!, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
  sendVia: 'http',
  store: { kind: 'memory' },
  api: { port: 0, host: '127.0.0.1', user: 'hm', password: 'pw' },
  desiredAppNamespace: ns,
  policyName: process.env.POLICY!,
});
rt.onStop(() => apps.stop());
await rt.start();
const timer = setInterval(() => process.send!({ op: 'state', fresh: apps.store.actualFreshness.isFresh(Date.now()), acted: apps.lastDecisions()?.acted === true }), 1000);
// HM9K_BENCH_MEM=1: the heap's share of RSS every 10 s (where the memory goes).
if (process.env.HM9K_BENCH_MEM) {
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (b: number) => (b / 1e6).toFixed(0);
    process.stderr.write(`hm9k memory: rss ${mb(m.rss)} MB, heap used ${mb(m.heapUsed)} / total ${mb(m.heapTotal)} MB, external ${mb(m.external)} MB, array buffers ${mb(m.arrayBuffers)} MB\n`);
  }, 10_000).unref();
}
process.on('message', async (m: { op: string }) => {
  if (m.op === 'stop') {
    clearInterval(timer);
    await rt.stop().catch(() => undefined);
    process.exit(0);
  }
});
