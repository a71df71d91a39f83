// One local control plane for the whole test run (etcd + kube-apiserver + CRDs). Test files reach it
// through HM9K_TEST_KUBECONFIG and HM9K_CP_STATE (test/support/controlplane.ts); each whole-system file
// uses its own namespace. HM9K_NO_CONTROL_PLANE=1 skips it for quick unit-only runs.
import { delimiter } from 'node:path';
import { LocalControlPlane, binDir } from '../../src/devenv/controlplane.js';

let cp: LocalControlPlane | undefined;

export async function setup(): Promise<void> {
  // kubectl and helm built by scripts/build-tools.sh (kubectl only on a machine that has none).
  process.env.PATH = `${process.env.PATH ?? ''}${delimiter}${binDir()}`;
  if (process.env.HM9K_NO_CONTROL_PLANE === '1') return;
  cp = await LocalControlPlane.start();
  process.env.HM9K_TEST_KUBECONFIG = cp.state.kubeconfig;
  process.env.HM9K_CP_STATE = cp.stateFilePath;
}

export async function teardown(): Promise<void> {
  if (!cp) return;
  // Re-read the state: a test may have restarted kube-apiserver under a new pid.
  await LocalControlPlane.attach(cp.stateFilePath).stop();
}
