// The KEM half of the WASM core (crates/revtun-wasm/src/kem.rs): key pairs live in module
// memory behind opaque handles (the secret key never crosses into JavaScript), freed when
// their KemKeyPair is garbage-collected.

import { parseKemTable } from './kem.js';
import type { KemCore, KemKeyPair, KemName } from './kem.js';

interface KemExports {
  memory: { buffer: ArrayBuffer };
  revtun_alloc(len: number): number;
  revtun_free(ptr: number, len: number): void;
  revtun_last_status(): number;
  revtun_kem_describe(out: number, capacity: number): number;
  revtun_kem_new(name: number, nameLen: number, seed: number, seedLen: number): number;
  revtun_kem_public_key(handle: number, out: number, capacity: number): number;
  revtun_kem_decapsulate(handle: number, ciphertext: number, len: number, out: number): number;
  revtun_kem_free(handle: number): void;
  revtun_kem_encapsulate(name: number, nameLen: number, publicKey: number, publicKeyLen: number, randomness: number, ciphertext: number, ciphertextCapacity: number, secret: number): number;
}

/** Thrown for a core status; the key exchange turns it into an SshError with context. */
export class KemCoreError extends Error {
  constructor(readonly status: number) {
    super(status === 1 ? 'unknown KEM' : status === 2 ? 'KEM seed has the wrong length' : `KEM input has the wrong length (core status ${status})`);
  }
}

/** The KEM functions of an instantiated module, or undefined for a module built without them. */
export function wasmKemCore(raw: unknown): KemCore | undefined {
  const exports = raw as Partial<KemExports>;
  if (typeof exports.revtun_kem_new !== 'function') return undefined;
  const api = exports as KemExports;
  const view = (ptr: number, len: number) => new Uint8Array(api.memory.buffer, ptr, len);
  // Each call copies its inputs in, runs, copies results out and frees everything it allocated.
  const withBuffers = <T>(inputs: Uint8Array[], outputs: number[], run: (ptrs: number[]) => T): T => {
    const sizes = [...inputs.map((b) => b.length), ...outputs];
    const ptrs = sizes.map((size) => api.revtun_alloc(size));
    try {
      inputs.forEach((bytes, i) => {
        view(ptrs[i]!, bytes.length).set(bytes);
      });
      return run(ptrs);
    } finally {
      // Zeroed first: an output may be a shared secret, and freed module memory is reused as it is.
      ptrs.forEach((ptr, i) => {
        view(ptr, sizes[i]!).fill(0);
        api.revtun_free(ptr, sizes[i]!);
      });
    }
  };
  const kems = withBuffers([], [4096], ([out]) => {
    const length = api.revtun_kem_describe(out!, 4096);
    return parseKemTable(new TextDecoder().decode(view(out!, Math.min(length, 4096)).slice()));
  });
  const handles = new FinalizationRegistry<number>((handle) => api.revtun_kem_free(handle));
  const encoder = new TextEncoder();
  return {
    kems,
    createKeyPair(name: KemName, seed: Uint8Array): KemKeyPair {
      const info = kems.get(name);
      const nameBytes = encoder.encode(name);
      const handle = withBuffers([nameBytes, seed], [], ([n, s]) => api.revtun_kem_new(n!, nameBytes.length, s!, seed.length));
      if (handle === 0) throw new KemCoreError(api.revtun_last_status());
      const publicKey = withBuffers([], [info!.publicKeyLength], ([out]) => {
        api.revtun_kem_public_key(handle, out!, info!.publicKeyLength);
        return view(out!, info!.publicKeyLength).slice();
      });
      let live = true;
      const pair: KemKeyPair = {
        publicKey,
        decapsulate(ciphertext) {
          if (!live) throw new KemCoreError(3);
          return withBuffers([ciphertext], [32], ([c, out]) => {
            const status = api.revtun_kem_decapsulate(handle, c!, ciphertext.length, out!);
            if (status !== 0) throw new KemCoreError(status);
            return view(out!, 32).slice();
          });
        },
        dispose() {
          if (!live) return;
          live = false;
          handles.unregister(pair);
          api.revtun_kem_free(handle); // the core wipes the secret key as it drops it
        },
      };
      handles.register(pair, handle, pair);
      return pair;
    },
    encapsulate(name, publicKey, randomness) {
      const capacity = kems.get(name)?.ciphertextLength ?? 0;
      const nameBytes = encoder.encode(name);
      return withBuffers([nameBytes, publicKey, randomness], [capacity, 32], ([n, pk, r, c, k]) => {
        if (randomness.length !== 32) throw new KemCoreError(3);
        const status = api.revtun_kem_encapsulate(n!, nameBytes.length, pk!, publicKey.length, r!, c!, capacity, k!);
        if (status !== 0) throw new KemCoreError(status);
        return { ciphertext: view(c!, capacity).slice(), secret: view(k!, 32).slice() };
      });
    },
  };
}
