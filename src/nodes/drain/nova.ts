// The drain's read of Nova for one tick (imperative shell of drain/machine.ts): this host's
// live-migration records, the servers on the host, and where each listed server not on the host is
// now. Nothing is decided here; a failed read throws (no tick runs on a partial view).
import type { NovaClient, NovaServer } from '../../clients/nova.js';
import type { ResolvedPolicy } from '../config.js';
import { lookupsNeeded, type Drain, type DrainView } from './machine.js';

export async function readDrainView(nova: NovaClient, host: string, d: Drain, policy: ResolvedPolicy): Promise<DrainView> {
  const migrations = (await nova.migrations({ sourceCompute: host, type: 'live-migration' })).filter((m) => m.source_compute === host && m.migration_type === 'live-migration');
  const onHost = (await nova.listServers(host)).filter((s) => (s['OS-EXT-SRV-ATTR:host'] ?? host) === host);
  const elsewhere = new Map<string, NovaServer | null>();
  for (const id of lookupsNeeded(d, onHost)) {
    try {
      elsewhere.set(id, await nova.getServer(id));
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
      elsewhere.set(id, null);
    }
  }
  const microversion = d.microversion ?? (await nova.use(policy.drain.microversion));
  return { onHost, elsewhere, migrations, microversion };
}
