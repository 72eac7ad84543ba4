// Every in-scope algorithm connects to a real OpenSSH sshd and moves data: each key
// exchange, each host key algorithm, each cipher, each MAC (with a non-AEAD cipher, and
// the AEAD ciphers with each MAC listed, which they must ignore).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startSshd, type Sshd, startSshdWithEcho, stopAll, type EchoServer } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { roundTrip } from '../helpers/streams.js';
import type { SshError, SSHReverseTunnel } from '../../ts/index.js';
import { loadCryptoProvider, type CryptoProviderName } from '../../ts/crypto/select.js';

const CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'];
const MACS = ['hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1', 'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'];
// What OpenSSH 9.2 still implements but no longer offers by default.
const LEGACY_CIPHERS = ['aes128-cbc', 'aes192-cbc', 'aes256-cbc', '3des-cbc'];
const LEGACY_MACS = [
  'hmac-md5',
  'hmac-md5-96',
  'hmac-sha1-96',
  'hmac-sha1-etm@openssh.com',
  'hmac-sha1-96-etm@openssh.com',
  'hmac-md5-etm@openssh.com',
  'hmac-md5-96-etm@openssh.com',
  'umac-64@openssh.com',
  'umac-128@openssh.com',
  'umac-64-etm@openssh.com',
  'umac-128-etm@openssh.com',
];
const provider = loadCryptoProvider((process.env['REVTUN_CRYPTO'] ?? 'native') as CryptoProviderName);

let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({
    config: [
      // Debian's sshd leaves a few of these out by default; offer everything we test.
      'KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha1',
      `Ciphers ${[...CIPHERS, ...LEGACY_CIPHERS].join(',')}`,
      `MACs ${[...MACS, ...LEGACY_MACS].join(',')}`,
    ],
  }));
});
afterAll(() => stopAll(echo, sshd));

/** Logs on with the given settings, forwards to the echo server, and round-trips 256 KiB. */
async function connectAndMove(configure: (t: SSHReverseTunnel) => void): Promise<SSHReverseTunnel> {
  const tunnel = makeTunnel(sshd);
  configure(tunnel);
  await tunnel.sshLogon();
  const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
  const data = randomBytes(256 * 1024);
  const reply = await roundTrip(port, data);
  expect(reply.equals(data)).toBe(true);
  return tunnel;
}

const KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group-exchange-sha256',
  // Legacy, on request only: not in the default list.
  'diffie-hellman-group14-sha1',
  'diffie-hellman-group1-sha1',
  'diffie-hellman-group-exchange-sha1',
];

describe('key exchange', () => {
  it.each(KEX)('%s', async (kex) => {
    const statuses: string[] = [];
    const tunnel = await connectAndMove((t) => {
      t.config(`SSHKeyExchangeAlgorithms=${kex}`);
      t.on('log', (e) => statuses.push(e.message));
    });
    expect(statuses.some((s) => s.includes(`kex=${kex} `))).toBe(true);
    await tunnel.sshLogoff();
  });
});

describe('host key algorithms', () => {
  it.each(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-256', 'rsa-sha2-512'])('%s', async (alg) => {
    let seen = '';
    const tunnel = await connectAndMove((t) => {
      t.config(`SSHPublicKeyAlgorithms=${alg}`);
      t.on('sshServerAuthentication', (e) => {
        seen = e.keyAlgorithm;
      });
    });
    expect(seen).toBe(alg);
    await tunnel.sshLogoff();
  });
});

describe('ECDSA host keys on larger curves', () => {
  it.each([384, 521] as const)('ecdsa-sha2-nistp%i', async (bits) => {
    const server = await startSshd({ ecdsaBits: bits });
    try {
      const tunnel = makeTunnel(server);
      tunnel.config(`SSHPublicKeyAlgorithms=ecdsa-sha2-nistp${bits}`);
      let seen = '';
      tunnel.on('sshServerAuthentication', (e) => {
        seen = e.keyAlgorithm;
      });
      await tunnel.sshLogon();
      const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const data = randomBytes(10_000);
      expect((await roundTrip(port, data)).equals(data)).toBe(true);
      expect(seen).toBe(`ecdsa-sha2-nistp${bits}`);
      await tunnel.sshLogoff();
    } finally {
      await server.stop();
    }
  });
});

