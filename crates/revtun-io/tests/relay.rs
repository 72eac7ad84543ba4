//! The relay thread over real loopback sockets: an SSH peer (the in-memory test peer, driving a
//! TCP connection with its own flow control) on one side, a local target on the other. Bounded
//! in bytes and time: every blocking read has a timeout.

mod common;

use common::*;
use revtun_io::relay::{duplicate, Ended, Relay};
use revtun_io::{ChannelLimits, Handover, Plane, UpBatch, Upcall};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
/// Our CHANNEL_OPEN_CONFIRMATION for the peer's channel 3 (RFC 4254 §5.1), framed with the adoption.
const CONFIRMATION: [u8; 17] = [91, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0x80, 0];
const DEADLINE: Duration = Duration::from_secs(60);

/// A connected pair of loopback TCP sockets.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

/// What the upcall sink heard.
enum Heard {
    Batch(UpBatch),
    Ended(Ended),
}

fn start(cipher: &str) -> (Relay, Peer, TcpStream, mpsc::Receiver<Heard>) {
    let outgoing = keys(cipher, None, 10);
    let incoming = keys(cipher, None, 20);
    let peer = Peer::new(&incoming, &outgoing, 7, 11);
    let plane = Plane::new(Handover {
        outgoing,
        incoming,
        send_sequence: 11,
        receive_sequence: 7,
        limits: ChannelLimits {
            max_packet: 32 * 1024,
            window_target: 2 * MIB as u32,
        },
        rekey_bytes: 0,
    })
    .unwrap();
    let (ours, theirs) = tcp_pair();
    let (tx, rx) = mpsc::channel();
    let relay = Relay::start(
        plane,
        duplicate(ours.as_raw_fd()).unwrap(),
        &[],
        Box::new(move |batch, ended| {
            if !batch.is_empty() {
                let _ = tx.send(Heard::Batch(batch));
            }
            if let Some(ended) = ended {
                let _ = tx.send(Heard::Ended(ended));
            }
        }),
    )
    .unwrap();
    drop(ours); // the relay holds its own descriptor
    theirs
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (relay, peer, theirs, rx)
}

/// A repeating pattern that a shifted or lost byte breaks.
fn pattern(offset: usize, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let at = offset + i;
        *byte = (at as u8) ^ ((at >> 9) as u8);
    }
}

fn check_pattern(offset: usize, bytes: &[u8]) -> bool {
    let mut expected = vec![0; bytes.len()];
    pattern(offset, &mut expected);
    expected == bytes
}

/// Whether the thread with this id still exists in this process (true is certain; false may
/// come a little after the thread was joined, when the kernel has removed its entry).
fn thread_listed(id: i32) -> bool {
    assert!(id > 0, "the relay thread reported its id");
    std::path::Path::new(&format!("/proc/self/task/{id}")).exists()
}

