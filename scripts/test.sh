#!/usr/bin/env bash
# `npm test`: install what is missing, build, typecheck, lint, then every unit
# and integration test (integration tests need root: they make namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node scripts/build.mjs
node_modules/.bin/tsc -p tsconfig.json --noEmit
node_modules/.bin/eslint .
# Node-level variables from the caller must not leak into timings or plugins.
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
# One file at a time: integration tests share the machine's kernel.
exec node_modules/.bin/node --test --test-concurrency=1 ${TEST_FILES:-'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'}
