/** Where `k8s:up` records the control plane it started, for `k8s:down`. */
import { join } from 'node:path';
import { k8sCacheDir } from '../../src/testing/k8s/binaries.js';

export const controlPlaneStateFile = join(k8sCacheDir, 'control-plane.json');
