// scripts/pack-all.mjs --no-build, run on a small copy of the repository (this platform's npm/
// directory, a root package.json naming it, stand-ins for dist/ and the WASM files): it packs the
// addon already in bindings/, stops at once without one, and writes nothing into npm/.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../..');
const { platformTriple } = createRequire(import.meta.url)('../../../bindings/platform.cjs') as { platformTriple(): string };
const triple = platformTriple();
const localFile = `revtun-core.${process.platform}-${process.arch}.node`;

let work: string;
let copies = 0;

/** A repository with pack-all and this platform's package; `addon` says whether bindings/ holds a built addon. */
function repository(addon: boolean): string {
  const dir = join(work, `repo-${copies++}`);
  for (const sub of ['scripts', 'bindings', 'dist', 'npm']) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(join(root, 'scripts/pack-all.mjs'), join(dir, 'scripts/pack-all.mjs'));
  copyFileSync(join(root, 'bindings/platform.cjs'), join(dir, 'bindings/platform.cjs'));
  cpSync(join(root, 'npm', triple), join(dir, 'npm', triple), { recursive: true });
  writeFileSync(join(dir, 'dist/index.js'), 'export {};\n');
  writeFileSync(join(dir, 'bindings/revtun-core.wasm'), 'stand-in');
  writeFileSync(join(dir, 'bindings/revtun-core-simd.wasm'), 'stand-in');
  if (addon) writeFileSync(join(dir, 'bindings', localFile), 'stand-in for the built addon');
  const manifest = { name: 'revtun', version: '0.1.0', files: ['dist', 'bindings/platform.cjs'], optionalDependencies: { [`@revtun/core-${triple}`]: '0.1.0' } };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
  return dir;
}

function packAll(dir: string): { status: number | null; stderr: string } {
  return spawnSync(process.execPath, ['scripts/pack-all.mjs', '--no-build', '--out', join(dir, 'out')], { cwd: dir, encoding: 'utf8' });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'revtun-pack-all-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('pack-all --no-build', () => {
  it('packs the addon in bindings/ into the platform tarball and leaves npm/ as it was', () => {
    const dir = repository(true);
    const before = readdirSync(join(dir, 'npm', triple)).sort();
    const { status, stderr } = packAll(dir);
    expect(status, stderr).toBe(0);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual([`revtun-0.1.0.tgz`, `revtun-core-${triple}-0.1.0.tgz`]);
    const listing = spawnSync('tar', ['tzf', join(dir, 'out', `revtun-core-${triple}-0.1.0.tgz`)], { encoding: 'utf8' });
    expect(listing.stdout.split('\n')).toContain(`package/revtun-core.${triple}.node`);
    expect(readdirSync(join(dir, 'npm', triple)).sort()).toEqual(before);
  });

  it('stops before packing anything when there is no addon to reuse', () => {
    const dir = repository(false);
    const { status, stderr } = packAll(dir);
    expect(status).toBe(1);
    expect(stderr).toContain(`pack:all: --no-build: ${join(dir, 'bindings', localFile)} is missing (npm run build:native)`);
    expect(() => readdirSync(join(dir, 'out'))).toThrow(/ENOENT/);
  });
});
