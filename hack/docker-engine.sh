#!/usr/bin/env bash
# The Docker engine `make image` builds with: Debian's docker.io (no engine is preinstalled here).
#
# Usage: docker-engine.sh start   installs the system packages the image and bundle need when they
#                                 are missing (docker.io, debootstrap, skopeo, strace, and runc,
#                                 containernetworking-plugins, iptables for the real node; root), starts dockerd
#                                 unless an engine answers; prints "started" or "running".
#        docker-engine.sh stop    stops the dockerd this script started, and only that one.
set -euo pipefail

cache_root=${AIFACTORY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aifactory}
pidfile=/run/aifactory-dockerd.pid
packages=(docker.io debootstrap skopeo strace runc containernetworking-plugins iptables)

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v skopeo >/dev/null || missing+=(skopeo)
  command -v strace >/dev/null || missing+=(strace)  # the air-gap test traces connections
  # The real node of tests/e2e/test_real_node.py (docs/real-node.md).
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "error: installing ${missing[*]} needs root (apt-get)" >&2; exit 1; }
  echo "installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

case "${1:-}" in
  start)
    install_packages
    if docker info >/dev/null 2>&1; then
      echo running
      exit 0
    fi
    mkdir -p "$cache_root"
    # Detached from the caller's session, so make does not wait on it; stopped by `stop`.
    setsid dockerd --pidfile "$pidfile" >"$cache_root/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 120); do
      docker info >/dev/null 2>&1 && { echo started; exit 0; }
      sleep 0.5
    done
    echo "error: dockerd did not answer within 60s; see $cache_root/dockerd.log" >&2
    tail -20 "$cache_root/dockerd.log" >&2
    exit 1
    ;;
  stop)
    [ -s "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *)
    echo "usage: docker-engine.sh start|stop" >&2
    exit 2
    ;;
esac
