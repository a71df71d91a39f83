// Where a kubeconfig comes from, and a clear error when there is none. Without this check
// @kubernetes/client-node falls back to http://localhost:8080 and every request fails with "HTTP
// protocol is not allowed when skipTLSVerify is not set", over and over.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '../kube/client.js';

export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    kc.loadFromFile(file);
    return kc;
  }
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  const inCluster = !!env.KUBERNETES_SERVICE_HOST && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
  if (!fromEnv.some((f) => existsSync(f)) && !existsSync(home) && !inCluster) {
    const looked = [...(fromEnv.length ? [`KUBECONFIG (${fromEnv.join(delimiter)})`] : ['KUBECONFIG (unset)']), home];
    throw new Error(`no kubeconfig found (looked at --kubeconfig, ${looked.join(', ')}); not in a cluster (KUBERNETES_SERVICE_HOST unset or no service account token)`);
  }
  kc.loadFromDefault();
  return kc;
}
