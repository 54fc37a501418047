#!/usr/bin/env bash
# `npm run demo`: build, then exercise the kernel layer in a fresh network
# namespace (netlink self-test) and print what it did. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node scripts/build.mjs
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
host="ccni-demo-host-$$"
pod="ccni-demo-pod-$$"
cleanup() { ip netns del "$host" 2>/dev/null || true; ip netns del "$pod" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$host"
ip netns add "$pod"
echo "[1/2] netlink self-test: veth from netns $host into $pod, addresses, routes, read back, delete"
ip netns exec "$host" dist/bin/cattle-cni netlink-selftest "/var/run/netns/$pod"
echo "[2/2] cleanup: namespaces $host and $pod removed"
