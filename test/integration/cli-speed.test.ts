// `revtun speed` (ts/cli/speed.ts) as users run it: the built command under Node, Bun and Deno
// with --json, the table, bad options (exit status 255), and a host called "speed" still
// reachable behind `--`. Tiny times and one packet size keep it fast; no rate is asserted.

import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { resolveCryptoBenchmark } from '../../ts/crypto/benchmark.js';

const root = resolve(__dirname, '../..');
const cli = resolve(root, 'dist/cli/main.js');
const KEYS = ['algorithm', 'mac', 'provider', 'packetSize', 'sealMBps', 'openMBps'];
// aes128-gcm has an `openssl speed` counterpart; node:crypto has no Blowfish, so that pair is skipped for it.
const ALGORITHMS = 'aes128-gcm@openssh.com,blowfish-cbc/hmac-md5';
const { providers: loadable, unavailable } = resolveCryptoBenchmark();
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // SIGKILL on timeout: a stuck runtime must fail this test, never hold the worker.
    execFile(command, args, { cwd: root, timeout: 90_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const status = (error as { code?: unknown } | null)?.code;
      done({ code: error ? (typeof status === 'number' ? status : 1) : 0, stdout, stderr });
    });
  });
}

const runtimes = [
  ['Node', process.execPath, [cli]],
  ['Bun', resolve(root, 'node_modules/.bin/bun'), [cli]],
  ['Deno', resolve(root, 'node_modules/.bin/deno'), ['run', '-A', cli]],
] as const;

describe('revtun speed --json', () => {
  it.each(runtimes)('prints one row per line with exactly the documented keys under %s', async (_name, command, prefix) => {
    const { code, stdout, stderr } = await run(command, [...prefix, 'speed', '--json', '--seconds', '0.02', '--sizes', '1k', '--algorithms', ALGORITHMS]);
    expect(stderr.split('\n').filter((l) => l.startsWith('revtun speed:'))).toEqual(unavailable.map((u) => expect.stringContaining(`${u.provider} not available: `)));
    expect(code).toBe(0);
    const rows = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(KEYS);
      expect(row['packetSize']).toBe(1024);
      expect(Number.isFinite(row['sealMBps']) && (row['sealMBps'] as number) > 0).toBe(true);
      if (row['provider'] === 'openssl') expect(row['openMBps']).toBeNull();
      else expect(Number.isFinite(row['openMBps']) && (row['openMBps'] as number) > 0).toBe(true);
    }
    const providersOf = (algorithm: string) => rows.filter((r) => r['algorithm'] === algorithm).map((r) => r['provider']);
    expect(providersOf('aes128-gcm@openssh.com')).toEqual([...loadable, ...(hasOpenssl ? ['openssl'] : [])]);
    expect(providersOf('blowfish-cbc')).toEqual(loadable.filter((p) => p !== 'node'));
    expect(rows.filter((r) => r['algorithm'] === 'blowfish-cbc').every((r) => r['mac'] === 'hmac-md5')).toBe(true);
    expect(rows.filter((r) => r['algorithm'] === 'aes128-gcm@openssh.com').every((r) => r['mac'] === null)).toBe(true);
  });
});

describe('revtun speed', () => {
  it('prints a table with a column per provider and "-" where one lacks the pair', async () => {
    const { code, stdout } = await run(process.execPath, [cli, 'speed', '--seconds', '0.02', '--sizes', '1k,512', '--algorithms', ALGORITHMS]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^MB\/s .*sealing \/ opening/);
    expect(lines[1]!.split(/\s+/)).toEqual(['algorithm', 'packet', ...loadable, 'openssl']);
    const body = lines.slice(2).map((line) => line.trim().split(/\s{2,}/));
    expect(body.map((cells) => cells.slice(0, 2))).toEqual([
      ['aes128-gcm@openssh.com', '1024'],
      ['aes128-gcm@openssh.com', '512'],
      ['blowfish-cbc/hmac-md5', '1024'],
      ['blowfish-cbc/hmac-md5', '512'],
    ]);
    for (const cells of body) {
      expect(cells).toHaveLength(3 + loadable.length);
      loadable.forEach((provider, i) => {
        const cell = cells[2 + i]!;
        if (provider === 'node' && cells[0]!.startsWith('blowfish')) expect(cell).toBe('-');
        else expect(cell).toMatch(/^\d+ \/ \d+$/);
      });
      expect(cells.at(-1)).toMatch(cells[0]!.startsWith('aes') && hasOpenssl ? /^\d+$/ : /^-$/);
    }
  });

  it.each([
    [['--providers', 'native,bogus'], /unknown crypto provider "bogus"/],
    [['--algorithms', 'aes999-ctr'], /unknown cipher "aes999-ctr"/],
    [['--algorithms', 'aes128-gcm@openssh.com/hmac-sha1'], /takes no MAC/],
    [['--sizes', '1x'], /bad packet size '1x'/],
    [['--sizes', '100'], /bad packet size 100/],
    [['--seconds', '0'], /bad seconds 0/],
    [['--seconds', '3600'], /bad seconds 3600/],
    [['--seconds'], /--seconds needs a value/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
  ])('refuses %j with status 255 and a message', async (args, message) => {
    const { code, stdout, stderr } = await run(process.execPath, [cli, 'speed', ...args]);
    expect(code).toBe(255);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).toContain('usage: revtun speed');
  });

  it('prints its usage for --help', async () => {
    const { code, stdout } = await run(process.execPath, [cli, 'speed', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: revtun speed /);
  });

  it('leaves a host called "speed" reachable after -- or with a user', async () => {
    for (const args of [
      ['-G', '--', 'speed'],
      ['-G', 'me@speed'],
    ]) {
      const { code, stdout } = await run(process.execPath, [cli, ...args]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^hostname speed$/m);
    }
  });
});
