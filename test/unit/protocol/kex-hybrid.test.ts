// The hybrid key exchanges against a server half built here from the raw parts: the core's
// encapsulation, node:crypto's X25519 and SHA-2, and the exchange hash written out by hand with
// K as a string (both drafts, §2.4) rather than an mpint. Also the refusals (1038) of a reply of
// the wrong length and of a low-order X25519 key, key derivation from a string K, and which
// providers get the hybrids in the default list.

import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { loadCryptoProvider } from '../../../ts/crypto/select.js';
import type { CoreCryptoProvider } from '../../../ts/crypto/core.js';
import { createKexMethod, deriveKey } from '../../../ts/protocol/kex.js';
import { HYBRID_KEX_METHODS, KEM_WIRE_SIZES } from '../../../ts/protocol/kex-hybrid.js';
import { KexEcdhInit, KexEcdhReply } from '../../../ts/protocol/messages.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { algorithmLists, DEFAULT_KEX } from '../../../ts/tunnel/settings.js';

const str = (b: Uint8Array | string) => {
  const bytes = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
};
const HOST_KEY = str('ssh-ed25519');
const SIGNATURE = str('sig');

function context(provider: CoreCryptoProvider) {
  return {
    provider,
    clientVersion: 'SSH-2.0-client',
    serverVersion: 'SSH-2.0-server',
    clientKexInit: new Uint8Array([20, 1, 2, 3]),
    serverKexInit: new Uint8Array([20, 4, 5, 6]),
    groupBits: { min: 2048, preferred: 3072, max: 8192 },
  };
}

const providers = (['native', 'wasm'] as const).map((name) => [name, loadCryptoProvider(name) as CoreCryptoProvider] as const);
const cases = providers.flatMap(([name, provider]) => Object.keys(HYBRID_KEX_METHODS).map((kex) => [name, kex, provider] as const));

describe.each(cases)('%s: %s', (_name, kex, provider) => {
  const { kem, hash } = HYBRID_KEX_METHODS[kex]!;
  const sizes = KEM_WIRE_SIZES[kem];

  it('agrees with a server half on K and the exchange hash', () => {
    const ctx = context(provider);
    const method = createKexMethod(kex, ctx);
    const clientInit = KexEcdhInit.decode(method.start().send[0]!).clientPublic;
    expect(clientInit.length).toBe(sizes.publicKey + 32);
    // The server: encapsulate to the client's KEM key, X25519 with the client's key.
    const { ciphertext, secret } = provider.core.kem!.encapsulate(kem, clientInit.subarray(0, sizes.publicKey), randomBytes(32));
    const x25519 = provider.keyAgreement({ kind: 'x25519' });
    const ecdh = Buffer.alloc(32);
    const raw = x25519.computeSecret(clientInit.subarray(sizes.publicKey));
    ecdh.set(raw, 32 - raw.length);
    const serverReply = Buffer.concat([ciphertext, x25519.publicValue]);
    const k = createHash(hash).update(secret).update(ecdh).digest();

    const step = method.handle(KexEcdhReply.encode({ hostKey: HOST_KEY, serverPublic: serverReply, signature: SIGNATURE }));
    expect(Buffer.from(step.outcome!.sharedSecret).equals(k)).toBe(true);
    expect(step.outcome!.sharedSecretEncoding).toBe('string');
    const h = createHash(hash)
      .update(Buffer.concat([str(ctx.clientVersion), str(ctx.serverVersion), str(ctx.clientKexInit), str(ctx.serverKexInit), str(HOST_KEY)]))
      .update(Buffer.concat([str(clientInit), str(serverReply), str(k)]))
      .digest();
    expect(Buffer.from(step.outcome!.exchangeHash).equals(h)).toBe(true);
  });

  it('refuses a reply one byte long or short with 1038', () => {
    for (const length of [sizes.ciphertext + 31, sizes.ciphertext + 33]) {
      const method = createKexMethod(kex, context(provider));
      method.start();
      const reply = KexEcdhReply.encode({ hostKey: HOST_KEY, serverPublic: randomBytes(length), signature: SIGNATURE });
      expect(() => method.handle(reply)).toThrow(
        expect.objectContaining({ code: Code.EcdhFailed, origin: 'peer', message: expect.stringMatching(/ciphertext and an X25519 key make/) }) as unknown as Error,
      );
    }
  });

  it('refuses an all-zero (low-order) X25519 key with 1038', () => {
    const method = createKexMethod(kex, context(provider));
    method.start();
    const serverPublic = Buffer.concat([randomBytes(sizes.ciphertext), Buffer.alloc(32)]);
    const reply = KexEcdhReply.encode({ hostKey: HOST_KEY, serverPublic, signature: SIGNATURE });
    let error: unknown;
    try {
      method.handle(reply);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(Code.EcdhFailed);
  });
});

describe('key derivation from a string K', () => {
  it('hashes K with a plain length prefix, never the mpint sign byte', () => {
    const provider = providers[0][1];
    // A K whose top bit is set: as an mpint it would get a leading zero byte.
    const k = Buffer.concat([Buffer.from([0x80]), randomBytes(31)]);
    const h = randomBytes(32);
    const sessionId = randomBytes(32);
    const derived = deriveKey(provider, 'sha256', k, h, 'C', sessionId, 32, 'string');
    const expected = createHash('sha256').update(str(k)).update(h).update('C').update(sessionId).digest();
    expect(Buffer.from(derived).equals(expected)).toBe(true);
    expect(Buffer.from(deriveKey(provider, 'sha256', k, h, 'C', sessionId, 32)).equals(expected)).toBe(false);
  });
});

describe('the default key exchange list', () => {
  const lists = (name: 'native' | 'wasm' | 'node') =>
    algorithmLists(loadCryptoProvider(name), { kex: DEFAULT_KEX.join(','), hostKey: 'ssh-ed25519', cipher: 'aes128-ctr', mac: 'hmac-sha2-256', compression: 'none' }).kex;

  it('starts with the hybrids under the Rust core', () => {
    for (const name of ['native', 'wasm'] as const) {
      expect(lists(name).slice(0, 4)).toEqual(['mlkem768x25519-sha256', 'sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com', 'curve25519-sha256']);
    }
  });

  it('leaves them out under node:crypto, and a list of only a hybrid is 1005 there', () => {
    expect(lists('node')[0]).toBe('curve25519-sha256');
    expect(lists('node').some((n) => n in HYBRID_KEX_METHODS)).toBe(false);
    expect(() => algorithmLists(loadCryptoProvider('node'), { kex: 'mlkem768x25519-sha256', hostKey: 'ssh-ed25519', cipher: 'aes128-ctr', mac: 'hmac-sha2-256', compression: 'none' })).toThrow(
      expect.objectContaining({ code: Code.UnsupportedAlgorithm }) as unknown as Error,
    );
  });
});
