#!/usr/bin/env bash
# Builds the hm9k container image from the Dockerfile (both halves: `hm9k run --apps|--nodes`) with the
# first container engine found (docker, podman), after linting the Dockerfile (dockerfilelint, from
# the npm registry at a pinned version). The release workflow (.github/workflows/release.yml) runs it
# with --push for every tag v<version>.
#   bash scripts/build-image.sh [--push] [--image REPO] [--tag TAG]
# Default: ghcr.io/hm9k/hm9k:<package.json version> (the chart's default image.repository/tag).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=ghcr.io/hm9k/hm9k
TAG=$(node -p 'require("./package.json").version')
PUSH=
while [ $# -gt 0 ]; do
  case $1 in
    --push) PUSH=1 ;;
    --image) IMAGE=$2; shift ;;
    --tag) TAG=$2; shift ;;
    *) echo "usage: $0 [--push] [--image REPO] [--tag TAG]" >&2; exit 2 ;;
  esac
  shift
done

echo "[build-image] linting Dockerfile (dockerfilelint 1.8.0)" >&2
npx --yes dockerfilelint@1.8.0 Dockerfile

ENGINE=$(command -v docker || command -v podman || true)
[ -n "$ENGINE" ] || { echo "[build-image] no container engine (docker or podman) on this machine" >&2; exit 1; }
"$ENGINE" info >/dev/null 2>&1 || { echo "[build-image] $ENGINE cannot reach its daemon/engine" >&2; exit 1; }
echo "[build-image] building $IMAGE:$TAG with $ENGINE" >&2
"$ENGINE" build --pull -t "$IMAGE:$TAG" \
  --label org.opencontainers.image.version="$TAG" \
  --label org.opencontainers.image.revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --label org.opencontainers.image.source=https://github.com/hm9k/hm9k \
  .
if [ -n "$PUSH" ]; then
  echo "[build-image] pushing $IMAGE:$TAG" >&2
  "$ENGINE" push "$IMAGE:$TAG"
fi
