#!/usr/bin/env bash
# `npm test`: install what is missing, build, typecheck, lint, then every unit
# and integration test (integration tests need root: they make namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node scripts/build.mjs
node_modules/.bin/tsc -p tsconfig.json --noEmit
npm run --silent lint
# Node-level variables from the caller must not leak into timings or plugins.
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
files=('test/unit/**/*.test.ts' 'test/integration/**/*.test.ts')
if [ -n "${TEST_FILES:-}" ]; then
  read -ra files <<< "$TEST_FILES"
elif [ "$(id -u)" != 0 ]; then
  echo "test: not root: integration tests skipped (they make network namespaces); unit tests only"
  files=('test/unit/**/*.test.ts')
fi
# One file at a time: integration tests share the machine's kernel. Globs are
# expanded by node's test runner, not the shell.
exec node_modules/.bin/node --test --test-concurrency=1 "${files[@]}"