describe('ciphers', () => {
  it.each(CIPHERS)('%s', async (cipher) => {
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => {
      t.sshEncryptionAlgorithms = cipher;
      t.on('log', (e) => logs.push(e.message));
    });
    expect(logs.some((s) => s.includes(`cipher=${cipher}/${cipher}`))).toBe(true);
    await tunnel.sshLogoff();
  });
});

describe('default cipher order', () => {
  it('starts with what the provider runs fastest: AES-GCM, or ChaCha20-Poly1305 under WASM', async () => {
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => t.on('log', (e) => logs.push(e.message)));
    const expected = provider.name === 'wasm' ? 'chacha20-poly1305@openssh.com' : 'aes128-gcm@openssh.com';
    expect(logs.some((s) => s.includes(`cipher=${expected}/${expected}`))).toBe(true);
    await tunnel.sshLogoff();
  });

  it('leaves a list the user set alone', async () => {
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => {
      t.sshEncryptionAlgorithms = 'aes256-gcm@openssh.com,chacha20-poly1305@openssh.com';
      t.on('log', (e) => logs.push(e.message));
    });
    expect(logs.some((s) => s.includes('cipher=aes256-gcm@openssh.com/aes256-gcm@openssh.com'))).toBe(true);
    await tunnel.sshLogoff();
  });
});

describe('legacy ciphers and MACs OpenSSH still speaks', () => {
  // The Rust core implements all of them; node:crypto lacks UMAC. What a provider lacks must
  // be refused before connecting (1005), never offered.
  const cases = [...LEGACY_CIPHERS.map((c) => [c, 'hmac-sha2-256']), ...LEGACY_MACS.map((m) => ['aes128-ctr', m])] as [string, string][];
  it.each(cases)('%s with %s', async (cipher, mac) => {
    const configure = (t: SSHReverseTunnel) => {
      t.sshEncryptionAlgorithms = cipher;
      t.config(`SSHMacAlgorithms=${mac}`);
    };
    if (!provider.ciphers.has(cipher) || !provider.macs.has(mac)) {
      expect(provider.name).toBe('node');
      expect(mac).toMatch(/^umac-/);
      const t = makeTunnel(sshd);
      configure(t);
      const error = await t.sshLogon().catch((e: unknown) => e);
      expect((error as SshError).code).toBe(1005);
      return;
    }
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => {
      configure(t);
      t.on('log', (e) => logs.push(e.message));
    });
    expect(logs.some((s) => s.includes(`cipher=${cipher}/${cipher} mac=${mac}/${mac}`))).toBe(true);
    await tunnel.sshLogoff();
  });
});

describe('MACs', () => {
  it.each(MACS)('%s with aes128-ctr', async (mac) => {
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => {
      t.sshEncryptionAlgorithms = 'aes128-ctr';
      t.config(`SSHMacAlgorithms=${mac}`);
      t.on('log', (e) => logs.push(e.message));
    });
    expect(logs.some((s) => s.includes(`mac=${mac}/${mac}`))).toBe(true);
    await tunnel.sshLogoff();
  });

  it.each(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'].flatMap((c) => MACS.map((m) => [c, m])))('AEAD %s ignores MAC %s', async (cipher, mac) => {
    const logs: string[] = [];
    const tunnel = await connectAndMove((t) => {
      t.sshEncryptionAlgorithms = cipher!;
      t.config(`SSHMacAlgorithms=${mac}`);
      t.on('log', (e) => logs.push(e.message));
    });
    expect(logs.some((s) => s.includes(`cipher=${cipher}/${cipher} mac=aead/aead`))).toBe(true);
    await tunnel.sshLogoff();
  });
});
