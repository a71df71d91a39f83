// One keep-alive agent per kubeconfig (src/kube/agent.ts): client-node 1.x made a new agent, so a
// new TCP connection and TLS handshake, for every request.
import type { Agent } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { shareKeepAliveAgent } from './agent.js';

const config = (ca: string) => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from(ca).toString('base64') }],
    users: [{ name: 'u', token: 'not-a-secret' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
};
const agentOf = async (kc: KubeConfig) => {
  const opts: { agent?: Agent } = {};
  await kc.applyToHTTPSOptions(opts);
  return opts.agent!;
};

describe('shared keep-alive agent', () => {
  it('every request of a kubeconfig gets the same keep-alive agent (so one connection is reused)', async () => {
    const kc = shareKeepAliveAgent(config('ca-1'));
    const a = await agentOf(kc);
    expect(await agentOf(kc)).toBe(a);
    expect((a as Agent & { keepAlive?: boolean }).keepAlive).toBe(true);
  });

  it('changed TLS material gets a new agent; applying twice changes nothing', async () => {
    const kc = shareKeepAliveAgent(shareKeepAliveAgent(config('ca-1')));
    const a = await agentOf(kc);
    const rotated = config('ca-2');
    kc.clusters = rotated.clusters;
    const b = await agentOf(kc);
    expect(b).not.toBe(a);
    expect(await agentOf(kc)).toBe(b);
  });
});
