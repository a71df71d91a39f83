// One keep-alive HTTPS agent per kubeconfig, instead of @kubernetes/client-node 1.x's new agent per
// request: each request otherwise opened a new TCP connection with a full TLS handshake, on hm9k's
// side and the kube-apiserver's (issue 14 items 9 and 11: Lease renewals, status writes and 100,000
// DesiredApp creates each paid one). The agent is rebuilt when the TLS material changes (a rotated
// client certificate is read anew by the library on every request, so it is compared by content).
import type { Agent as HttpAgent } from 'node:http';
import type { KubeConfig } from './client.js';

type CreateAgent = (cluster: unknown, options: Record<string, unknown>) => HttpAgent;

const text = (v: unknown): string => (v === undefined || v === null ? '' : Buffer.isBuffer(v) ? v.toString('base64') : Array.isArray(v) ? v.map(text).join(',') : String(v));

/** Makes every API client of `kc` (made after or before this call) share one keep-alive agent. */
export function shareKeepAliveAgent(kc: KubeConfig): KubeConfig {
  // createAgent is private in the library's types (it is where the per-request agent is made);
  // overriding it on this instance is the only hook that covers every generated API client.
  const target = kc as unknown as { createAgent: CreateAgent; hm9kSharedAgent?: true };
  if (target.hm9kSharedAgent) return kc;
  const original = target.createAgent.bind(kc);
  let cached: { key: string; agent: HttpAgent } | undefined;
  target.createAgent = (cluster, options) => {
    const key = [(cluster as { server?: string } | undefined)?.server, options.ca, options.cert, options.key, options.pfx, options.passphrase, options.rejectUnauthorized].map(text).join('|');
    if (cached?.key === key) return cached.agent;
    cached?.agent.destroy();
    const agent = original(cluster, { ...options, keepAlive: true });
    cached = { key, agent };
    return agent;
  };
  target.hm9kSharedAgent = true;
  return kc;
}
