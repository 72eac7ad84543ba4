//! A foreign SSH server for revtun's integration tests: russh (crates.io), an implementation
//! stricter than OpenSSH (it drops a connection that sends channel data after its KEXINIT,
//! RFC 4253 §7.1). One user logs on by password, or by public key when one is authorized,
//! and may ask for remote port forwarding on loopback (RFC 4254 §7). Key re-exchange is
//! russh's own; `--rekey-bytes` makes it start one itself.
//!
//! See `args.rs` for the command line. Prints `LISTENING <port>` on stdout when ready and
//! logs to stderr.

mod args;
mod forward;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};
use russh::keys::PublicKey;
use russh::server::{Auth, Config, Handler, Session, VerifiedPublicKey};
use russh::{Limits, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};

use forward::Forwardings;

/// Who may log on, shared by every connection.
struct Accounts {
    user: String,
    password: String,
    authorized_key: Option<PublicKey>,
}

/// One SSH connection's state.
struct Connection {
    accounts: Arc<Accounts>,
    forwardings: Forwardings,
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == self.accounts.user && password == self.accounts.password;
        info!(
            "password for {user}: {}",
            if ok { "accepted" } else { "rejected" }
        );
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = user == self.accounts.user
            && self
                .accounts
                .authorized_key
                .as_ref()
                .is_some_and(|authorized| authorized.key_data() == key.public_key.key_data());
        info!(
            "public key {} for {user}: {}",
            key.algorithm,
            if ok { "accepted" } else { "rejected" }
        );
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        match self
            .forwardings
            .open(address, *port, session.handle())
            .await
        {
            Some(bound) => {
                *port = bound;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.forwardings.cancel(address, port).await)
    }
}

/// Writes log records to stderr, one line each.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "russh-server {} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn config(args: &args::Args) -> Result<Config, String> {
    let host_key = russh::keys::load_secret_key(&args.host_key, None)
        .map_err(|e| format!("cannot load the host key {}: {e}", args.host_key.display()))?;
    let mut methods = vec![MethodKind::Password];
    if args.authorized_key.is_some() {
        methods.push(MethodKind::PublicKey);
    }
    let mut config = Config {
        keys: vec![host_key],
        methods: MethodSet::from(methods.as_slice()),
        // A client's first "none" request only asks which methods there are: answer at once.
        auth_rejection_time_initial: Some(Duration::ZERO),
        ..Config::default()
    };
    if let Some(bytes) = args.rekey_bytes {
        config.limits = Limits::new(bytes, bytes, Limits::default().rekey_time_limit);
    }
    Ok(config)
}

fn accounts(args: &args::Args) -> Result<Accounts, String> {
    let authorized_key = match &args.authorized_key {
        Some(path) => Some(
            russh::keys::load_public_key(path)
                .map_err(|e| format!("cannot load the authorized key {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(Accounts {
        user: args.user.clone(),
        password: args.password.clone(),
        authorized_key,
    })
}

async fn run(args: args::Args) -> Result<(), String> {
    let config = Arc::new(config(&args)?);
    let accounts = Arc::new(accounts(&args)?);
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();

    let mut stdout = std::io::stdout();
    writeln!(stdout, "LISTENING {port}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    info!("listening on {}:{port}", args.listen.ip());

    loop {
        let (socket, peer) = listener
            .accept()
            .await
            .map_err(|e| format!("accepting connections failed: {e}"))?;
        tokio::spawn(serve(config.clone(), accounts.clone(), socket, peer));
    }
}

/// Runs one SSH connection to its end. Its last log line, `connection from ADDR ended`, is
/// what the tests wait for to show russh's reason when it drops a client (russh closes the
/// socket without a DISCONNECT, e.g. "Inconsistent state of the protocol" for a message it
/// does not allow at that point).
async fn serve(config: Arc<Config>, accounts: Arc<Accounts>, socket: TcpStream, peer: SocketAddr) {
    info!("connection from {peer}");
    let connection = Connection {
        accounts,
        forwardings: Forwardings::default(),
    };
    let outcome = match russh::server::run_stream(config, socket, connection).await {
        Ok(session) => session.await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => info!("connection from {peer} ended"),
        Err(e) => warn!("connection from {peer} ended with an error: {e} ({e:?})"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    log::set_logger(&LOGGER).expect("the only logger");
    log::set_max_level(args.log_level);
    if let Err(message) = run(args).await {
        eprintln!("russh-server: {message}");
        std::process::exit(1);
    }
}
