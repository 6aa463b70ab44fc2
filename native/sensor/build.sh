#!/bin/sh
# Builds the native sensor: BPF object (clang, CO-RE against this kernel's BTF) embedded in a
# static Go binary. Output: $1 (default ../../dist/native/containment-sensor).
set -eu
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../dist/native/containment-sensor}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$work/vmlinux.h"
clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$work" -c "$here/bpf/sensor.bpf.c" -o "$here/sensor.bpf.o"
mkdir -p "$(dirname "$out")"
cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out" .
