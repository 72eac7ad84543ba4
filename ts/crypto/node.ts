// The always-available CryptoProvider, built on node:crypto (OpenSSL). Stream-mode ciphers
// (CTR, CBC) keep one cipher context per direction for the life of the keys; AEAD modes
// need a fresh context per packet because the nonce changes. ChaCha20 comes from OpenSSL,
// Poly1305 from ./poly1305.ts.

import type { KemKeyPair, KemName } from './kem.js';
import * as crypto from 'node:crypto';
import type { CipherInfo, CryptoProvider, DirectionKeys, HashName, KeyAgreement, KeyAgreementKind, MacInfo, PacketOpener, PacketSealer } from './provider.js';
import { SshError, Code } from '../protocol/errors.js';
import { ECDSA_CURVES, ecdsaSignatureToP1363, parsePublicKey, parseSignature, publicKeyTypeName } from '../protocol/publickey.js';
import { DSA_Q_BITS, signatureAlgorithmSpec, type PublicKey, type SignatureAlgorithmSpec } from '../protocol/key-types.js';
import { dsaSpki } from './dsa-der.js';
import { poly1305 } from './poly1305.js';
import { equalBytes, readUint32 } from '../protocol/wire.js';

const OPENSSL_CIPHERS: Record<string, { openssl: string; info: CipherInfo }> = {
  'aes128-ctr': { openssl: 'aes-128-ctr', info: { keyLength: 16, ivLength: 16, blockSize: 16, aead: false } },
  'aes192-ctr': { openssl: 'aes-192-ctr', info: { keyLength: 24, ivLength: 16, blockSize: 16, aead: false } },
  'aes256-ctr': { openssl: 'aes-256-ctr', info: { keyLength: 32, ivLength: 16, blockSize: 16, aead: false } },
  'aes128-cbc': { openssl: 'aes-128-cbc', info: { keyLength: 16, ivLength: 16, blockSize: 16, aead: false } },
  'aes192-cbc': { openssl: 'aes-192-cbc', info: { keyLength: 24, ivLength: 16, blockSize: 16, aead: false } },
  'aes256-cbc': { openssl: 'aes-256-cbc', info: { keyLength: 32, ivLength: 16, blockSize: 16, aead: false } },
  '3des-cbc': { openssl: 'des-ede3-cbc', info: { keyLength: 24, ivLength: 8, blockSize: 8, aead: false } },
  'aes128-gcm@openssh.com': { openssl: 'aes-128-gcm', info: { keyLength: 16, ivLength: 12, blockSize: 16, aead: true } },
  'aes256-gcm@openssh.com': { openssl: 'aes-256-gcm', info: { keyLength: 32, ivLength: 12, blockSize: 16, aead: true } },
  'chacha20-poly1305@openssh.com': { openssl: 'chacha20', info: { keyLength: 64, ivLength: 0, blockSize: 8, aead: true } },
};

/** HMAC MACs (RFC 4253 §6.4, RFC 6668) by hash, tag length and EtM, offered when OpenSSL has the hash. */
const HMAC_FAMILIES: [name: string, hash: string, keyLength: number][] = [
  ['hmac-sha2-256', 'sha256', 32],
  ['hmac-sha2-512', 'sha512', 64],
  ['hmac-sha1', 'sha1', 20],
  ['hmac-md5', 'md5', 16],
  ['hmac-ripemd160', 'ripemd160', 20],
];

function hmacTable(): Record<string, { hash: string; info: MacInfo }> {
  const have = new Set(crypto.getHashes());
  const table: Record<string, { hash: string; info: MacInfo }> = {};
  for (const [name, hash, keyLength] of HMAC_FAMILIES) {
    if (!have.has(hash)) continue;
    for (const etm of [false, true]) {
      const suffix = etm ? '-etm@openssh.com' : '';
      table[`${name}${suffix}`] = { hash, info: { keyLength, length: keyLength, etm } };
      // Nobody defines hmac-ripemd160-96-etm; the other truncated EtM forms exist.
      if (!(etm && hash === 'ripemd160')) table[`${name}-96${suffix}`] = { hash, info: { keyLength, length: 12, etm } };
    }
  }
  if (table['hmac-ripemd160']) table['hmac-ripemd160@openssh.com'] = table['hmac-ripemd160'];
  return table;
}

const HMACS = hmacTable();

