#!/usr/bin/env bash
# The set-up behind `npm run demo` and `npm test`, then the command itself:
#   bash scripts/setup.sh CMD [ARG...]
# It depends on nothing but bash and the node/npm that ran it, because on a fresh clone there are no
# node_modules yet. Each step checks first and prints what it installs; when everything is there it
# costs a second or two and prints one line.
#   1. Debian packages (scripts/install-deps.sh)
#   2. Node.js: this Node when it is a supported release (22 or newer); otherwise Node $NODE_VERSION
#      from the npm registry's `node` package (which ships the binary) into ~/.cache/hm9k, put first
#      on the PATH for CMD. HM9K_SYSTEM_NODE=1 keeps this Node whatever its version.
#   3. node_modules: `npm ci` when they are missing or older than package-lock.json
#   4. the Go-built kube-apiserver, etcd, helm (and kubectl when the machine has none) in
#      ~/.cache/hm9k/bin (scripts/build-tools.sh)
# HM9K_SKIP_SETUP=1 skips all of it (a prepared image or a developer who manages the tools by hand).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${HM9K_CACHE:-$HOME/.cache/hm9k}
NODE_VERSION=${HM9K_NODE_VERSION:-22.23.3}
MIN_NODE_MAJOR=22
say() { printf '[setup] %s\n' "$*" >&2; }

if [ "${HM9K_SKIP_SETUP:-}" != 1 ]; then
  # 1. Debian packages (a dpkg query each when present).
  HM9K_QUIET=1 bash "$ROOT/scripts/install-deps.sh" >&2

  # 2. Node.js.
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt "$MIN_NODE_MAJOR" ] && [ "${HM9K_SYSTEM_NODE:-}" != 1 ]; then
    prefix=$CACHE/node-$NODE_VERSION
    if ! "$prefix/node_modules/.bin/node" --version >/dev/null 2>&1; then
      say "Node $(node --version) is past its end of life (hm9k supports Node >= $MIN_NODE_MAJOR);"
      say "installing Node $NODE_VERSION from the npm registry's 'node' package into $prefix"
      mkdir -p "$prefix"
      npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >&2
    fi
    export PATH="$prefix/node_modules/.bin:$PATH"
  fi

  # 3. node_modules (npm writes node_modules/.package-lock.json on every install).
  if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    say "installing node_modules (npm ci, Node $(node --version))"
    (cd "$ROOT" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2)
  fi

  # 4. Go-built binaries (each one a file test when cached).
  HM9K_QUIET=1 bash "$ROOT/scripts/build-tools.sh" all >&2

  say "ready: Debian packages, Node $(node --version), node_modules, Go-built tools in $CACHE/bin"
fi

[ $# -gt 0 ] || exit 0
cd "$ROOT"
exec "$@"
