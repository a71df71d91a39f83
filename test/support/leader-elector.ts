// A process that runs hm9k's Lease elector and prints its state as JSON lines, for the two-process
// leader election tests. Usage:
//   node --import tsx test/support/leader-elector.ts <kubeconfig> <namespace> <lease> <identity>
//        <leaseMs> <renewMs> <retryMs> [server-override]
// Prints {"event":"started"}, {"event":"leading","t":...}, {"event":"lost","t":...} (then exits 1,
// the production default), and releases the Lease on SIGTERM (exit 0).
import { KubeConfig } from '../../src/kube/client.js';
import { pino } from 'pino';
import { LeaseElector, coordinationLeaseClient } from '../../src/kube/leader.js';

const [kubeconfig, namespace, lease, identity, leaseMs, renewMs, retryMs, server] = process.argv.slice(2);
if (!kubeconfig || !namespace || !lease || !identity || !leaseMs || !renewMs || !retryMs) {
  console.error('usage: leader-elector.ts <kubeconfig> <namespace> <lease> <identity> <leaseMs> <renewMs> <retryMs> [server]');
  process.exit(2);
}
const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
if (server) {
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
}
const say = (event: string, extra: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, identity, t: Date.now(), ...extra })}\n`);
const elector = new LeaseElector(coordinationLeaseClient(kc), {
  namespace,
  name: lease,
  identity,
  leaseDurationMs: Number(leaseMs),
  renewDeadlineMs: Number(renewMs),
  retryPeriodMs: Number(retryMs),
  logger: pino({ level: process.env.HM9K_LOG_LEVEL ?? 'warn' }, process.stderr),
  onStartedLeading: () => say('leading', { transitions: elector.transitions() }),
  onLost: () => {
    say('lost');
    process.exit(1);
  },
});
process.on('SIGTERM', () => {
  void elector.stop(true).then(() => {
    say('released');
    process.exit(0);
  });
});
say('started');
elector.start();
