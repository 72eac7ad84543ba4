// What `npm install revtun` gives a user, from the tarballs a release publishes: scripts/pack-all.mjs
// packs revtun and this platform's @revtun/core-* package (once for the file, with the addon this
// checkout already built: --no-build), and each test installs the main tarball into an empty
// project with no Rust toolchain reachable (PATH holds node, npm and sh alone, HOME is the
// project, so neither /usr/bin/cargo nor ~/.cargo/bin is there), then runs
// test/install/tunnel-check.mjs there: a reverse tunnel to a real sshd, with the provider revtun
// chose by itself (REVTUN_CRYPTO is not passed down) and the log line that says why.
//
// The @revtun scope is served by a registry stub on loopback that knows one package, this
// platform's, pointing at the tarball pack-all wrote (everything else under the scope is a 404,
// as an unpublished package is). So npm itself picks the platform package from revtun's
// optionalDependencies by os, cpu and libc, as it does for a user. revtun's own dependencies
// (pako, socks, ...) come from the registry this machine is set up with, through its npm cache.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fingerprintsOf } from '../helpers/tunnel.js';
import { startSshdWithEcho, stopAll, TEST_PASSWORD, TEST_USER, type EchoServer, type Sshd } from '../helpers/sshd.js';

const root = resolve(__dirname, '../..');
const { platformTriple } = createRequire(import.meta.url)('../../bindings/platform.cjs') as { platformTriple(): string };
const triple = platformTriple();
const platformPackage = `@revtun/core-${triple}`;
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const platformTarball = `revtun-core-${triple}-${version}.tgz`;

let work: string;
let sshd: Sshd;
let echo: EchoServer;
let cleanEnv: Record<string, string>;
let registry: Server;
let registryUrl: string;
/** The paths npm asked the stub for. */
const registryRequests: string[] = [];
/** What the npm running these tests uses: its registry and its cache. */
let outerRegistry: string;
let outerCache: string;

function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(command, args, { ...options, timeout: 150_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      done({ code: error ? (typeof status === 'number' ? status : 1) : 0, output: stdout + stderr });
    });
  });
}

