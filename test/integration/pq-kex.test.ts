// The post-quantum hybrid key exchanges against servers that implement them: Debian's OpenSSH
// 9.2 sshd for sntrup761x25519-sha512 (both names), russh 0.65 for mlkem768x25519-sha256, each
// through a real reverse tunnel that moves data; and a scripted server whose reply has the
// wrong length, which must be refused with 1038 and a DISCONNECT before the socket closes. Runs
// once per crypto provider: with node:crypto (no KEMs) the hybrids must not be offered at all.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startSshd, startSshdWithEcho, stopAll, type EchoServer, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { roundTrip } from '../helpers/streams.js';
import { peerTunnel } from '../helpers/peers.js';
import { startRusshServer, type RusshPeer } from '../helpers/russh.js';
import { startKexReplyServer } from '../helpers/kex-reply-server.js';
import { Code, SSHReverseTunnel, type SshError } from '../../ts/index.js';
import { loadCryptoProvider, type CryptoProviderName } from '../../ts/crypto/select.js';
import { MSG } from '../../ts/protocol/messages.js';
import { Reader } from '../../ts/protocol/wire.js';
import { DisconnectReason } from '../../ts/protocol/errors.js';

const providerName = (process.env['REVTUN_CRYPTO'] ?? 'native') as CryptoProviderName;
const provider = loadCryptoProvider(providerName);
const hasKems = providerName !== 'node';

/** The kex the client negotiated, from its log. */
function negotiatedKex(tunnel: SSHReverseTunnel): () => string | undefined {
  let kex: string | undefined;
  tunnel.on('log', (e) => {
    kex ??= /negotiated kex=(\S+)/.exec(e.message)?.[1];
  });
  return () => kex;
}

/** A forwarding on the server to `echoPort`, and 128 KiB through it and back. */
async function moveData(tunnel: SSHReverseTunnel, echoPort: number): Promise<void> {
  const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echoPort);
  const data = randomBytes(128 * 1024);
  expect((await roundTrip(port, data)).equals(data)).toBe(true);
}

describe('sntrup761x25519-sha512 against OpenSSH 9.2', () => {
  let sshd: Sshd;
  let echo: EchoServer;
  beforeAll(async () => {
    ({ sshd, echo } = await startSshdWithEcho());
  });
  afterAll(() => stopAll(echo, sshd));

  it.each(['sntrup761x25519-sha512@openssh.com', 'sntrup761x25519-sha512'])('%s through a reverse tunnel', async (kex) => {
    const tunnel = makeTunnel(sshd);
    tunnel.cryptoProvider = provider;
    tunnel.config(`SSHKeyExchangeAlgorithms=${kex},curve25519-sha256`);
    const seen = negotiatedKex(tunnel);
    await tunnel.sshLogon();
    try {
      expect(seen()).toBe(hasKems ? kex : 'curve25519-sha256');
      await moveData(tunnel, echo.port);
      // A re-exchange with the same method: new keys from a second KEM key pair, same session.
      await tunnel.exchangeKeys();
      await moveData(tunnel, echo.port);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it(hasKems ? 'the default list puts the hybrid first' : 'the default list leaves the hybrids out', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.cryptoProvider = provider;
    const seen = negotiatedKex(tunnel);
    await tunnel.sshLogon();
    try {
      // OpenSSH 9.2 has no ML-KEM: the next hybrid in revtun's default list wins.
      expect(seen()).toBe(hasKems ? 'sntrup761x25519-sha512' : 'curve25519-sha256');
      await moveData(tunnel, echo.port);
    } finally {
      await tunnel.sshLogoff();
    }
  });

  it('a server offering only the hybrid: connects with a Rust core, 1005 without one', async () => {
    const only = await startSshd({ config: ['KexAlgorithms sntrup761x25519-sha512@openssh.com'] });
    try {
      const tunnel = makeTunnel(only);
      tunnel.cryptoProvider = provider;
      tunnel.config('SSHKeyExchangeAlgorithms=sntrup761x25519-sha512@openssh.com');
      if (hasKems) {
        await tunnel.sshLogon();
        await moveData(tunnel, echo.port);
        await tunnel.sshLogoff();
      } else {
        await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: Code.UnsupportedAlgorithm });
      }
    } finally {
      await only.stop();
    }
  });
});

describe('mlkem768x25519-sha256 against russh 0.65', () => {
  let russh: RusshPeer;
  let echo: EchoServer;
  beforeAll(async () => {
    russh = await startRusshServer();
    ({ echo } = await startSshdWithEcho());
  });
  afterAll(async () => stopAll(echo, russh));

  it(hasKems ? 'is negotiated by default and carries a reverse tunnel' : 'is not offered by node:crypto', async () => {
    const tunnel = peerTunnel(russh);
    tunnel.cryptoProvider = provider;
    const seen = negotiatedKex(tunnel);
    await tunnel.sshLogon();
    try {
      expect(seen()).toBe(hasKems ? 'mlkem768x25519-sha256' : 'curve25519-sha256');
      await moveData(tunnel, echo.port);
      await tunnel.exchangeKeys();
      await moveData(tunnel, echo.port);
    } finally {
      await tunnel.sshLogoff();
    }
  });
});

describe('a malformed hybrid reply', () => {
  it(hasKems ? 'a reply one byte short is refused with 1038 and a DISCONNECT before the close' : 'node:crypto refuses the hybrid with 1005', async () => {
    // 1088-byte ciphertext + 32-byte X25519 key, less one byte.
    const server = await startKexReplyServer('mlkem768x25519-sha256', () => randomBytes(1088 + 32 - 1));
    try {
      const tunnel = new SSHReverseTunnel();
      tunnel.cryptoProvider = provider;
      tunnel.sshHost = '127.0.0.1';
      tunnel.sshPort = server.port;
      tunnel.sshUser = 'nobody';
      tunnel.sshPassword = 'unused';
      tunnel.timeout = 30;
      tunnel.config('SSHKeyExchangeAlgorithms=mlkem768x25519-sha256');
      const error = (await tunnel.sshLogon().then(
        () => null,
        (e: unknown) => e,
      )) as SshError | null;
      if (!hasKems) {
        expect(error?.code).toBe(Code.UnsupportedAlgorithm);
        return;
      }
      expect(error?.code).toBe(Code.EcdhFailed);
      expect(error?.message).toMatch(/1119 bytes/);
      await server.closed;
      // What the client sent: KEXINIT, its 1216-byte C_INIT, then DISCONNECT (key exchange failed).
      const [kexInit, init, last] = server.received;
      expect(kexInit![0]).toBe(MSG.KEXINIT);
      expect(init![0]).toBe(MSG.KEXDH_INIT);
      expect(new Reader(init!.subarray(1)).string().length).toBe(1184 + 32);
      expect(last?.[0]).toBe(MSG.DISCONNECT);
      expect(new Reader(last!.subarray(1)).uint32()).toBe(DisconnectReason.KeyExchangeFailed);
    } finally {
      await server.close();
    }
  });
});
