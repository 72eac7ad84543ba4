//! The command line. Parsed by hand: five options do not justify a parser crate in a build
//! that every CI run pays for.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: revtun-russh-server --host-key FILE --user NAME --password PASSWORD [options]

  --listen ADDR:PORT       address to accept SSH connections on (default 127.0.0.1:0;
                           port 0 picks a free port)
  --host-key FILE          OpenSSH private host key (ed25519 or ECDSA)
  --user NAME              the one user allowed to log on
  --password PASSWORD      that user's password
  --authorized-key FILE    an OpenSSH public key that user may also log on with
  --rekey-bytes N          russh starts a key re-exchange after N bytes sent or received
                           (default: russh's own limit, 1 GiB)
  --log-level LEVEL        error, warn, info (default), debug or trace; logs go to stderr

Prints `LISTENING <port>` on stdout once it accepts connections; runs until killed.";

pub struct Args {
    pub listen: SocketAddr,
    pub host_key: PathBuf,
    pub user: String,
    pub password: String,
    pub authorized_key: Option<PathBuf>,
    pub rekey_bytes: Option<usize>,
    pub log_level: log::LevelFilter,
}

/// russh refuses limits above 1 GiB (beyond it a 32-bit block counter could repeat a nonce).
const MAX_REKEY_BYTES: usize = 1 << 30;

pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("a valid literal");
    let mut host_key = None;
    let mut user = None;
    let mut password = None;
    let mut authorized_key = None;
    let mut rekey_bytes = None;
    let mut log_level = log::LevelFilter::Info;

    while let Some(option) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{option} needs a value"));
        match option.as_str() {
            "--listen" => {
                let text = value()?;
                listen = text.parse().map_err(|e| format!("--listen {text}: {e}"))?;
            }
            "--host-key" => host_key = Some(PathBuf::from(value()?)),
            "--user" => user = Some(value()?),
            "--password" => password = Some(value()?),
            "--authorized-key" => authorized_key = Some(PathBuf::from(value()?)),
            "--rekey-bytes" => {
                let text = value()?;
                let bytes: usize = text
                    .parse()
                    .map_err(|e| format!("--rekey-bytes {text}: {e}"))?;
                if bytes == 0 || bytes > MAX_REKEY_BYTES {
                    return Err(format!(
                        "--rekey-bytes must be between 1 and {MAX_REKEY_BYTES}"
                    ));
                }
                rekey_bytes = Some(bytes);
            }
            "--log-level" => {
                let text = value()?;
                log_level = text
                    .parse()
                    .map_err(|_| format!("--log-level {text}: not a log level"))?;
            }
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
    }

    Ok(Args {
        listen,
        host_key: host_key.ok_or("--host-key is required")?,
        user: user.ok_or("--user is required")?,
        password: password.ok_or("--password is required")?,
        authorized_key,
        rekey_bytes,
        log_level,
    })
}
