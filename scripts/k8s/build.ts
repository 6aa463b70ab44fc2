/**
 * Builds the Kubernetes tests' binaries (kube-apiserver, etcd, and helm for the chart tests) from
 * the Go module proxy into ~/.cache/containment when they are missing, and fetches upstream's Pod
 * Security test fixtures into the Go module cache; does nothing when they exist.
 * Usage: node --import tsx scripts/k8s/build.ts [--kwok] [--node]   (prints the binaries' paths on stdout)
 * --kwok also builds kwok, which only `npm run bench:operator`'s fleet section needs (CI does not).
 * --node also builds kubelet, kube-controller-manager, kube-scheduler and kube-proxy, which only the
 * opt-in `npm run test:kubelet` needs (CI does not: several more minutes of compiling on 2 cores).
 */
import { buildBinaries, buildHelm, buildKwok, buildNodeBinaries } from '../../src/testing/k8s/binaries.js';
import { fetchPsaTestdata, findPsaTestdata } from './psa-testdata.js';

const started = Date.now();
try {
  const binaries = buildBinaries();
  const helm = buildHelm();
  const psa = findPsaTestdata() ?? fetchPsaTestdata();
  const kwok = process.argv.includes('--kwok') ? buildKwok() : undefined;
  const node = process.argv.includes('--node') ? buildNodeBinaries() : undefined;
  console.error(`k8s test binaries ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(binaries.kubeApiserver);
  console.log(binaries.etcd);
  console.log(helm);
  console.log(psa.dir);
  if (kwok) console.log(kwok);
  if (node) for (const path of Object.values(node)) console.log(path);
} catch (err) {
  console.error(`k8s build failed: ${(err as Error).message}`);
  process.exit(1);
}
