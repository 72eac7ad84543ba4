//! Remote port forwarding, RFC 4254 §7: the listeners a client asks for with `tcpip-forward`
//! (§7.1) and, for every connection one of them accepts, a `forwarded-tcpip` channel (§7.2)
//! with bytes copied both ways.
//!
//! Flow control is russh's: writes into a channel wait for the client's window, and russh
//! stops reading the SSH connection while a channel's queue of received messages is full.
//! Half-closes are passed on in both directions (a TCP FIN becomes CHANNEL_EOF and back);
//! the channel is closed once both directions have ended, or at once when either side fails.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use log::{debug, info, warn};
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Large enough that one read fills a maximum-size CHANNEL_DATA packet or two.
const RELAY_BUFFER: usize = 64 * 1024;

/// Sent to a listener's task to close it; the task answers once the socket is closed.
type CancelRequest = oneshot::Sender<()>;

/// The listeners of one SSH connection, keyed by the address and port the client asked for
/// (a `cancel-tcpip-forward` names them the same way). Dropping this, as russh does when the
/// connection ends, closes every listener.
#[derive(Default)]
pub struct Forwardings {
    listeners: HashMap<(String, u32), oneshot::Sender<CancelRequest>>,
}

impl Forwardings {
    /// Binds `address:port` (port 0: any free port) and starts accepting; returns the port.
    /// Only loopback addresses are allowed: this server exists for tests on one machine.
    pub async fn open(&mut self, address: &str, port: u32, session: Handle) -> Option<u32> {
        let Some(ip) = loopback_address(address) else {
            warn!("tcpip-forward refused: {address} is not a loopback address");
            return None;
        };
        let Ok(requested) = u16::try_from(port) else {
            warn!("tcpip-forward refused: port {port} is out of range");
            return None;
        };
        let listener = match TcpListener::bind(SocketAddr::new(ip, requested)).await {
            Ok(listener) => listener,
            Err(e) => {
                warn!("tcpip-forward refused: cannot listen on {address}:{port}: {e}");
                return None;
            }
        };
        let bound = match listener.local_addr() {
            Ok(local) => u32::from(local.port()),
            Err(e) => {
                warn!("tcpip-forward refused: {e}");
                return None;
            }
        };
        let (cancel, cancelled) = oneshot::channel();
        // A cancel request names the port that was bound, also when 0 was asked for.
        self.listeners.insert((address.to_string(), bound), cancel);
        tokio::spawn(accept_loop(
            listener,
            address.to_string(),
            bound,
            session,
            cancelled,
        ));
        info!("forwarding {address}:{bound}");
        Some(bound)
    }

    /// Closes the listener for `address:port`; returns once it no longer accepts connections.
    /// Connections it already accepted carry on.
    pub async fn cancel(&mut self, address: &str, port: u32) -> bool {
        let Some(cancel) = self.listeners.remove(&(address.to_string(), port)) else {
            warn!("cancel-tcpip-forward refused: no forwarding for {address}:{port}");
            return false;
        };
        let (closed, on_closed) = oneshot::channel();
        if cancel.send(closed).is_err() {
            // The listener's task already ended (its accept failed): nothing is listening.
            return true;
        }
        let _ = on_closed.await;
        info!("stopped forwarding {address}:{port}");
        true
    }
}

/// The addresses a forwarding may bind, resolved without DNS.
fn loopback_address(address: &str) -> Option<IpAddr> {
    match address {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "::1" | "[::1]" => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        other => other.parse::<IpAddr>().ok().filter(|ip| ip.is_loopback()),
    }
}

enum ListenerEvent {
    Accepted(std::io::Result<(TcpStream, SocketAddr)>),
    Cancelled(Option<CancelRequest>),
}

