#!/usr/bin/env bash
# Builds a real node's binaries from Go modules into a cache folder keyed by the pinned versions:
# kubelet and kube-proxy at KUBE_VERSION (from the same tools-module recipe as the control plane,
# reusing its go.mod) and containerd and ctr at CONTAINERD_VERSION (through build-go-tool.sh).
# runc and the CNI plugins come from Debian (apt-get install runc containernetworking-plugins).
# Prints the folder on its last line of stdout.
#
# Usage: build-node-binaries.sh [--check]
#   --check   print the folder and exit 0 if everything is built, exit 1 otherwise (no Go needed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

check=false
for arg in "$@"; do
  case "$arg" in
    --check) check=true ;;
    *) echo "error: unknown argument $arg; usage: build-node-binaries.sh [--check]" >&2; exit 2 ;;
  esac
done

kube=$KUBE_VERSION
cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
out="$cache_root/bin/node-k8s-${kube}_containerd-${CONTAINERD_VERSION}"
binaries=(kubelet kube-proxy containerd ctr containerd-shim-runc-v2 pause)

is_complete() {
  [ -f "$out/.stamp" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$out/$b" ] || return 1; done
}

if is_complete; then
  echo "$out"
  exit 0
fi
if $check; then
  exit 1
fi

# The control plane's tools module already resolves k8s.io/kubernetes and its staging modules.
control_plane=$(AIFACTORY_KUBE=current bash "$here/build-binaries.sh" | tail -n 1)
mkdir -p "$out"
log="$out/build.log"
: >"$log"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
start=$(date +%s)

module="$out/k8snode"
mkdir -p "$module"
sed 's#^module .*#module aifactory.dev/hack/k8snode#' "$control_plane/k8sbin/go.mod" >"$module/go.mod"
cp "$control_plane/k8sbin/go.sum" "$module/go.sum"
cat >"$module/tools.go" <<'GO'
//go:build tools

// Package k8snode pins the node commands so that `go mod tidy` records every module they need.
package k8snode

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
(cd "$module" && go mod tidy >>"$log" 2>&1) || { echo "error: go mod tidy failed; see $log" >&2; tail -n 15 "$log" >&2; exit 1; }

# shellcheck source=kube-ldflags.sh
source "$here/kube-ldflags.sh"
kube_ldflags=$(kube_ldflags "$kube")

for cmd in kubelet kube-proxy; do
  [ -x "$out/$cmd" ] && continue  # a build interrupted after this binary resumes here
  began=$(date +%s)
  echo "building $cmd ${kube} (log: $log)" >&2
  (cd "$module" && go build -v -trimpath -ldflags "$kube_ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd" >>"$log" 2>&1) \
    || { echo "error: building $cmd failed; see $log" >&2; tail -n 15 "$log" >&2; exit 1; }
  echo "built $cmd in $(( $(date +%s) - began ))s" >&2
done

# containerd has no replace directives: `go install` at the pinned version, cached by build-go-tool.sh.
for cmd in containerd ctr containerd-shim-runc-v2; do
  [ -x "$out/$cmd" ] && continue
  built=$(bash "$here/build-go-tool.sh" "$cmd" "github.com/containerd/containerd/v2/cmd/$cmd" "$CONTAINERD_VERSION" 5 | tail -n 1)
  cp "$built" "$out/$cmd"
done

if [ ! -x "$out/pause" ]; then
  (cd "$here/pause" && go build -trimpath -ldflags "-s -w" -o "$out/pause" . >>"$log" 2>&1) \
    || { echo "error: building pause failed; see $log" >&2; tail -n 15 "$log" >&2; exit 1; }
fi

printf 'kube=%s containerd=%s built_seconds=%s\n' "$kube" "$CONTAINERD_VERSION" "$(( $(date +%s) - start ))" >"$out/.stamp"
echo "built the node binaries in $(( $(date +%s) - start ))s into $out" >&2
echo "$out"
