#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, kwokctl) from Go modules into a cache folder keyed by the pinned versions, so that
# fresh clones and CI reuse one build. Prints the folder on its last line of stdout.
#
# Usage: build-binaries.sh [--compat] [--check]
#   --compat  the oldest supported minor (COMPAT_* in versions.env) instead of the current release;
#             AIFACTORY_KUBE=compat in the environment does the same.
#   --check   print the folder and exit 0 if everything is built, exit 1 otherwise (no Go needed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

line=${AIFACTORY_KUBE:-current}
check=false
for arg in "$@"; do
  case "$arg" in
    --compat) line=compat ;;
    --check) check=true ;;
    *) echo "error: unknown argument $arg; usage: build-binaries.sh [--compat] [--check]" >&2; exit 2 ;;
  esac
done
case "$line" in
  current) kube=$KUBE_VERSION; etcd=$ETCD_VERSION ;;
  compat) kube=$COMPAT_KUBE_VERSION; etcd=$COMPAT_ETCD_VERSION ;;
  *) echo "error: AIFACTORY_KUBE=$line; use 'current' or 'compat'" >&2; exit 2 ;;
esac

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
stamp="k8s-${kube}_etcd-${etcd}_kwok-${KWOK_VERSION}"
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
if $check; then
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; install Go >= 1.26 (https://go.dev/doc/install) and run again" >&2
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

# The kubernetes module replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with
# folders of its own repository, so `go install` of its commands fails. A tools module of ours that
# requires it and points each staging module at its published v0.N.P release builds them. The
# module is generated here from the pinned version, so versions.env stays the only place to edit.
write_tools_module() {
  local dir=$1 kube_mod
  kube_mod=$(go mod download -json "k8s.io/kubernetes@${kube}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$kube_mod" ] || { echo "error: cannot read the go.mod of k8s.io/kubernetes@${kube}" >&2; exit 1; }
  local staging_version="v0.${kube#v1.}"
  mkdir -p "$dir"
  {
    echo "module aifactory.dev/hack/k8sbin"
    echo
    # The kubernetes module's own go and godebug lines, so the binaries behave as upstream's do.
    grep -E '^(go|godebug) ' "$kube_mod"
    echo
    echo "require ("
    echo "	go.etcd.io/etcd/server/v3 ${etcd}"
    echo "	k8s.io/kubernetes ${kube}"
    echo ")"
    echo
    echo "replace ("
    awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$kube_mod"
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

// Package k8sbin pins the control-plane commands so that `go mod tidy` records every module they need.
package k8sbin

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$dir" && go mod tidy >>"$log" 2>&1) || { echo "error: go mod tidy failed; see $log" >&2; tail -n 15 "$log" >&2; exit 1; }
}

# shellcheck source=kube-ldflags.sh
source "$here/kube-ldflags.sh"
kube_ldflags=$(kube_ldflags "$kube")

step=0; total=$(( ${#binaries[@]} + 1 ))
module="$out/k8sbin"
step=$((step + 1))
progress "$step" "$total" "the tools module for k8s.io/kubernetes ${kube}"
write_tools_module "$module"
cd "$module"
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

printf 'kube=%s etcd=%s kwok=%s built_seconds=%s\n' "$kube" "$etcd" "$KWOK_VERSION" "$(( $(date +%s) - start ))" >"$out/.stamp"
echo "built control plane ${kube} in $(( $(date +%s) - start ))s into $out" >&2
echo "$out"
