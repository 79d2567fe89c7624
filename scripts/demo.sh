#!/bin/sh
# The README's first command runs this after setup. Until the local cluster lands it walks
# through what exists: validating the bundled mesh, the workload API it becomes, and
# authorization decisions explained.
set -eu
cd "$(dirname "$0")/.."
ambit() { node bin/ambit.js "$@"; }
step() { printf '\n\033[1m$ ambit %s\033[0m\n' "$*"; }

step validate -f examples/demo
ambit validate -f examples/demo
step x workload-api -f examples/demo --kind authorizations
ambit x workload-api -f examples/demo --kind authorizations
step authz check -f examples/demo --from demo/client-0 --to demo/echo:80
ambit authz check -f examples/demo --from demo/client-0 --to demo/echo:80 || true
step authz check -f examples/demo --from legacy/outsider --to demo/echo:80
ambit authz check -f examples/demo --from legacy/outsider --to demo/echo:80 || true
