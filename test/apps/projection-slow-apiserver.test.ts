// Projection is a view, not an input (issue 14 item 10): with every DesiredApp write stuck on a slow
// apiserver (a TCP proxy that delivers each chunk a minute late), the leader still fetches desired
// state every fetch interval, keeps it fresh, analyses and sends: a DEA that dies is restarted after
// presence TTL + grace, as without projection. (Before: the first fetch waited for the projection,
// no fetch followed, desired state went stale after one TTL and nothing was restarted.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { startApps, scaleTimings, type AppsHandle } from '../../src/apps/index.js';
import { kubeDesiredAppApi } from '../../src/apps/fetcher/projection.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { DeaFleet } from '../../src/sim/dea.js';
import { GROUP, VERSION } from '../../src/api/index.js';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { NatsServer } from '../support/nats.js';
import { waitFor } from '../support/proc.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { fakeRuntime } from './support/fake-runtime.js';

const hasControlPlane = !!process.env.HM9K_CP_STATE;

describe.skipIf(!hasControlPlane)('DesiredApp projection on a slow apiserver', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let fleet: DeaFleet;
  let cc: CloudControllerSim;
  let proxy: TcpProxy;
  let apps: AppsHandle;
  let ns: string;
  const bulkFetches = () => cc.requests.filter((r) => r.endpoint === 'bulk' && r.path.includes('bulk_token=%7B%7D')).length;
  const running = (app: string) => fleet.instances(app).filter((i) => i.state === 'RUNNING' || i.state === 'STARTING').map((i) => i.index).sort().join();

  beforeAll(async () => {
    ns = await testNamespace('apps-slow');
    proxy = await TcpProxy.start(controlPlane().state.apiPort);
    proxy.slow(60_000);
    const kc = new KubeConfig();
    kc.loadFromString(kubeConfig().exportConfig().replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${proxy.port}`));
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    fleet = new DeaFleet({ nats: nc, count: 3, heartbeatPeriodMs: 1000, startupMs: 200 });
    cc = new CloudControllerSim({ dea: fleet });
    await cc.listen();
    for (const [guid, n] of [['web', 3], ['api', 2]] as const) {
      cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
      for (let i = 0; i < n; i++) fleet.place(fleet.deaIds()[i % 3]!, guid, `${guid}-v1`, i);
    }
    fleet.start();
    apps = await startApps(
      fakeRuntime(),
      {
        nats: { servers: [nats.url] },
        cc: { url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
        sendVia: 'http', store: { kind: 'memory' }, api: { port: 0, user: 'hm', password: 'pw' }, desiredAppNamespace: ns,
        configOverride: (c) => scaleTimings(c, 10),
      },
      { desiredAppApi: kubeDesiredAppApi(kc) },
    );
  }, 60_000);

  afterAll(async () => {
    proxy?.cut('reset'); // releases the writes still waiting
    await apps?.stop();
    await proxy?.close();
    await fleet?.stopAll();
    await cc?.close();
    await nc?.close();
    await nats?.stop();
  });

  it('fetching, analysis and sending go on while every DesiredApp write hangs', async () => {
    const ttl = apps.config().desiredFreshnessTtlMs;
    const interval = apps.config().fetchIntervalMs;
    // Past one desired-freshness TTL: fetched again and again, desired state still fresh.
    const needed = Math.ceil(ttl / interval) + 2;
    await waitFor(() => bulkFetches() >= needed, `${needed} complete bulk fetches`, 90_000);
    await waitFor(() => apps.lastDecisions()?.acted === true, 'analysis acting (both states fresh)', 10_000);
    // The writes really are stuck: the apiserver (asked directly) has no DesiredApp yet.
    const direct = kubeConfig().makeApiClient(CustomObjectsApi);
    const listed = (await direct.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps' })) as { items: unknown[] };
    expect(listed.items).toHaveLength(0);

    const victim = fleet.deaIds()[0]!;
    fleet.kill(victim);
    await waitFor(() => running('web') === '0,1,2' && running('api') === '0,1', 'instances of the dead DEA restarted elsewhere', 60_000);
    expect(fleet.instances().every((i) => i.dea !== victim)).toBe(true);
  }, 180_000);
});
