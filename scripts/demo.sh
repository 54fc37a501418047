#!/usr/bin/env bash
# `npm run demo [-- --keep | --clean]`: the suite on its embedded default, in
# fresh network namespaces (needs root). Installs only what the demo needs
# (scripts/ensure-deps.sh demo: nothing under /etc/cni) and rebuilds when the
# sources are newer than the executable. --clean only removes kept demos.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" --clean "*|*" --help "*|*" -h "*) ;;
  *) bash scripts/ensure-deps.sh demo ;;
esac
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
exec node_modules/.bin/node scripts/demo.ts "$@"
