//! ChaCha20 and Poly1305 in WebAssembly SIMD (simd128), for the WASM build compiled with
//! `-C target-feature=+simd128` (bindings/revtun-core-simd.wasm). RustCrypto's chacha20 0.9
//! and poly1305 0.8 have SIMD backends for x86 (and chacha20 for Arm) but none for WASM, so
//! these are revtun's own; every other algorithm stays RustCrypto's in that build too.

mod chacha20;
pub(crate) mod chacha20_poly1305;
mod poly1305;

pub(crate) use self::chacha20::ChaCha20;
pub(crate) use self::poly1305::Poly1305;
