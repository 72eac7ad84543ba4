// Loads revtun-core compiled to WASM (crates/revtun-wasm, built by scripts/build-wasm.sh into
// bindings/) and wraps it as a PacketCore. It needs no native addon, so it works wherever
// WebAssembly does: Node, Deno and Bun. Each packet is copied into module memory, transformed
// there and copied back; key state lives in the module behind opaque handles that are freed
// when their sealer or opener is garbage-collected.

import { existsSync, readFileSync } from 'node:fs';
import type { CipherInfo, DirectionKeys, MacInfo, PacketOpener, PacketSealer } from './provider.js';
import { keyFailureStatus, lengthInClear, openFailure, sealFailure } from './core.js';
import type { CoreStatuses, PacketCore } from './core.js';
import { wasmKemCore } from './wasm-kem.js';

// The few WebAssembly APIs used here (the project compiles without the DOM library).
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface CoreExports {
  memory: { buffer: ArrayBuffer };
  revtun_alloc(len: number): number;
  revtun_free(ptr: number, len: number): void;
  revtun_last_status(): number;
  revtun_describe(which: number, out: number, capacity: number): number;
  revtun_sealer_new(pairs: number): number;
  revtun_opener_new(pairs: number): number;
  revtun_sealer_layout(handle: number): number;
  revtun_opener_layout(handle: number): number;
  revtun_seal(handle: number, sequence: number, ptr: number, len: number): number;
  revtun_seal_batch(handle: number, sequence: number, ptr: number, len: number, ends: number, count: number): number;
  revtun_decrypt_length(handle: number, sequence: number, ptr: number, len: number): number;
  revtun_open(handle: number, sequence: number, ptr: number, len: number): number;
  revtun_sealer_free(handle: number): void;
  revtun_opener_free(handle: number): void;
}

/** One WASM instance and a packet buffer in its memory that grows to the largest packet seen. */
class WasmCore {
  private scratch = 0;
  private scratchSize = 0;
  private readonly sealers = new FinalizationRegistry<number>((handle) => this.exports.revtun_sealer_free(handle));
  private readonly openers = new FinalizationRegistry<number>((handle) => this.exports.revtun_opener_free(handle));

  /** The core's failure statuses (revtun_describe(3)). */
  readonly statuses: CoreStatuses;

  constructor(readonly exports: CoreExports) {
    this.statuses = new Map(
      this.describe(3)
        .trim()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => [Number(line.slice(0, line.indexOf(' '))), line.slice(line.indexOf(' ') + 1)] as const),
    );
  }

  private memory = new Uint8Array(0);

  /** Module memory as bytes; rebuilt only when growing memory has replaced the ArrayBuffer. */
  private bytes(): Uint8Array {
    if (this.memory.buffer !== this.exports.memory.buffer) this.memory = new Uint8Array(this.exports.memory.buffer);
    return this.memory;
  }

  private view(ptr: number, len: number): Uint8Array {
    return this.bytes().subarray(ptr, ptr + len);
  }

  /** A module-memory buffer holding `bytes` (freed by the caller). */
  private copyIn(bytes: Uint8Array): [number, number] {
    const ptr = this.exports.revtun_alloc(bytes.length);
    this.view(ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  }

  describe(which: number): string {
    const capacity = 8192;
    const ptr = this.exports.revtun_alloc(capacity);
    try {
      const length = this.exports.revtun_describe(which, ptr, capacity);
      return new TextDecoder().decode(this.view(ptr, Math.min(length, capacity)));
    } finally {
      this.exports.revtun_free(ptr, capacity);
    }
  }

  newHandle(kind: 'sealer' | 'opener', keys: DirectionKeys): number {
    const encoder = new TextEncoder();
    const parts = [encoder.encode(keys.cipher), encoder.encode(keys.mac ?? ''), keys.key, keys.iv, keys.macKey];
    const buffers = parts.map((p) => this.copyIn(p));
    const pairs = new Uint32Array(buffers.flat());
    buffers.push(this.copyIn(new Uint8Array(pairs.buffer)));
    try {
      const pairsPtr = buffers[buffers.length - 1]![0];
      const handle = kind === 'sealer' ? this.exports.revtun_sealer_new(pairsPtr) : this.exports.revtun_opener_new(pairsPtr);
      if (handle === 0) {
        const status = this.exports.revtun_last_status();
        throw keyFailureStatus(keys, this.statuses, status);
      }
      return handle;
    } finally {
      for (const [ptr, len] of buffers) this.exports.revtun_free(ptr, len);
    }
  }

  track(kind: 'sealer' | 'opener', owner: object, handle: number): void {
    (kind === 'sealer' ? this.sealers : this.openers).register(owner, handle);
  }

  /** Runs `op` with a module-memory copy of `bytes` (read-only for `op`), then frees it. */
  withBytes<T>(bytes: Uint8Array, op: (ptr: number) => T): T {
    const [ptr, len] = this.copyIn(bytes);
    try {
      return op(ptr);
    } finally {
      this.exports.revtun_free(ptr, len);
    }
  }

  /** Runs `op` on a copy of `bytes` in module memory and copies the result back. */
  inPlace<T>(bytes: Uint8Array, op: (ptr: number, len: number) => T): T {
    if (bytes.length > this.scratchSize) {
      if (this.scratchSize > 0) this.exports.revtun_free(this.scratch, this.scratchSize);
      this.scratchSize = Math.max(bytes.length, 64 * 1024);
      this.scratch = this.exports.revtun_alloc(this.scratchSize);
    }
    this.bytes().set(bytes, this.scratch);
    const result = op(this.scratch, bytes.length);
    bytes.set(this.view(this.scratch, bytes.length));
    return result;
  }
}

