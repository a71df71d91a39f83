// Access to the run's shared control plane from inside a test file.
import { KubeConfig, CoreV1Api } from '../../src/kube/client.js';
import { LocalControlPlane } from '../../src/devenv/controlplane.js';

export function controlPlane(): LocalControlPlane {
  const file = process.env.HM9K_CP_STATE;
  if (!file) throw new Error('no local control plane: run through vitest (global setup) without HM9K_NO_CONTROL_PLANE=1');
  return LocalControlPlane.attach(file);
}

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane().state.kubeconfig);
  return kc;
}

/** Creates a fresh namespace for one test file and returns its name. */
export async function testNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await kubeConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}
