#!/usr/bin/env node
// Writes every tarball a release publishes into pack/ (or --out DIR): revtun itself (`npm pack`
// of the root; dist/ must be built, `npm run pack:all` does that first) and the platform package
// of the machine it runs on, npm/<triple>/ with the addon freshly built by
// scripts/build-native.mjs --strict (cargo's release profile, debug info stripped), or with --no-build the
// one already in bindings/ (the install test uses that: a cargo build there would outlast its
// timeout). The other platform packages need their own machine; each is skipped with a line
// saying so.
//
// The platform package is staged in a directory under the output, so packing writes nothing into
// npm/. A small script rather than @napi-rs/cli: see DEVELOPERS.md, "Prebuilt packages".

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { platformTriple } = createRequire(import.meta.url)('../bindings/platform.cjs');
const outIndex = process.argv.indexOf('--out');
const out = resolve(outIndex > 0 ? process.argv[outIndex + 1] : join(root, 'pack'));
const build = !process.argv.includes('--no-build');
const localAddon = join(root, 'bindings', `revtun-core.${process.platform}-${process.arch}.node`);

function fail(message) {
  console.error(`pack:all: ${message}`);
  process.exit(1);
}

/** Runs `command` and returns its stdout; any failure to start or non-zero exit ends pack:all. */
function run(command, args, cwd, { capture = false } = {}) {
  // npm is npm.cmd on Windows, which only a shell can start.
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8', shell: command === 'npm' && process.platform === 'win32' });
  if (result.error) fail(`${command} ${args.join(' ')} (in ${cwd}) could not run: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} (in ${cwd}) exited with ${result.status ?? result.signal}`);
  return result.stdout;
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const main = readJson(join(root, 'package.json'));
const platforms = readdirSync(join(root, 'npm')).map((dir) => ({ dir: join(root, 'npm', dir), triple: dir, manifest: readJson(join(root, 'npm', dir, 'package.json')) }));

// What users install must agree with what is published: revtun names each platform package
// at its own version, and nothing it names is missing from npm/.
for (const { manifest } of platforms) {
  if (manifest.version !== main.version) fail(`${manifest.name} is at ${manifest.version}, revtun at ${main.version}`);
  if (main.optionalDependencies?.[manifest.name] !== main.version) fail(`revtun's optionalDependencies do not name ${manifest.name}@${main.version}`);
}
for (const name of Object.keys(main.optionalDependencies ?? {})) {
  if (!platforms.some(({ manifest }) => manifest.name === name)) fail(`optionalDependencies names ${name}, which has no npm/ directory`);
}
// Without the first two the main tarball would install and then fail at the first connection;
// without the SIMD build it would work at about half the ChaCha20-Poly1305 speed, unnoticed.
for (const file of ['dist/index.js', 'bindings/revtun-core.wasm', 'bindings/revtun-core-simd.wasm']) {
  if (!existsSync(join(root, file))) fail(`${file} is missing (npm run build; npm run build:wasm)`);
}
const host = platformTriple();
if (!build && platforms.some(({ triple }) => triple === host) && !existsSync(localAddon)) {
  fail(`--no-build: ${localAddon} is missing (npm run build:native)`);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
run('npm', ['pack', '--silent', '--pack-destination', out], root);

for (const { dir, triple, manifest } of platforms) {
  if (triple !== host) {
    console.error(`pack:all: skipped ${manifest.name}: it is built on ${triple}, and this is ${host}`);
    continue;
  }
  if (build) run(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--strict'], root);
  const stage = join(out, `.stage-${triple}`);
  mkdirSync(stage);
  for (const file of readdirSync(dir)) copyFileSync(join(dir, file), join(stage, file));
  copyFileSync(localAddon, join(stage, manifest.main));
  // A platform package without its addon installs fine and then fails at the first load, on
  // every user's machine: check the file list npm would publish before writing the tarball.
  const [listing] = JSON.parse(run('npm', ['pack', '--dry-run', '--json'], stage, { capture: true }));
  if (!listing.files.some(({ path }) => path === manifest.main)) fail(`${manifest.name}'s tarball would lack ${manifest.main} (check "files" in ${join(dir, 'package.json')})`);
  run('npm', ['pack', '--silent', '--pack-destination', out], stage);
  rmSync(stage, { recursive: true, force: true });
}
console.error(`pack:all: ${readdirSync(out).join(', ')} in ${out}`);
