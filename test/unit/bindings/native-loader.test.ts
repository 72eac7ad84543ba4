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

let work: string;
let layouts = 0;

/** A fresh node_modules with revtun's loader; `prebuilt` and `local` say what else is in it. */
function layout(prebuilt: 'none' | 'addon' | 'garbage', local: boolean): string {
  const modules = join(work, `layout-${layouts++}`, 'node_modules');
  const bindings = join(modules, 'revtun', 'bindings');
  mkdirSync(bindings, { recursive: true });
  for (const file of ['native.cjs', 'platform.cjs']) copyFileSync(join(root, 'bindings', file), join(bindings, file));
  if (local) copyFileSync(builtAddon, join(bindings, localFile));
  if (prebuilt !== 'none') {
    const dir = join(modules, packageName);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: packageName, version: '0.1.0', main: `revtun-core.${triple}.node` }));
    if (prebuilt === 'addon') copyFileSync(builtAddon, join(dir, `revtun-core.${triple}.node`));
    else writeFileSync(join(dir, `revtun-core.${triple}.node`), 'not a shared library');
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
  it('prefers the platform package to a local build', () => {
    const result = load(layout('addon', true));
    expect(result).toMatchObject({ loadedFrom: packageName, buildInfo: expect.stringMatching(/^revtun-core /) });
  });

  it('uses the local build when no platform package is installed', () => {
    expect(load(layout('none', true))).toMatchObject({ loadedFrom: `bindings/${localFile} (local build)` });
  });

  it('falls back to the local build when the platform package cannot load, and says why when neither is there', () => {
    expect(load(layout('garbage', true))).toMatchObject({ loadedFrom: `bindings/${localFile} (local build)` });
    const broken = load(layout('garbage', false));
    expect(broken.code).toBe('REVTUN_NO_NATIVE_CORE');
    expect(broken.error).toMatch(new RegExp(`^${packageName}: .*revtun-core\\.${triple}\\.node.*; bindings/${localFile}: not installed$`));
  });

  it('names the platform and both places in one line when nothing is installed', () => {
    expect(load(layout('none', false))).toEqual({ error: `no prebuilt package for ${triple} and no local build`, code: 'REVTUN_NO_NATIVE_CORE' });
  });
});
