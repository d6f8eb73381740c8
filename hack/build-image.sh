#!/usr/bin/env bash
# make image: the operator's image from the repository's Dockerfile, on a machine with no container
# registry. Steps: the Docker engine (hack/docker-engine.sh), the base image from Debian packages
# (hack/base-image.sh), the wheels of the dependencies and of the operator (build/wheels), docker
# build, the image as an OCI layout (build/image, by skopeo), its SBOM in CycloneDX (build/sbom.cdx.json,
# by syft), and a report of its size and packages (build/image.json). Prints the image reference last.
#
# Environment: PYTHON (the interpreter whose pip makes the wheels; default .venv/bin/python).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=versions.env
source "$here/versions.env"
cd "$repo"
python=${PYTHON:-.venv/bin/python}
start=$(date +%s)

# An engine this script starts, it stops again on the way out (one already running is left alone).
if [ "$(bash "$here/docker-engine.sh" start)" = started ]; then
  trap 'bash "$here/docker-engine.sh" stop' EXIT
fi
base=$(bash "$here/base-image.sh" | tail -1)
syft=$(bash "$here/build-go-tool.sh" syft github.com/anchore/syft/cmd/syft "$SYFT_VERSION" 4 | tail -1)

version=$(awk -F'"' '/^version = / { print $2; exit }' operator/pyproject.toml)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
image="aifactory-operator:${version}-${commit}"

rm -rf build/wheels build/image
mkdir -p build/wheels/pip build/wheels/dependencies build/wheels/operator
"$python" -m pip wheel --quiet --wheel-dir build/wheels/dependencies ./operator
rm -rf operator/build  # setuptools' staging copy of the sources, not needed after the wheel
"$python" -m pip download --quiet --no-deps --dest build/wheels/pip pip
# The operator's own wheel apart: the dependencies' layer is then reused until one of them changes.
mv build/wheels/dependencies/aifactory_operator-*.whl build/wheels/operator/
docker build --quiet --build-arg "BASE_IMAGE=$base" --tag "$image" --tag aifactory-operator:latest . >/dev/null

skopeo copy --quiet "docker-daemon:$image" "oci:build/image:${version}-${commit}"
"$syft" scan --quiet "oci-dir:build/image" --output "cyclonedx-json=build/sbom.cdx.json" \
  --source-name aifactory-operator --source-version "${version}-${commit}"

"$python" "$here/image_report.py" "$image" "$base" build/sbom.cdx.json "$(( $(date +%s) - start ))" \
  >build/image.json
cat build/image.json >&2
echo "$image"
