#!/usr/bin/env node
// Builds the native (Node-API) crypto core from source: cargo build of crates/revtun-napi,
// then a copy into bindings/, where bindings/native.cjs finds it when no prebuilt
// @revtun/core-* package is installed. Run by `npm run build:native` (with --strict),
// scripts/setup.sh and scripts/pack-all.mjs; `npm install` no longer runs it. Without a Rust
// toolchain, or when the build fails, it says so and exits 0 (1 with `--strict`).

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');

function giveUp(reason) {
  console.error(`revtun: native crypto core not built (${reason}); the WASM or node:crypto provider will be used`);
  process.exit(strict ? 1 : 0);
}

// rustup's cargo first: a distribution cargo on PATH may be too old for napi-rs and ring.
const rustupBin = join(homedir(), '.cargo', 'bin');
if (existsSync(rustupBin)) process.env.PATH = `${rustupBin}${delimiter}${process.env.PATH ?? ''}`;
const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (cargo.status !== 0) giveUp('cargo is not installed');

const build = spawnSync('cargo', ['build', '--release', '--locked', '-p', 'revtun-napi'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) giveUp(`cargo build exited with ${build.status}`);

const library = { linux: 'librevtun_napi.so', darwin: 'librevtun_napi.dylib', win32: 'revtun_napi.dll' }[process.platform];
const built = library && join(root, 'target', 'release', library);
if (!built || !existsSync(built)) giveUp(`no ${library ?? 'library'} for ${process.platform}`);
mkdirSync(join(root, 'bindings'), { recursive: true });
const target = join(root, 'bindings', `revtun-core.${process.platform}-${process.arch}.node`);
// A copy under another name, then a rename: processes that have the old addon loaded (a test
// run while pack:all builds) keep their mapping of the old file, where writing over it in
// place would change the code under them.
if (!existsSync(target) || !readFileSync(target).equals(readFileSync(built))) {
  const fresh = `${target}.${process.pid}.tmp`;
  copyFileSync(built, fresh);
  renameSync(fresh, target);
}
console.error(`revtun: native crypto core built: ${target}`);
