#!/usr/bin/env bash
# Installs what revtun's demo and tests need on a fresh Debian/Ubuntu machine: OpenSSH's
# server and tools from the distribution, then the npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# `npm install` follows package-lock.json; `npm ci` is avoided because some npm 11 setups
# (omit-lockfile-registry-resolved) reject a lock file without every optional platform package.
npm install --no-audit --no-fund
