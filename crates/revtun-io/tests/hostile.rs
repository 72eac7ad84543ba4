//! A hostile or broken peer: random bytes, and valid streams with bytes flipped, cut or
//! repeated, fed to the plane in random splits. The plane must never panic, must end every
//! bad stream with one of its documented codes, and must stay failed afterwards. Bounded:
//! a fixed seed and a fixed number of cases.

mod common;

use common::*;
use revtun_io::Code;

/// xorshift64*: reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CODES: &[Code] = &[
    Code::CannotDecrypt,
    Code::InvalidChannelId,
    Code::InvalidChannelData,
    Code::InvalidChannelMessage,
    Code::ProtocolError,
];

/// Channel traffic for channel 3 (adopted) and 5 (not), some of it wrong on purpose.
fn messages(rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..rng.below(12) + 1)
        .map(|_| {
            let recipient = if rng.below(4) == 0 { 5 } else { 3 };
            match rng.below(7) {
                0 => data(recipient, &vec![0xab; rng.below(40_000)]),
                1 => window_adjust(recipient, rng.next() as u32),
                2 => simple(EOF, recipient),
                3 => simple(CLOSE, recipient),
                4 => [
                    &[EXTENDED_DATA][..],
                    &u32be(recipient),
                    &u32be(1),
                    &u32be(3),
                    b"err",
                ]
                .concat(),
                5 => (0..rng.below(20)).map(|_| rng.next() as u8).collect(),
                _ => vec![GLOBAL_REQUEST, 0, 0, 0, 1, b'x', 0],
            }
        })
        .collect()
}

fn run_case(rng: &mut Rng, cipher: &str, mac: Option<&str>) -> Option<Code> {
    let (mut plane, mut peer) = pair(cipher, mac);
    let slot = plane
        .adopt(3, 300, LIMITS.window_target, 1 << 20, 16 * 1024, None)
        .unwrap();
    let mut stream = Vec::new();
    for message in messages(rng) {
        stream.extend(peer.seal(&message)); // an empty one too: a packet without a message number
    }
    if stream.is_empty() {
        return None;
    }
    match rng.below(4) {
        0 => {} // as sealed: may still break channel rules
        1 => {
            for _ in 0..rng.below(3) + 1 {
                let at = rng.below(stream.len());
                stream[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(stream.len());
            let n = rng.below(64).min(stream.len() - at);
            let copy = stream[at..at + n].to_vec();
            stream.splice(at..at, copy);
        }
        _ => stream = (0..rng.below(600)).map(|_| rng.next() as u8).collect(),
    }
    let mut rest = &stream[..];
    let mut failure = None;
    while !rest.is_empty() {
        let n = (rng.below(3000) + 1).min(rest.len());
        let result = feed(&mut plane, &rest[..n]);
        rest = &rest[n..];
        // The relay writes to and reads from the local socket between reads.
        let pending = plane.local_pending(slot).len();
        if pending > 0
            && plane
                .local_written(slot, pending.min(rng.below(70_000)))
                .is_err()
        {
            break;
        }
        if let Err(error) = result {
            assert!(
                CODES.contains(&error.code),
                "unexpected code {:?}: {}",
                error.code,
                error.message
            );
            assert!(!error.message.is_empty());
            failure = Some(error.code);
            break;
        }
    }
    if let Some(code) = failure {
        assert_eq!(
            plane.send_payload(&[82]).unwrap_err().code,
            code,
            "a failed plane stays failed"
        );
        assert_eq!(feed(&mut plane, &[0; 64]).unwrap_err().code, code);
    }
    plane.take_upcalls();
    failure
}

#[test]
fn hostile_streams_end_with_a_documented_code_and_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for &(cipher, mac) in &[
        ("aes128-gcm@openssh.com", None),
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-ctr", Some("hmac-sha2-256")),
        ("aes256-cbc", Some("hmac-sha2-512-etm@openssh.com")),
    ] {
        let mut outcomes = std::collections::HashMap::new();
        for _ in 0..1500 {
            *outcomes.entry(run_case(&mut rng, cipher, mac)).or_insert(0) += 1;
        }
        // The cases reach every kind of failure, and clean streams too.
        for outcome in [
            None,
            Some(Code::CannotDecrypt),
            Some(Code::InvalidChannelData),
            Some(Code::InvalidChannelMessage),
            Some(Code::ProtocolError),
        ] {
            assert!(
                outcomes.get(&outcome).copied().unwrap_or(0) > 10,
                "{cipher}: {outcome:?} reached only {outcomes:?}"
            );
        }
    }
}

#[test]
fn the_error_codes_are_those_of_the_typescript_table() {
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ts/protocol/errors.ts"
    ))
    .unwrap();
    for (code, name) in [
        (Code::CannotSetKeys, "CannotSetKeys"),
        (Code::CannotDecrypt, "CannotDecrypt"),
        (Code::InvalidChannelId, "InvalidChannelId"),
        (Code::InvalidChannelData, "InvalidChannelData"),
        (Code::InvalidChannelMessage, "InvalidChannelMessage"),
        (Code::ProtocolError, "ProtocolError"),
    ] {
        let entry = format!("  {name}: [{}, ", code as u32);
        assert!(
            table.contains(&entry),
            "{name} is {} in Rust but not in errors.ts",
            code as u32
        );
    }
}
