/**
 * `npm run k8s:up`: builds the binaries when missing, starts one control plane that outlives
 * this process, and prints the admin kubeconfig's path as its last line. Stop it with k8s:down.
 * Running it again while the control plane is up prints the same path.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { buildBinaries, k8sCacheDir } from '../../src/testing/k8s/binaries.js';
import {
  isControlPlaneRunning,
  startControlPlane,
  stopControlPlane,
} from '../../src/testing/k8s/control-plane.js';
import type { ControlPlaneState } from '../../src/testing/k8s/control-plane.js';
import { controlPlaneStateFile } from './state.js';

try {
  if (existsSync(controlPlaneStateFile)) {
    const state = JSON.parse(readFileSync(controlPlaneStateFile, 'utf8')) as ControlPlaneState;
    if (isControlPlaneRunning(state)) {
      console.error(`already up: ${state.server}`);
      console.log(state.kubeconfigPath);
      process.exit(0);
    }
    // Left over from a crash or a reboot: remove what remains of it.
    await stopControlPlane(state);
  }
  const binaries = buildBinaries();
  const cp = await startControlPlane({ binaries, name: 'containment-dev', detached: true });
  const state: ControlPlaneState = {
    name: cp.name,
    dir: cp.dir,
    server: cp.server,
    kubeconfigPath: cp.kubeconfigPath,
    pids: cp.pids,
    binaries: cp.binaries,
  };
  mkdirSync(k8sCacheDir, { recursive: true });
  writeFileSync(controlPlaneStateFile, JSON.stringify(state, null, 2));
  console.error(
    `kube-apiserver ready at ${cp.server} (logs and data in ${cp.dir}); stop it with npm run k8s:down`,
  );
  console.log(cp.kubeconfigPath);
} catch (err) {
  console.error(`k8s:up failed: ${(err as Error).message}`);
  process.exit(1);
}
