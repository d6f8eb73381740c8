#!/usr/bin/env bash
# Builds helm (the version pinned in versions.env) from its Go module into the cache, unless it is
# there. Prints the binary's path on its last line of stdout. Works offline once built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
out="$cache_root/bin/helm-${HELM_VERSION}"
if [ -x "$out/helm" ]; then
  echo "$out/helm"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; install Go >= 1.24 to build helm ${HELM_VERSION}" >&2
  exit 1
fi
mkdir -p "$out"
start=$(date +%s)
echo "building helm ${HELM_VERSION} (about 2 minutes the first time; log: $out/build.log)" >&2
( CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$out.tmp" \
    go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >"$out/build.log" 2>&1 ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 30
  kill -0 "$pid" 2>/dev/null && echo "      helm: $(( $(date +%s) - start ))s elapsed" >&2
done
if ! wait "$pid"; then
  echo "error: building helm failed; see $out/build.log" >&2
  tail -20 "$out/build.log" >&2
  exit 1
fi
mv "$out.tmp/helm" "$out/helm"
rmdir "$out.tmp"
echo "built helm ${HELM_VERSION} in $(( $(date +%s) - start ))s" >&2
echo "$out/helm"
