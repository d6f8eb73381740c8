#!/usr/bin/env bash
# Builds hack/kstatus (kstatus from sigs.k8s.io/cli-utils, at the version pinned in its go.mod) into
# the cache, unless the build for the current sources is there. Prints the binary's path as its only
# line of stdout; says on stderr when it builds. Works offline once built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/kstatus"
version=$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$src/go.mod")
if [ -z "$version" ]; then
  echo "error: $src/go.mod does not require sigs.k8s.io/cli-utils" >&2
  exit 1
fi

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
out="$cache_root/bin/kstatus-${version}"
# The folder is named after the library; the stamp also covers our own main.go and go.sum, so that
# editing them rebuilds instead of testing against a stale binary.
sources=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
if [ -x "$out/kstatus" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$sources" ]; then
  echo "$out/kstatus"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; install Go >= 1.24 to build kstatus (cli-utils ${version})" >&2
  exit 1
fi

mkdir -p "$out"
start=$(date +%s)
# -mod=readonly: the committed go.sum must be complete; a build never rewrites it.
if ! (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local \
      go build -mod=readonly -trimpath -ldflags "-s -w" -o "$out/kstatus.tmp" . >"$out/build.log" 2>&1); then
  echo "error: building kstatus failed; see $out/build.log (last lines below)" >&2
  tail -n 15 "$out/build.log" >&2
  exit 1
fi
mv "$out/kstatus.tmp" "$out/kstatus"
echo "$sources" >"$out/.stamp"
echo "built kstatus (cli-utils ${version}) in $(( $(date +%s) - start ))s" >&2
echo "$out/kstatus"
