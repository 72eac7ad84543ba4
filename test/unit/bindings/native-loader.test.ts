// bindings/native.cjs's order and its reasons, on copies of the loader in a temporary
// directory laid out as an installed revtun is (node_modules/revtun/bindings next to
// node_modules/@revtun/core-<triple>), with the addon this checkout built as the real thing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../..');
const { platformTriple } = createRequire(import.meta.url)('../../../bindings/platform.cjs') as { platformTriple(): string };
const triple = platformTriple();
const packageName = `@revtun/core-${triple}`;
const localFile = `revtun-core.${process.platform}-${process.arch}.node`;
const builtAddon = join(root, 'bindings', localFile);
const localSource = `bindings/${localFile} (local build)`;
const readme = ` (see "Installing" in revtun's README)`;

let work: string;
let layouts = 0;

/**
 * A fresh node_modules with revtun 0.1.0's loader. `prebuilt` says what the platform package
 * holds: its addon, a file that is no shared library, nothing but its package.json (a package
 * published without its binary), or its addon under another version; `local` whether there is a
 * local build.
 */
function layout(prebuilt: 'none' | 'addon' | 'garbage' | 'no-binary' | 'other-version', local: boolean): string {
  const modules = join(work, `layout-${layouts++}`, 'node_modules');
  const bindings = join(modules, 'revtun', 'bindings');
  mkdirSync(bindings, { recursive: true });
  writeFileSync(join(modules, 'revtun', 'package.json'), JSON.stringify({ name: 'revtun', version: '0.1.0' }));
  for (const file of ['native.cjs', 'platform.cjs']) copyFileSync(join(root, 'bindings', file), join(bindings, file));
  if (local) copyFileSync(builtAddon, join(bindings, localFile));
  if (prebuilt !== 'none') {
    const dir = join(modules, packageName);
    mkdirSync(dir, { recursive: true });
    const version = prebuilt === 'other-version' ? '0.0.9' : '0.1.0';
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: packageName, version, main: `revtun-core.${triple}.node` }));
    if (prebuilt === 'addon' || prebuilt === 'other-version') copyFileSync(builtAddon, join(dir, `revtun-core.${triple}.node`));
    else if (prebuilt === 'garbage') writeFileSync(join(dir, `revtun-core.${triple}.node`), 'not a shared library');
  }
  return join(bindings, 'native.cjs');
}

/** What loading `loader` in a fresh node gives: where the addon came from, or the error. */
function load(loader: string): { loadedFrom?: string; buildInfo?: string; error?: string; code?: string } {
  const script = `try { const b = require(${JSON.stringify(loader)}); console.log(JSON.stringify({ loadedFrom: b.loadedFrom, buildInfo: b.buildInfo() })); } catch (e) { console.log(JSON.stringify({ error: e.message, code: e.code })); }`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  return JSON.parse(result.stdout) as ReturnType<typeof load>;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'revtun-loader-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('bindings/native.cjs', () => {
  it('prefers a local build, made on purpose, to the platform package', () => {
    const result = load(layout('addon', true));
    expect(result).toMatchObject({ loadedFrom: localSource, buildInfo: expect.stringMatching(/^revtun-core /) });
  });

  it('uses the platform package when there is no local build', () => {
    expect(load(layout('addon', false))).toMatchObject({ loadedFrom: packageName, buildInfo: expect.stringMatching(/^revtun-core /) });
  });

  it('says why when the platform package cannot load and there is no local build', () => {
    const broken = load(layout('garbage', false));
    expect(broken.code).toBe('REVTUN_NO_NATIVE_CORE');
    expect(broken.error).toMatch(new RegExp(`^bindings/${localFile}: not built; ${packageName}: .*revtun-core\\.${triple}\\.node.*`));
  });

  it('reports a platform package published without its binary as broken, not as not installed', () => {
    const broken = load(layout('no-binary', false));
    expect(broken.code).toBe('REVTUN_NO_NATIVE_CORE');
    expect(broken.error).not.toContain('no prebuilt package');
    expect(broken.error).toMatch(new RegExp(`^bindings/${localFile}: not built; ${packageName}: Cannot find module .*revtun-core\\.${triple}\\.node`));
  });

  it('refuses a platform package of another version, and says so', () => {
    const refused = load(layout('other-version', false));
    expect(refused).toEqual({ error: `bindings/${localFile}: not built; ${packageName}: refused: it is version 0.0.9, revtun is 0.1.0${readme}`, code: 'REVTUN_NO_NATIVE_CORE' });
    expect(load(layout('other-version', true))).toMatchObject({ loadedFrom: localSource });
  });

  it('names the platform, both places and the README section in one line when nothing is installed', () => {
    expect(load(layout('none', false))).toEqual({ error: `no prebuilt package for ${triple} and no local build${readme}`, code: 'REVTUN_NO_NATIVE_CORE' });
  });
});
