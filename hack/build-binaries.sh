#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, kwokctl) from Go modules into a cache folder keyed by the pinned versions, so that
# fresh clones and CI reuse one build. Prints the folder on its last line of stdout.
# With --check: prints the folder and exits 0 if everything is built, exits 1 otherwise (no Go needed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
stamp="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
out="$cache_root/bin/$stamp"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl)

is_complete() {
  [ -f "$out/.stamp" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$out/$b" ] || return 1; done
}

if is_complete; then
  echo "$out"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; install Go >= 1.24 (https://go.dev/doc/install) and run again" >&2
  exit 1
fi

mkdir -p "$out"
log="$out/build.log"
: >"$log"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
start=$(date +%s)

progress() { # step total name
  printf '[%s/%s] building %s (%ss elapsed; log: %s)\n' "$1" "$2" "$3" "$(( $(date +%s) - start ))" "$log" >&2
}

# Runs a go command and prints a heartbeat with the number of packages compiled so far, so a
# 20-minute cold build never looks hung.
run_go() {
  local name=$1; shift
  ( "$@" >>"$log" 2>&1 ) &
  local pid=$!
  local ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    if [ $((ticks % 30)) -eq 0 ] && kill -0 "$pid" 2>/dev/null; then
      printf '      %s: %s packages compiled so far, %ss elapsed\n' "$name" "$(grep -c '^[a-z]' "$log" || true)" "$(( $(date +%s) - start ))" >&2
    fi
  done
  if ! wait "$pid"; then
    echo "error: building $name failed; see $log (last lines below)" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
}

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kube_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${minor} \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"

step=0; total=${#binaries[@]}
cd "$here/k8sbin"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  step=$((step + 1))
  [ -x "$out/$cmd" ] && continue  # a build interrupted after this binary resumes here
  progress "$step" "$total" "$cmd"
  run_go "$cmd" go build -v -trimpath -ldflags "$kube_ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
step=$((step + 1))
if [ ! -x "$out/etcd" ]; then
  progress "$step" "$total" etcd
  run_go etcd go build -v -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
fi

# KWOK has no replace directives, so it installs directly and keeps its own k8s.io requirements.
for cmd in kwok kwokctl; do
  step=$((step + 1))
  [ -x "$out/$cmd" ] && continue
  progress "$step" "$total" "$cmd"
  run_go "$cmd" env GOBIN="$out" GOFLAGS= go install -v -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$cmd@${KWOK_VERSION}"
done

printf 'kube=%s etcd=%s kwok=%s built_seconds=%s\n' "$KUBE_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" "$(( $(date +%s) - start ))" >"$out/.stamp"
echo "built control plane in $(( $(date +%s) - start ))s into $out" >&2
echo "$out"
