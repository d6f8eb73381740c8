#!/usr/bin/env bash
# Makes the operator's base image from Debian packages, since no container registry is reachable:
# debootstrap (minbase) of DEBIAN_SUITE with python3, trimmed of documentation and apt's caches
# (dpkg's database stays, so the SBOM lists every package), imported into the local Docker engine.
# The root filesystem is cached as a tarball keyed by the suite and this script, so a fresh Docker
# engine imports it again without debootstrap. Prints the image reference on its last line of stdout.
#
# Needs root, debootstrap and a running dockerd (hack/docker-engine.sh starts one).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
packages=python3,libpython3.11-stdlib
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

key=$(cat "$0" "$here/versions.env" | sha256sum | cut -c1-12)
image="aifactory-base:${DEBIAN_SUITE}-${key}"
cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
rootfs_tar="$cache_root/base/${DEBIAN_SUITE}-${key}.tar"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
if [ ! -s "$rootfs_tar" ]; then
  command -v debootstrap >/dev/null || { echo "error: debootstrap is missing; apt-get install debootstrap" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "error: debootstrap needs root" >&2; exit 1; }
  mkdir -p "$cache_root/base"
  work=$(mktemp -d "$cache_root/base/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  start=$(date +%s)
  echo "debootstrap $DEBIAN_SUITE with $packages (about 2 minutes; log: $cache_root/base/debootstrap.log)" >&2
  debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$work/root" "$mirror" \
    >"$cache_root/base/debootstrap.log" 2>&1 || { tail -20 "$cache_root/base/debootstrap.log" >&2; exit 1; }
  # What an image never needs at run time: documentation, manuals, locales, apt's lists and caches.
  rm -rf "$work/root"/usr/share/{doc,man,info,locale}/* "$work/root"/var/lib/apt/lists/* \
    "$work/root"/var/cache/apt/* "$work/root"/var/cache/debconf/*-old "$work/root"/var/log/* \
    "$work/root"/tmp/* "$work/root"/root/.??* 2>/dev/null || true
  # The operator's user and group, so that files and processes show a name, not only 10001.
  echo "aifactory:x:10001:10001:aifactory operator:/nonexistent:/usr/sbin/nologin" >>"$work/root/etc/passwd"
  echo "aifactory:x:10001:" >>"$work/root/etc/group"
  # Reproducible archive: sorted names, fixed owner-independent timestamps.
  tar --sort=name --mtime='2026-01-01 00:00:00Z' --numeric-owner -C "$work/root" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  echo "made the base root filesystem in $(( $(date +%s) - start ))s: $rootfs_tar" >&2
fi
docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$rootfs_tar" "$image" >/dev/null
echo "$image"
