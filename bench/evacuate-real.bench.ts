// `npm run bench -- evacuate-real`: hm9k's evacuation (src/nodes/evacuate.ts, driven tick by tick as
// the engine does, with its NovaClient) of a fenced host holding 50 servers on REAL Nova (Zed from
// Debian, src/devenv/openstack.ts, fake virt driver). The host's nova-compute is killed (power lost)
// and the service forced down and disabled, as the fence does, before the clock starts.
// Measured: from that point (confirmed power-off) to every server evacuated. Baseline in the same run:
// the sum of Nova's own migration times for the same servers (os-migrations created_at -> updated_at),
// i.e. what a strictly one-at-a-time evacuation with zero client overhead would take. Also: hm9k's
// Nova API calls per server. Skipped with a plain message when the OpenStack packages are missing.
import { KeystoneClient, parseCloudsYaml } from '../src/clients/keystone.js';
import { NovaClient } from '../src/clients/nova.js';
import { resolvePolicy } from '../src/nodes/config.js';
import { evacuationTick, planEvacuation } from '../src/nodes/evacuate.js';
import { OpenStack, openStackMissing } from '../src/devenv/openstack.js';
import type { BenchRow } from './fleet.js';

const SERVERS = Number(process.env.HM9K_BENCH_SERVERS ?? 50);
const CONCURRENCY = 10;

export async function run(): Promise<BenchRow[]> {
  const missing = openStackMissing();
  if (missing) {
    process.stderr.write(`evacuate-real: skipped: ${missing}\n`);
    return [];
  }
  const os = new OpenStack({ reportIntervalS: 2, serviceDownTimeS: 60 });
  try {
    await os.start(['cmp1', 'cmp2', 'cmp3']);
    const stack = `stack up in ${os.timings.total}s, ${await os.memoryMiB()} MiB`;
    process.stderr.write(`evacuate-real: OpenStack ${stack}; booting ${SERVERS} servers on cmp1\n`);
    for (let i = 0; i < SERVERS; i += 10) await os.bootServers('cmp1', Array.from({ length: Math.min(10, SERVERS - i) }, (_, j) => `s${i + j}`));
    await os.killCompute('cmp1');
    const svc = (await os.nova<{ services: { id: string; host: string }[] }>('GET', '/os-services?binary=nova-compute')).services.find((s) => s.host === 'cmp1')!;
    await os.nova('PUT', `/os-services/${svc.id}`, { forced_down: true });
    await os.nova('PUT', `/os-services/${svc.id}`, { status: 'disabled', disabled_reason: 'hm9k bench' });

    let calls = 0;
    const realFetch = globalThis.fetch;
    const novaRoot = os.novaUrl.replace(/\/v2\.1$/, '');
    globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.startsWith(novaRoot)) calls++;
      return realFetch(input, init);
    }) as typeof fetch;
    const nova = new NovaClient(new KeystoneClient(parseCloudsYaml(os.cloudsYaml('b'), 'b')));
    const policy = resolvePolicy({
      nodeSelector: {}, networks: {},
      evacuation: { concurrency: CONCURRENCY, perServerTimeout: '600s' },
    } as Parameters<typeof resolvePolicy>[0]);
    const t0 = Date.now();
    let e = await planEvacuation(nova, 'cmp1', policy, t0);
    for (;;) {
      const r = await evacuationTick(nova, e, 'cmp1', policy, { write: async () => undefined, now: Date.now, log: () => undefined });
      e = r.evacuation;
      if (r.finished) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    const hm9kMs = Date.now() - t0;
    globalThis.fetch = realFetch;
    const migs = (await os.migrations()).filter((m) => m.source_compute === 'cmp1');
    const novaSum = migs.reduce((sum, m) => sum + (Date.parse(`${m.updated_at}Z`) - Date.parse(`${m.created_at}Z`)), 0);
    return [{
      bench: 'evacuate-real', subject: `${SERVERS} servers evacuated by hm9k (concurrency ${CONCURRENCY}) on real Nova`, subjectMs: hm9kMs,
      baseline: "sum of Nova's own migration times", baselineMs: novaSum,
      note: `${e.done} done, ${e.failed} failed, ${migs.length} migrations; ${(calls / SERVERS).toFixed(1)} Nova API calls per server (tick 250 ms); ${stack}, ${await os.memoryMiB()} MiB after`,
    }];
  } finally {
    await os.stop();
  }
}
