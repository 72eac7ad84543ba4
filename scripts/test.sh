#!/usr/bin/env bash
# The whole test suite, as the README's `npm test` and CI run it: the build, the type check of
# test/, then every vitest project on this machine's Node (unit; integration under the native,
# WASM and node:crypto providers; Bun and Deno inside the native one), then the unit and
# integration:node suites on Node 22, 24 and 26 (scripts/node-versions.sh). Options (a
# reporter, say) go to every vitest run. `npm run test:here` is the first part alone.
# The last line is the sum over all the runs: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
npx tsc -p tsconfig.test.json

REVTUN_TEST_TALLY="$(mktemp)"
export REVTUN_TEST_TALLY
total() {
  awk '{ p += $1; f += $3; s += $5; n++ } END { if (n > 1) printf "\nall %d runs: %d passed, %d failed, %d skipped\n%d passed, %d failed, %d skipped\n", n, p, f, s, p, f, s }' "$REVTUN_TEST_TALLY"
  rm -f "$REVTUN_TEST_TALLY"
}
trap total EXIT
npx vitest run "$@"
bash scripts/node-versions.sh test "$@"