/** The core's description tables: one entry per line, space-separated fields, name first. */
function parseTable<T>(text: string, entry: (fields: string[]) => T): Map<string, T> {
  return new Map(
    text
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .map(([name, ...fields]) => [name!, entry(fields)]),
  );
}

function parseCiphers(text: string): Map<string, CipherInfo> {
  return parseTable(text, ([key, iv, block, aead]) => ({ keyLength: Number(key), ivLength: Number(iv), blockSize: Number(block), aead: aead === '1' }));
}

function parseMacs(text: string): Map<string, MacInfo> {
  return parseTable(text, ([key, length, etm]) => ({ keyLength: Number(key), length: Number(length), etm: etm === '1' }));
}

/**
 * Which build of the WASM core to load: `simd` is compiled for WebAssembly SIMD (simd128),
 * `scalar` runs on any engine, and `auto` takes the SIMD build when the engine validates SIMD
 * code and the file is there, the scalar one otherwise. REVTUN_WASM_SIMD=0 makes `auto` scalar.
 */
export type WasmVariant = 'auto' | 'simd' | 'scalar';

const WASM_FILES: Record<'simd' | 'scalar', string> = { simd: 'revtun-core-simd.wasm', scalar: 'revtun-core.wasm' };

// The smallest module that uses a SIMD instruction: (func (result v128) v128.const 0 ...).
// An engine without simd128 refuses to validate it.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
]);

/** Whether this engine runs WebAssembly SIMD (simd128), by validating a one-instruction module. */
export function wasmSimdSupported(): boolean {
  try {
    return wasmApi.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

function simdWanted(): boolean {
  const setting = typeof process !== 'undefined' ? process.env['REVTUN_WASM_SIMD']?.trim() : undefined;
  return setting !== '0' && wasmSimdSupported();
}

/** The module's bytes; a missing file is named by its place in the package, not by a path on this machine. */
function readModule(name: string): Uint8Array {
  try {
    return readFileSync(wasmFile(name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`bindings/${name} is not built (npm run build:wasm)`);
    throw error;
  }
}

function wasmFile(name: string): URL {
  return new URL(`../../bindings/${name}`, import.meta.url);
}

/**
 * Compiles and instantiates the WASM core (bindings/revtun-core.wasm, or revtun-core-simd.wasm
 * for SIMD); throws when the variant asked for is missing, invalid or unsupported here.
 */
export function loadWasmCore(variant: WasmVariant = 'auto'): PacketCore {
  const chosen: 'simd' | 'scalar' = variant === 'auto' ? (simdWanted() && existsSync(wasmFile(WASM_FILES.simd)) ? 'simd' : 'scalar') : variant;
  if (chosen === 'simd' && !wasmSimdSupported()) throw new Error('this engine does not support WebAssembly SIMD (simd128)');
  const bytes = readModule(WASM_FILES[chosen]);
  const instance = new wasmApi.Instance(new wasmApi.Module(bytes), {});
  const core = new WasmCore(instance.exports as unknown as CoreExports);
  const exports = core.exports;
  return {
    kind: 'wasm',
    // The SIMD build names itself: `revtun-core 0.1.0 (rustcrypto+simd128, wasm32)`.
    description: core.describe(2),
    ciphers: parseCiphers(core.describe(0)),
    macs: parseMacs(core.describe(1)),
    statuses: core.statuses,
    kem: wasmKemCore(instance.exports),
    createSealer(keys): PacketSealer {
      const handle = core.newHandle('sealer', keys);
      const layout = exports.revtun_sealer_layout(handle);
      const sealer: PacketSealer = {
        blockSize: layout & 0xff,
        macLength: (layout >>> 8) & 0xff,
        lengthOutsidePadding: ((layout >>> 16) & 1) === 1,
        seal(sequence, packet) {
          const status = core.inPlace(packet, (ptr, len) => exports.revtun_seal(handle, sequence >>> 0, ptr, len));
          if (status !== 0) throw sealFailure(core.statuses, status);
        },
        sealBatch(firstSequence, buffer, ends) {
          // One copy in and out for the burst; the ends go in a buffer of their own.
          const endBytes = new Uint8Array(ends.buffer, ends.byteOffset, ends.byteLength);
          const status = core.withBytes(endBytes, (endsPtr) => core.inPlace(buffer, (ptr, len) => exports.revtun_seal_batch(handle, firstSequence >>> 0, ptr, len, endsPtr, ends.length)));
          if (status !== 0) throw sealFailure(core.statuses, status);
        },
      };
      core.track('sealer', sealer, handle);
      return sealer;
    },
    createOpener(keys): PacketOpener {
      const handle = core.newHandle('opener', keys);
      const layout = exports.revtun_opener_layout(handle);
      const opener: PacketOpener = {
        blockSize: layout & 0xff,
        macLength: (layout >>> 8) & 0xff,
        lengthFieldBytes: (layout >>> 16) & 0xff,
        lengthInClear: lengthInClear(keys),
        decryptLength(sequence, head) {
          const length = core.inPlace(head, (ptr, len) => exports.revtun_decrypt_length(handle, sequence >>> 0, ptr, len));
          if (length < 0) throw openFailure(core.statuses, -length);
          return length;
        },
        open(sequence, packet) {
          const status = core.inPlace(packet, (ptr, len) => exports.revtun_open(handle, sequence >>> 0, ptr, len));
          if (status !== 0) throw openFailure(core.statuses, status);
        },
      };
      core.track('opener', opener, handle);
      return opener;
    },
  };
}
