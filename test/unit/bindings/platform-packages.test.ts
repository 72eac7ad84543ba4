// The platform packages in npm/ against what installs and loads them: revtun's
// optionalDependencies (npm installs the one whose os, cpu and libc match) and
// bindings/platform.cjs (native.cjs requires @revtun/core-<the triple it names>).

import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../..');
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const main = readJson(join(root, 'package.json')) as { version: string; optionalDependencies: Record<string, string>; files: string[] };
const triples = readdirSync(join(root, 'npm'));
const { platformTriple } = createRequire(import.meta.url)('../../../bindings/platform.cjs') as { platformTriple(): string };

describe('platform packages', () => {
  it.each(triples)('npm/%s names the platform its directory names, at revtun’s version', (triple) => {
    const [os, cpu, abi] = triple.split('-');
    const manifest = readJson(join(root, 'npm', triple, 'package.json'));
    expect(manifest).toMatchObject({ name: `@revtun/core-${triple}`, version: main.version, os: [os], cpu: [cpu], main: `revtun-core.${triple}.node`, files: [`revtun-core.${triple}.node`] });
    // npm's libc field: only Linux packages say which C library they were linked against.
    expect(manifest['libc']).toEqual(abi === 'gnu' ? ['glibc'] : abi === 'musl' ? ['musl'] : undefined);
    // A scoped package is published restricted (paid, private) unless it says otherwise.
    expect(manifest['publishConfig']).toEqual({ access: 'public' });
  });

  it('revtun lists exactly these as optional dependencies, at its own version', () => {
    expect(main.optionalDependencies).toEqual(Object.fromEntries(triples.map((triple) => [`@revtun/core-${triple}`, main.version])));
  });

  it('the loader’s name for this machine is one of them, and the loader ships with revtun', () => {
    expect(triples).toContain(platformTriple());
    expect(main.files).toEqual(expect.arrayContaining(['bindings/native.cjs', 'bindings/platform.cjs']));
  });
});
