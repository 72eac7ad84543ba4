#!/bin/sh
# Builds the probe addon and puts it where bench/relay-probe.mjs loads it: bench/native-probe/probe.node.
set -e
cd "$(dirname "$0")"
cargo build --release
cp target/release/librevtun_native_probe.so probe.node.tmp
mv probe.node.tmp probe.node
