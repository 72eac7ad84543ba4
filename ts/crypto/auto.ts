// The automatic provider: each negotiated packet algorithm runs on the fastest backend that is
// loaded, from the measured order below, so that a process without the native addon still
// seals AES with OpenSSL's AES instructions (node:crypto) and ChaCha20-Poly1305 on the WASM core
// (node:crypto has no Poly1305). Everything that is not packet crypto (hashes, key agreement,
// signatures) is node:crypto's, as in the core providers; the post-quantum KEMs come from the
// Rust core that is loaded.

import { readFileSync } from 'node:fs';
import type { CipherInfo, CryptoProvider, DirectionKeys, MacInfo, PacketOpener, PacketSealer } from './provider.js';
import type { KemKeyPair, KemName } from './kem.js';
import { NodeCryptoProvider } from './node.js';
import { CoreCryptoProvider } from './core.js';
import { SshError, Code } from '../protocol/errors.js';

/** The backends the automatic provider chooses among, as REVTUN_CRYPTO names them. */
export type Backend = 'native' | 'wasm' | 'node';

/**
 * The backend order per cipher family, fastest first, from `revtun speed` on the machine in
 * bench/RESULTS.md (16 KiB packets, MB/s sealed). An algorithm goes to the first backend in its
 * order that implements both the cipher and the MAC; a family not listed takes DEFAULT_ORDER.
 */
export const BACKEND_ORDER: readonly { family: string; ciphers: RegExp; order: readonly Backend[]; measured: string }[] = [
  { family: 'AES-GCM', ciphers: /^aes(128|256)-gcm@openssh\.com$/, order: ['native', 'node', 'wasm'], measured: 'aes128-gcm: native 8771, node 1401, wasm 49' },
  { family: 'ChaCha20-Poly1305', ciphers: /^chacha20-poly1305@openssh\.com$/, order: ['native', 'wasm', 'node'], measured: 'native 3005, wasm 1001 (simd128; 397 scalar), node 261' },
  { family: 'AES-CTR', ciphers: /^aes(128|192|256)-ctr$/, order: ['native', 'node', 'wasm'], measured: 'aes128-ctr + hmac-sha2-256-etm: native 1491, node 858, wasm 73' },
  { family: 'AES-CBC', ciphers: /^(aes(128|192|256)-cbc|rijndael-cbc@lysator\.liu\.se)$/, order: ['native', 'node', 'wasm'], measured: 'aes128-cbc + hmac-sha1: native 706, node 609, wasm 45' },
  // OpenSSL's DES is about three times the Rust core's, native or WASM.
  { family: 'Triple DES', ciphers: /^3des-(cbc|ctr)$/, order: ['node', 'native', 'wasm'], measured: '3des-cbc + hmac-sha1: node 29, native 13, wasm 13' },
];

/** Blowfish, CAST-128 and RC4, which node:crypto does not offer, and anything new. */
export const DEFAULT_ORDER: readonly Backend[] = ['native', 'wasm', 'node'];

/** The order for `cipher`: its family's, or DEFAULT_ORDER. */
export function backendOrder(cipher: string): readonly Backend[] {
  return BACKEND_ORDER.find((entry) => entry.ciphers.test(cipher))?.order ?? DEFAULT_ORDER;
}

/**
 * Whether the CPU has AES instructions, from /proc/cpuinfo's flags (x86 "aes", Arm "aes") where
 * there is one. Elsewhere (macOS, Windows) the answer is yes: every CPU those run on today has them.
 */
export function cpuHasAes(cpuinfo: string | null = readCpuinfo()): boolean {
  if (cpuinfo === null) return true;
  const flags = cpuinfo.split('\n').find((line) => /^(flags|Features)\s*:/.test(line));
  if (flags === undefined) return true;
  return flags.split(':')[1]!.trim().split(/\s+/).includes('aes');
}

function readCpuinfo(): string | null {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}

const CHACHA = 'chacha20-poly1305@openssh.com';
const AES_GCM = 'aes128-gcm@openssh.com';

/** The provider that picks a backend per packet algorithm (see BACKEND_ORDER). */
export class AutoCryptoProvider extends NodeCryptoProvider {
  override readonly name = 'auto';
  override readonly ciphers: ReadonlyMap<string, CipherInfo>;
  override readonly macs: ReadonlyMap<string, MacInfo>;
  readonly fastCiphers: readonly string[];

