#!/usr/bin/env bash
# Builds helm (the version pinned in versions.env) from its Go module into the cache, unless it is
# there. Prints the binary's path on its last line of stdout. Works offline once built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
exec bash "$here/build-go-tool.sh" helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" 2
