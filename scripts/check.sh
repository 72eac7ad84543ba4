#!/usr/bin/env bash
# `npm run check`: the project's checks of its own code, fastest first, stopping at the first
# that fails. Each step is named and timed, so a slow or failing one is plain to see. What each
# step covers is in DEVELOPERS.md ("Checks"). The API reference (`npm run docs:api`, TypeDoc) is
# a separate step: it takes longer than the rest put together.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "check: $name" >&2
  if ! "$@"; then
    echo "check: FAILED: $name" >&2
    exit 1
  fi
  echo "check: ok: $name ($((SECONDS - start)) s)" >&2
}

# Warm runs are fast: prettier and tsc keep caches in node_modules/.cache (tsc's incremental
# build info checks only what changed since).
cache=node_modules/.cache/revtun-check
mkdir -p "$cache"
step 'prettier (TypeScript, JavaScript, JSON, YAML)' npx prettier --check --cache --log-level warn .
step 'biome lint (ts/, test/)' npx biome lint --error-on-warnings
step 'tsc over ts/' npx tsc -p tsconfig.json --noEmit --incremental --tsBuildInfoFile "$cache/ts.tsbuildinfo"
step 'tsc over test/' npx tsc -p tsconfig.test.json --incremental --tsBuildInfoFile "$cache/test.tsbuildinfo"
step 'cargo fmt (core, data plane, addon)' cargo fmt --all --check
step 'cargo fmt (wasm)' cargo fmt --manifest-path crates/revtun-wasm/Cargo.toml --check
step 'cargo fmt (russh test peer)' cargo fmt --manifest-path test/peers/russh-server/Cargo.toml --check
step 'cargo clippy (core, data plane, addon)' cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
# The WASM crate is plain Rust with a C ABI: rustup's stable compiles it for x86_64 too, which
# is enough for clippy (the wasm32 build itself is Debian's rustc 1.63, scripts/build-wasm.sh).
step 'cargo clippy (wasm)' cargo clippy --manifest-path crates/revtun-wasm/Cargo.toml --all-targets --locked --quiet -- -D warnings
step 'cargo test (core: known answers, RustCrypto backends)' cargo test --release --locked --quiet -p revtun-core
# The addon seals AES-GCM and ChaCha20-Poly1305 with ring: the same packet vectors through it.
step 'cargo test (core: packet vectors, ring backend)' cargo test --release --locked --quiet -p revtun-core --features ring --test packets
# The native data plane's protocol half against an independent peer in memory, and the hostile-stream cases.
step 'cargo test (data plane: framing, windows, re-key gate, hostile streams)' cargo test --release --locked --quiet -p revtun-io
echo "check: all passed (${SECONDS} s)" >&2
