/**
 * Builds the Kubernetes test control plane's binaries (kube-apiserver, etcd) from the Go module
 * proxy into ~/.cache/containment/k8s when they are missing; does nothing when they exist.
 * Usage: node --import tsx scripts/k8s/build.ts   (prints the binaries' paths on stdout)
 */
import { buildBinaries } from '../../src/testing/k8s/binaries.js';

const started = Date.now();
try {
  const binaries = buildBinaries();
  console.error(`k8s test binaries ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(binaries.kubeApiserver);
  console.log(binaries.etcd);
} catch (err) {
  console.error(`k8s build failed: ${(err as Error).message}`);
  process.exit(1);
}
