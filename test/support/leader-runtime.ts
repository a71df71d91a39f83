// A whole hm9k runtime in its own process (leader election on, one leader-only controller over
// DesiredApps in a namespace), printing JSON lines, for the graceful-shutdown tests. Usage:
//   node --import tsx test/support/leader-runtime.ts <kubeconfig> <namespace> <identity> <leaseMs> <renewMs> <retryMs>
// Prints {"event":"started","probes":port,"metrics":port}, {"event":"leading"},
// {"event":"reconcile","key":...}; SIGTERM = graceful shutdown (the runtime exits 0).
import { KubeConfig } from '../../src/kube/client.js';
import { pino } from 'pino';
import { createRuntime } from '../../src/kube/runtime.js';

const [kubeconfig, namespace, identity, leaseMs, renewMs, retryMs] = process.argv.slice(2);
if (!kubeconfig || !namespace || !identity || !leaseMs || !renewMs || !retryMs) {
  console.error('usage: leader-runtime.ts <kubeconfig> <namespace> <identity> <leaseMs> <renewMs> <retryMs>');
  process.exit(2);
}
const say = (event: string, extra: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, identity, t: Date.now(), ...extra })}\n`);
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const rt = await createRuntime({
  component: 'lr-test',
  namespace,
  kubeConfig: kc,
  logger: pino({ level: process.env.HM9K_LOG_LEVEL ?? 'warn' }, process.stderr),
  bindAddress: '127.0.0.1',
  probePort: 0,
  metricsPort: 0,
  podName: identity,
  leaderElection: { leaseName: 'runtime-lease', identity, leaseDurationMs: Number(leaseMs), renewDeadlineMs: Number(renewMs), retryPeriodMs: Number(retryMs) },
});
const inf = rt.informer('DesiredApp', { namespace });
const queue = rt.addController({
  name: 'lr-probe',
  async reconcile(key) {
    say('reconcile', { key, leader: rt.leader.isLeader() });
  },
});
inf.on('add', (o) => queue.add(`${o.metadata.namespace}/${o.metadata.name}`));
inf.on('update', (o) => queue.add(`${o.metadata.namespace}/${o.metadata.name}`));
rt.onStop(() => say('stopping'));
await rt.start();
say('started', rt.ports());
void rt.leader.waitForLeadership(rt.signal).then(
  () => say('leading', { transitions: rt.leader.transitions() }),
  () => undefined,
);
