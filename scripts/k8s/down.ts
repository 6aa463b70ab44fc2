/** `npm run k8s:down`: stops the control plane `npm run k8s:up` started and deletes its data. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { stopControlPlane } from '../../src/testing/k8s/control-plane.js';
import type { ControlPlaneState } from '../../src/testing/k8s/control-plane.js';
import { controlPlaneStateFile } from './state.js';

if (!existsSync(controlPlaneStateFile)) {
  console.error('no control plane is up (nothing to stop)');
} else {
  const state = JSON.parse(readFileSync(controlPlaneStateFile, 'utf8')) as ControlPlaneState;
  await stopControlPlane(state);
  rmSync(controlPlaneStateFile, { force: true });
  console.error(`stopped ${state.server} and removed ${state.dir}`);
}
