// The boundary between the sans-IO protocol and whatever does the cryptography. The packet
// half works in place on one whole binary packet (RFC 4253 §6) with an explicit sequence
// number, so a native or WASM implementation can replace the node:crypto one without the
// protocol code noticing. The rest (hashes, key agreement, signatures) is used only during
// key exchange and authentication.

import type { KemKeyPair, KemName } from './kem.js';

/** The hashes a provider computes for key exchanges and fingerprints. */
export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'md5';

/** Seals outgoing packets for one direction of one set of keys. */
export interface PacketSealer {
  /** Padding alignment (RFC 4253 §6: at least 8). */
  readonly blockSize: number;
  /** Bytes of MAC or AEAD tag that follow each packet. */
  readonly macLength: number;
  /** True when the 4-byte length is not part of the padded, encrypted body (EtM and AEAD modes). */
  readonly lengthOutsidePadding: boolean;
  /**
   * `packet` is uint32 length, padding length, payload, padding, then `macLength` bytes of
   * room for the tag. Encrypts in place and writes the tag.
   */
  seal(sequence: number, packet: Uint8Array): void;
  /**
   * Optional: seals packets laid back to back in `buffer` (packet `i` ends at `ends[i]`),
   * sequence numbers counting up from `firstSequence`, in one call. Providers with a costly
   * call boundary (N-API, WASM) implement it.
   */
  sealBatch?(firstSequence: number, buffer: Uint8Array, ends: Uint32Array): void;
}

/** Opens incoming packets for one direction of one set of keys. */
export interface PacketOpener {
  readonly blockSize: number;
  readonly macLength: number;
  /** How many leading bytes `decryptLength` needs (4, or one cipher block). */
  readonly lengthFieldBytes: number;
  /**
   * Set when the length field travels in clear (AES-GCM, the -etm MACs): the transport then
   * reads it itself and never calls `decryptLength`, saving a call per packet.
   */
  readonly lengthInClear?: boolean;
  /** Returns the packet length field. May decrypt `head` in place. */
  decryptLength(sequence: number, head: Uint8Array): number;
  /**
   * `packet` is the whole packet as received (length field first, tag last), after
   * `decryptLength` saw its head. Verifies and decrypts in place; throws SshError 1015 on
   * a bad tag.
   */
  open(sequence: number, packet: Uint8Array): void;
}

/** The keys of one direction of a connection, as derived by the key exchange (RFC 4253 §7.2). */
export interface DirectionKeys {
  cipher: string;
  mac: string | null;
  key: Uint8Array;
  iv: Uint8Array;
  macKey: Uint8Array;
}

/** A packet cipher's sizes, in bytes, as the key exchange derives keys for it. */
export interface CipherInfo {
  keyLength: number;
  ivLength: number;
  blockSize: number;
  /** AEAD ciphers carry their own tag and ignore the MAC algorithm. */
  aead: boolean;
}

/** A MAC's key and tag lengths in bytes, and whether it is encrypt-then-MAC (the length field stays in clear). */
export interface MacInfo {
  keyLength: number;
  length: number;
  etm: boolean;
}

/** One side of an ephemeral key agreement. */
export interface KeyAgreement {
  /** Our public value as sent on the wire (Q_C or e). */
  readonly publicValue: Uint8Array;
  /** The shared secret K as unsigned big-endian magnitude. Throws on an invalid peer value. */
  computeSecret(peerPublic: Uint8Array): Uint8Array;
}

/** Which ephemeral key agreement to run: X25519, an ECDH curve, a fixed MODP group or a server-chosen DH group. */
export type KeyAgreementKind =
  | { kind: 'x25519' }
  | { kind: 'ecdh'; curve: 'nistp256' | 'nistp384' | 'nistp521' }
  | { kind: 'modp'; group: 'group1' | 'group14' | 'group16' | 'group18' }
  | { kind: 'dh'; prime: Uint8Array; generator: Uint8Array };

/**
 * A bundle of the algorithms an SSH connection needs: packet ciphers and MACs, hashes, key
 * agreements and randomness. revtun ships three (the native addon, WASM, node:crypto).
 */
export interface CryptoProvider {
  readonly name: string;
  /**
   * Ciphers this provider runs markedly faster than the rest; they move to the front of the
   * default cipher list (a list the user set is left as it is).
   */
  readonly fastCiphers?: readonly string[];
  /**
   * For a provider made of several backends (the automatic one): the name of the backend that
   * seals and opens `cipher` with `mac`, for the log.
   */
  backendFor?(cipher: string, mac: string | null): string;
  /** Packet cipher names this provider implements, in no particular order. */
  readonly ciphers: ReadonlyMap<string, CipherInfo>;
  readonly macs: ReadonlyMap<string, MacInfo>;
  /** Keys for sealing outgoing packets in place (encrypt and tag), one direction of the connection. */
  createSealer(keys: DirectionKeys): PacketSealer;
  /** Keys for opening incoming packets in place (verify and decrypt), one direction of the connection. */
  createOpener(keys: DirectionKeys): PacketOpener;

  /** The digest of the concatenated `parts`. */
  hash(name: HashName, ...parts: Uint8Array[]): Uint8Array;
  /** `length` bytes from a cryptographically secure generator. */
  randomBytes(length: number): Uint8Array;
  /**
   * A fresh ephemeral key agreement. `fixedPrivateKey` (X25519 only) exists for known-answer
   * tests; the protocol never passes it.
   */
  keyAgreement(kind: KeyAgreementKind, fixedPrivateKey?: Uint8Array): KeyAgreement;
  /**
   * Verifies an SSH signature blob (RFC 4253 §6.6) made with `publicKey` (an SSH public key
   * blob) over `data`. `signatureAlgorithm` is what the negotiation expects.
   */
  verify(publicKey: Uint8Array, signatureAlgorithm: string, signature: Uint8Array, data: Uint8Array): boolean;
  /** Post-quantum KEMs this provider implements (./kem.ts); none when absent. */
  readonly kems?: ReadonlySet<string>;
  /** A fresh ephemeral KEM key pair for a hybrid key exchange; throws 1005 when not available. */
  createKem?(name: KemName): KemKeyPair;
}
