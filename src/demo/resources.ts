// The sample resources in examples/ are what the demo applies, so that they cannot rot: the demo
// reads them, substitutes the locations of its loopback world (ports, the sshd's script paths) in
// the few fields that name them, and creates them through the API server, which validates them
// against the CRDs. A field that the substitution expects and the sample lacks is an error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CustomObjectsApi, type KubeConfig } from '../kube/client.js';
import { GROUP, VERSION, NETWORKS, type AppHealthPolicy, type ComputeNode, type FencePolicy } from '../api/index.js';
import type { World as ComputeWorld } from '../devenv/compute-world.js';

export const EXAMPLE_FILES = { fencePolicy: 'fencepolicy.yaml', computeNodes: 'computenodes.yaml', appHealthPolicy: 'apphealthpolicy.yaml' } as const;

export function readExamples(dir: string): { fencePolicy: FencePolicy; computeNodes: ComputeNode[]; appHealthPolicy: AppHealthPolicy } {
  const docs = (file: string) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${join(dir, file)}: ${d.errors[0]!.message}`);
      return d.toJSON() as { kind?: string };
    }).filter((d) => d && typeof d === 'object');
  const one = <T>(file: string, kind: string): T => {
    const list = docs(file).filter((d) => d.kind === kind);
    if (list.length !== 1) throw new Error(`${join(dir, file)}: expected one ${kind}, found ${list.length}`);
    return list[0] as T;
  };
  const computeNodes = docs(EXAMPLE_FILES.computeNodes).filter((d) => d.kind === 'ComputeNode') as ComputeNode[];
  if (computeNodes.length === 0) throw new Error(`${join(dir, EXAMPLE_FILES.computeNodes)}: no ComputeNode`);
  return { fencePolicy: one<FencePolicy>(EXAMPLE_FILES.fencePolicy, 'FencePolicy'), computeNodes, appHealthPolicy: one<AppHealthPolicy>(EXAMPLE_FILES.appHealthPolicy, 'AppHealthPolicy') };
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === null) throw new Error(`examples: ${what} is missing (the demo substitutes it)`);
  return v;
}

/** The FencePolicy with the world's Consul endpoints, SMTP port and the sshd's scripts. */
export function substituteFencePolicy(fp: FencePolicy, w: ComputeWorld): FencePolicy {
  const out = structuredClone(fp);
  for (const n of NETWORKS) {
    const rule = need(out.spec.networks[n], `FencePolicy spec.networks.${n}`);
    rule.consul = [{ ...need(rule.consul[0], `FencePolicy spec.networks.${n}.consul[0]`), address: w.consul[n].url }];
  }
  const dir = w.sshd.dir;
  const corr = need(out.spec.detection?.corroboration, 'FencePolicy spec.detection.corroboration');
  need(corr.sshCommand, 'FencePolicy spec.detection.corroboration.sshCommand');
  corr.sshCommand = `${dir}/check.sh storage`;
  const cmds = need(out.spec.recovery?.commands, 'FencePolicy spec.recovery.commands');
  need(cmds.storage, 'FencePolicy spec.recovery.commands.storage');
  cmds.storage = `${dir}/recover.sh storage`;
  if (cmds.novaCompute !== undefined) cmds.novaCompute = `${dir}/recover.sh nova`;
  const email = need(out.spec.notifications?.email, 'FencePolicy spec.notifications.email');
  email.smtpHost = w.smtp.host;
  email.smtpPort = w.smtp.port;
  // Real Nova on a loaded 2-core machine: an evacuation may take a minute or more.
  if (w.openstack && out.spec.evacuation) out.spec.evacuation.perServerTimeout = '180s';
  return out;
}

/** A ComputeNode with its BMC's UDP port, its sshd port and the sshd's user. */
export function substituteComputeNode(cn: ComputeNode, w: ComputeWorld): ComputeNode {
  const out = structuredClone(cn);
  const node = need(w.node(out.spec.host), `a simulated hypervisor for ComputeNode ${out.metadata.name} (host ${out.spec.host})`);
  const bmc = need(out.spec.bmc, `ComputeNode ${out.metadata.name} spec.bmc`);
  bmc.address = node.bmc.address;
  bmc.port = node.bmc.port;
  const ssh = need(out.spec.ssh, `ComputeNode ${out.metadata.name} spec.ssh`);
  ssh.address = '127.0.0.1';
  ssh.port = node.sshPort;
  ssh.user = w.sshd.user;
  return out;
}

export async function applyResources(kc: KubeConfig, docs: { appHealthPolicy: AppHealthPolicy; fencePolicy: FencePolicy; computeNodes: ComputeNode[] }): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const create = async (plural: string, body: { metadata: { name: string } }) => {
    try {
      await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body });
    } catch (err) {
      const e = err as { code?: number; body?: unknown };
      const detail = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? (err as Error).message);
      throw new Error(`creating ${plural}/${body.metadata.name} from examples/ failed (${e.code ?? 'error'}): ${detail}`);
    }
  };
  await create('apphealthpolicies', docs.appHealthPolicy);
  await create('fencepolicies', docs.fencePolicy);
  for (const cn of docs.computeNodes) await create('computenodes', cn);
}
