// Loader for the revtun-core Node-API addon. Two places may hold it, tried in this order:
//
// 1. a local build, bindings/revtun-core.<platform>-<arch>.node, made by `npm run build:native`
//    (scripts/build-native.mjs) in a clone or in node_modules/revtun. Nothing installs this file
//    (revtun has no install script), so when it is there someone built it on purpose: it wins;
// 2. the prebuilt platform package for this process, @revtun/core-<platform>-<arch>[-<abi>]
//    (npm/*/package.json; `npm install revtun` installs the one whose os, cpu and libc match,
//    as an optional dependency), if it is at revtun's own version.
//
// The exports are the addon's, with a non-enumerable `loadedFrom` naming where it came from
// (the local file's name, or the package name), for the crypto provider's log line. When neither
// loads, the error says why each one failed; ts/crypto/select.ts then moves on to WASM.
'use strict';
const path = require('node:path');
const { platformTriple } = require('./platform.cjs');

/** The first line of an error's message. */
function firstLine(error) {
  return String((error && error.message) || error).split('\n')[0];
}

/** The local build, or the reason it cannot be used ("not built" when the file is absent). */
function loadLocal(localFile) {
  try {
    return { binding: require(path.join(__dirname, localFile)) };
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(localFile)) return { reason: 'not built' };
    return { reason: firstLine(error) };
  }
}

/**
 * The platform package, or the reason it cannot be used. It is "not installed" only when its
 * package.json cannot be found: a package that is there but lacks its .node (published without
 * its binary) or cannot load must say so, or its user is told to install what they have.
 */
function loadPackage(packageName) {
  let manifest;
  try {
    manifest = require(`${packageName}/package.json`);
  } catch (error) {
    if (error && error.code === 'MODULE_NOT_FOUND') return { reason: 'not installed' };
    return { reason: firstLine(error) };
  }
  // A platform package of another release may not match this JavaScript (the addon's exports
  // change between versions); npm installs the exact version revtun names, so a mismatch means a
  // hand-made or stale node_modules.
  const ownVersion = ownPackageVersion();
  if (ownVersion !== undefined && manifest.version !== ownVersion) return { reason: `refused: it is version ${manifest.version}, revtun is ${ownVersion}` };
  try {
    return { binding: require(packageName) };
  } catch (error) {
    return { reason: firstLine(error) };
  }
}

/** revtun's version; undefined if its package.json is not beside bindings/ (a bundled copy), when npm's exact pin is all there is. */
function ownPackageVersion() {
  try {
    return require('../package.json').version;
  } catch {
    return undefined;
  }
}

function load() {
  // For testing and measuring what revtun does on a machine without the addon.
  if (process.env.REVTUN_NATIVE === '0') {
    const error = new Error('hidden by REVTUN_NATIVE=0');
    error.code = 'REVTUN_NO_NATIVE_CORE';
    throw error;
  }
  const triple = platformTriple();
  const packageName = `@revtun/core-${triple}`;
  const localFile = `revtun-core.${process.platform}-${process.arch}.node`;
  const localSource = `bindings/${localFile} (local build)`;
  const local = loadLocal(localFile);
  if (local.binding) return withSource(local.binding, localSource);
  const prebuilt = loadPackage(packageName);
  if (prebuilt.binding) return withSource(prebuilt.binding, packageName);
  const why =
    local.reason === 'not built' && prebuilt.reason === 'not installed'
      ? `no prebuilt package for ${triple} and no local build`
      : `bindings/${localFile}: ${local.reason}; ${packageName}: ${prebuilt.reason}`;
  // This ends in the crypto provider's fallback log line: point its reader at what to do.
  const error = new Error(`${why} (see "Installing" in revtun's README)`);
  error.code = 'REVTUN_NO_NATIVE_CORE';
  throw error;
}

function withSource(binding, source) {
  Object.defineProperty(binding, 'loadedFrom', { value: source, enumerable: false });
  return binding;
}

module.exports = load();
