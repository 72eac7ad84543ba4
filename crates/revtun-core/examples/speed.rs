//! Rough seal/open throughput of one algorithm pair at one packet size, for comparing the
//! core's backends (`--features ring` or not) with `openssl speed`. Not part of any test.
//! usage: cargo run --release [--features ring] --example speed -- CIPHER [MAC] [SIZE]
use revtun_core::{cipher_info, mac_info, Opener, Sealer};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cipher = args
        .first()
        .map(String::as_str)
        .unwrap_or("chacha20-poly1305@openssh.com");
    let mac = args.get(1).map(String::as_str).filter(|m| *m != "-");
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16384);
    let info = cipher_info(cipher).expect("cipher");
    let mac_len = mac.map(|m| mac_info(m).expect("mac").key_len).unwrap_or(0);
    let key = vec![7u8; info.key_len];
    let iv = vec![9u8; info.iv_len];
    let mac_key = vec![3u8; mac_len];
    let mut sealer = Sealer::new(cipher, mac, &key, &iv, &mac_key).unwrap();
    let mut opener = Opener::new(cipher, mac, &key, &iv, &mac_key).unwrap();
    let block = sealer.block_size().max(8);
    let outside = if sealer.length_outside_padding() {
        4
    } else {
        0
    };
    let body = (size - outside) / block * block;
    let mut packet = vec![0u8; outside + body + sealer.mac_len()];
    let length = (packet.len() - 4 - sealer.mac_len()) as u32;
    packet[..4].copy_from_slice(&length.to_be_bytes());
    packet[4] = 8;
    let rounds = (1usize << 30) / packet.len();
    let start = Instant::now();
    for seq in 0..rounds {
        sealer.seal(seq as u32, &mut packet).unwrap();
    }
    let seal = (rounds * packet.len()) as f64 / start.elapsed().as_secs_f64() / 1e6;
    // Opening needs genuine packets in sequence: a second sealer with the same keys makes them.
    let mut feeder = Sealer::new(cipher, mac, &key, &iv, &mac_key).unwrap();
    let mut copies: Vec<Vec<u8>> = (0..256)
        .map(|seq| {
            let mut p = packet.clone();
            p[..4].copy_from_slice(&length.to_be_bytes());
            feeder.seal(seq, &mut p).unwrap();
            p
        })
        .collect();
    let start = Instant::now();
    for (seq, p) in copies.iter_mut().enumerate() {
        let mut head = [0u8; 16];
        let n = opener.length_field_bytes();
        head[..n].copy_from_slice(&p[..n]);
        opener.decrypt_length(seq as u32, &mut head[..n]).unwrap();
        p[..n].copy_from_slice(&head[..n]);
        opener.open(seq as u32, p).unwrap();
    }
    let open = (copies.len() * packet.len()) as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!(
        "{cipher} {} {size}: seal {seal:.0} MB/s, open {open:.0} MB/s",
        mac.unwrap_or("-")
    );
}
