#!/usr/bin/env bash
# Builds (once) the real Debian 12 root filesystem the end-to-end tests scan, with
# `debootstrap --variant=minbase bookworm`, into a cache outside the repository.
# Usage: scripts/build-test-rootfs.sh [--print-path]
# The cache lives in $CONTAINMENT_TEST_CACHE (default ~/.cache/containment/test-rootfs).
set -euo pipefail
cache="${CONTAINMENT_TEST_CACHE:-$HOME/.cache/containment/test-rootfs}"
root="$cache/bookworm-minbase"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ ! -f "$root/.complete" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -f "$root/.complete" ]; then
    rm -rf "$root.partial"
    echo "building $root with debootstrap from $mirror (about 30 s) ..." >&2
    debootstrap --variant=minbase bookworm "$root.partial" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # apt's caches are not part of what a container ships; drop them to keep the tree small.
    rm -rf "$root.partial/var/cache/apt/archives/"*.deb
    touch "$root.partial/.complete"
    rm -rf "$root"
    mv "$root.partial" "$root"
  fi
fi
if [ "${1:-}" = "--print-path" ]; then echo "$root"; fi
