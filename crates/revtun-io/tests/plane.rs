//! The data plane against an independent peer, in memory: framing under every kind of cipher,
//! adopted channels' windows and half-close, the re-key gate, and the errors a hostile peer
//! gets.

mod common;

use common::*;
use revtun_io::{Code, LocalRead, Plane, Upcall};
use std::io;
use std::time::{Duration, Instant};

const SUITES: &[(&str, Option<&str>)] = &[
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes256-ctr", Some("hmac-sha2-256-etm@openssh.com")),
    ("aes128-ctr", Some("hmac-sha2-512")),
    ("aes192-cbc", Some("hmac-sha1")),
    ("3des-cbc", Some("umac-64-etm@openssh.com")),
];

/// Adopts channel 3 (the peer's 300) with the peer's window `remote_window`.
fn adopt(plane: &mut Plane, remote_window: u32) -> usize {
    plane
        .adopt(3, 300, LIMITS.window_target, remote_window, 16 * 1024, None)
        .expect("adopt")
}

fn read_from(bytes: &[u8]) -> impl FnOnce(&mut [u8]) -> io::Result<usize> + '_ {
    move |room: &mut [u8]| {
        let n = room.len().min(bytes.len());
        room[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

#[test]
fn messages_cross_both_ways_with_the_handed_over_sequence_numbers() {
    for &(cipher, mac) in SUITES {
        let (mut plane, mut peer) = pair(cipher, mac);
        let request = [GLOBAL_REQUEST, 0, 0, 0, 4, b'p', b'i', b'n', b'g', 1];
        feed(&mut plane, &peer.seal(&request)).unwrap();
        assert_eq!(
            upcalled(&mut plane),
            vec![(7, request.to_vec())],
            "{cipher}"
        );
        assert_eq!(plane.send_payload(&[82]).unwrap(), Some(11), "{cipher}");
        assert_eq!(peer.receive(&drain(&mut plane)), vec![vec![82]], "{cipher}");
        assert_eq!(plane.sequences(), (12, 8));
    }
}

#[test]
fn packets_split_at_every_byte_are_reassembled() {
    for &(cipher, mac) in SUITES {
        let (mut plane, mut peer) = pair(cipher, mac);
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..5u8 {
            let payload: Vec<u8> = std::iter::once(GLOBAL_REQUEST)
                .chain((0..i as usize * 37).map(|b| b as u8))
                .collect();
            stream.extend(peer.seal(&payload));
            expected.push((7 + i as u32, payload));
        }
        for byte in &stream {
            feed(&mut plane, std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(upcalled(&mut plane), expected, "{cipher}");
    }
}

#[test]
fn channel_data_reaches_the_local_socket_and_credit_returns_by_half_windows() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let slot = adopt(&mut plane, 1 << 20);
    let chunk = vec![7u8; 16 * 1024];
    // Three eighths of the window used and written: no credit yet.
    for _ in 0..3 {
        feed(&mut plane, &peer.seal(&data(3, &chunk))).unwrap();
    }
    assert!(
        upcalled(&mut plane).is_empty(),
        "adopted data is not passed up"
    );
    assert_eq!(plane.local_pending(slot).len(), 48 * 1024);
    plane.local_written(slot, 48 * 1024).unwrap();
    assert!(peer.receive(&drain(&mut plane)).is_empty());
    // Half of it missing: one WINDOW_ADJUST for all of it.
    feed(&mut plane, &peer.seal(&data(3, &chunk))).unwrap();
    plane.local_written(slot, 16 * 1024).unwrap();
    assert_eq!(
        peer.receive(&drain(&mut plane)),
        vec![window_adjust(300, 64 * 1024)]
    );
    // Bytes not yet written to the socket hold the credit back.
    for _ in 0..4 {
        feed(&mut plane, &peer.seal(&data(3, &chunk))).unwrap();
    }
    assert!(peer.receive(&drain(&mut plane)).is_empty());
}

#[test]
fn local_bytes_go_out_as_channel_data_within_the_peers_window() {
    let (mut plane, mut peer) = pair("chacha20-poly1305@openssh.com", None);
    let slot = adopt(&mut plane, 20_000);
    let bytes = vec![9u8; 50_000];
    assert_eq!(
        plane.local_read(slot, read_from(&bytes)).unwrap(),
        LocalRead::Data(16 * 1024)
    );
    assert_eq!(
        plane.local_read(slot, read_from(&bytes)).unwrap(),
        LocalRead::Data(20_000 - 16 * 1024)
    );
    // The window is used up: the socket is not read.
    assert_eq!(plane.local_read_room(slot), 0);
    assert_eq!(
        plane.local_read(slot, read_from(&bytes)).unwrap(),
        LocalRead::WouldBlock
    );
    let sent = peer.receive(&drain(&mut plane));
    assert_eq!(
        sent,
        vec![
            data(300, &bytes[..16 * 1024]),
            data(300, &bytes[..20_000 - 16 * 1024])
        ]
    );
    feed(&mut plane, &peer.seal(&window_adjust(3, 100))).unwrap();
    assert_eq!(plane.local_read_room(slot), 100);
}

#[test]
fn local_data_leaves_only_after_the_confirmation_framed_with_the_adoption() {
    // Regression: the relay read the local socket as soon as the channel was adopted, and its
    // data reached sshd before our CHANNEL_OPEN_CONFIRMATION, which sshd ignored.
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let confirmation = [91, 0, 0, 1, 44, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 128, 0];
    let slot = plane
        .adopt(
            3,
            300,
            LIMITS.window_target,
            1 << 20,
            16 * 1024,
            Some(&confirmation),
        )
        .unwrap();
    assert_eq!(
        plane.local_read(slot, read_from(b"banner")).unwrap(),
        LocalRead::Data(6)
    );
    assert_eq!(
        peer.receive(&drain(&mut plane)),
        vec![confirmation.to_vec(), data(300, b"banner")]
    );
}

#[test]
fn half_close_travels_both_ways_and_close_reports_the_counts() {
    let (mut plane, mut peer) = pair("aes256-ctr", Some("hmac-sha2-256-etm@openssh.com"));
    let slot = adopt(&mut plane, 1 << 20);
    assert_eq!(
        plane.local_read(slot, read_from(b"hello")).unwrap(),
        LocalRead::Data(5)
    );
    // The local target ends: EOF follows its data.
    assert_eq!(
        plane.local_read(slot, read_from(b"")).unwrap(),
        LocalRead::Ended
    );
    assert_eq!(
        peer.receive(&drain(&mut plane)),
        vec![data(300, b"hello"), simple(EOF, 300)]
    );
    assert_eq!(
        plane.local_read_room(slot),
        0,
        "nothing is read after end of file"
    );
    // The peer's data and EOF: the socket is shut for writing only once the data is written.
    let mut input = peer.seal(&data(3, b"world"));
    input.extend(peer.seal(&simple(EOF, 3)));
    feed(&mut plane, &input).unwrap();
    assert!(!plane.local_wants_shutdown(slot));
    assert_eq!(plane.local_pending(slot), b"world");
    plane.local_written(slot, 5).unwrap();
    assert!(plane.local_wants_shutdown(slot));
    plane.local_shut_down(slot).unwrap();
    // Both ways ended: CLOSE; the peer's CLOSE finishes the channel.
    assert_eq!(peer.receive(&drain(&mut plane)), vec![simple(CLOSE, 300)]);
    feed(&mut plane, &peer.seal(&simple(CLOSE, 3))).unwrap();
    let batch = plane.take_upcalls();
    assert_eq!(batch.items.len(), 1);
    match batch.items[0] {
        Upcall::ChannelClosed(report) => {
            assert_eq!(
                (report.local_id, report.bytes_sent, report.bytes_received),
                (3, 5, 5)
            );
        }
        other => panic!("expected ChannelClosed, got {other:?}"),
    }
    assert!(plane.local_should_close(slot));
    plane.release(slot);
    assert_eq!(plane.live_slots().count(), 0);
    assert_eq!(
        plane.channel_bytes(),
        10,
        "the plane's total keeps a released channel's bytes, both ways"
    );
    // The id is free: a message for it now goes up to the TypeScript core, which refuses it.
    feed(&mut plane, &peer.seal(&simple(EOF, 3))).unwrap();
    assert_eq!(
        upcalled(&mut plane),
        vec![(peer.send_sequence - 1, simple(EOF, 3))]
    );
}

#[test]
fn data_received_before_the_peers_close_still_reaches_the_socket() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let slot = adopt(&mut plane, 1 << 20);
    let mut input = peer.seal(&data(3, b"last words"));
    input.extend(peer.seal(&simple(EOF, 3)));
    input.extend(peer.seal(&simple(CLOSE, 3)));
    feed(&mut plane, &input).unwrap();
    assert_eq!(peer.receive(&drain(&mut plane)), vec![simple(CLOSE, 300)]);
    assert!(
        !plane.local_should_close(slot),
        "the socket still has bytes to write"
    );
    assert_eq!(plane.local_pending(slot), b"last words");
    plane.local_written(slot, 10).unwrap();
    assert!(plane.local_should_close(slot));
}

#[test]
fn a_channel_closed_by_the_typescript_core_sends_eof_then_close() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let slot = adopt(&mut plane, 1 << 20);
    plane.close_channel(3).unwrap();
    assert_eq!(
        peer.receive(&drain(&mut plane)),
        vec![simple(EOF, 300), simple(CLOSE, 300)]
    );
    assert_eq!(plane.local_read_room(slot), 0);
    // Data crossing our CLOSE is dropped, and does not fail the connection.
    feed(&mut plane, &peer.seal(&data(3, b"late"))).unwrap();
    assert!(plane.local_pending(slot).is_empty());
}

#[test]
fn a_local_socket_that_fails_closes_its_channel_only() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let slot = adopt(&mut plane, 1 << 20);
    let other = plane
        .adopt(4, 400, LIMITS.window_target, 1 << 20, 16 * 1024, None)
        .unwrap();
    let reset = |_: &mut [u8]| Err(io::Error::from(io::ErrorKind::ConnectionReset));
    assert_eq!(
        plane.local_read(slot, reset).unwrap(),
        LocalRead::Failed(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(peer.receive(&drain(&mut plane)), vec![simple(CLOSE, 300)]);
    assert_eq!(
        plane.local_read(other, read_from(b"still here")).unwrap(),
        LocalRead::Data(10)
    );
}

#[test]
fn messages_for_channels_not_adopted_go_up_whole() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    let request: Vec<u8> = [&[CHANNEL_REQUEST][..], &u32be(3), &u32be(3), b"foo", &[0]].concat();
    let mut input = peer.seal(&data(5, b"event-mode channel"));
    input.extend(peer.seal(&request));
    feed(&mut plane, &input).unwrap();
    let up = upcalled(&mut plane);
    assert_eq!(
        up.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        vec![data(5, b"event-mode channel"), request]
    );
}

fn fails_with(plane: &mut Plane, peer: &mut Peer, message: &[u8], code: Code) {
    let error = feed(plane, &peer.seal(message)).expect_err("a hostile message fails the plane");
    assert_eq!(error.code, code, "{}", error.message);
    // The plane stays failed: nothing is handled or sent after it.
    assert_eq!(plane.send_payload(&[82]).unwrap_err().code, code);
}

#[test]
fn data_beyond_the_window_fails_with_1022() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    plane.adopt(3, 300, 1000, 1 << 20, 16 * 1024, None).unwrap();
    fails_with(
        &mut plane,
        &mut peer,
        &data(3, &[0; 1001]),
        Code::InvalidChannelData,
    );
}