function available(): Map<string, CipherInfo> {
  const have = new Set(crypto.getCiphers());
  const out = new Map<string, CipherInfo>();
  for (const [name, { openssl, info }] of Object.entries(OPENSSL_CIPHERS)) {
    if (!have.has(openssl)) continue;
    // OpenSSL 3 lists some legacy ciphers it then refuses to create; probe each once.
    try {
      crypto.createCipheriv(openssl, Buffer.alloc(info.keyLength === 64 ? 32 : info.keyLength), Buffer.alloc(info.ivLength === 0 ? 16 : info.ivLength));
      out.set(name, info);
    } catch {
      /* not usable in this OpenSSL build */
    }
  }
  return out;
}

function seqBytes(sequence: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(sequence >>> 0, 0);
  return b;
}

function readLength(bytes: Uint8Array): number {
  return readUint32(bytes, 0);
}

function writeInto(target: Uint8Array, offset: number, data: Uint8Array): void {
  target.set(data, offset);
}

function badMac(): SshError {
  return new SshError(Code.CannotDecrypt, 'message authentication code is invalid (corrupted or forged packet)', 'peer');
}

/** RFC 5647 / OpenSSH aes-gcm: 12-byte nonce = 4-byte fixed field + 8-byte counter bumped per packet. */
class GcmDirection {
  private readonly nonce: Buffer;
  constructor(
    private readonly algorithm: crypto.CipherGCMTypes,
    private readonly key: Buffer,
    iv: Uint8Array,
  ) {
    this.nonce = Buffer.from(iv);
  }

  /** Increments the 64-bit invocation counter (bytes 4..11), big-endian, after each packet. */
  private advance(): void {
    for (let i = 11; i >= 4; i--) {
      this.nonce[i] = (this.nonce[i]! + 1) & 0xff;
      if (this.nonce[i] !== 0) break;
    }
  }

  seal(packet: Uint8Array): void {
    const bodyEnd = packet.length - 16;
    // createCipheriv copies the IV, so the nonce buffer can move on right away.
    const cipher = crypto.createCipheriv(this.algorithm, this.key, this.nonce, { authTagLength: 16 }) as crypto.CipherGCM;
    this.advance();
    cipher.setAAD(packet.subarray(0, 4));
    const out = cipher.update(packet.subarray(4, bodyEnd));
    cipher.final();
    writeInto(packet, 4, out);
    writeInto(packet, bodyEnd, cipher.getAuthTag());
  }

  open(packet: Uint8Array): void {
    const bodyEnd = packet.length - 16;
    const decipher = crypto.createDecipheriv(this.algorithm, this.key, this.nonce, { authTagLength: 16 }) as crypto.DecipherGCM;
    this.advance();
    decipher.setAAD(packet.subarray(0, 4));
    decipher.setAuthTag(packet.subarray(bodyEnd));
    const out = decipher.update(packet.subarray(4, bodyEnd));
    try {
      decipher.final();
    } catch {
      throw badMac();
    }
    writeInto(packet, 4, out);
  }
}

/** chacha20-poly1305@openssh.com (PROTOCOL.chacha20poly1305): K_2 = key[0..32] for the body, K_1 = key[32..64] for the length. */
class ChaChaDirection {
  private readonly mainKey: Buffer;
  private readonly headerKey: Buffer;
  constructor(key: Uint8Array) {
    this.mainKey = Buffer.from(key.subarray(0, 32));
    this.headerKey = Buffer.from(key.subarray(32, 64));
  }

  private static iv(sequence: number, counter: number): Buffer {
    // OpenSSL's 16-byte ChaCha20 IV is the 32-bit block counter (LE) then 96 bits of nonce;
    // the original construction has a 64-bit counter and a 64-bit nonce (the sequence number, BE).
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE(counter, 0);
    iv.writeUInt32BE(sequence >>> 0, 12);
    return iv;
  }

  private stream(key: Buffer, sequence: number, counter: number, data: Uint8Array): Buffer {
    return crypto.createCipheriv('chacha20', key, ChaChaDirection.iv(sequence, counter)).update(data);
  }

  private polyKey(sequence: number): Uint8Array {
    return this.stream(this.mainKey, sequence, 0, new Uint8Array(32));
  }

  decryptLength(sequence: number, head: Uint8Array): number {
    return readLength(this.stream(this.headerKey, sequence, 0, head.subarray(0, 4)));
  }

  seal(sequence: number, packet: Uint8Array): void {
    const bodyEnd = packet.length - 16;
    writeInto(packet, 0, this.stream(this.headerKey, sequence, 0, packet.subarray(0, 4)));
    writeInto(packet, 4, this.stream(this.mainKey, sequence, 1, packet.subarray(4, bodyEnd)));
    writeInto(packet, bodyEnd, poly1305(this.polyKey(sequence), packet.subarray(0, bodyEnd)));
  }

