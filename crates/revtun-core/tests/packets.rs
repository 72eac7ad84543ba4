//! Every packet cipher and MAC of the core against test/vectors/packets.json: packets sealed by
//! an independent implementation (pyca/cryptography and Python's hmac, see
//! test/vectors/generate.py), the same file the TypeScript providers are checked against. Here
//! the core is checked without the N-API or WASM boundary in between, so a failure points at
//! the Rust algorithms rather than at a binding.

use revtun_core::{Error, Opener, Sealer, CIPHERS, MACS};

const PACKETS_JSON: &str = include_str!("../../../test/vectors/packets.json");

struct Packet {
    sequence: u32,
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

struct Case {
    cipher: String,
    mac: Option<String>,
    key: Vec<u8>,
    iv: Vec<u8>,
    mac_key: Vec<u8>,
    packets: Vec<Packet>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The cases of packets.json. generate.py writes one `"key": value` pair per line (json.dump
/// with an indent), which is all this reads, so the test needs no JSON crate; a "cipher" line
/// opens a case and a "sequence" line opens a packet, as they come first in their objects.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for line in PACKETS_JSON.lines() {
        // (No let-else: the crate stays within Rust 1.63.)
        let (key, value) = match line.trim().trim_end_matches(',').split_once(": ") {
            Some(pair) => pair,
            None => continue,
        };
        let text = value.trim_matches('"');
        let case = cases.last_mut();
        match key {
            "\"cipher\"" => cases.push(Case {
                cipher: text.to_string(),
                mac: None,
                key: Vec::new(),
                iv: Vec::new(),
                mac_key: Vec::new(),
                packets: Vec::new(),
            }),
            "\"mac\"" => case.unwrap().mac = (value != "null").then(|| text.to_string()),
            "\"key\"" => case.unwrap().key = hex(text),
            "\"iv\"" => case.unwrap().iv = hex(text),
            "\"macKey\"" => case.unwrap().mac_key = hex(text),
            "\"sequence\"" => case.unwrap().packets.push(Packet {
                sequence: text.parse().unwrap(),
                plain: Vec::new(),
                sealed: Vec::new(),
            }),
            "\"plain\"" => case.unwrap().packets.last_mut().unwrap().plain = hex(text),
            "\"sealed\"" => case.unwrap().packets.last_mut().unwrap().sealed = hex(text),
            _ => {}
        }
    }
    cases
}

fn name(case: &Case) -> String {
    format!(
        "{} {}",
        case.cipher,
        case.mac.as_deref().unwrap_or("(AEAD)")
    )
}

fn sealer_for(case: &Case) -> Sealer {
    Sealer::new(
        &case.cipher,
        case.mac.as_deref(),
        &case.key,
        &case.iv,
        &case.mac_key,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", name(case)))
}

fn opener_for(case: &Case) -> Opener {
    Opener::new(
        &case.cipher,
        case.mac.as_deref(),
        &case.key,
        &case.iv,
        &case.mac_key,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", name(case)))
}

#[test]
fn the_vectors_cover_every_cipher_and_every_mac_but_umac() {
    let cases = cases();
    assert_eq!(cases.len(), 51, "cases read from packets.json");
    assert!(cases
        .iter()
        .all(|c| !c.packets.is_empty() && c.packets.iter().all(|p| !p.sealed.is_empty())));
    for cipher in CIPHERS {
        assert!(
            cases.iter().any(|c| c.cipher == cipher.name),
            "no vector for {}",
            cipher.name
        );
    }
    // UMAC's known answers are RFC 4418's, in tests/umac.rs.
    for mac in MACS.iter().filter(|m| !m.name.starts_with("umac-")) {
        assert!(
            cases.iter().any(|c| c.mac.as_deref() == Some(mac.name)),
            "no vector for {}",
            mac.name
        );
    }
}

#[test]
fn sealing_gives_the_independent_implementations_bytes() {
    for case in cases() {
        // One sealer for the whole case: stream ciphers and the GCM nonce carry over.
        let mut sealer = sealer_for(&case);
        for p in &case.packets {
            let mut packet = p.plain.clone();
            packet.resize(p.sealed.len(), 0);
            sealer.seal(p.sequence, &mut packet).unwrap();
            assert_eq!(packet, p.sealed, "{} seq {}", name(&case), p.sequence);
        }
    }
}

#[test]
fn opening_gives_the_plain_packet_back() {
    for case in cases() {
        let mut opener = opener_for(&case);
        for p in &case.packets {
            let mut packet = p.sealed.clone();
            let head = opener.length_field_bytes();
            // Decrypting the head in place leaves the packet as `open` expects it.
            let length = opener
                .decrypt_length(p.sequence, &mut packet[..head])
                .unwrap();
            assert_eq!(
                4 + length as usize + opener.mac_len(),
                packet.len(),
                "{} seq {}: length field",
                name(&case),
                p.sequence
            );
            opener.open(p.sequence, &mut packet).unwrap();
            let plain_len = packet.len() - opener.mac_len();
            assert_eq!(
                &packet[..plain_len],
                &p.plain[..],
                "{} seq {}",
                name(&case),
                p.sequence
            );
        }
    }
}

#[test]
fn a_flipped_tag_bit_or_a_wrong_sequence_number_is_a_bad_mac() {
    for case in cases() {
        let p = &case.packets[0];
        let mut tampered = p.sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let mut opener = opener_for(&case);
        let head = opener.length_field_bytes();
        opener
            .decrypt_length(p.sequence, &mut tampered[..head])
            .unwrap();
        assert_eq!(
            opener.open(p.sequence, &mut tampered),
            Err(Error::BadMac),
            "{}",
            name(&case)
        );

        // The sequence number is authenticated too (RFC 4253 §6.4), except by AES-GCM, whose
        // nonce counter stands in for it (RFC 5647 §7.1).
        if case.cipher.contains("-gcm@") {
            continue;
        }
        let mut replayed = p.sealed.clone();
        let mut opener = opener_for(&case);
        let wrong = p.sequence.wrapping_add(1);
        if opener.decrypt_length(wrong, &mut replayed[..head]).is_ok() {
            assert_eq!(
                opener.open(wrong, &mut replayed),
                Err(Error::BadMac),
                "{}",
                name(&case)
            );
        }
    }
}

/// Published vectors placed where the SSH construction puts them (the same ones
/// test/unit/crypto/vectors.test.ts checks node:crypto with): the MAC covers
/// `uint32 sequence || packet` (RFC 4253 §6.4), so sequence "Hi T" and packet "here" make
/// RFC 2202's "Hi There"; CTR mode runs from the IV over the whole packet.
#[test]
fn published_vectors_in_ssh_framing() {
    // RFC 2202 test case 1 (HMAC-SHA1, key 0x0b × 20). With EtM the 4-byte length field is the
    // whole authenticated packet and nothing is encrypted.
    let mut sealer = Sealer::new(
        "aes128-ctr",
        Some("hmac-sha1-etm@openssh.com"),
        &[0; 16],
        &[0; 16],
        &[0x0b; 20],
    )
    .unwrap();
    let mut packet = b"here".to_vec();
    packet.resize(4 + 20, 0);
    sealer
        .seal(u32::from_be_bytes(*b"Hi T"), &mut packet)
        .unwrap();
    assert_eq!(&packet[..4], b"here");
    assert_eq!(
        packet[4..],
        hex("b617318655057264e28bc0b6fb378c8ef146be00")[..]
    );

    // NIST SP 800-38A F.5.1 (AES-128-CTR), its first two blocks as one packet.
    let mut sealer = Sealer::new(
        "aes128-ctr",
        Some("hmac-sha2-256"),
        &hex("2b7e151628aed2a6abf7158809cf4f3c"),
        &hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"),
        &[0; 32],
    )
    .unwrap();
    let mut packet = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    packet.resize(32 + 32, 0);
    sealer.seal(0, &mut packet).unwrap();
    assert_eq!(
        packet[..32],
        hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff")[..]
    );
}
