#!/usr/bin/env bash
# `npm run bench`: start-up, bridge, ptp and IPAM numbers side by side with the
# Go reference plugins, in one run; writes docs/BENCHMARKS.md.
# Runs inside a fresh "host" network namespace so plugins never touch the
# machine's own network; NODE_EXTRA_CA_CERTS is unset (it adds 30–50 ms to
# every Node start).
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs what the benchmarks need and rebuilds a stale executable (the same
# rule as npm run demo, in ensure-deps.sh).
bash scripts/ensure-deps.sh bench
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
host="ccni-bench-$$"
ip netns add "$host"
trap 'ip netns del "$host" 2>/dev/null || true' EXIT
ip netns exec "$host" ip link set lo up
BENCH_HOST_NETNS="$host" ip netns exec "$host" node_modules/.bin/node scripts/bench.ts "$@"
