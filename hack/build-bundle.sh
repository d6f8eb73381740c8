#!/usr/bin/env bash
# make bundle: the air-gap bundle (docs/air-gap.md) from what make image left in build/ (the OCI
# layout and the SBOM), the packaged chart and the CRDs. Prints the bundle's path last.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=versions.env
source "$here/versions.env"
cd "$repo"
helm=$(bash "$here/build-helm.sh" | tail -1)
version=$(awk -F'"' '/^version = / { print $2; exit }' operator/pyproject.toml)
rm -rf build/chart
"$helm" package charts/aifactory-operator --destination build/chart >/dev/null
out="build/aifactory-bundle-${version}.tar"
.venv/bin/aifactory bundle write --chart build/chart/aifactory-operator-*.tgz --out "$out" \
  --version "operator=$version" --version "kubernetes=$KUBE_VERSION" --version "debian=$DEBIAN_SUITE" \
  --version "syft=$SYFT_VERSION" >&2
echo "$out"
