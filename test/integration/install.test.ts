// What `npm install revtun` gives a user, from the tarballs a release publishes: scripts/pack-all.mjs
// packs revtun and this platform's @revtun/core-* package (once for the file), and each test
// installs them into an empty project with no Rust toolchain reachable (PATH holds node, npm and
// sh alone, HOME is the project, so neither /usr/bin/cargo nor ~/.cargo/bin is there), then runs
// test/install/tunnel-check.mjs there: a reverse tunnel to a real sshd, with the provider revtun
// chose by itself (REVTUN_CRYPTO is not passed down) and the log line that says why.
//
// npm fetches revtun's own dependencies (pako, socks, ...) from the registry the machine is set
// up with, into a cache of the test's own. The @revtun scope points at a closed loopback port:
// the platform packages come from the tarball or not at all, never from a registry.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fingerprintsOf } from '../helpers/tunnel.js';
import { freePort, startSshdWithEcho, stopAll, TEST_PASSWORD, TEST_USER, type EchoServer, type Sshd } from '../helpers/sshd.js';

const root = resolve(__dirname, '../..');
const { platformTriple } = createRequire(import.meta.url)('../../bindings/platform.cjs') as { platformTriple(): string };
const triple = platformTriple();
const platformPackage = `@revtun/core-${triple}`;
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let sshd: Sshd;
let echo: EchoServer;
let cleanEnv: Record<string, string>;
let closedPort: number;

function run(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(command, args, { ...options, timeout: 150_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      done({ code: error ? (typeof status === 'number' ? status : 1) : 0, output: stdout + stderr });
    });
  });
}

/** An empty project with revtun installed from `tarballs` (file names in the pack directory). */
async function installProject(name: string, tarballs: string[]): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `revtun-install-${name}`, version: '1.0.0', private: true, type: 'module' }));
  // fetch-retries=0: a refused connection for a platform package of another machine is final at once.
  const npmrc = [`cache=${join(work, 'npm-cache')}`, `@revtun:registry=http://127.0.0.1:${closedPort}/`, 'fetch-retries=0', 'audit=false', 'fund=false', 'update-notifier=false'];
  writeFileSync(join(dir, '.npmrc'), npmrc.join('\n') + '\n');
  const install = await run('npm', ['install', ...tarballs.map((file) => join(work, 'pack', file))], { cwd: dir, env: { ...cleanEnv, HOME: dir } });
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
  // A machine that reaches the registry through a proxy keeps it.
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']) {
    const value = process.env[name];
    if (value) cleanEnv[name] = value;
  }
  closedPort = await freePort();
  const packed = await run(process.execPath, ['scripts/pack-all.mjs', '--out', join(work, 'pack')], { cwd: root, env: process.env as Record<string, string> });
  expect(packed.code, packed.output).toBe(0);
  ({ sshd, echo } = await startSshdWithEcho());
}, 240_000);

afterAll(async () => {
  await stopAll(sshd, echo);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('installing the release tarballs', () => {
  it('has no Rust toolchain to compile with', () => {
    for (const tool of ['cargo', 'rustc', 'cc']) {
      const probe = spawnSync(tool, ['--version'], { env: { ...cleanEnv, HOME: work } });
      expect((probe.error as NodeJS.ErrnoException | undefined)?.code, tool).toBe('ENOENT');
    }
  });

  it(`installs without compiling and runs a tunnel on the prebuilt ${platformPackage}`, async () => {
    const dir = await installProject('prebuilt', [`revtun-${version}.tgz`, `revtun-core-${triple}-${version}.tgz`]);
    const installed = JSON.parse(readFileSync(join(dir, 'node_modules/revtun/package.json'), 'utf8')) as { scripts?: Record<string, string> };
    expect(Object.keys(installed.scripts ?? {}).filter((name) => /install/.test(name))).toEqual([]);
    expect(existsSync(join(dir, `node_modules/${platformPackage}/revtun-core.${triple}.node`))).toBe(true);
    // No locally built addon came with the main package: the one in use is the platform package's.
    expect(existsSync(join(dir, `node_modules/revtun/bindings/revtun-core.${process.platform}-${process.arch}.node`))).toBe(false);

    const output = await checkTunnel(dir);
    expect(output).toContain('provider: native\n');
    expect(output).toMatch(new RegExp(`log 2: crypto provider: native \\(revtun-core ${version.replace(/\./g, '\\.')} .*, from ${platformPackage}\\)\n`));
    expect(output).toContain('echoed: through the tunnel\n');
  });

  it('falls back to WASM with only the main tarball, and the log says why', async () => {
    const dir = await installProject('main-only', [`revtun-${version}.tgz`]);
    expect(existsSync(join(dir, `node_modules/${platformPackage}`))).toBe(false);

    const output = await checkTunnel(dir);
    expect(output).toContain('provider: wasm\n');
    // At LogLevel 1, the default: the one note of the fallback a user sees without asking.
    expect(output).toMatch(new RegExp(`log 1: crypto provider: wasm \\(revtun-core .*\\) \\(not loaded: native: no prebuilt package for ${triple} and no local build\\)\n`));
    expect(output).toContain('echoed: through the tunnel\n');
  });
});