  open(sequence: number, packet: Uint8Array): void {
    const bodyEnd = packet.length - 16;
    const expected = poly1305(this.polyKey(sequence), packet.subarray(0, bodyEnd));
    if (!crypto.timingSafeEqual(expected, packet.subarray(bodyEnd))) throw badMac();
    writeInto(packet, 0, this.stream(this.headerKey, sequence, 0, packet.subarray(0, 4)));
    writeInto(packet, 4, this.stream(this.mainKey, sequence, 1, packet.subarray(4, bodyEnd)));
  }
}

class Hmac {
  constructor(
    private readonly hash: string,
    private readonly key: Uint8Array,
    readonly length: number,
  ) {}
  compute(sequence: number, data: Uint8Array): Buffer {
    const tag = crypto.createHmac(this.hash, this.key).update(seqBytes(sequence)).update(data).digest();
    return tag.length === this.length ? tag : tag.subarray(0, this.length);
  }
}

function makeHmac(keys: DirectionKeys): Hmac {
  const spec = keys.mac ? HMACS[keys.mac] : undefined;
  if (!spec) throw new SshError(Code.UnsupportedAlgorithm, `MAC ${keys.mac} is not implemented by the node provider`, 'local');
  return new Hmac(spec.hash, keys.macKey, spec.info.length);
}

function isEtm(mac: string | null): boolean {
  return mac !== null && (HMACS[mac]?.info.etm ?? false);
}

/** The provider built on node:crypto alone: no native code, fewer algorithms (no post-quantum KEMs). */
export class NodeCryptoProvider implements CryptoProvider {
  readonly name: string = 'node';
  readonly ciphers: ReadonlyMap<string, CipherInfo> = available();
  readonly macs: ReadonlyMap<string, MacInfo> = new Map(Object.entries(HMACS).map(([k, v]) => [k, v.info]));

  /** node:crypto (Node 20) has no ML-KEM or sntrup761: the hybrid key exchanges need the Rust core. */
  get kems(): ReadonlySet<string> {
    return new Set();
  }

  createKem(name: KemName): KemKeyPair {
    throw new SshError(Code.UnsupportedAlgorithm, `KEM ${name} needs the native or WASM crypto provider`, 'local');
  }

  createSealer(keys: DirectionKeys): PacketSealer {
    const spec = OPENSSL_CIPHERS[keys.cipher];
    const info = this.ciphers.get(keys.cipher);
    if (!spec || !info) throw new SshError(Code.UnsupportedAlgorithm, `cipher ${keys.cipher} is not available`, 'local');
    if (keys.cipher.startsWith('chacha20')) {
      const chacha = new ChaChaDirection(keys.key);
      return { blockSize: 8, macLength: 16, lengthOutsidePadding: true, seal: (seq, p) => chacha.seal(seq, p) };
    }
    if (info.aead) {
      const gcm = new GcmDirection(spec.openssl as crypto.CipherGCMTypes, Buffer.from(keys.key), keys.iv);
      return { blockSize: 16, macLength: 16, lengthOutsidePadding: true, seal: (_seq, p) => gcm.seal(p) };
    }
    const cipher = crypto.createCipheriv(spec.openssl, keys.key, keys.iv).setAutoPadding(false);
    const mac = makeHmac(keys);
    const etm = isEtm(keys.mac);
    return {
      blockSize: info.blockSize,
      macLength: mac.length,
      lengthOutsidePadding: etm,
      seal(sequence, packet) {
        const end = packet.length - mac.length;
        if (etm) {
          writeInto(packet, 4, cipher.update(packet.subarray(4, end)));
          writeInto(packet, end, mac.compute(sequence, packet.subarray(0, end)));
        } else {
          const tag = mac.compute(sequence, packet.subarray(0, end));
          writeInto(packet, 0, cipher.update(packet.subarray(0, end)));
          writeInto(packet, end, tag);
        }
      },
    };
  }

