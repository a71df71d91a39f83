// `hm9k dump`: what hm9k sees, for operators (HM9000's dump was the tool everyone reached for).
// Nodes come from the API server (ComputeNode and FencePolicy status); apps from the app half's
// /dump endpoint (its actual state lives in memory or etcd, not in resources).
import { CustomObjectsApi, type KubeConfig } from '../kube/client.js';
import { loadKubeConfig } from './kubeconfig.js';
import { GROUP, VERSION, type ComputeNode, type FencePolicy } from '../api/index.js';
import { nodeDump, renderNodes } from './dump-nodes.js';
import { renderApps, type AppsDump } from '../apps/dump.js';

export interface DumpOptions {
  json: boolean;
  kubeconfig?: string;
  appsUrl?: string;
  appsUser?: string;
  appsPassword?: string;
  /** The variable the password came from (named in the 401 hint). */
  passwordEnv?: string;
  /** Leave out the nodes (no kubeconfig needed). */
  skipNodes?: boolean;
  now?: Date;
}

export async function fetchNodes(kc: KubeConfig): Promise<{ nodes: ComputeNode[]; policies: FencePolicy[] }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const list = async <T>(plural: string): Promise<T[]> => {
    const items: T[] = [];
    let cont: string | undefined;
    do {
      const page = (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural, limit: 500, ...(cont ? { _continue: cont } : {}) })) as { items: T[]; metadata?: { _continue?: string; continue?: string } };
      items.push(...page.items);
      cont = page.metadata?._continue ?? page.metadata?.continue;
    } while (cont);
    return items;
  };
  return { nodes: await list<ComputeNode>('computenodes'), policies: await list<FencePolicy>('fencepolicies') };
}

export async function fetchApps(url: string, user?: string, password?: string, passwordEnv = 'HM9K_APPS__API__PASSWORD'): Promise<AppsDump> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (user !== undefined) headers.authorization = `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;
  const res = await fetch(new URL('/dump', url), { headers, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${new URL('/dump', url).href}: HTTP ${res.status}${res.status === 401 ? ` (check --apps-user or HM9K_APPS__API__USER, and the password in ${passwordEnv}${passwordEnv === 'HM9K_APPS__API__PASSWORD' ? ' or the variable --apps-password-env names' : ''})` : ''}`);
  return (await res.json()) as AppsDump;
}

export async function dump(opts: DumpOptions): Promise<string> {
  const now = opts.now ?? new Date();
  const out: { apps?: AppsDump; nodes?: ReturnType<typeof nodeDump>[] } = {};
  const parts: string[] = [];
  if (opts.appsUrl) {
    out.apps = await fetchApps(opts.appsUrl, opts.appsUser, opts.appsPassword, opts.passwordEnv);
    parts.push(renderApps(out.apps, now));
  }
  if (!opts.skipNodes) {
    const kc = loadKubeConfig(opts.kubeconfig);
    const { nodes, policies } = await fetchNodes(kc);
    out.nodes = nodes.map(nodeDump);
    parts.push(renderNodes(nodes, policies, now));
  }
  return opts.json ? `${JSON.stringify(out, null, 2)}\n` : parts.join('\n');
}

export interface DumpCliOptions {
  json?: boolean;
  kubeconfig?: string;
  appsUrl?: string;
  appsUser?: string;
  appsPasswordEnv?: string;
  skipNodes?: boolean;
}

export async function dumpCommand(values: DumpCliOptions): Promise<number> {
  if (values.skipNodes && !values.appsUrl) {
    process.stderr.write('hm9k dump: nothing to show: --skip-nodes leaves out the nodes, so --apps-url URL is needed for the apps\n');
    return 2;
  }
  // The password is read from the environment only, never from the command line.
  const pwEnv = values.appsPasswordEnv ?? 'HM9K_APPS__API__PASSWORD';
  const user = values.appsUser ?? process.env.HM9K_APPS__API__USER;
  process.stdout.write(
    await dump({
      json: values.json === true,
      skipNodes: values.skipNodes === true,
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      ...(values.appsUrl ? { appsUrl: values.appsUrl } : {}),
      ...(user ? { appsUser: user } : {}),
      ...(process.env[pwEnv] !== undefined ? { appsPassword: process.env[pwEnv] } : {}),
      passwordEnv: pwEnv,
    }),
  );
  return 0;
}
