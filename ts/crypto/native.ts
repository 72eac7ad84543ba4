// Loads revtun-core as a Node-API addon (crates/revtun-napi: a local build in bindings/, or a
// prebuilt @revtun/core-* platform package; bindings/native.cjs decides) and wraps it as a PacketCore. Packets cross the boundary as the caller's own
// Uint8Array and are transformed in place.

import { createRequire } from 'node:module';
import type { DirectionKeys, PacketOpener, PacketSealer } from './provider.js';
import { cipherTable, keyFailure, lengthInClear, macTable, openFailure, sealFailure, statusTable } from './core.js';
import type { PacketCore } from './core.js';
import type { KemCore, KemInfo } from './kem.js';

interface NativeSealer {
  readonly blockSize: number;
  readonly macLength: number;
  readonly lengthOutsidePadding: boolean;
  seal(sequence: number, packet: Uint8Array): number;
  sealBatch(firstSequence: number, buffer: Uint8Array, ends: Uint32Array): number;
}

interface NativeOpener {
  readonly blockSize: number;
  readonly macLength: number;
  readonly lengthFieldBytes: number;
  decryptLength(sequence: number, head: Uint8Array): number;
  open(sequence: number, packet: Uint8Array): number;
}

type KeyArgs = [cipher: string, mac: string | null, key: Uint8Array, iv: Uint8Array, macKey: Uint8Array];

interface NativeBinding {
  ciphers(): { name: string; keyLength: number; ivLength: number; blockSize: number; aead: boolean }[];
  macs(): { name: string; keyLength: number; length: number; etm: boolean }[];
  buildInfo(): string;
  /** Set by bindings/native.cjs: the local build's file, or the platform package's name. */
  readonly loadedFrom?: string;
  statuses(): { status: number; message: string }[];
  NativeSealer: new (...args: KeyArgs) => NativeSealer;
  NativeOpener: new (...args: KeyArgs) => NativeOpener;
  // Absent from an addon built before the hybrid key exchanges.
  kems?(): { name: string; seedLength: number; publicKeyLength: number; ciphertextLength: number }[];
  NativeKem?: new (name: string, seed: Uint8Array) => { readonly publicKey: Uint8Array; decapsulate(ciphertext: Uint8Array): Uint8Array; dispose(): void };
  kemEncapsulate?(name: string, publicKey: Uint8Array, randomness: Uint8Array): [Uint8Array, Uint8Array];
}

/** The addon's KEMs (crates/revtun-napi/src/kem.rs); the secret key stays in the Rust object. */
function nativeKemCore(binding: NativeBinding): KemCore | undefined {
  const { kems, NativeKem, kemEncapsulate } = binding;
  if (!kems || !NativeKem || !kemEncapsulate) return undefined;
  return {
    kems: new Map<string, KemInfo>(kems().map(({ name, ...info }) => [name, info])),
    createKeyPair: (name, seed) => new NativeKem(name, seed),
    encapsulate(name, publicKey, randomness) {
      const [ciphertext, secret] = kemEncapsulate(name, publicKey, randomness);
      return { ciphertext, secret };
    },
  };
}

function keyArgs(keys: DirectionKeys): KeyArgs {
  return [keys.cipher, keys.mac, keys.key, keys.iv, keys.macKey];
}

function construct<T>(keys: DirectionKeys, make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw keyFailure(keys, (error as Error).message);
  }
}

/** Loads the addon; throws (with the loader's reason) when it is missing or cannot load. */
export function loadNativeCore(): PacketCore {
  const require = createRequire(import.meta.url);
  const binding = require('../../bindings/native.cjs') as NativeBinding;
  const statuses = statusTable(binding.statuses());
  return {
    kind: 'native',
    // Where the addon came from is part of its description, so the provider's log line and
    // BuildInfo tell a prebuilt package from a local build.
    description: binding.loadedFrom ? `${binding.buildInfo()}, from ${binding.loadedFrom}` : binding.buildInfo(),
    ciphers: cipherTable(binding.ciphers()),
    macs: macTable(binding.macs()),
    statuses,
    kem: nativeKemCore(binding),
    createSealer(keys): PacketSealer {
      const sealer = construct(keys, () => new binding.NativeSealer(...keyArgs(keys)));
      return {
        blockSize: sealer.blockSize,
        macLength: sealer.macLength,
        lengthOutsidePadding: sealer.lengthOutsidePadding,
        seal(sequence, packet) {
          const status = sealer.seal(sequence >>> 0, packet);
          if (status !== 0) throw sealFailure(statuses, status);
        },
        sealBatch(firstSequence, buffer, ends) {
          const status = sealer.sealBatch(firstSequence >>> 0, buffer, ends);
          if (status !== 0) throw sealFailure(statuses, status);
        },
      };
    },
    createOpener(keys): PacketOpener {
      const opener = construct(keys, () => new binding.NativeOpener(...keyArgs(keys)));
      return {
        blockSize: opener.blockSize,
        macLength: opener.macLength,
        lengthFieldBytes: opener.lengthFieldBytes,
        lengthInClear: lengthInClear(keys),
        decryptLength(sequence, head) {
          const length = opener.decryptLength(sequence >>> 0, head);
          if (length < 0) throw openFailure(statuses, -length);
          return length;
        },
        open(sequence, packet) {
          const status = opener.open(sequence >>> 0, packet);
          if (status !== 0) throw openFailure(statuses, status);
        },
      };
    },
  };
}