  createOpener(keys: DirectionKeys): PacketOpener {
    const spec = OPENSSL_CIPHERS[keys.cipher];
    const info = this.ciphers.get(keys.cipher);
    if (!spec || !info) throw new SshError(Code.UnsupportedAlgorithm, `cipher ${keys.cipher} is not available`, 'local');
    if (keys.cipher.startsWith('chacha20')) {
      const chacha = new ChaChaDirection(keys.key);
      return {
        blockSize: 8,
        macLength: 16,
        lengthFieldBytes: 4,
        decryptLength: (seq, head) => chacha.decryptLength(seq, head),
        open: (seq, p) => chacha.open(seq, p),
      };
    }
    if (info.aead) {
      const gcm = new GcmDirection(spec.openssl as crypto.CipherGCMTypes, Buffer.from(keys.key), keys.iv);
      return {
        blockSize: 16,
        macLength: 16,
        lengthFieldBytes: 4,
        decryptLength: (_seq, head) => readLength(head),
        open: (_seq, p) => gcm.open(p),
      };
    }
    const decipher = crypto.createDecipheriv(spec.openssl, keys.key, keys.iv).setAutoPadding(false);
    const mac = makeHmac(keys);
    const etm = isEtm(keys.mac);
    const block = info.blockSize;
    return {
      blockSize: block,
      macLength: mac.length,
      lengthFieldBytes: etm ? 4 : block,
      decryptLength(_seq, head) {
        if (etm) return readLength(head);
        writeInto(head, 0, decipher.update(head.subarray(0, block)));
        return readLength(head);
      },
      open(sequence, packet) {
        const end = packet.length - mac.length;
        if (etm) {
          const expected = mac.compute(sequence, packet.subarray(0, end));
          if (!crypto.timingSafeEqual(expected, packet.subarray(end))) throw badMac();
          writeInto(packet, 4, decipher.update(packet.subarray(4, end)));
        } else {
          writeInto(packet, block, decipher.update(packet.subarray(block, end)));
          const expected = mac.compute(sequence, packet.subarray(0, end));
          if (!crypto.timingSafeEqual(expected, packet.subarray(end))) throw badMac();
        }
      },
    };
  }

  hash(name: HashName, ...parts: Uint8Array[]): Uint8Array {
    const h = crypto.createHash(name);
    for (const p of parts) h.update(p);
    return h.digest();
  }

  randomBytes(length: number): Uint8Array {
    return crypto.randomBytes(length);
  }

  keyAgreement(kind: KeyAgreementKind, fixedPrivateKey?: Uint8Array): KeyAgreement {
    if (fixedPrivateKey && kind.kind !== 'x25519') {
      throw new SshError(Code.BadArgument, 'a fixed private key is only supported for X25519', 'local');
    }
    switch (kind.kind) {
      case 'x25519':
        return x25519Agreement(fixedPrivateKey);
      case 'ecdh': {
        const names = { nistp256: 'prime256v1', nistp384: 'secp384r1', nistp521: 'secp521r1' } as const;
        const ecdh = crypto.createECDH(names[kind.curve]);
        const publicValue = ecdh.generateKeys();
        return {
          publicValue,
          computeSecret(peer) {
            if (peer.length === 0 || peer[0] !== 4) {
              throw new SshError(Code.EcdhFailed, 'server ECDH value is not an uncompressed point', 'peer');
            }
            try {
              return stripZeros(ecdh.computeSecret(peer));
            } catch {
              throw new SshError(Code.EcdhFailed, 'server ECDH value is not a point on the curve', 'peer');
            }
          },
        };
      }
      case 'modp': {
        // RFC 4253 §8.1's group1 is the Second Oakley Group (RFC 2409 §6.2), node's modp2.
        const names = { group1: 'modp2', group14: 'modp14', group16: 'modp16', group18: 'modp18' } as const;
        return dhAgreement(crypto.getDiffieHellman(names[kind.group]));
      }
      case 'dh':
        return dhAgreement(crypto.createDiffieHellman(Buffer.from(kind.prime), Buffer.from(kind.generator)));
    }
  }

  verify(publicKey: Uint8Array, signatureAlgorithm: string, signature: Uint8Array, data: Uint8Array): boolean {
    const key = parsePublicKey(publicKey);
    const sig = parseSignature(signature);
    if (sig.algorithm !== signatureAlgorithm) return false;
    const spec = signatureAlgorithmSpec(signatureAlgorithm);
    if (!spec || spec.keyType !== publicKeyTypeName(key)) return false;
    return verifyWithScheme(spec, key, sig.signature, data);
  }
}

