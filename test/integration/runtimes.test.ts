// The library under the other runtimes its users run, both installed from npm as dev
// dependencies: the loopback demo (a real sshd, a reverse tunnel with publickey auth, an HTTP
// request through it) under Bun and Deno with the provider this project runs with, and the
// WASM provider's smoke test (16 MiB through a tunnel, compared by SHA-256) under both, and the
// automatic provider without the addon (AES-GCM on node:crypto, ChaCha20-Poly1305 on WASM).

import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const demo = resolve(root, 'dist/demo/main.js');

const smoke = resolve(root, 'test/runtimes/smoke.mjs');
const provider = process.env['REVTUN_CRYPTO'] ?? 'native';

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    // SIGKILL on timeout: a stuck runtime must fail this test, never hold the worker.
    const options = { cwd: root, timeout: 90_000, killSignal: 'SIGKILL' as const, env: { ...process.env, REVTUN_CRYPTO: provider, ...env } };
    execFile(command, args, options, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      done({ code: error ? (typeof status === 'number' ? status : 1) : 0, output: stdout + stderr });
    });
  });
}

describe('other runtimes', () => {
  it('the demo tunnel works under Bun', async () => {
    const { code, output } = await run(resolve(root, 'node_modules/.bin/bun'), [demo]);
    expect(output).toMatch(/-> hello from the service behind the tunnel/);
    expect(output).toMatch(/demo finished/);
    expect(output).toContain(`crypto provider: ${provider}`);
    expect(code).toBe(0);
  });

  it('the demo tunnel works under Deno', async () => {
    const { code, output } = await run(resolve(root, 'node_modules/.bin/deno'), ['run', '-A', demo]);
    expect(output).toMatch(/-> hello from the service behind the tunnel/);
    expect(output).toMatch(/demo finished/);
    expect(output).toContain(`crypto provider: ${provider}`);
    expect(code).toBe(0);
  });
});

describe('the WASM provider under other runtimes', () => {
  it.each([
    ['Bun', 'node_modules/.bin/bun', [smoke]],
    ['Deno', 'node_modules/.bin/deno', ['run', '-A', smoke]],
  ] as const)('moves 16 MiB through a tunnel under %s', async (_name, binary, args) => {
    const { code, output } = await run(resolve(root, binary), [...args], { REVTUN_CRYPTO: 'wasm' });
    expect(output).toContain('crypto provider: wasm (revtun-core');
    expect(output).toContain('moved 16777216 bytes, sha256 matches');
    expect(output).toContain('argon2id in a worker thread: matches');
    expect(code).toBe(0);
  });
});

describe('the native data plane under other runtimes', () => {
  // Bun's sockets cannot stop their reads and Deno's show no descriptor: the relay thread must
  // not take their connections (Bun's reads would race the relay's, and corrupt the stream),
  // and the JavaScript plane carries them instead. Node, the same script, goes native.
  it.each([
    ['Bun', 'js', 'node_modules/.bin/bun', [smoke]],
    ['Deno', 'js', 'node_modules/.bin/deno', ['run', '-A', smoke]],
    ['Node', 'native', process.execPath, [smoke]],
  ] as const)('under %s the native provider moves 16 MiB on the %s plane', async (_name, plane, binary, args) => {
    const { code, output } = await run(binary.startsWith('/') ? binary : resolve(root, binary), [...args], { REVTUN_CRYPTO: 'native' });
    expect(output).toContain('crypto provider: native (revtun-core');
    expect(output).toContain(`data plane: ${plane}`);
    expect(output).toContain('moved 16777216 bytes, sha256 matches');
    expect(code).toBe(0);
  });
});

describe('the automatic provider without the addon under other runtimes', () => {
  it.each([
    ['Bun', 'aes128-gcm@openssh.com', 'node', 'node_modules/.bin/bun', [smoke]],
    ['Bun', 'chacha20-poly1305@openssh.com', 'wasm', 'node_modules/.bin/bun', [smoke]],
    ['Deno', 'aes128-gcm@openssh.com', 'node', 'node_modules/.bin/deno', ['run', '-A', smoke]],
    ['Deno', 'chacha20-poly1305@openssh.com', 'wasm', 'node_modules/.bin/deno', ['run', '-A', smoke]],
  ] as const)('under %s runs %s on %s and moves 16 MiB', async (_name, cipher, backend, binary, args) => {
    const { code, output } = await run(resolve(root, binary), [...args], { REVTUN_CRYPTO: '', REVTUN_NATIVE: '0', SMOKE_CIPHER: cipher });
    expect(output).toContain(`${cipher} on ${backend}\n`);
    expect(output).toMatch(/crypto provider: auto: node for aes128-gcm@openssh\.com, .*; wasm \(revtun-core .*\) for chacha20-poly1305@openssh\.com/);
    expect(output).toContain('moved 16777216 bytes, sha256 matches');
    expect(code).toBe(0);
  });
});
