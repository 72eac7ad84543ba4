// Key exchange checks with fixed inputs: the curve25519-sha256 exchange hash (RFC 8731 §3:
// Q_C and Q_S as strings, K as an mpint) and RFC 4253 §7.2 key derivation, each compared
// with the same construction built independently here from raw buffers.

import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { createKexMethod, deriveKey, negotiate } from '../../../ts/protocol/kex.js';
import { fromHex, toHex } from '../../../ts/protocol/wire.js';
import type { CryptoProvider } from '../../../ts/crypto/provider.js';
import { kexInit } from '../../helpers/peer.js';

const node = new NodeCryptoProvider();
const ALICE = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_PUBLIC = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const SHARED = fromHex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');

const str = (b: Uint8Array | string) => {
  const bytes = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
};
const mpint = (b: Uint8Array) => (b[0]! & 0x80 ? str(Buffer.concat([Buffer.from([0]), b])) : str(b));

describe('curve25519-sha256', () => {
  it('hashes V_C, V_S, I_C, I_S, K_S, Q_C, Q_S and K as RFC 8731 says', () => {
    const fixed: CryptoProvider = Object.assign(Object.create(node) as CryptoProvider, {
      keyAgreement: (kind: Parameters<CryptoProvider['keyAgreement']>[0]) => node.keyAgreement(kind, ALICE),
    });
    const ctx = {
      provider: fixed,
      clientVersion: 'SSH-2.0-client',
      serverVersion: 'SSH-2.0-server',
      clientKexInit: new Uint8Array([20, 1, 2, 3]),
      serverKexInit: new Uint8Array([20, 4, 5, 6]),
      groupBits: { min: 2048, preferred: 3072, max: 8192 },
    };
    const method = createKexMethod('curve25519-sha256', ctx);
    const init = method.start().send[0]!;
    expect(toHex(init)).toBe('1e00000020' + ALICE_PUBLIC); // SSH_MSG_KEX_ECDH_INIT, string Q_C
    const hostKey = str('ssh-ed25519');
    const reply = Buffer.concat([Buffer.from([31]), str(hostKey), str(BOB_PUBLIC), str('sig')]);
    const outcome = method.handle(reply).outcome!;
    expect(toHex(outcome.sharedSecret)).toBe(toHex(SHARED));
    const expected = createHash('sha256')
      .update(Buffer.concat([str('SSH-2.0-client'), str('SSH-2.0-server'), str(ctx.clientKexInit), str(ctx.serverKexInit), str(hostKey), str(fromHex(ALICE_PUBLIC)), str(BOB_PUBLIC), mpint(SHARED)]))
      .digest('hex');
    expect(toHex(outcome.exchangeHash)).toBe(expected);
  });
});

describe('key derivation (RFC 4253 §7.2)', () => {
  it('extends HASH(K || H || letter || session_id) with HASH(K || H || K1) for longer keys', () => {
    const k = fromHex('ff' + '11'.repeat(31)); // top bit set: the mpint gets a leading zero
    const h = fromHex('22'.repeat(32));
    const session = fromHex('33'.repeat(32));
    const key = deriveKey(node, 'sha256', k, h, 'C', session, 64);
    const k1 = createHash('sha256')
      .update(Buffer.concat([mpint(k), h, Buffer.from('C'), session]))
      .digest();
    const k2 = createHash('sha256')
      .update(Buffer.concat([mpint(k), h, k1]))
      .digest();
    expect(toHex(key)).toBe(toHex(Buffer.concat([k1, k2])));
  });
});

describe('negotiation (RFC 4253 §7.1)', () => {
  const base = kexInit({ kexAlgorithms: [] });
  it("picks the client's first choice the server supports, per direction, ignoring pseudo-algorithms", () => {
    const client = {
      ...base,
      kexAlgorithms: ['curve25519-sha256', 'ecdh-sha2-nistp256', 'ext-info-c', 'kex-strict-c-v00@openssh.com'],
      ciphersClientToServer: ['aes256-ctr', 'aes128-ctr'],
      ciphersServerToClient: ['aes128-ctr', 'aes256-ctr'],
    };
    const server = {
      ...base,
      kexAlgorithms: ['ecdh-sha2-nistp256', 'curve25519-sha256', 'kex-strict-s-v00@openssh.com'],
      ciphersClientToServer: ['aes128-ctr', 'aes256-ctr'],
      ciphersServerToClient: ['aes256-ctr', 'aes128-ctr'],
    };
    const n = negotiate(client, server, () => false);
    expect(n).toMatchObject({ kex: 'curve25519-sha256', cipherClientToServer: 'aes256-ctr', cipherServerToClient: 'aes128-ctr', strictKex: true });
  });

  it('needs no MAC for an AEAD cipher', () => {
    const client = {
      ...base,
      kexAlgorithms: ['curve25519-sha256'],
      ciphersClientToServer: ['aes128-gcm@openssh.com'],
      ciphersServerToClient: ['aes128-gcm@openssh.com'],
      macsClientToServer: ['hmac-sha1'],
      macsServerToClient: ['hmac-sha1'],
    };
    const server = { ...client, macsClientToServer: ['hmac-sha2-512'], macsServerToClient: ['hmac-sha2-512'] };
    const n = negotiate(client, server, (c) => c.includes('gcm'));
    expect(n.macClientToServer).toBeNull();
    expect(n.macServerToClient).toBeNull();
  });

  it('a pseudo-algorithm alone is not a key exchange', () => {
    const client = { ...base, kexAlgorithms: ['curve25519-sha256', 'ext-info-c'] };
    const server = { ...base, kexAlgorithms: ['ext-info-c'] };
    expect(() => negotiate(client, server, () => false)).toThrow(expect.objectContaining({ code: 1003 }));
  });
});

describe('public key blobs from the server', () => {
  const rsa = (e: Uint8Array, n: Uint8Array) => Buffer.concat([str('ssh-rsa'), mpint(e), mpint(n)]);
  it('refuses RSA keys that would make verification a denial of service', async () => {
    const { parsePublicKey } = await import('../../../ts/protocol/publickey.js');
    const n = (bits: number) => Buffer.concat([Buffer.from([0xc0]), Buffer.alloc(bits / 8 - 1, 0x55)]);
    expect(() => parsePublicKey(rsa(Buffer.from([1, 0, 1]), n(2048)))).not.toThrow();
    expect(() => parsePublicKey(rsa(Buffer.from([1, 0, 1]), n(32768)))).toThrow(/longer than 16384/);
    expect(() => parsePublicKey(rsa(Buffer.from([1, 0, 1]), n(512)))).toThrow(/shorter than 1024/);
    expect(() => parsePublicKey(rsa(Buffer.alloc(256, 0x7f), n(2048)))).toThrow(/exponent/);
    expect(() => parsePublicKey(rsa(Buffer.from([1, 0, 0]), n(2048)))).toThrow(/exponent/);
  });
});
