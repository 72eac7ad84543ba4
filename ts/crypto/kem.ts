// The post-quantum KEMs of the hybrid key exchanges (mlkem768x25519-sha256,
// sntrup761x25519-sha512), as revtun's Rust core provides them through either binding. Only
// the client half is used: an ephemeral key pair and decapsulation of the server's ciphertext.
// The seed comes from the caller's CSPRNG so the core itself stays deterministic and testable.

/** The post-quantum KEMs of the hybrid key exchanges. */
export type KemName = 'mlkem768' | 'sntrup761';

/** Sizes the key exchange checks on the wire, and the seed a key pair is made from. */
export interface KemInfo {
  seedLength: number;
  publicKeyLength: number;
  ciphertextLength: number;
}

/** An ephemeral key pair; the secret key stays inside the core. */
export interface KemKeyPair {
  readonly publicKey: Uint8Array;
  /**
   * The 32-byte shared secret. The caller has checked the ciphertext's length; a forged
   * ciphertext of the right length yields an unrelated secret (implicit rejection).
   */
  decapsulate(ciphertext: Uint8Array): Uint8Array;
  /** Wipes and frees the secret key now (a key exchange uses it once), rather than at garbage collection. */
  dispose(): void;
}

/** What a loaded core offers for KEMs. */
export interface KemCore {
  readonly kems: ReadonlyMap<string, KemInfo>;
  createKeyPair(name: KemName, seed: Uint8Array): KemKeyPair;
  /** For known-answer tests: ML-KEM takes the 32-byte message m, sntrup761 a 32-byte seed. */
  encapsulate(name: KemName, publicKey: Uint8Array, randomness: Uint8Array): { ciphertext: Uint8Array; secret: Uint8Array };
}

/** The core's KEM table as the WASM module describes it: `name seed public ciphertext` lines. */
export function parseKemTable(text: string): Map<string, KemInfo> {
  return new Map(
    text
      .trim()
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => line.split(' '))
      .map(([name, seed, publicKey, ciphertext]) => [name!, { seedLength: Number(seed), publicKeyLength: Number(publicKey), ciphertextLength: Number(ciphertext) }]),
  );
}
