#!/usr/bin/env bash
# Builds the WASM crypto core (crates/revtun-wasm) twice: bindings/revtun-core.wasm for any
# engine, and bindings/revtun-core-simd.wasm with WebAssembly SIMD (-C target-feature=+simd128,
# which turns on revtun-core's simd128 ChaCha20 and Poly1305 kernels). Each build has a target
# directory of its own (target/ and target/simd128/) so neither overwrites the other.
#
# Toolchain: rustup's wasm32-unknown-unknown target when it is installed; otherwise Debian's
# rustc 1.63 with libstd-rust-dev-wasm32 and cargo (scripts/setup.sh installs them). Debian's
# cargo 0.66 cannot read crates.io's sparse index, so the newer (rustup) cargo vendors the
# locked dependencies first and the old one builds offline from that copy. Cargo.lock of the
# crate is resolved for Rust 1.63 (CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"   # rustup's cargo before Debian's
crate=$root/crates/revtun-wasm
target=wasm32-unknown-unknown

# build <cargo target dir> <RUSTFLAGS>
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  build() {
    CARGO_TARGET_DIR=$1 RUSTFLAGS=$2 cargo build --manifest-path "$crate/Cargo.toml" --release --locked --target "$target"
  }
else
  for need in /usr/bin/rustc /usr/bin/cargo /usr/lib/rustlib/$target; do
    [ -e "$need" ] || { echo "build-wasm: $need is missing (apt-get install rustc cargo libstd-rust-dev-wasm32)" >&2; exit 1; }
  done
  vendor=$crate/target/vendor
  cargo vendor --quiet --manifest-path "$crate/Cargo.toml" --locked --versioned-dirs "$vendor" >/dev/null
  build() {
    CARGO_TARGET_DIR=$1 RUSTFLAGS=$2 RUSTC=/usr/bin/rustc /usr/bin/cargo build --manifest-path "$crate/Cargo.toml" --release --locked --offline --target "$target" \
      --config "source.crates-io.replace-with='vendored'" --config "source.vendored.directory='$vendor'"
  }
fi
mkdir -p bindings
build "$crate/target" ''
cp "$crate/target/$target/release/revtun_wasm.wasm" bindings/revtun-core.wasm
build "$crate/target/simd128" '-C target-feature=+simd128'
cp "$crate/target/simd128/$target/release/revtun_wasm.wasm" bindings/revtun-core-simd.wasm
for file in bindings/revtun-core.wasm bindings/revtun-core-simd.wasm; do
  echo "build-wasm: $file ($(wc -c < "$file") bytes)" >&2
done