/// The peer's side of a channel: sends `upload` bytes of pattern within the plane's window,
/// takes what the plane sends (checking the pattern, returning credit), and ends with EOF and
/// CLOSE. Returns the bytes it received.
fn run_peer_channel(
    peer: &mut Peer,
    ssh: &mut TcpStream,
    local_id: u32,
    initial_window: usize,
    upload: usize,
) -> usize {
    ssh.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let (mut sent, mut received, mut window, mut owed_credit) =
        (0usize, 0usize, initial_window, 0usize);
    let (mut eof_sent, mut eof_received, mut close_received) = (false, false, false);
    let mut confirmed = false;
    let mut out: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut chunk = vec![0u8; 32 * 1024];
    while !(close_received && out.is_empty()) {
        assert!(
            started.elapsed() < DEADLINE,
            "the transfer stalled: sent {sent}, received {received}"
        );
        while out.len() < MIB && sent < upload && window > 0 {
            let n = (upload - sent).min(window).min(chunk.len());
            pattern(sent, &mut chunk[..n]);
            out.extend(peer.seal(&data(local_id, &chunk[..n])));
            sent += n;
            window -= n;
        }
        if sent == upload && !eof_sent {
            out.extend(peer.seal(&simple(EOF, local_id)));
            eof_sent = true;
        }
        if owed_credit >= 256 * 1024 {
            out.extend(peer.seal(&window_adjust(local_id, owed_credit as u32)));
            owed_credit = 0;
        }
        let mut progressed = false;
        if !out.is_empty() {
            match ssh.write(&out) {
                Ok(n) => {
                    out.drain(..n);
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("peer write: {e}"),
            }
        }
        match ssh.read(&mut buffer) {
            Ok(0) => panic!("the relay closed the SSH connection"),
            Ok(n) => {
                progressed = true;
                for payload in peer.receive(&buffer[..n]) {
                    // Nothing may come for the channel before its confirmation (sshd ignores it).
                    assert!(
                        confirmed || payload[0] == 91,
                        "message {} before the confirmation",
                        payload[0]
                    );
                    match payload[0] {
                        91 => confirmed = true,
                        DATA => {
                            let bytes = &payload[9..];
                            assert!(
                                check_pattern(received, bytes),
                                "upload corrupted at {received}"
                            );
                            received += bytes.len();
                            owed_credit += bytes.len();
                        }
                        WINDOW_ADJUST => {
                            window += u32::from_be_bytes(payload[5..9].try_into().unwrap()) as usize
                        }
                        EOF => eof_received = true,
                        CLOSE => {
                            assert!(eof_received, "CLOSE before EOF");
                            close_received = true;
                            out.extend(peer.seal(&simple(CLOSE, local_id)));
                        }
                        other => panic!("unexpected message {other}"),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("peer read: {e}"),
        }
        if !progressed {
            std::thread::yield_now(); // the peer polls: it is the test's, not the relay's, loop
        }
    }
    while !out.is_empty() {
        match ssh.write(&out) {
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("peer write: {e}"),
        }
    }
    ssh.set_nonblocking(false).unwrap();
    received
}

/// The local target: writes `upload` bytes of pattern, then reads to end of file and checks.
fn run_target(mut target: TcpStream, download: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        target
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = target.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while sent < download {
                let n = (download - sent).min(chunk.len());
                pattern(sent, &mut chunk[..n]);
                target.write_all(&chunk[..n]).unwrap();
                sent += n;
            }
            target.shutdown(Shutdown::Write).unwrap();
        });
        let mut received = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buffer)
                .expect("the target's read timed out");
            if n == 0 {
                break;
            }
            assert!(
                check_pattern(received, &buffer[..n]),
                "download corrupted at {received}"
            );
            received += n;
        }
        writer.join().unwrap();
        received
    })
}

fn transfer_both_ways(cipher: &str, bytes: usize) {
    let (mut relay, mut peer, mut ssh, heard) = start(cipher);
    let (target_side, relay_side) = tcp_pair();
    relay
        .adopt(
            3,
            3,
            2 * MIB as u32,
            1024 * 1024,
            32 * 1024,
            Some(&CONFIRMATION),
            duplicate(relay_side.as_raw_fd()).unwrap(),
        )
        .unwrap();
    drop(relay_side);
    let target = run_target(target_side, bytes);
    let uploaded = run_peer_channel(&mut peer, &mut ssh, 3, 2 * MIB, bytes);
    assert_eq!(uploaded, bytes, "the peer got every byte the target sent");
    assert_eq!(
        target.join().unwrap(),
        bytes,
        "the target got every byte the peer sent"
    );
    // The channel's end is reported with what it carried.
    let mut closed = None;
    while closed.is_none() {
        match heard
            .recv_timeout(Duration::from_secs(20))
            .expect("an upcall")
        {
            Heard::Batch(batch) => {
                for item in &batch.items {
                    if let Upcall::ChannelClosed(report) = item {
                        closed = Some(*report);
                    }
                }
            }
            Heard::Ended(ended) => panic!("the relay ended: {ended:?}"),
        }
    }
    let report = closed.unwrap();
    assert_eq!(
        (
            report.local_id,
            report.bytes_sent as usize,
            report.bytes_received as usize
        ),
        (3, bytes, bytes)
    );
    // Stopping joins the thread and closes the SSH socket.
    let exited = relay.exited_flag();
    assert!(thread_listed(relay.thread_id()), "the relay thread runs");
    assert!(!exited.load(Ordering::Acquire));
    assert_eq!(relay.stop(), Ended::Stopped);
    let mut rest = [0u8; 16];
    assert_eq!(ssh.read(&mut rest).unwrap(), 0, "the SSH socket is closed");
    assert!(exited.load(Ordering::Acquire), "no thread is left behind");
    assert_eq!(relay.live_channels(), 0);
}

