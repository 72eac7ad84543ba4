// The CryptoProvider for revtun's Rust packet core, whichever way it is loaded (Node-API addon
// or WASM). Only the packet half (sealers and openers) goes to the core; hashes, key agreement
// and signatures run once per connection and stay on node:crypto, which Node, Deno and Bun all
// provide.

import type { CipherInfo, DirectionKeys, MacInfo, PacketOpener, PacketSealer } from './provider.js';
import { NodeCryptoProvider } from './node.js';
import { SshError, Code } from '../protocol/errors.js';
import type { KemCore, KemKeyPair, KemName } from './kem.js';

/** What a loaded core offers: its algorithm tables and keyed packet transforms. */
export interface PacketCore {
  readonly kind: 'native' | 'wasm';
  /** The core's version and backend, for BuildInfo and the logs. */
  readonly description: string;
  readonly ciphers: ReadonlyMap<string, CipherInfo>;
  readonly macs: ReadonlyMap<string, MacInfo>;
  readonly statuses: CoreStatuses;
  createSealer(keys: DirectionKeys): PacketSealer;
  createOpener(keys: DirectionKeys): PacketOpener;
  /** The post-quantum KEMs (./kem.ts), when the loaded build has them. */
  readonly kem?: KemCore | undefined;
}

/**
 * What the loaded core's failure statuses mean, read from the core itself (revtun_core::Error
 * is the one table), so that no status number is copied into TypeScript. 0 is success.
 */
export type CoreStatuses = ReadonlyMap<number, string>;

function statusText(statuses: CoreStatuses, status: number): string {
  return statuses.get(status) ?? `core status ${status}`;
}

/** Whether a direction's packet length field is sent unencrypted (see PacketOpener.lengthInClear). */
export function lengthInClear(keys: DirectionKeys): boolean {
  if (keys.cipher === 'aes128-gcm@openssh.com' || keys.cipher === 'aes256-gcm@openssh.com') return true;
  return keys.cipher !== 'chacha20-poly1305@openssh.com' && (keys.mac?.endsWith('-etm@openssh.com') ?? false);
}

/** The SshError for a failed open (a packet from the peer). */
export function openFailure(statuses: CoreStatuses, status: number): SshError {
  return new SshError(Code.CannotDecrypt, `packet could not be opened: ${statusText(statuses, status)}`, 'peer');
}

/** The SshError for a failed seal: our own framing handed the core a packet it cannot take. */
export function sealFailure(statuses: CoreStatuses, status: number): SshError {
  return new SshError(Code.CannotEncrypt, `packet could not be sealed: ${statusText(statuses, status)}`, 'local');
}

/** The SshError for keys the core refused when a sealer or opener was made. */
export function keyFailureStatus(keys: DirectionKeys, statuses: CoreStatuses, status: number): SshError {
  return keyFailure(keys, statusText(statuses, status));
}

export function keyFailure(keys: DirectionKeys, detail: string): SshError {
  return new SshError(Code.CannotSetKeys, `cannot set keys for ${keys.cipher}${keys.mac ? `/${keys.mac}` : ''}: ${detail}`, 'local');
}

/** The provider around the Rust core (the native addon or its WASM build) for packets and KEMs, with node:crypto for the rest. */
export class CoreCryptoProvider extends NodeCryptoProvider {
  override readonly name: string;
  override readonly ciphers: ReadonlyMap<string, CipherInfo>;
  override readonly macs: ReadonlyMap<string, MacInfo>;
  readonly fastCiphers: readonly string[];

  constructor(readonly core: PacketCore) {
    super();
    this.name = core.kind;
    this.ciphers = core.ciphers;
    this.macs = core.macs;
    // WASM has no AES instructions: software AES-GCM runs at about a fifth of ChaCha20-Poly1305.
    this.fastCiphers = core.kind === 'wasm' ? ['chacha20-poly1305@openssh.com'] : [];
  }

  get description(): string {
    return this.core.description;
  }

  override get kems(): ReadonlySet<string> {
    return new Set(this.core.kem?.kems.keys() ?? []);
  }

  /** A fresh ephemeral KEM key pair, seeded from node:crypto's CSPRNG. */
  override createKem(name: KemName): KemKeyPair {
    const info = this.core.kem?.kems.get(name);
    if (!this.core.kem || !info) throw new SshError(Code.UnsupportedAlgorithm, `KEM ${name} is not available`, 'local');
    return this.core.kem.createKeyPair(name, this.randomBytes(info.seedLength));
  }

  override createSealer(keys: DirectionKeys): PacketSealer {
    if (!this.ciphers.has(keys.cipher)) throw new SshError(Code.UnsupportedAlgorithm, `cipher ${keys.cipher} is not available`, 'local');
    return this.core.createSealer(keys);
  }

  override createOpener(keys: DirectionKeys): PacketOpener {
    if (!this.ciphers.has(keys.cipher)) throw new SshError(Code.UnsupportedAlgorithm, `cipher ${keys.cipher} is not available`, 'local');
    return this.core.createOpener(keys);
  }
}

interface CipherSpec {
  name: string;
  keyLength: number;
  ivLength: number;
  blockSize: number;
  aead: boolean;
}

interface MacSpec {
  name: string;
  keyLength: number;
  length: number;
  etm: boolean;
}

export function cipherTable(specs: CipherSpec[]): Map<string, CipherInfo> {
  return new Map(specs.map((c) => [c.name, { keyLength: c.keyLength, ivLength: c.ivLength, blockSize: c.blockSize, aead: c.aead }]));
}

export function statusTable(specs: { status: number; message: string }[]): Map<number, string> {
  return new Map(specs.map((s) => [s.status, s.message]));
}

export function macTable(specs: MacSpec[]): Map<string, MacInfo> {
  return new Map(specs.map((m) => [m.name, { keyLength: m.keyLength, length: m.length, etm: m.etm }]));
}
