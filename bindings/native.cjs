// Loader for the revtun-core Node-API addon. Two places may hold it, tried in this order:
//
// 1. the prebuilt platform package for this process, @revtun/core-<platform>-<arch>[-<abi>]
//    (npm/*/package.json; `npm install revtun` installs the one whose os, cpu and libc match,
//    as an optional dependency);
// 2. a local build, bindings/revtun-core.<platform>-<arch>.node, made by `npm run build:native`
//    (scripts/build-native.mjs) in a clone or in node_modules/revtun.
//
// The exports are the addon's, with a non-enumerable `loadedFrom` naming where it came from
// (the package name, or the local file's name), for the crypto provider's log line. When neither
// loads, the error says why each one failed; ts/crypto/select.ts then moves on to WASM.
'use strict';
const path = require('node:path');
const { platformTriple } = require('./platform.cjs');

/** Why a require failed, in one line: "not installed" when it is the module itself that is missing. */
function reasonFor(error, request) {
  if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(request)) return 'not installed';
  return String((error && error.message) || error).split('\n')[0];
}

function load() {
  const triple = platformTriple();
  const packageName = `@revtun/core-${triple}`;
  const localFile = `revtun-core.${process.platform}-${process.arch}.node`;
  const tried = [
    [packageName, () => require(packageName)],
    [`bindings/${localFile} (local build)`, () => require(path.join(__dirname, localFile))],
  ];
  const failures = [];
  for (const [source, attempt] of tried) {
    try {
      const binding = attempt();
      Object.defineProperty(binding, 'loadedFrom', { value: source, enumerable: false });
      return binding;
    } catch (error) {
      failures.push({ source, reason: reasonFor(error, source === packageName ? packageName : localFile) });
    }
  }
  const [prebuilt, local] = failures;
  const error = new Error(
    prebuilt.reason === 'not installed' && local.reason === 'not installed'
      ? `no prebuilt package for ${triple} and no local build`
      : `${packageName}: ${prebuilt.reason}; bindings/${localFile}: ${local.reason}`,
  );
  error.code = 'REVTUN_NO_NATIVE_CORE';
  throw error;
}

module.exports = load();