#[test]
fn sixty_four_mib_cross_each_way_intact_under_aes_gcm() {
    transfer_both_ways("aes128-gcm@openssh.com", 64 * MIB);
}

#[test]
fn sixty_four_mib_cross_each_way_intact_under_chacha20_poly1305() {
    transfer_both_ways("chacha20-poly1305@openssh.com", 64 * MIB);
}

#[test]
fn control_messages_go_up_and_commands_go_out() {
    let (mut relay, mut peer, mut ssh, heard) = start("aes128-gcm@openssh.com");
    ssh.write_all(&peer.seal(&[GLOBAL_REQUEST, 0, 0, 0, 1, b'k', 1]))
        .unwrap();
    match heard.recv_timeout(Duration::from_secs(20)).unwrap() {
        Heard::Batch(batch) => {
            assert_eq!(batch.items.len(), 1);
            assert_eq!(
                batch.payload(&batch.items[0]),
                &[GLOBAL_REQUEST, 0, 0, 0, 1, b'k', 1]
            );
            relay.upcalls_taken(batch.bytes.len());
        }
        Heard::Ended(ended) => panic!("ended: {ended:?}"),
    }
    assert_eq!(relay.send(&[82]).unwrap(), Some(11));
    let mut buffer = [0u8; 256];
    let mut got = Vec::new();
    while got.is_empty() {
        let n = ssh.read(&mut buffer).unwrap();
        got = peer.receive(&buffer[..n]);
    }
    assert_eq!(got, vec![vec![82]]);
    relay.stop();
}

#[test]
fn the_server_closing_the_connection_ends_the_relay_with_peer_closed() {
    let (relay, _peer, ssh, heard) = start("aes128-gcm@openssh.com");
    ssh.shutdown(Shutdown::Both).unwrap();
    loop {
        match heard.recv_timeout(Duration::from_secs(20)).unwrap() {
            Heard::Ended(ended) => {
                assert_eq!(ended, Ended::PeerClosed);
                break;
            }
            Heard::Batch(_) => {}
        }
    }
    let exited = relay.exited_flag();
    drop(relay);
    assert!(
        exited.load(Ordering::Acquire),
        "dropping the relay joined its thread"
    );
}

#[test]
fn a_corrupted_packet_ends_the_relay_with_1015_a_disconnect_and_the_intact_data_delivered() {
    let (relay, mut peer, mut ssh, heard) = start("chacha20-poly1305@openssh.com");
    let (mut target, relay_side) = tcp_pair();
    relay
        .adopt(
            3,
            3,
            MIB as u32,
            MIB as u32,
            32 * 1024,
            None,
            duplicate(relay_side.as_raw_fd()).unwrap(),
        )
        .unwrap();
    drop(relay_side);
    // Intact data first: it must still reach the target.
    let mut input = peer.seal(&data(3, b"intact"));
    let mut packet = peer.seal(&data(3, b"tampered"));
    packet[10] ^= 0x40;
    input.extend(packet);
    ssh.write_all(&input).unwrap();
    loop {
        match heard.recv_timeout(Duration::from_secs(20)).unwrap() {
            Heard::Ended(Ended::Protocol(error)) => {
                assert_eq!(error.code as u32, 1015);
                break;
            }
            Heard::Ended(other) => panic!("ended otherwise: {other:?}"),
            Heard::Batch(_) => {}
        }
    }
    // The local socket is left to the stop that follows the end (the TypeScript core's, on
    // hearing it): only then does the target get what it was owed, and its end.
    let mut relay = relay;
    relay.stop();
    target
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    target.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"intact",
        "the intact data reached the target, nothing tampered did, and its socket closed"
    );
    // The server is told why: DISCONNECT with MAC_ERROR (5).
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let disconnect = loop {
        let n = ssh.read(&mut buffer).unwrap();
        assert!(n > 0, "the connection closed without a DISCONNECT");
        received.extend(peer.receive(&buffer[..n]));
        if let Some(message) = received.iter().find(|m| m[0] == 1) {
            break message.clone();
        }
    };
    assert_eq!(&disconnect[1..5], &5u32.to_be_bytes());
    drop(relay);
}
