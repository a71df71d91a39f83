// The world of the million bench, in its own process (its CPU is not hm9k's): the Cloud Controller
// simulator with the fleet's desired state, and every DEA's heartbeat published once per heartbeat
// period, spread evenly over the period (DEAs are not synchronised), two variants alternating so that
// each round changes 2% of the instances.
import { connect } from '@nats-io/transport-node';
import { HEARTBEAT_SUBJECT, type DeaHeartbeat } from '../../src/hm9000/messages.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { makeFleet } from '../fleet.js';

const instances = Number(process.env.MILLION_INSTANCES ?? 1_000_000);
const periodMs = Number(process.env.MILLION_PERIOD_MS ?? 10_000);
const perDea = 100;
const apps = Math.round(instances / 3);

const variant = (hbs: DeaHeartbeat[], round: number): DeaHeartbeat[] =>
  hbs.map((hb) => ({ ...hb, droplets: hb.droplets.map((d, i) => ((i + round) % 50 === 0 ? { ...d, state_timestamp: d.state_timestamp + round } : d)) }));

const fleet = makeFleet(apps, perDea, 3);
const cc = new CloudControllerSim();
for (const d of fleet.desired.values()) cc.setApp({ guid: d.appGuid, version: d.version, instances: d.instances, state: d.state, package_state: d.packageState });
await cc.listen();
const enc = new TextEncoder();
const rounds = [0, 1].map((r) => variant(fleet.heartbeats, r + 1).map((hb) => enc.encode(JSON.stringify(hb))));
const bytes = rounds[0]!.reduce((a, b) => a + b.byteLength, 0);
const nc = await connect({ servers: process.env.NATS_URL!, maxReconnectAttempts: -1 });

let round = 0;
let stopped = false;
const slices = 100;
const publishRound = async () => {
  const msgs = rounds[round++ % 2]!;
  const per = Math.ceil(msgs.length / slices);
  const start = Date.now();
  for (let s = 0; s < slices && !stopped; s++) {
    for (const m of msgs.slice(s * per, (s + 1) * per)) nc.publish(HEARTBEAT_SUBJECT, m);
    const due = start + ((s + 1) * periodMs) / slices;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
};
process.on('message', async (m: { op: string }) => {
  if (m.op === 'stop') {
    stopped = true;
    await nc.drain().catch(() => undefined);
    await cc.close();
    process.exit(0);
  }
});
process.send!({ op: 'ready', ccUrl: cc.url, instances: fleet.instances, deas: fleet.heartbeats.length, apps, bytesPerRound: bytes });
for (;;) {
  if (stopped) break;
  await publishRound();
}