  /**
   * `backends` are the loaded ones (node:crypto at least). `aesInstructions` is cpuHasAes()
   * unless a test says otherwise: without them AES is slow on every backend, and ChaCha20-Poly1305
   * moves to the front of the default offer.
   */
  constructor(
    readonly backends: ReadonlyMap<Backend, CryptoProvider>,
    aesInstructions: boolean = cpuHasAes(),
  ) {
    super();
    const ciphers = new Map<string, CipherInfo>();
    const macs = new Map<string, MacInfo>();
    for (const backend of backends.values()) {
      for (const [name, info] of backend.ciphers) if (!ciphers.has(name)) ciphers.set(name, info);
      for (const [name, info] of backend.macs) if (!macs.has(name)) macs.set(name, info);
    }
    this.ciphers = ciphers;
    this.macs = macs;
    const aesFast = aesInstructions && ciphers.has(AES_GCM) && this.backendFor(AES_GCM, null) !== 'wasm';
    this.fastCiphers = aesFast || !ciphers.has(CHACHA) ? [] : [CHACHA];
  }

  /**
   * The backend that serves `cipher` with `mac` (ignored for AEAD ciphers): the first in the
   * cipher's order that is loaded and implements both. Throws 1005 when none does.
   */
  backendFor(cipher: string, mac: string | null): Backend {
    const aead = this.ciphers.get(cipher)?.aead ?? false;
    for (const name of backendOrder(cipher)) {
      const backend = this.backends.get(name);
      if (backend?.ciphers.has(cipher) && (aead || mac === null || backend.macs.has(mac))) return name;
    }
    throw new SshError(Code.UnsupportedAlgorithm, `no loaded crypto backend implements ${cipher}${mac && !aead ? ` with ${mac}` : ''}`, 'local');
  }

  override createSealer(keys: DirectionKeys): PacketSealer {
    return this.backends.get(this.backendFor(keys.cipher, keys.mac))!.createSealer(keys);
  }

  override createOpener(keys: DirectionKeys): PacketOpener {
    return this.backends.get(this.backendFor(keys.cipher, keys.mac))!.createOpener(keys);
  }

  /** The Rust core that is loaded (native before WASM), for the post-quantum KEMs. */
  private get kemBackend(): CryptoProvider | undefined {
    return this.backends.get('native') ?? this.backends.get('wasm');
  }

  override get kems(): ReadonlySet<string> {
    return this.kemBackend?.kems ?? new Set();
  }

  override createKem(name: KemName): KemKeyPair {
    const backend = this.kemBackend;
    if (!backend?.createKem) return super.createKem(name);
    return backend.createKem(name);
  }

  /**
   * Which backend serves which cipher, for the log and BuildInfo: "native (revtun-core …) for
   * aes128-gcm@openssh.com, …; node for 3des-cbc", then the MACs that move a cipher elsewhere.
   */
  get description(): string {
    const groups = new Map<Backend, string[]>();
    for (const cipher of this.ciphers.keys()) {
      const backend = this.backendFor(cipher, null); // the cipher alone; the MACs that change it come after
      groups.set(backend, [...(groups.get(backend) ?? []), cipher]);
    }
    const parts = [...groups].map(([backend, ciphers]) => `${this.describeBackend(backend)} for ${ciphers.join(', ')}`);
    // MACs some backend lacks (node has no UMAC): a cipher paired with one runs where the MAC is.
    for (const [backend, provider] of this.backends) {
      const missing = [...this.macs.keys()].filter((mac) => !provider.macs.has(mac));
      const ciphers = (groups.get(backend) ?? []).filter((cipher) => !this.ciphers.get(cipher)!.aead);
      if (missing.length === 0 || ciphers.length === 0) continue;
      const elsewhere = new Set(ciphers.flatMap((cipher) => missing.map((mac) => this.backendFor(cipher, mac))));
      parts.push(`with ${missing.join(', ')}: ${[...elsewhere].join(', ')} instead of ${backend}`);
    }
    return parts.join('; ');
  }

  private describeBackend(backend: Backend): string {
    const provider = this.backends.get(backend)!;
    return provider instanceof CoreCryptoProvider ? `${backend} (${provider.description})` : backend;
  }
}