#[test]
fn data_larger_than_our_packet_limit_fails_with_1022() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    fails_with(
        &mut plane,
        &mut peer,
        &data(3, &vec![0; LIMITS.max_packet as usize + 1]),
        Code::InvalidChannelData,
    );
}

#[test]
fn data_after_eof_fails_with_1022() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    feed(&mut plane, &peer.seal(&simple(EOF, 3))).unwrap();
    fails_with(
        &mut plane,
        &mut peer,
        &data(3, b"x"),
        Code::InvalidChannelData,
    );
}

#[test]
fn a_window_adjust_past_32_bits_fails_with_1023() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, u32::MAX - 10);
    fails_with(
        &mut plane,
        &mut peer,
        &window_adjust(3, 11),
        Code::InvalidChannelMessage,
    );
}

#[test]
fn channel_messages_with_trailing_bytes_fail_with_1023() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    let mut message = data(3, b"abc");
    message.push(0);
    fails_with(&mut plane, &mut peer, &message, Code::InvalidChannelMessage);
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    fails_with(
        &mut plane,
        &mut peer,
        &[EOF, 0, 0, 0, 3, 0],
        Code::InvalidChannelMessage,
    );
}

#[test]
fn a_corrupted_packet_fails_with_1015() {
    for &(cipher, mac) in SUITES {
        let (mut plane, mut peer) = pair(cipher, mac);
        let mut packet = peer.seal(&[GLOBAL_REQUEST, 1, 2, 3]);
        let last = packet.len() - 1;
        packet[last] ^= 1;
        let error = feed(&mut plane, &packet).expect_err(cipher);
        assert_eq!(
            error.code,
            Code::CannotDecrypt,
            "{cipher}: {}",
            error.message
        );
        assert!(upcalled(&mut plane).is_empty());
    }
}