/** One setting of the npm that runs these tests, read with the test runner's own environment. */
function outerNpmConfig(key: string): string {
  const result = spawnSync('npm', ['config', 'get', key], { cwd: root, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim();
}

/**
 * A registry for the @revtun scope that has published this platform's package alone: its
 * packument (the manifest from npm/<triple>/, with the tarball's address and integrity) and the
 * tarball; anything else is a 404.
 */
async function startRegistryStub(): Promise<void> {
  const tarball = readFileSync(join(work, 'pack', platformTarball));
  const manifest = JSON.parse(readFileSync(join(root, 'npm', triple, 'package.json'), 'utf8')) as Record<string, unknown>;
  registry = createServer((request, response) => {
    const path = decodeURIComponent(request.url ?? '');
    registryRequests.push(path);
    if (path === `/${platformPackage}`) {
      const dist = {
        tarball: `${registryUrl}tarballs/${platformTarball}`,
        integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
        shasum: createHash('sha1').update(tarball).digest('hex'),
      };
      const packument = { name: platformPackage, 'dist-tags': { latest: version }, versions: { [version]: { ...manifest, _id: `${platformPackage}@${version}`, dist } } };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
    } else if (path === `/tarballs/${platformTarball}`) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(tarball);
    } else {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    }
  });
  await new Promise<void>((listening) => registry.listen(0, '127.0.0.1', listening));
  registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/`;
}

/** An empty project with revtun installed from its tarball, with `npm install` given `flags`. */
async function installProject(name: string, flags: string[] = []): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `revtun-install-${name}`, version: '1.0.0', private: true, type: 'module' }));
  // prefer-offline: revtun's dependencies are in the outer cache already (the checkout's own
  // `npm install` put them there), so no packument is revalidated. npm does not refetch a cached
  // packument that lacks a wanted version (ETARGET): after a dependency bump, `npm install` in the
  // checkout refreshes the cache. The stub's entries are keyed by its port, so none goes stale.
  const npmrc = [`registry=${outerRegistry}`, `@revtun:registry=${registryUrl}`, `cache=${outerCache}`, 'prefer-offline=true', 'audit=false', 'fund=false', 'update-notifier=false'];
  writeFileSync(join(dir, '.npmrc'), npmrc.join('\n') + '\n');
  const install = await run('npm', ['install', ...flags, join(work, 'pack', `revtun-${version}.tgz`)], { cwd: dir, env: { ...cleanEnv, HOME: dir } });
  expect(install.output).not.toMatch(/native crypto core (not )?built/); // build-native.mjs did not run
  expect(install.code, install.output).toBe(0);
  return dir;
}

/** Runs tunnel-check.mjs in `dir`; its output. */
async function checkTunnel(dir: string): Promise<string> {
  copyFileSync(join(root, 'test/install/tunnel-check.mjs'), join(dir, 'tunnel-check.mjs'));
  const target = { host: sshd.host, port: sshd.port, user: TEST_USER, password: TEST_PASSWORD, fingerprints: fingerprintsOf(sshd).join(','), echoPort: echo.port };
  const { code, output } = await run('node', ['tunnel-check.mjs', JSON.stringify(target)], { cwd: dir, env: { ...cleanEnv, HOME: dir } });
  expect(code, output).toBe(0);
  return output;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'revtun-install-'));
  // node, npm and the shell npm runs package scripts with, as on any user's machine; no cargo,
  // no rustc, no C compiler.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(realpathSync(join(dirname(process.execPath), 'npm')), join(bin, 'npm'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  cleanEnv = { PATH: bin, LANG: 'C.UTF-8' };
  // HOME is the project, so the user's ~/.npmrc is not read: a machine that reaches the registry
  // through a proxy, or trusts a CA of its own for it, keeps that through the environment.
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'NODE_EXTRA_CA_CERTS', 'npm_config_cafile']) {
    const value = process.env[name];
    if (value) cleanEnv[name] = value;
  }
  outerRegistry = outerNpmConfig('registry');
  outerCache = outerNpmConfig('cache');
  const packed = await run(process.execPath, ['scripts/pack-all.mjs', '--no-build', '--out', join(work, 'pack')], { cwd: root, env: process.env as Record<string, string> });
  expect(packed.code, packed.output).toBe(0);
  await startRegistryStub();
  ({ sshd, echo } = await startSshdWithEcho());
}, 120_000);

afterAll(async () => {
  await stopAll(sshd, echo);
  await new Promise((closed) => (registry ? registry.close(closed) : closed(undefined)));
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('installing the release tarballs', () => {
  it('has no Rust toolchain to compile with', () => {
    for (const tool of ['cargo', 'rustc', 'cc']) {
      const probe = spawnSync(tool, ['--version'], { env: { ...cleanEnv, HOME: work } });
      expect((probe.error as NodeJS.ErrnoException | undefined)?.code, tool).toBe('ENOENT');
    }
  });

  it(`installs revtun alone without compiling, gets ${platformPackage} through optionalDependencies and runs a tunnel on it`, async () => {
    const dir = await installProject('prebuilt');
    // npm chose it from revtun's optionalDependencies and fetched it from the registry.
    // (The tarball itself may come from the npm cache, which files it by integrity.)
    expect(registryRequests).toContain(`/${platformPackage}`);
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string }> };
    expect(lock.packages[`node_modules/${platformPackage}`]?.resolved).toBe(`${registryUrl}tarballs/${platformTarball}`);
    const installed = JSON.parse(readFileSync(join(dir, 'node_modules/revtun/package.json'), 'utf8')) as { scripts?: Record<string, string> };
    expect(Object.keys(installed.scripts ?? {}).filter((name) => /install/.test(name))).toEqual([]);
    expect(existsSync(join(dir, `node_modules/${platformPackage}/revtun-core.${triple}.node`))).toBe(true);
    // No locally built addon came with the main package: the one in use is the platform package's.
    expect(existsSync(join(dir, `node_modules/revtun/bindings/revtun-core.${process.platform}-${process.arch}.node`))).toBe(false);

    const output = await checkTunnel(dir);
    expect(output).toContain('provider: auto\n');
    expect(output).toContain('aes128-gcm@openssh.com on native\nchacha20-poly1305@openssh.com on native\n');
    expect(output).toMatch(new RegExp(`log 2: crypto provider: auto: native \\(revtun-core ${version.replace(/\./g, '\\.')} .*, from ${platformPackage}\\) for aes128-gcm@openssh\\.com, .*\n`));
    expect(output).toContain('echoed: through the tunnel\n');
  });

  it('without the platform package runs AES-GCM on node:crypto and ChaCha20-Poly1305 on WASM, and the log says why', async () => {
    // --omit=optional: what a user gets where no platform package fits (or who asks for none).
    const dir = await installProject('main-only', ['--omit=optional']);
    expect(existsSync(join(dir, `node_modules/${platformPackage}`))).toBe(false);

    const output = await checkTunnel(dir);
    // AES-GCM on node:crypto (OpenSSL's AES instructions), ChaCha20-Poly1305 on the WASM core.
    expect(output).toContain('provider: auto\n');
    expect(output).toContain('aes128-gcm@openssh.com on node\nchacha20-poly1305@openssh.com on wasm\n');
    // At LogLevel 1, the default: the one note of the fallback a user sees without asking.
    expect(output).toMatch(
      new RegExp(
        `log 1: crypto provider: auto: node for aes128-gcm@openssh\\.com, .*; wasm \\(revtun-core .*\\) for chacha20-poly1305@openssh\\.com, .* \\(not loaded: native: no prebuilt package for ${triple} and no local build \\(see "Installing" in revtun's README\\)\\)\n`,
      ),
    );
    expect(output).toContain('echoed: through the tunnel\n');
  });
});