async fn accept_loop(
    listener: TcpListener,
    address: String,
    port: u32,
    session: Handle,
    mut cancelled: oneshot::Receiver<CancelRequest>,
) {
    loop {
        let event = tokio::select! {
            request = &mut cancelled => ListenerEvent::Cancelled(request.ok()),
            accepted = listener.accept() => ListenerEvent::Accepted(accepted),
        };
        match event {
            ListenerEvent::Cancelled(request) => {
                // Closed before the reply goes out, so the port refuses connections by then.
                drop(listener);
                if let Some(closed) = request {
                    let _ = closed.send(());
                }
                return;
            }
            ListenerEvent::Accepted(Ok((stream, origin))) => {
                tokio::spawn(forward_connection(
                    session.clone(),
                    address.clone(),
                    port,
                    stream,
                    origin,
                ));
            }
            ListenerEvent::Accepted(Err(e)) => {
                warn!("accept on {address}:{port} failed, closing the listener: {e}");
                return;
            }
        }
    }
}

/// Opens a `forwarded-tcpip` channel for one accepted connection and relays it.
async fn forward_connection(
    session: Handle,
    address: String,
    port: u32,
    stream: TcpStream,
    origin: SocketAddr,
) {
    let channel = match session
        .channel_open_forwarded_tcpip(
            address,
            port,
            origin.ip().to_string(),
            u32::from(origin.port()),
        )
        .await
    {
        Ok(channel) => channel,
        Err(e) => {
            // Dropping the stream resets the connection, as OpenSSH does when the open fails.
            info!("forwarded-tcpip channel for {origin} not opened: {e}");
            return;
        }
    };
    debug!("channel {} relays {origin}", channel.id());
    relay(channel, stream).await;
    debug!("connection from {origin} finished");
}

enum RelayEvent {
    UploadEnded(Result<std::io::Result<u64>, tokio::task::JoinError>),
    Message(Option<ChannelMsg>),
}

/// Copies bytes both ways between `stream` and `channel` until the channel is closed.
async fn relay(channel: Channel<Msg>, stream: TcpStream) {
    let (mut from_client, to_client) = channel.split();
    let (tcp_read, mut tcp_write) = stream.into_split();

    // TCP to SSH in a task of its own, so that a write blocked on either side never stops
    // the other direction. The channel writer waits for window space; its shutdown sends EOF.
    let mut writer = to_client.make_writer();
    let mut upload: JoinHandle<std::io::Result<u64>> = tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(RELAY_BUFFER, tcp_read);
        let copied = tokio::io::copy_buf(&mut reader, &mut writer).await?;
        writer.shutdown().await?;
        Ok(copied)
    });
    let mut upload_ended = false;
    let mut eof_received = false;

    // SSH to TCP here. After we send CHANNEL_CLOSE russh forgets the channel (its reply is
    // never handed to us), so whichever side closes first ends the loop.
    loop {
        let event = tokio::select! {
            ended = &mut upload, if !upload_ended => RelayEvent::UploadEnded(ended),
            message = from_client.wait() => RelayEvent::Message(message),
        };
        match event {
            RelayEvent::UploadEnded(ended) => {
                upload_ended = true;
                match ended {
                    Ok(Ok(bytes)) => debug!("sent {bytes} bytes and EOF to the client"),
                    Ok(Err(e)) => {
                        info!("relay to the client failed: {e}");
                        break;
                    }
                    Err(e) => {
                        warn!("relay task failed: {e}");
                        break;
                    }
                }
                if eof_received {
                    break;
                }
            }
            RelayEvent::Message(Some(ChannelMsg::Data { data })) => {
                if let Err(e) = tcp_write.write_all(&data).await {
                    info!("relay from the client failed: {e}");
                    break;
                }
            }
            RelayEvent::Message(Some(ChannelMsg::Eof)) => {
                eof_received = true;
                if let Err(e) = tcp_write.shutdown().await {
                    info!("cannot half-close the forwarded connection: {e}");
                    break;
                }
                if upload_ended {
                    break;
                }
            }
            RelayEvent::Message(Some(ChannelMsg::Close) | None) => {
                // The client closed the channel; russh has already answered with CLOSE.
                upload.abort();
                return;
            }
            RelayEvent::Message(Some(_)) => {}
        }
    }
    upload.abort();
    // Queued data goes out before the CLOSE (russh holds the close until then).
    let _ = to_client.close().await;
}
