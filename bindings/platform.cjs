// Names this process's platform the way napi-rs names its prebuilt packages (and npm/* here
// does): linux-x64-gnu, linux-x64-musl, darwin-arm64, win32-x64-msvc. Read by native.cjs, to
// find @revtun/core-<triple>, and by scripts/pack-all.mjs, to know which one it can build.
'use strict';

/**
 * This process's platform triple. On Linux the C library decides: a glibc Node reports the
 * glibc it runs on in its diagnostic report, a musl Node (Alpine) reports none.
 * @returns {string}
 */
function platformTriple() {
  if (process.platform === 'linux') return `linux-${process.arch}-${runsOnGlibc() ? 'gnu' : 'musl'}`;
  if (process.platform === 'win32') return `win32-${process.arch}-msvc`;
  return `${process.platform}-${process.arch}`;
}

function runsOnGlibc() {
  const report = process.report;
  // Without Node's diagnostic report, guess glibc, the common case: a wrong guess finds no
  // package and ends at the local build or WASM, never at a library that cannot load.
  if (!report || typeof report.getReport !== 'function') return true;
  // The report lists network handles unless told not to, which can mean reverse DNS lookups.
  const excluded = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    return Boolean(report.getReport().header.glibcVersionRuntime);
  } finally {
    report.excludeNetwork = excluded;
  }
}

module.exports = { platformTriple };
