#!/usr/bin/env bash
# Installs what revtun's demo and tests need on a fresh Debian/Ubuntu machine: OpenSSH's server
# and tools, Dropbear, the test proxies (tinyproxy, dante, microsocks) and the key tools (puttygen,
# openssl, keytool), a Kerberos KDC with its tools (krb5-kdc, krb5-admin-server, krb5-user)
# and the disassemblers wabt and binutils from the distribution, Debian's rustc with its wasm32 standard library
# (unless rustup already has that target), AsyncSSH and pyOpenSSL from PyPI (a foreign test
# peer), then the npm packages, the native crypto addon, the WASM module and the russh test
# server (another foreign peer). Safe to run again. REVTUN_STRICT_BUILD=1 (CI) makes a failed Rust build fatal;
# otherwise revtun falls back to the providers that did build (and russh.test.ts fails).
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup's toolchain first: Debian's cargo (installed below for the WASM build) is too old for
# the native addon, and a non-login shell may not have ~/.cargo/bin on PATH.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
[ -x /usr/sbin/dropbear ] || need+=(dropbear-bin)
# Real proxies for the proxy tests: HTTP CONNECT, SOCKS4/5, SOCKS5 with a password; nc for ProxyCommand.
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)
[ -x /usr/sbin/danted ] || need+=(dante-server)
command -v microsocks >/dev/null 2>&1 || need+=(microsocks)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
# ip: the jump-host tests put their target in a network namespace behind a veth pair.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# Key stores made by the tools people make them with: puttygen for .ppk files, openssl for
# PKCS#12 (openssl pkcs12 -export), Java's keytool for a PKCS#12 holding several keys.
command -v puttygen >/dev/null 2>&1 || need+=(putty-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v keytool >/dev/null 2>&1 || need+=(default-jre-headless)
# A throwaway Kerberos realm for the GSSAPI tests (test/helpers/kdc.ts): the KDC, its database
# tools (kdb5_util, kadmin.local), kinit, and MIT's GSSAPI library that the addon loads.
[ -x /usr/sbin/krb5kdc ] || need+=(krb5-kdc)
[ -x /usr/sbin/kadmin.local ] || need+=(krb5-admin-server)
command -v kinit >/dev/null 2>&1 || need+=(krb5-user)
ls /usr/lib/*/libgssapi_krb5.so.2 >/dev/null 2>&1 || need+=(libgssapi-krb5-2)
# Disassemblers for test/unit/crypto/kem-constant-time.test.ts, which checks that the compiled
# KEMs hold no division instruction: wabt's wasm-objdump for the WASM module, binutils' objdump
# for the native addon.
command -v wasm-objdump >/dev/null 2>&1 || need+=(wabt)
command -v objdump >/dev/null 2>&1 || need+=(binutils)
if ! { command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; }; then
  [ -x /usr/bin/rustc ] || need+=(rustc)
  [ -x /usr/bin/cargo ] || need+=(cargo)
  [ -d /usr/lib/rustlib/wasm32-unknown-unknown ] || need+=(libstd-rust-dev-wasm32)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's dropbear-bin, tinyproxy, dante-server and krb5 packages may enable system services;
# the tests start their own, on ports of their own.
if command -v systemctl >/dev/null 2>&1; then
  for service in dropbear tinyproxy danted krb5-kdc krb5-admin-server; do
    systemctl is-enabled "$service" >/dev/null 2>&1 && systemctl disable --now "$service" >/dev/null 2>&1 || true
  done
fi

# AsyncSSH (PyPI) is the foreign peer for the legacy ciphers and MACs in the interop tests, and
# with pyOpenSSL it serves the X.509 host certificates (RFC 6187) of x509-hostkeys.test.ts.
pip_install() {
  # A plain pip install, or past Debian's externally-managed marker, or Debian's own package ($2).
  # --upgrade: an older copy may be there already (Debian's python3-openssl 23, pulled in by
  # another package, does not work with the cryptography that AsyncSSH brings from PyPI).
  python3 -m pip install --quiet --upgrade --disable-pip-version-check --root-user-action=ignore "$1" 2>/dev/null \
    || python3 -m pip install --quiet --upgrade --disable-pip-version-check --root-user-action=ignore --break-system-packages "$1" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
if ! python3 -c 'import asyncssh' >/dev/null 2>&1; then
  echo "setup: installing asyncssh from PyPI"
  pip_install asyncssh python3-asyncssh
fi
if ! python3 -c 'import OpenSSL.crypto' >/dev/null 2>&1; then
  echo "setup: installing pyOpenSSL from PyPI"
  pip_install pyOpenSSL python3-openssl
fi

# `npm install` follows package-lock.json; `npm ci` is avoided because some npm 11 setups
# (omit-lockfile-registry-resolved) reject a lock file without every optional platform package.
# revtun has no install script (users get the addon prebuilt, see npm/); the tests' addon is
# built just below, and scripts/pack-all.mjs (test/integration/install.test.ts) reuses that build.
npm install --no-audit --no-fund

strict=()
[ "${REVTUN_STRICT_BUILD:-0}" = 1 ] && strict=(--strict)
node scripts/build-native.mjs "${strict[@]}"
if ! bash scripts/build-wasm.sh; then
  [ "${REVTUN_STRICT_BUILD:-0}" = 1 ] && exit 1
  echo "setup: WASM crypto core not built; revtun will use the native or node:crypto provider" >&2
fi

# The russh server (test/peers/russh-server, a Cargo package outside the root workspace) is
# the integration tests' strictest foreign peer; russh 0.65 needs Rust 1.89 or later.
if ! cargo build --release --locked --manifest-path test/peers/russh-server/Cargo.toml; then
  [ "${REVTUN_STRICT_BUILD:-0}" = 1 ] && exit 1
  echo "setup: the russh test server did not build; test/integration/russh.test.ts will fail" >&2
fi
