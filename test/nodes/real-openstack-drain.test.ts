// The drain's Nova calls against REAL Nova (Debian bookworm's Zed, src/devenv/openstack.ts, the fake
// virt driver, whose live_migration calls post_method as libvirt does when it is done): the drain
// machine's ticks (drain/machine.ts) over hm9k's real reads (drain/nova.ts) and hm9k's NovaClient
// os-migrateLive (block_migration "auto", host null: the real scheduler picks). Checks what the drain
// assumes of Nova: migration_type live-migration records, their terminal status, the host field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCloudsYaml, KeystoneClient } from '../../src/clients/keystone.js';
import { NovaClient } from '../../src/clients/nova.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { applyMigrateAnswer, classifyMigrateError, drainTick, recount, type Drain } from '../../src/nodes/drain/machine.js';
import { readDrainView } from '../../src/nodes/drain/nova.js';
import { OpenStack, openStackMissing } from '../../src/devenv/openstack.js';

const missing = openStackMissing();

describe.skipIf(!!missing)('drain against real Nova (Zed, fake driver)', { timeout: 900_000 }, () => {
  let os: OpenStack;
  let nova: NovaClient;
  beforeAll(async () => {
    os = new OpenStack({ reportIntervalS: 2, serviceDownTimeS: 30 });
    await os.start(['cmp1', 'cmp2']);
    console.log(`[figures] real OpenStack up in ${os.timings.total}s`);
    nova = new NovaClient(new KeystoneClient(parseCloudsYaml(os.cloudsYaml('openstack'), 'openstack'), { timeoutMs: 30_000 }), { timeoutMs: 30_000 });
  }, 900_000);
  afterAll(async () => {
    await os?.stop();
  });

  it('disable, then live-migrate every server (scheduler picks the host): each moves once, the host ends empty', async () => {
    const servers = await os.bootServers('cmp1', ['lm-a', 'lm-b', 'lm-c']);
    const policy = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://127.0.0.1:1' }] } }, drain: { concurrency: 2, perServerTimeout: '5m' } });
    const svc = (await nova.listServices('cmp1')).find((s) => s.host === 'cmp1')!;
    await nova.disable(svc.id, 'hm9k drain real-1');
    let d: Drain = recount({ id: 'real-1', reason: 'test', source: 'operator', startedAt: new Date().toISOString(), leaseHolder: 't', leaseTransitions: 0, disabled: 'succeeded', total: 0, migrated: 0, failed: 0, left: 0, servers: [] });
    const deadline = Date.now() + 600_000;
    while (!d.result) {
      if (Date.now() > deadline) throw new Error(`drain not finished: ${JSON.stringify(d)}`);
      const r = drainTick(d, 'cmp1', await readDrainView(nova, 'cmp1', d, policy), policy, { now: Date.now(), settleMs: 60_000 });
      d = r.drain;
      for (const q of r.requests) {
        try {
          await nova.migrateLive(q.id, { microversion: d.microversion! });
          d = applyMigrateAnswer(d, q.id, { kind: 'accepted' }, Date.now());
        } catch (err) {
          d = applyMigrateAnswer(d, q.id, classifyMigrateError(err), Date.now());
        }
      }
      if (!d.result) await new Promise((res) => setTimeout(res, 1000));
    }
    expect(d, JSON.stringify(d.servers)).toMatchObject({ result: 'empty', total: 3, migrated: 3, failed: 0 });
    for (const s of servers) {
      const now = await os.server(s.id);
      expect(now.host).toBe('cmp2');
      expect(now.status).toBe('ACTIVE');
    }
    const live = await nova.migrations({ sourceCompute: 'cmp1', type: 'live-migration' });
    expect(live.map((m) => m.instance_uuid).sort()).toEqual(servers.map((s) => s.id).sort());
    expect(live.every((m) => m.status === 'completed' && m.dest_compute === 'cmp2')).toBe(true);
    expect(await nova.migrations({ sourceCompute: 'cmp1', type: 'evacuation' })).toEqual([]);
    expect((await nova.listServices('cmp1'))[0]).toMatchObject({ status: 'disabled', disabled_reason: 'hm9k drain real-1' });
  });
});
