// A reusable app-half world for tests: real nats-server, CC simulator, DEA fleet, startApps on the
// in-memory runtime, at 1/10 timings.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startApps, scaleTimings, type AppsConfig, type AppsHandle, type AppsProcessConfig } from '../../src/apps/index.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { DeaFleet, type DeaFleetOptions } from '../../src/sim/dea.js';
import { NatsServer } from '../support/nats.js';
import { fakeRuntime, type FakeRuntime } from './support/fake-runtime.js';

export interface World {
  nats: NatsServer;
  nc: NatsConnection;
  fleet: DeaFleet;
  cc: CloudControllerSim;
  /** `tune` adjusts the 1/10 timings (e.g. a longer grace). */
  start(store?: AppsProcessConfig['store'], leader?: boolean, tune?: (c: AppsConfig) => AppsConfig): Promise<{ apps: AppsHandle; rt: FakeRuntime }>;
  close(): Promise<void>;
}

export async function world(appsSpec: [string, number][], fleetOptions: Partial<DeaFleetOptions> = {}): Promise<World> {
  const nats = await NatsServer.start();
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const fleet = new DeaFleet({ nats: nc, count: 3, heartbeatPeriodMs: 1000, startupMs: 200, evacuationTimeoutMs: 3000, ...fleetOptions });
  const cc = new CloudControllerSim({ dea: fleet });
  await cc.listen();
  for (const [guid, n] of appsSpec) {
    cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
    for (let i = 0; i < n; i++) fleet.place(fleet.deaIds()[i % 3]!, guid, `${guid}-v1`, i);
  }
  fleet.start();
  const started: AppsHandle[] = [];
  return {
    nats, nc, fleet, cc,
    async start(store = { kind: 'memory' }, leader = true, tune = (c: AppsConfig) => c) {
      const rt = fakeRuntime({ leader });
      const apps = await startApps(rt, {
        nats: { servers: [nats.url] },
        cc: { url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
        sendVia: 'http', store, api: { port: 0, user: 'hm', password: 'pw' }, desiredAppNamespace: 'cf',
        configOverride: (c) => tune(scaleTimings(c, 10)),
      }, { desiredAppApi: rt.desiredAppApi });
      started.push(apps);
      return { apps, rt };
    },
    async close() {
      for (const a of started) await a.stop().catch(() => undefined);
      await fleet.stopAll();
      await cc.close();
      await nc.close();
      await nats.stop();
    },
  };
}
