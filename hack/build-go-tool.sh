#!/usr/bin/env bash
# Builds one Go command from its module at a pinned version into the cache, unless it is there, and
# prints the binary's path on its last line of stdout. Works offline once built.
#
# Usage: build-go-tool.sh NAME PACKAGE VERSION [minutes]
#   e.g.  build-go-tool.sh helm helm.sh/helm/v3/cmd/helm v3.18.6 2
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: build-go-tool.sh NAME PACKAGE VERSION [minutes]" >&2
  exit 2
fi
name=$1 package=$2 version=$3 minutes=${4:-2}

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
out="$cache_root/bin/${name}-${version}"
if [ -x "$out/$name" ]; then
  echo "$out/$name"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; install Go >= 1.24 to build $name $version" >&2
  exit 1
fi
mkdir -p "$out"
rm -rf "$out.tmp"
start=$(date +%s)
echo "building $name $version (about $minutes minutes the first time; log: $out/build.log)" >&2
( CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$out.tmp" go install "${package}@${version}" >"$out/build.log" 2>&1 ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 30
  kill -0 "$pid" 2>/dev/null && echo "      $name: $(( $(date +%s) - start ))s elapsed" >&2
done
if ! wait "$pid"; then
  echo "error: building $name failed; see $out/build.log" >&2
  tail -20 "$out/build.log" >&2
  exit 1
fi
mv "$out.tmp/$(basename "$package")" "$out/$name"
rm -rf "$out.tmp"
echo "built $name $version in $(( $(date +%s) - start ))s" >&2
echo "$out/$name"
