// The automatic crypto provider against a real sshd, through the revtun command as a user runs
// it: each cipher (and MAC) the server agrees to runs on the backend the measured order names,
// with the native addon hidden (REVTUN_NATIVE=0: node:crypto for AES and 3DES, the WASM core for
// ChaCha20-Poly1305, UMAC and what OpenSSL lacks) and with it; the -vv log says which backend
// serves each direction, and data crosses the tunnel. REVTUN_CRYPTO is cleared for the child,
// so the project's provider does not matter: the file runs under the native project only.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { generateKey, TEST_USER, type Sshd, startSshdWithEcho, stopAll, type EchoServer } from '../helpers/sshd.js';
import { roundTrip } from '../helpers/streams.js';
import { runRevtun, type Run, stopRuns } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-auto-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: EchoServer;
let knownHosts: string;
beforeAll(async () => {
  // The CBC and 3DES ciphers are off in sshd's default list; the test turns them on.
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [key.publicLine], config: ['Ciphers +aes128-cbc,3des-cbc', 'MACs +hmac-sha1'] }));
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
});
afterAll(() => stopAll(echo, sshd));

const started: Run[] = [];
afterEach(() => stopRuns(started));

/** Opens `-R 0:…` with `cipher` (and `mac`), moves data through it, and returns revtun's -vv log. */
async function tunnelWith(cipher: string, mac: string | null, env: Record<string, string>): Promise<string> {
  const args = ['-N', '-vv', '-p', String(sshd.port), '-i', key.privatePath, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', '-c', cipher];
  if (mac) args.push('-m', mac);
  const run = runRevtun([...args, '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`], { HOME: dir, REVTUN_CRYPTO: '', ...env });
  started.push(run);
  const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
  const data = randomBytes(300_000);
  expect((await roundTrip(port, data)).equals(data)).toBe(true);
  run.child.kill('SIGINT');
  expect(await run.exit).toBe(0);
  return run.stderr();
}

function packetCryptoLine(log: string): string {
  const line = log.split('\n').find((l) => l.includes('packet crypto: '));
  expect(line, log).toBeDefined();
  return line!.slice(line!.indexOf('packet crypto: '));
}

describe('the automatic crypto provider, against sshd', () => {
  const withoutNative: [string, string | null, string][] = [
    ['aes128-gcm@openssh.com', null, 'node'],
    ['aes256-gcm@openssh.com', null, 'node'],
    ['chacha20-poly1305@openssh.com', null, 'wasm'],
    ['aes128-ctr', 'hmac-sha2-256-etm@openssh.com', 'node'],
    ['aes256-ctr', 'umac-64-etm@openssh.com', 'wasm'],
    ['aes192-ctr', 'umac-128@openssh.com', 'wasm'],
    ['aes128-cbc', 'hmac-sha1', 'node'],
    ['3des-cbc', 'hmac-sha2-512', 'node'],
  ];
  it.each(withoutNative)('without the native addon, %s %s runs on %s', async (cipher, mac, backend) => {
    const log = await tunnelWith(cipher, mac, { REVTUN_NATIVE: '0' });
    const algorithm = `${cipher}${mac ? ` with ${mac}` : ''}`;
    expect(packetCryptoLine(log)).toBe(`packet crypto: to the server ${algorithm} on ${backend}, from it ${algorithm} on ${backend}`);
    // The provider's line names the split and why the addon is not in it.
    expect(log).toMatch(
      /crypto provider: auto: node for aes128-gcm@openssh\.com, [^;]*; wasm \(revtun-core [^)]*wasm32[^;]*\) for chacha20-poly1305@openssh\.com, .*\(not loaded: native: hidden by REVTUN_NATIVE=0\)/,
    );
  });

  it('with the native addon, runs AES-GCM on it and 3DES-CBC on node:crypto', async () => {
    expect(packetCryptoLine(await tunnelWith('aes128-gcm@openssh.com', null, {}))).toBe('packet crypto: to the server aes128-gcm@openssh.com on native, from it aes128-gcm@openssh.com on native');
    expect(packetCryptoLine(await tunnelWith('3des-cbc', 'hmac-sha1', {}))).toBe('packet crypto: to the server 3des-cbc with hmac-sha1 on node, from it 3des-cbc with hmac-sha1 on node');
  });

  it('BuildInfo says which backend serves which cipher', () => {
    const script = "import { SSHReverseTunnel } from './dist/index.js'; console.log(new SSHReverseTunnel().config('BuildInfo'));";
    const buildInfo = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(__dirname, '../..'),
      env: { ...process.env, REVTUN_CRYPTO: '', REVTUN_NATIVE: '0' },
      encoding: 'utf8',
    });
    expect(buildInfo).toMatch(/^revtun 0\.1\.0; crypto provider: auto: node for aes128-gcm@openssh\.com, .*; wasm \(revtun-core .*\) for chacha20-poly1305@openssh\.com, .*; node \d+/);
  });
});
