// The hybrid post-quantum key exchanges: mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex)
// and sntrup761x25519-sha512, also named sntrup761x25519-sha512@openssh.com
// (draft-ietf-sshm-ntruprime-ssh). Both are one round over the ECDH messages (RFC 5656 §4):
// the client sends C_INIT = KEM public key ‖ X25519 public key, the server replies with
// S_REPLY = KEM ciphertext ‖ X25519 public key, and K = HASH(KEM secret ‖ X25519 secret).
// Unlike every older method, K enters the exchange hash and the key derivation as a string,
// not an mpint (both drafts, §2.4). The KEM runs in revtun's Rust core; X25519 stays on
// node:crypto as it does for curve25519-sha256.

import type { Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { KexEcdhInit, KexEcdhReply } from './messages.js';
import type { CryptoProvider, HashName } from '../crypto/provider.js';
import type { KemName } from '../crypto/kem.js';
import type { KexMethod } from './kex.js';

interface HybridMethod {
  kem: KemName;
  hash: HashName;
}

export const HYBRID_KEX_METHODS: Readonly<Record<string, HybridMethod>> = {
  'mlkem768x25519-sha256': { kem: 'mlkem768', hash: 'sha256' },
  'sntrup761x25519-sha512': { kem: 'sntrup761', hash: 'sha512' },
  'sntrup761x25519-sha512@openssh.com': { kem: 'sntrup761', hash: 'sha512' },
};

/**
 * Wire sizes fixed by the KEM specifications (FIPS 203 Table 3 for ML-KEM-768; NTRU Prime's
 * sntrup761 parameters): what the server's reply must measure exactly before any of it is used.
 */
export const KEM_WIRE_SIZES: Readonly<Record<KemName, { publicKey: number; ciphertext: number }>> = {
  mlkem768: { publicKey: 1184, ciphertext: 1088 },
  sntrup761: { publicKey: 1158, ciphertext: 1039 },
};

const X25519_LENGTH = 32;

export function isHybridKex(name: string): boolean {
  return Object.hasOwn(HYBRID_KEX_METHODS, name);
}

/** Whether `provider` can run the hybrid method `name` (the node:crypto provider cannot). */
export function hybridKexAvailable(provider: CryptoProvider, name: string): boolean {
  const method = HYBRID_KEX_METHODS[name];
  return method !== undefined && (provider.kems?.has(method.kem) ?? false) && provider.createKem !== undefined;
}

/** The X25519 secret as the 32 bytes X25519 produced (the agreement strips leading zeros for mpints). */
function fixedLength(secret: Uint8Array): Uint8Array {
  const out = new Uint8Array(X25519_LENGTH);
  out.set(secret, X25519_LENGTH - secret.length);
  return out;
}

/**
 * One hybrid key exchange. `exchangePrefix` writes V_C, V_S, I_C, I_S and K_S (RFC 4253 §8),
 * which the caller owns.
 */
export function createHybridKexMethod(name: string, provider: CryptoProvider, exchangePrefix: (hostKey: Uint8Array) => Writer): KexMethod {
  const method = HYBRID_KEX_METHODS[name];
  if (!method || !hybridKexAvailable(provider, name)) {
    throw new SshError(Code.UnsupportedAlgorithm, `key exchange ${name} needs the native or WASM crypto provider`, 'local');
  }
  const sizes = KEM_WIRE_SIZES[method.kem];
  const kem = provider.createKem!(method.kem);
  const x25519 = provider.keyAgreement({ kind: 'x25519' });
  if (kem.publicKey.length !== sizes.publicKey) {
    throw new SshError(Code.CannotMakeKey, `the crypto core made a ${kem.publicKey.length}-byte ${method.kem} public key, not ${sizes.publicKey}`, 'local');
  }
  const clientInit = new Uint8Array(sizes.publicKey + X25519_LENGTH);
  clientInit.set(kem.publicKey);
  clientInit.set(x25519.publicValue, sizes.publicKey);
  return {
    hash: method.hash,
    start() {
      return { send: [KexEcdhInit.encode({ clientPublic: clientInit })] };
    },
    handle(payload) {
      const reply = KexEcdhReply.decode(payload);
      const serverReply = reply.serverPublic;
      const expected = sizes.ciphertext + X25519_LENGTH;
      if (serverReply.length !== expected) {
        throw new SshError(Code.EcdhFailed, `the server's ${name} reply is ${serverReply.length} bytes; a ${method.kem} ciphertext and an X25519 key make ${expected}`, 'peer');
      }
      const kemSecret = kem.decapsulate(serverReply.subarray(0, sizes.ciphertext));
      kem.dispose(); // one use: the secret key goes now, not at garbage collection
      // Refuses a low-order X25519 point (all-zero secret) with 1038, as curve25519-sha256 does.
      const ecdhSecret = fixedLength(x25519.computeSecret(serverReply.subarray(sizes.ciphertext)));
      const sharedSecret = provider.hash(method.hash, kemSecret, ecdhSecret);
      const h = exchangePrefix(reply.hostKey).string(clientInit).string(serverReply).string(sharedSecret).finish();
      return {
        send: [],
        outcome: {
          hostKey: reply.hostKey,
          signature: reply.signature,
          sharedSecret,
          sharedSecretEncoding: 'string',
          exchangeHash: provider.hash(method.hash, h),
        },
      };
    },
  };
}
