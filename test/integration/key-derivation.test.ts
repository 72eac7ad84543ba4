// Encrypted client keys whose passphrase goes through a costly KDF (PuTTY v3's Argon2id,
// OpenSSH's bcrypt-pbkdf), against a real sshd: the derivation runs once per logon, in a
// worker thread, and a reconnect of the same logon signs with the key already decrypted
// (counted by the tunnel's "deriving the key" log line, which every derivation writes); a new
// logon derives again, since logoff forgets the key; a passphrase function is asked once per
// logon. Nothing here measures time: the event loop's turns are counted instead.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshdWithEcho, stopAll, TEST_USER, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { puttygenKey } from '../helpers/putty.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { roundTrip } from '../helpers/streams.js';
import { virtualScheduler } from '../helpers/clock.js';
import { SshAuthMode, type SSHReverseTunnel, type TunnelStateEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-kdf-'));
const PASSPHRASE = 'derive me once';
// Costly enough that the event loop would visibly stop for it (16 MiB, 4 passes), small
// enough for a test.
const ppk = puttygenKey(dir, 'id_argon2.ppk', { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: { kdf: 'argon2id', memory: 16384, passes: 4 } });
const bcryptKey = generateKey(dir, 'id_bcrypt', 'ed25519', { passphrase: PASSPHRASE });

let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [ppk.publicLine, bcryptKey.publicLine] }));
});
afterAll(() => stopAll(echo, sshd));

function keyTunnel(key: string, passphrase: string): { tunnel: SSHReverseTunnel; derivations: () => number } {
  const tunnel = makeTunnel(sshd, { config: ['LogLevel=2'] });
  tunnel.sshPassword = '';
  tunnel.sshAuthMode = SshAuthMode.PublicKey;
  tunnel.sshCertStore = key;
  tunnel.sshCertStorePassword = passphrase;
  const lines: string[] = [];
  tunnel.on('log', (e) => lines.push(e.message));
  return { tunnel, derivations: () => lines.filter((l) => /deriving the key from its passphrase, .* in a worker thread/.test(l)).length };
}

/** Resolves at the next tunnelState `state`. */
function next(tunnel: SSHReverseTunnel, state: TunnelStateEvent['state']): Promise<void> {
  return new Promise((resolve) => {
    const on = (e: TunnelStateEvent) => {
      if (e.state !== state) return;
      tunnel.off('tunnelState', on);
      resolve();
    };
    tunnel.on('tunnelState', on);
  });
}

const accepted = new RegExp(`Accepted publickey for ${TEST_USER}`, 'g');

async function carries(port: number): Promise<void> {
  expect((await roundTrip(port, Buffer.from('through the tunnel'))).toString()).toBe('through the tunnel');
}

describe('costly key derivations', () => {
  it.each([
    ['a PuTTY v3 key (Argon2id)', () => ppk.path, /Argon2id \(16384 KiB, 4 passes\)/],
    ['an OpenSSH key (bcrypt-pbkdf)', () => bcryptKey.privatePath, /bcrypt-pbkdf \(16 rounds\)/],
  ])('%s is derived once per logon: a reconnect signs with it again, a new logon derives again', async (_what, path, kdf) => {
    const { tunnel, derivations } = keyTunnel(path(), PASSPHRASE);
    const seen: string[] = [];
    tunnel.on('log', (e) => seen.push(e.message));
    const clock = virtualScheduler(0);
    tunnel.scheduler = clock;
    await tunnel.sshLogon();
    expect(derivations()).toBe(1);
    expect(seen.some((l) => kdf.test(l))).toBe(true);
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    await carries(port);

    const before = (sshd.log().match(accepted) ?? []).length;
    const up = next(tunnel, 'up');
    await sshd.killSessions();
    await clock.nextWait();
    clock.pass();
    await up;
    expect((sshd.log().match(accepted) ?? []).length).toBe(before + 1); // it signed again
    expect(derivations()).toBe(1); // with the key decrypted at logon
    await carries(port);

    await tunnel.sshLogoff();
    await tunnel.sshLogon(); // the key was forgotten at logoff
    expect(derivations()).toBe(2);
    await tunnel.sshLogoff();
  });

  it('the event loop keeps turning while Argon2 derives at logon', async () => {
    const { tunnel, derivations } = keyTunnel(ppk.path, PASSPHRASE);
    tunnel.config('LogLevel=3'); // for the "key derived" line that ends the count
    // Turns of the event loop and interval callbacks between the start of the derivation and its end.
    let turns = 0;
    let ticks = 0;
    let counting = false;
    const spin = () => {
      if (!counting) return;
      turns++;
      setImmediate(spin);
    };
    const interval = setInterval(() => counting && ticks++, 1);
    tunnel.on('log', (e) => {
      if (/deriving the key/.test(e.message)) {
        counting = true;
        setImmediate(spin);
      } else if (/key derived/.test(e.message)) counting = false;
    });
    try {
      await tunnel.sshLogon();
    } finally {
      clearInterval(interval);
    }
    expect(derivations()).toBe(1);
    // Derived on this thread, the derivation would take no turn at all; here the loop ran
    // many, timers fired, and the logon went on once it was done.
    expect(turns).toBeGreaterThan(100);
    expect(ticks).toBeGreaterThan(3);
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it('a wrong passphrase fails the logon before connecting, naming the file', async () => {
    const { tunnel, derivations } = keyTunnel(ppk.path, 'not the passphrase');
    const states: string[] = [];
    tunnel.on('tunnelState', (e) => states.push(e.state));
    await expect(tunnel.sshLogon()).rejects.toThrow(new RegExp(`^key file ${ppk.path.replaceAll('.', '\\.')}: wrong passphrase for the PuTTY private key`));
    expect(derivations()).toBe(1);
    expect(states).toEqual([]); // not even 'connecting'
  });

  it('a passphrase function is asked once per logon, its answer awaited, and the key not derived again at a reconnect', async () => {
    const tunnel = makeTunnel(sshd, { config: ['LogLevel=2'] });
    tunnel.sshPassword = '';
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    let asked = 0;
    tunnel.identities = [
      {
        key: ppk.path,
        passphrase: () => {
          asked++;
          return Promise.resolve(PASSPHRASE);
        },
      },
    ];
    const lines: string[] = [];
    tunnel.on('log', (e) => lines.push(e.message));
    const clock = virtualScheduler(0);
    tunnel.scheduler = clock;
    await tunnel.sshLogon();
    expect(asked).toBe(1);
    const up = next(tunnel, 'up');
    await sshd.killSessions();
    await clock.nextWait();
    clock.pass();
    await up;
    expect(asked).toBe(1);
    expect(lines.filter((l) => /deriving the key/.test(l))).toHaveLength(1);
    await tunnel.sshLogoff();
  });
});
