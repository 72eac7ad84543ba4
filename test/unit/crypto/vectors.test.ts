// Known-answer tests for the node provider's packet framing, with published vectors placed
// where the SSH construction puts them: the MAC covers uint32 sequence || packet (RFC 4253
// §6.4), CTR mode runs over the whole packet, and chacha20-poly1305@openssh.com derives its
// Poly1305 key from keystream block 0 and encrypts the length with the second key.

import { describe, expect, it } from 'vitest';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { poly1305 } from '../../../ts/crypto/poly1305.js';
import { fromHex, toHex } from '../../../ts/protocol/wire.js';

const provider = new NodeCryptoProvider();

/** seq || packet = "Hi There" when seq = "Hi T" and the packet is "here": RFC 4231 / RFC 2202 test case 1. */
const HI_T = 0x48692054;
const HERE = new TextEncoder().encode('here');
const KEY_0B = new Uint8Array(20).fill(0x0b);

describe('HMAC framing (RFC 4231 and RFC 2202 test case 1)', () => {
  it.each([
    ['hmac-sha2-256', 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['hmac-sha2-512', '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
    ['hmac-sha1', 'b617318655057264e28bc0b6fb378c8ef146be00'],
    ['hmac-sha2-256-etm@openssh.com', 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    ['hmac-sha2-512-etm@openssh.com', '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
  ])('%s tags sequence || packet', (mac, expected) => {
    const sealer = provider.createSealer({ cipher: 'aes128-ctr', mac, key: new Uint8Array(16), iv: new Uint8Array(16), macKey: KEY_0B });
    const packet = new Uint8Array(4 + sealer.macLength);
    packet.set(HERE);
    sealer.seal(HI_T, packet);
    expect(toHex(packet.subarray(4))).toBe(expected);
  });
});

describe('AES-128-CTR (NIST SP 800-38A F.5.1)', () => {
  it('encrypts the packet from the IV as the initial counter block', () => {
    const sealer = provider.createSealer({
      cipher: 'aes128-ctr',
      mac: 'hmac-sha2-256',
      key: fromHex('2b7e151628aed2a6abf7158809cf4f3c'),
      iv: fromHex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff'),
      macKey: new Uint8Array(32),
    });
    const packet = new Uint8Array(32 + sealer.macLength);
    packet.set(fromHex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51'));
    sealer.seal(0, packet);
    expect(toHex(packet.subarray(0, 32))).toBe('874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff');
  });
});

describe('chacha20-poly1305@openssh.com with all-zero keys', () => {
  // ChaCha20 keystream block 0 for an all-zero key and nonce (the original 64-bit nonce variant).
  const BLOCK0 = fromHex('76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586');

  it('encrypts the length with keystream block 0 of the header key and tags with the Poly1305 key from block 0', () => {
    const sealer = provider.createSealer({ cipher: 'chacha20-poly1305@openssh.com', mac: null, key: new Uint8Array(64), iv: new Uint8Array(0), macKey: new Uint8Array(0) });
    const packet = new Uint8Array(4 + 12 + 16);
    packet.set([0, 0, 0, 12, 4, 94, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    sealer.seal(0, packet);
    const expectedLength = [0, 0, 0, 12].map((b, i) => b ^ BLOCK0[i]!);
    expect(Array.from(packet.subarray(0, 4))).toEqual(expectedLength);
    expect(toHex(packet.subarray(16))).toBe(toHex(poly1305(BLOCK0.subarray(0, 32), packet.subarray(0, 16))));
    // ...and opens again.
    const opener = provider.createOpener({ cipher: 'chacha20-poly1305@openssh.com', mac: null, key: new Uint8Array(64), iv: new Uint8Array(0), macKey: new Uint8Array(0) });
    expect(opener.decryptLength(0, packet.subarray(0, 4))).toBe(12);
    opener.open(0, packet);
    expect(Array.from(packet.subarray(4, 16))).toEqual([4, 94, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('X25519 (RFC 7748 §6.1)', () => {
  it("derives Alice's public key and the shared secret from Bob's", () => {
    const alice = provider.keyAgreement({ kind: 'x25519' }, fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
    expect(toHex(alice.publicValue)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    const shared = alice.computeSecret(fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'));
    expect(toHex(shared)).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('refuses a low-order peer point (all-zero shared secret) with 1038', () => {
    const agreement = provider.keyAgreement({ kind: 'x25519' });
    expect(() => agreement.computeSecret(new Uint8Array(32))).toThrow(expect.objectContaining({ code: 1038 }));
  });
});
