//! Key generation, encapsulation and decapsulation times of the KEMs, native build:
//! `cargo run --release -p revtun-core --example kem_speed [RUNS]`. Prints the median and, in
//! brackets, the fastest of RUNS (default 100) for each step: on a busy machine the fastest run
//! is the steadier figure. The seeds vary by run; the timings do not depend on them.

use std::time::Instant;

use revtun_core::{kem, KemKeyPair, KEMS};

/// "median (fastest)" of the samples, in milliseconds.
fn summary(mut samples: Vec<f64>) -> String {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!("{:.3} ({:.3}) ms", samples[samples.len() / 2], samples[0])
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(100, |n| n.parse().expect("RUNS is a number"));
    for info in KEMS {
        let (mut keygen, mut encaps, mut decaps) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let seed = vec![run as u8; info.seed_len];
            let start = Instant::now();
            let pair = KemKeyPair::generate(info.name, &seed).expect("known KEM");
            keygen.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            let (ciphertext, sent) =
                kem::encapsulate(info.name, pair.public_key(), &[run as u8 ^ 0x5a; 32])
                    .expect("valid key");
            encaps.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            let received = pair.decapsulate(&ciphertext).expect("valid ciphertext");
            decaps.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(sent, received, "{}: the shared secrets differ", info.name);
        }
        println!(
            "native {}: keygen {}, encaps {}, decaps {}",
            info.name,
            summary(keygen),
            summary(encaps),
            summary(decaps)
        );
    }
}
