#!/usr/bin/env bash
# CI entry point: install what the tests need from Debian's packages, start the container
# engine's API socket, build the cached test root filesystem, then run the README's test
# command (`npm test`). Under CI=true every test that needs a real component is mandatory.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
export PATH="$PATH:/usr/local/go/bin"
export DEBIAN_FRONTEND=noninteractive

need=()
for pair in podman:podman runc:runc nft:nftables ip:iproute2 debootstrap:debootstrap rpm:rpm \
  rpmbuild:rpm busybox:busybox-static ssh-keygen:openssh-client openssl:openssl jar:openjdk-17-jdk-headless; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL for the multi-replica store and outbox tests: use the running server, else install
# and start Debian's, trusting loopback connections as the test machines do.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi

# This sandbox refuses raising resource limits: runc must lower them (see DESIGN.md).
if ! grep -q 'runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n\n[engine]\nruntime = "runc"\n' \
    >/etc/containers/containers.conf
fi
if ! curl -sf --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1; then
  mkdir -p /run/podman
  nohup podman system service --time=0 unix:///run/podman/podman.sock >/tmp/podman-service.log 2>&1 &
  for _ in $(seq 1 50); do
    curl -sf --unix-socket /run/podman/podman.sock http://d/_ping >/dev/null 2>&1 && break
    sleep 0.2
  done
fi

npm ci --no-audit --no-fund
# Real kube-apiserver and etcd for the Kubernetes tests, built from the Go module proxy into a
# cache outside the repository when missing (a cold build takes about 15 minutes on 2 cores).
node --import tsx scripts/k8s/build.ts
scripts/build-test-rootfs.sh
