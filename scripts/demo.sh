#!/usr/bin/env bash
# `npm run demo [-- --keep]`: the suite on its embedded default, in fresh
# network namespaces (needs root). Installs what is missing and builds when
# the executable is older than the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
if [ ! -x dist/bin/cattle-cni ] || [ -n "$(find main.ts entries.ts lib plugins ipam metadata cli cniglue native/cattle_native.c conf-examples/schemas -newer dist/bin/cattle-cni -print -quit 2>/dev/null)" ]; then
  node scripts/build.mjs
fi
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
exec node_modules/.bin/node scripts/demo.ts "$@"
