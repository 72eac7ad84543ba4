// The library under the other runtimes its users run: the loopback demo (a real sshd, a
// reverse tunnel with publickey auth, an HTTP request through it) under Bun and Deno, both
// installed from npm as dev dependencies.

import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const demo = resolve(root, 'dist/demo/main.js');

function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    // SIGKILL on timeout: a stuck runtime must fail this test, never hold the worker.
    execFile(command, args, { cwd: root, timeout: 60_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
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
    expect(code).toBe(0);
  });

  it('the demo tunnel works under Deno', async () => {
    const { code, output } = await run(resolve(root, 'node_modules/.bin/deno'), ['run', '-A', demo]);
    expect(output).toMatch(/-> hello from the service behind the tunnel/);
    expect(output).toMatch(/demo finished/);
    expect(code).toBe(0);
  });
});
