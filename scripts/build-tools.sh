#!/usr/bin/env bash
# Builds the Go binaries hm9k's tests and demo need (kube-apiserver, etcd 3.5, helm) from
# published Go modules into a cache outside the repository, once. Later runs reuse the cache.
# KUBEBUILDER_ASSETS, when set, supplies kube-apiserver and etcd instead.
set -euo pipefail

K8S_VERSION=${HM9K_K8S_VERSION:-v1.32.13}
ETCD_VERSION=${HM9K_ETCD_VERSION:-v3.5.35}
HELM_VERSION=${HM9K_HELM_VERSION:-v3.19.5}
CACHE=${HM9K_CACHE:-$HOME/.cache/hm9k}
BIN=$CACHE/bin
mkdir -p "$BIN" "$CACHE/build"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

built=
log() { printf '[build-tools] %s\n' "$*" >&2; }
# Called before each build: marks that something was built.
building() { built=1; log "$@"; }

build_kube_apiserver() {
  local out=$BIN/kube-apiserver-$K8S_VERSION
  [ -x "$out" ] && return 0
  local dir=$CACHE/build/k8s-$K8S_VERSION staging=v0.${K8S_VERSION#v1.}
  mkdir -p "$dir"
  building "building kube-apiserver $K8S_VERSION (staging modules $staging); this takes a while on 2 cores"
  (
    cd "$dir"
    # The wrapper module: require k8s.io/kubernetes and point every staging module at its published version.
    local modfile
    modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module hm9k.local/kube-apiserver"
      echo
      echo "go 1.24"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$modfile" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    go mod tidy >/dev/null 2>&1 || true
    go build -trimpath -o "$out.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#v1.}" \
      k8s.io/kubernetes/cmd/kube-apiserver
    mv "$out.tmp" "$out"
  )
}

# kubectl only when the machine has none: the same wrapper module builds it from k8s.io/kubernetes.
build_kubectl() {
  command -v kubectl >/dev/null 2>&1 && return 0
  local out=$BIN/kubectl-$K8S_VERSION
  [ -x "$out" ] && return 0
  build_kube_apiserver
  building "building kubectl $K8S_VERSION (none on the PATH)"
  (
    cd "$CACHE/build/k8s-$K8S_VERSION"
    go build -trimpath -o "$out.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
      k8s.io/kubernetes/cmd/kubectl
    mv "$out.tmp" "$out"
  )
}

build_etcd() {
  local out=$BIN/etcd-$ETCD_VERSION
  [ -x "$out" ] && return 0
  local dir=$CACHE/build/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  building "building etcd $ETCD_VERSION"
  (
    cd "$dir"
    cat > go.mod <<MOD
module hm9k.local/etcd

go 1.23

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    cat > main.go <<'GO'
// Entry point for the published etcd server module (its repository root has replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod tidy >/dev/null
    go build -trimpath -ldflags "-s -w" -o "$out.tmp" .
    mv "$out.tmp" "$out"
  )
}

build_helm() {
  local out=$BIN/helm-$HELM_VERSION
  [ -x "$out" ] && return 0
  building "building helm $HELM_VERSION"
  GOBIN=$CACHE/build/helm-$HELM_VERSION go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$CACHE/build/helm-$HELM_VERSION/helm" "$out"
}

what=${1:-all}
case $what in
  kube-apiserver) build_kube_apiserver ;;
  kubectl) build_kubectl ;;
  etcd) build_etcd ;;
  helm) build_helm ;;
  all)
    if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then build_etcd; build_kube_apiserver; fi
    build_kubectl
    build_helm ;;
  *) echo "usage: $0 [all|kube-apiserver|kubectl|etcd|helm]" >&2; exit 2 ;;
esac
[ -x "$BIN/kube-apiserver-$K8S_VERSION" ] && ln -sf "kube-apiserver-$K8S_VERSION" "$BIN/kube-apiserver"
[ -x "$BIN/etcd-$ETCD_VERSION" ] && ln -sf "etcd-$ETCD_VERSION" "$BIN/etcd"
[ -x "$BIN/helm-$HELM_VERSION" ] && ln -sf "helm-$HELM_VERSION" "$BIN/helm"
[ -x "$BIN/kubectl-$K8S_VERSION" ] && ln -sf "kubectl-$K8S_VERSION" "$BIN/kubectl"
# HM9K_QUIET=1 (scripts/setup.sh): say nothing when everything was cached.
[ "${HM9K_QUIET:-}" = 1 ] && [ -z "$built" ] || log "done: $(ls "$BIN" | tr '\n' ' ')"
