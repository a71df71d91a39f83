// Fault 2: the app half's actual-state store is a real etcd, reached through a TCP proxy. Under
// heartbeat load, etcd is killed and restarted, and later made slow (every chunk delayed). While
// writes fail or lag, actual state is not fresh and nothing is sent; crashes during each fault are
// restarted exactly once afterwards; nothing is stopped.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { EtcdServer } from '../support/etcd.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { report } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

let w: World;
let etcd: EtcdServer;
let proxy: TcpProxy;
let apps: AppsHandle;
beforeAll(async () => {
  etcd = await EtcdServer.start();
  proxy = await TcpProxy.start(Number(new URL(etcd.endpoint).port));
  w = await world(Array.from({ length: 20 }, (_, i) => [`app${i}`, 2] as [string, number]));
  ({ apps } = await w.start({ kind: 'etcd', endpoints: [`http://127.0.0.1:${proxy.port}`], prefix: 'faults-etcd/' }));
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 40_000);
}, 90_000);
afterAll(async () => {
  await w?.close();
  await proxy?.close?.();
  await etcd?.destroy();
});

it('etcd killed and restarted, then slow: no action while stale, every owed restart once, nothing stopped', { timeout: 150_000 }, async () => {
  const since = w.cc.requests.length;
  const owed: string[] = [];
  // Killed under load.
  await etcd.stop();
  const v1 = w.fleet.instances('app3')[0]!;
  w.fleet.crash(v1.guid);
  owed.push(`${v1.appGuid}/${v1.index}`);
  await new Promise((r) => setTimeout(r, 4000));
  await etcd.restart();
  await waitFor(() => w.fleet.instances('app3').length === 2, 'app3 whole again', 40_000).catch(() => undefined);
  // Slow: every chunk 400 ms late (a flush takes longer than the 1 s heartbeat period).
  proxy.slow(400);
  const v2 = w.fleet.instances('app7')[1]!;
  w.fleet.crash(v2.guid);
  owed.push(`${v2.appGuid}/${v2.index}`);
  await new Promise((r) => setTimeout(r, 5000));
  proxy.restore();
  const l = await appLedger(w, owed, since, { deadlineMs: 60_000 });
  report('etcd-store', l, `etcd (actual-state store, 40 instances on 3 DEAs) killed 4 s and restarted, then 400 ms per chunk for 5 s: ${owed.length} crash restarts owed, each done once, 0 stops`);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
