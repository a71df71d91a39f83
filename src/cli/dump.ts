// `hm9k dump`: what hm9k sees, for operators (HM9000's dump was the tool everyone reached for).
// Nodes come from the API server (ComputeNode and FencePolicy status); apps from the app half's
// /dump endpoint (its actual state lives in memory or etcd, not in resources).
import { parseArgs } from 'node:util';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION, type ComputeNode, type FencePolicy } from '../api/index.js';
import { nodeDump, renderNodes } from './dump-nodes.js';
import { renderApps, type AppsDump } from '../apps/dump.js';

export interface DumpOptions {
  json: boolean;
  kubeconfig?: string;
  appsUrl?: string;
  appsUser?: string;
  appsPassword?: string;
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

export async function fetchApps(url: string, user?: string, password?: string): Promise<AppsDump> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (user !== undefined) headers.authorization = `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;
  const res = await fetch(new URL('/dump', url), { headers, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${new URL('/dump', url).href}: HTTP ${res.status}${res.status === 401 ? ' (check --apps-user/--apps-password or HM9K_APPS__API__USER/PASSWORD)' : ''}`);
  return (await res.json()) as AppsDump;
}

export async function dump(opts: DumpOptions): Promise<string> {
  const now = opts.now ?? new Date();
  const out: { apps?: AppsDump; nodes?: ReturnType<typeof nodeDump>[] } = {};
  const parts: string[] = [];
  if (opts.appsUrl) {
    out.apps = await fetchApps(opts.appsUrl, opts.appsUser, opts.appsPassword);
    parts.push(renderApps(out.apps, now));
  }
  if (!opts.skipNodes) {
    const kc = new KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    const { nodes, policies } = await fetchNodes(kc);
    out.nodes = nodes.map(nodeDump);
    parts.push(renderNodes(nodes, policies, now));
  }
  return opts.json ? `${JSON.stringify(out, null, 2)}\n` : parts.join('\n');
}

export async function dumpCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      kubeconfig: { type: 'string' },
      'apps-url': { type: 'string' },
      'apps-user': { type: 'string' },
      'apps-password-env': { type: 'string' },
      'skip-nodes': { type: 'boolean' },
    },
  });
  // The password is read from the environment only, never from the command line.
  const pwEnv = values['apps-password-env'] ?? 'HM9K_APPS__API__PASSWORD';
  process.stdout.write(
    await dump({
      json: values.json === true,
      skipNodes: values['skip-nodes'] === true,
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
      ...(values['apps-url'] ? { appsUrl: values['apps-url'] } : {}),
      ...((values['apps-user'] ?? process.env.HM9K_APPS__API__USER) ? { appsUser: values['apps-user'] ?? process.env.HM9K_APPS__API__USER } : {}),
      ...(process.env[pwEnv] !== undefined ? { appsPassword: process.env[pwEnv] } : {}),
    }),
  );
  return 0;
}