#[test]
fn an_impossible_packet_length_fails_with_1015_before_waiting_for_it() {
    let (mut plane, _) = pair("aes128-gcm@openssh.com", None);
    // In clear with AES-GCM: 1 MiB announced. The plane must not wait for a megabyte.
    let error = feed(&mut plane, &[0, 0x10, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(error.code, Code::CannotDecrypt);
    assert!(error.message.contains("bad packet length"));
}

#[test]
fn after_our_kexinit_nothing_but_key_exchange_messages_leaves_until_our_newkeys() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    let slot = adopt(&mut plane, 1 << 20);
    // Window credit comes due, the local end has data and then ends, a control message is
    // sent: all after our KEXINIT.
    let kexinit = [KEXINIT, 1, 2, 3];
    plane.send_payload(&kexinit).unwrap();
    assert!(plane.kex_in_progress());
    for _ in 0..5 {
        feed(&mut plane, &peer.seal(&data(3, &[1; 16 * 1024]))).unwrap();
    }
    plane.local_written(slot, 80 * 1024).unwrap();
    assert_eq!(
        plane.local_read_room(slot),
        0,
        "local sockets are not read during our key exchange"
    );
    assert_eq!(
        plane.local_read(slot, read_from(b"held")).unwrap(),
        LocalRead::WouldBlock
    );
    assert_eq!(
        plane.send_payload(&[GLOBAL_REQUEST, 0]).unwrap(),
        None,
        "deferred"
    );
    assert_eq!(
        plane.send_payload(&[31, 9, 9]).unwrap(),
        Some(12),
        "a key exchange message goes out"
    );
    assert_eq!(
        peer.receive(&drain(&mut plane)),
        vec![kexinit.to_vec(), vec![31, 9, 9]]
    );
    // NEWKEYS under the old keys, then the new keys (strict kex: the sequence restarts).
    let next = keys("aes128-gcm@openssh.com", None, 99);
    plane.send_newkeys(&next, true).unwrap();
    let out = drain(&mut plane);
    let mut packets = Vec::new();
    let mut rest = &out[..];
    // The first packet is NEWKEYS under the old keys; the peer switches after it.
    let first = 4 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize + 16;
    packets.extend(peer.receive(&rest[..first]));
    rest = &rest[first..];
    peer.set_opener(&next, true);
    packets.extend(peer.receive(rest));
    assert_eq!(
        packets,
        vec![
            vec![NEWKEYS],
            vec![GLOBAL_REQUEST, 0],
            window_adjust(300, 80 * 1024)
        ]
    );
    assert_eq!(plane.sequences().0, 2);
    assert!(
        plane.local_read_room(slot) > 0,
        "local sockets are read again"
    );
}

#[test]
fn eof_and_close_asked_for_during_our_key_exchange_follow_our_newkeys() {
    let (mut plane, mut peer) = pair("aes128-gcm@openssh.com", None);
    adopt(&mut plane, 1 << 20);
    plane.send_payload(&[KEXINIT]).unwrap();
    plane.close_channel(3).unwrap();
    assert_eq!(peer.receive(&drain(&mut plane)), vec![vec![KEXINIT]]);
    let next = keys("aes128-gcm@openssh.com", None, 3);
    plane.send_newkeys(&next, false).unwrap();
    let out = drain(&mut plane);
    let first = 4 + u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize + 16;
    assert_eq!(peer.receive(&out[..first]), vec![vec![NEWKEYS]]);
    peer.set_opener(&next, false);
    assert_eq!(
        peer.receive(&out[first..]),
        vec![simple(EOF, 300), simple(CLOSE, 300)]
    );
}

#[test]
fn reading_pauses_at_the_peers_newkeys_until_the_keys_come() {
    for &(cipher, mac) in SUITES {
        let (mut plane, mut peer) = pair(cipher, mac);
        let next = keys(cipher, mac, 77);
        let mut input = peer.seal(&[NEWKEYS]);
        peer.set_sealer(&next, false);
        input.extend(peer.seal(&[GLOBAL_REQUEST, 42]));
        feed(&mut plane, &input).unwrap();
        assert_eq!(upcalled(&mut plane), vec![(7, vec![NEWKEYS])], "{cipher}");
        assert!(plane.ssh_read_paused());
        plane.set_incoming_keys(&next, false).unwrap();
        assert!(!plane.ssh_read_paused());
        assert_eq!(
            upcalled(&mut plane),
            vec![(8, vec![GLOBAL_REQUEST, 42])],
            "{cipher}"
        );
    }
}

#[test]
fn incoming_keys_given_before_the_peers_newkeys_take_over_right_after_it() {
    let (mut plane, mut peer) = pair("chacha20-poly1305@openssh.com", None);
    let next = keys("chacha20-poly1305@openssh.com", None, 55);
    plane.set_incoming_keys(&next, true).unwrap();
    let mut input = peer.seal(&[NEWKEYS]);
    peer.set_sealer(&next, true);
    input.extend(peer.seal(&[GLOBAL_REQUEST, 1]));
    feed(&mut plane, &input).unwrap();
    assert_eq!(
        upcalled(&mut plane),
        vec![(7, vec![NEWKEYS]), (0, vec![GLOBAL_REQUEST, 1])]
    );
}

#[test]
fn a_rekey_is_asked_for_once_the_byte_threshold_is_crossed() {
    let (mut plane, mut peer) = pair_with("aes128-gcm@openssh.com", None, 40 * 1024);
    let slot = adopt(&mut plane, 1 << 20);
    let chunk = vec![0u8; 16 * 1024];
    for _ in 0..2 {
        plane.local_read(slot, read_from(&chunk)).unwrap();
    }
    assert!(!plane.take_upcalls().items.contains(&Upcall::RekeyDue));
    plane.local_read(slot, read_from(&chunk)).unwrap();
    plane.local_read(slot, read_from(&chunk)).unwrap();
    let items = plane.take_upcalls().items;
    assert_eq!(items.iter().filter(|u| **u == Upcall::RekeyDue).count(), 1);
    // No more channel data until the re-exchange (it would overrun the threshold), which
    // then lets it go again.
    assert_eq!(plane.local_read_room(slot), 0);
    plane.send_payload(&[KEXINIT]).unwrap();
    plane
        .send_newkeys(&keys("aes128-gcm@openssh.com", None, 5), false)
        .unwrap();
    assert!(plane.local_read_room(slot) > 0);
    peer.receive(&drain(&mut plane));
}

#[test]
fn newkeys_without_our_kexinit_is_refused() {
    let (mut plane, _) = pair("aes128-gcm@openssh.com", None);
    let error = plane
        .send_newkeys(&keys("aes128-gcm@openssh.com", None, 1), false)
        .unwrap_err();
    assert_eq!(error.code, Code::ProtocolError);
}

#[test]
fn keys_of_an_unknown_cipher_fail_with_1006_and_name_no_key() {
    let mut bad = keys("aes128-gcm@openssh.com", None, 1);
    bad.cipher = "rot13".into();
    let (mut plane, _) = pair("aes128-gcm@openssh.com", None);
    plane.send_payload(&[KEXINIT]).unwrap();
    let error = plane.send_newkeys(&bad, false).unwrap_err();
    assert_eq!(error.code, Code::CannotSetKeys);
    assert_eq!(error.message, "cannot set keys: unknown cipher or MAC");
}

/// The bytes of window the WINDOW_ADJUSTs among `messages` give.
fn credit_in(messages: &[Vec<u8>]) -> u64 {
    messages
        .iter()
        .filter(|m| m[0] == WINDOW_ADJUST)
        .map(|m| u32::from_be_bytes([m[5], m[6], m[7], m[8]]) as u64)
        .sum()
}

/// A plane and its peer at MaxTransferRate 100 kB/s (a 5000-byte burst, credit in steps of at
/// least 2500), on a clock the test moves: returns the clock's start.
fn limited_pair(cipher: &str) -> (Plane, Peer, Instant) {
    let (mut plane, peer) = pair(cipher, None);
    let start = Instant::now();
    plane.set_now(start);
    plane.set_rate(100_000).unwrap();
    (plane, peer, start)
}

#[test]
fn under_max_transfer_rate_credit_comes_as_the_inbound_tokens_allow_and_all_of_it_once_lifted() {
    let (mut plane, mut peer, start) = limited_pair("aes128-gcm@openssh.com");
    // The TypeScript core gave the channel a first window of one step.
    let slot = plane.adopt(3, 300, 2500, 1 << 20, 16 * 1024, None).unwrap();
    // It was taken from the plane's tokens too: 2500 of the burst are left to give.
    assert_eq!(credit_in(&peer.receive(&drain(&mut plane))), 2500);
    feed(&mut plane, &peer.seal(&data(3, &[1u8; 2500]))).unwrap();
    plane.local_written(slot, 2500).unwrap();
    assert!(peer.receive(&drain(&mut plane)).is_empty());
    // No tokens left: the rest of the window waits for them.
    plane.grant_withheld().unwrap();
    assert!(peer.receive(&drain(&mut plane)).is_empty());
    let wait = plane.rate_wait(false).expect("credit waits on tokens");
    assert_eq!(wait, Duration::from_millis(25), "2500 bytes at 100 kB/s");
    // Over a virtual second, the credit given (the first window included) stays within
    // burst + rate × time.
    let mut given = 2500;
    for step in 1..=100 {
        plane.set_now(start + Duration::from_millis(10 * step));
        plane.grant_withheld().unwrap();
        given += credit_in(&peer.receive(&drain(&mut plane)));
        assert!(
            2500 + given <= 5000 + 100 * 10 * step,
            "{given} after {step}0 ms"
        );
    }
    assert!(given >= 100_000, "the credit kept coming: {given}");
    // The peer uses all the window it has (2500 of it before): credit for it is withheld.
    let mut used = 2500;
    while used < 2500 + given {
        let n = (2500 + given - used).min(16 * 1024) as usize;
        feed(&mut plane, &peer.seal(&data(3, &vec![2u8; n]))).unwrap();
        plane.local_written(slot, n).unwrap();
        used += n as u64;
    }
    given += credit_in(&peer.receive(&drain(&mut plane)));
    assert!(plane.rate_wait(false).is_some());
    // Lifted: the peer's window is back at the 128 KiB target at once.
    plane.set_rate(0).unwrap();
    given += credit_in(&peer.receive(&drain(&mut plane)));
    assert_eq!(2500 + given - used, LIMITS.window_target as u64);
    assert_eq!(plane.rate_wait(true), None);
}

#[test]
fn under_max_transfer_rate_no_more_is_read_from_local_sockets_than_the_outbound_tokens_let_out() {
    let (mut plane, mut peer, start) = limited_pair("chacha20-poly1305@openssh.com");
    let slot = adopt(&mut plane, 1 << 20);
    assert_eq!(plane.local_read_room(slot), 5000);
    let big = vec![9u8; 64 * 1024];
    assert_eq!(
        plane.local_read(slot, read_from(&big)).unwrap(),
        LocalRead::Data(5000)
    );
    // The packet's own bytes go beyond the tokens: it is written as far as they allow.
    let framed = plane.ssh_pending().len();
    assert!(framed > 5000);
    assert_eq!(plane.ssh_writable().len(), 5000);
    let first = plane.ssh_writable().to_vec();
    plane.ssh_written(first.len());
    assert!(plane.ssh_writable().is_empty());
    assert_eq!(plane.local_read_room(slot), 0);
    let wait = plane.rate_wait(true).expect("output waits on tokens");
    plane.set_now(start + wait);
    let mut wire = first;
    wire.extend_from_slice(plane.ssh_writable());
    let n = plane.ssh_writable().len();
    plane.ssh_written(n);
    assert_eq!(wire.len(), framed, "the rest of the packet went out");
    assert_eq!(peer.receive(&wire), vec![data(300, &big[..5000])]);
    // The few tokens left over frame nothing: the next packet waits for MIN_BURST of them
    // (a packet per wake of a few dozen bytes was the bug).
    assert_eq!(plane.local_read_room(slot), 0);
    let wait = plane.rate_wait(true).expect("reading waits on tokens");
    plane.set_now(start + Duration::from_millis(60) + wait);
    assert!(plane.local_read_room(slot) >= 4096);
}

#[test]
fn under_max_transfer_rate_channels_owed_credit_share_the_tokens() {
    let (mut plane, mut peer, start) = limited_pair("aes128-gcm@openssh.com");
    for (id, remote) in [(3, 300), (4, 400)] {
        plane
            .adopt(id, remote, 2500, 1 << 20, 16 * 1024, None)
            .unwrap();
    }
    // The first windows, 2500 each, are counted as given.
    let mut per_channel = [2500u64; 2];
    for step in 0..=100 {
        plane.set_now(start + Duration::from_millis(10 * step));
        plane.grant_withheld().unwrap();
        for m in peer.receive(&drain(&mut plane)) {
            let recipient = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
            per_channel[usize::from(recipient == 400)] += credit_in(&[m]);
        }
    }
    // A second of tokens, split between the two: neither gets it all.
    let total = per_channel[0] + per_channel[1];
    assert!(total <= 5000 + 100_000, "{per_channel:?}");
    assert!(total >= 90_000, "{per_channel:?}");
    assert!(
        per_channel.iter().all(|&c| c * 3 >= total),
        "each channel gets a fair part: {per_channel:?}"
    );
}
