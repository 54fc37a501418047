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
node_modules/.bin/node --test --test-concurrency=1 "${files[@]}"
# The plugin suites once more, each plugin run handed to a cattle-net agent in
# its host netns (the fast path): both ways must pass.
if [ -z "${TEST_FILES:-}" ] && [ "$(id -u)" = 0 ]; then
  echo "test: the bridge (L3 and L2) and ptp suites again, through the agent's fast path"
  CATTLE_TEST_FASTPATH=1 node_modules/.bin/node --test --test-concurrency=1 test/integration/bridge.test.ts test/integration/bridge-l2.test.ts test/integration/ptp.test.ts
fi