/** Checks a raw signature (the bytes inside the SSH signature blob) by the algorithm's scheme. */
export function verifyWithScheme(spec: SignatureAlgorithmSpec, key: PublicKey, signature: Uint8Array, data: Uint8Array): boolean {
  const keyObject = toKeyObject(key);
  switch (spec.scheme) {
    case 'ed25519':
      return crypto.verify(null, data, keyObject, signature);
    case 'ecdsa': {
      if (key.type !== 'ecdsa') return false;
      const raw = ecdsaSignatureToP1363(signature, ECDSA_CURVES[key.curve].bytes);
      return crypto.verify(spec.hash, data, { key: keyObject, dsaEncoding: 'ieee-p1363' }, raw);
    }
    case 'rsa-pkcs1': {
      if (key.type !== 'ssh-rsa') return false;
      // RFC 8332 §3: a signature shorter than the modulus is left-padded with zeros.
      let s = signature;
      if (s.length < key.n.length) {
        const padded = new Uint8Array(key.n.length);
        padded.set(s, key.n.length - s.length);
        s = padded;
      }
      return crypto.verify(spec.hash, data, { key: keyObject, padding: crypto.constants.RSA_PKCS1_PADDING }, s);
    }
    case 'dsa':
      // RFC 4253 §6.6: r and s as two 20-byte unsigned integers, which is IEEE P1363's form.
      if (key.type !== 'ssh-dss' || signature.length !== 2 * (DSA_Q_BITS / 8)) return false;
      return crypto.verify(spec.hash, data, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signature);
  }
}

function stripZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

export function toKeyObject(key: PublicKey): crypto.KeyObject {
  switch (key.type) {
    case 'ssh-ed25519':
      return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(key.key) }, format: 'jwk' });
    case 'ecdsa': {
      const size = ECDSA_CURVES[key.curve].bytes;
      return crypto.createPublicKey({
        key: {
          kty: 'EC',
          crv: ECDSA_CURVES[key.curve].jwk,
          x: b64u(key.point.subarray(1, 1 + size)),
          y: b64u(key.point.subarray(1 + size)),
        },
        format: 'jwk',
      });
    }
    case 'ssh-rsa':
      return crypto.createPublicKey({ key: { kty: 'RSA', n: b64u(key.n), e: b64u(key.e) }, format: 'jwk' });
    case 'ssh-dss':
      // No JWK form exists for DSA: the numbers go in as SubjectPublicKeyInfo.
      return crypto.createPublicKey({ key: Buffer.from(dsaSpki(key)), format: 'der', type: 'spki' });
  }
}

// X25519 keys are built from 32 random bytes as PKCS#8 DER and read back as SPKI DER. Node 20
// can deadlock when a key made by generateKeyPairSync is exported as JWK: the export holds
// the key's mutex while allocating, a garbage collection there destroys the finished key
// generation job, and its destructor waits for the same mutex (seen as a hung process).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

function x25519Agreement(fixedPrivateKey?: Uint8Array): KeyAgreement {
  const seed = fixedPrivateKey ?? crypto.randomBytes(32);
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const publicValue = spki.subarray(spki.length - 32);
  return {
    publicValue,
    computeSecret(peer) {
      if (peer.length !== 32) throw new SshError(Code.EcdhFailed, 'server curve25519 value is not 32 bytes', 'peer');
      let secret: Buffer;
      try {
        const peerKey = crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peer]), format: 'der', type: 'spki' });
        secret = crypto.diffieHellman({ privateKey, publicKey: peerKey });
      } catch (cause) {
        // OpenSSL refuses low-order points itself (an all-zero result).
        throw new SshError(Code.EcdhFailed, `server curve25519 value is invalid: ${(cause as Error).message}`, 'peer', { cause });
      }
      // RFC 8731 §3: an all-zero shared secret means a low-order peer point; abort.
      if (equalBytes(secret, new Uint8Array(32))) {
        throw new SshError(Code.EcdhFailed, 'server curve25519 value gives an all-zero shared secret', 'peer');
      }
      return stripZeros(secret);
    },
  };
}

function dhAgreement(dh: crypto.DiffieHellman | crypto.DiffieHellmanGroup): KeyAgreement {
  const publicValue = dh.generateKeys();
  const prime = BigInt('0x' + dh.getPrime('hex'));
  return {
    publicValue: stripZeros(publicValue),
    computeSecret(peer) {
      // RFC 4253 §8: f must lie in [1, p-1]; 1 and p-1 give a trivial secret, so refuse them too.
      const f = peer.length === 0 ? 0n : BigInt('0x' + Buffer.from(peer).toString('hex'));
      if (f <= 1n || f >= prime - 1n) throw new SshError(Code.DhFailed, 'server DH value is out of range', 'peer');
      return stripZeros(dh.computeSecret(Buffer.from(peer)));
    },
  };
}
