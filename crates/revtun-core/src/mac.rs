//! Packet MACs (RFC 4253 §6.4): HMAC over `uint32 sequence || packet`, truncated for the -96
//! forms, and UMAC (RFC 4418) keyed per packet by the sequence number as its nonce, as
//! OpenSSH's umac-64/umac-128 do.

use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::{Digest, FixedOutputReset};
use hmac::{Mac, SimpleHmac};

use crate::umac::Umac;
use crate::Error;

/// Largest tag any MAC here produces (hmac-sha2-512).
pub const MAX_TAG: usize = 64;

pub(crate) trait PacketMac: Send {
    /// Writes `out.len()` bytes of the tag for `data` under `sequence`.
    fn compute(&mut self, sequence: u32, data: &[u8], out: &mut [u8]);
}

struct Hmac<D: Digest + BlockSizeUser> {
    keyed: SimpleHmac<D>,
}

impl<D> PacketMac for Hmac<D>
where
    D: Digest + BlockSizeUser + FixedOutputReset + Clone + Send,
{
    fn compute(&mut self, sequence: u32, data: &[u8], out: &mut [u8]) {
        // The keyed state (inner and outer pads absorbed) is reused; a clone per packet costs
        // two hash states and no key schedule.
        let mut mac = self.keyed.clone();
        mac.update(&sequence.to_be_bytes());
        mac.update(data);
        let tag = mac.finalize().into_bytes();
        out.copy_from_slice(&tag[..out.len()]);
    }
}

fn hmac<D>(key: &[u8]) -> Result<Box<dyn PacketMac>, Error>
where
    D: Digest + BlockSizeUser + FixedOutputReset + Clone + Send + 'static,
{
    let keyed = <SimpleHmac<D> as Mac>::new_from_slice(key).map_err(|_| Error::KeyLength)?;
    Ok(Box::new(Hmac { keyed }))
}

struct UmacMac(Umac);

impl PacketMac for UmacMac {
    fn compute(&mut self, sequence: u32, data: &[u8], out: &mut [u8]) {
        let nonce = u64::from(sequence).to_be_bytes();
        self.0.tag(data, &nonce, out);
    }
}

/// The keyed MAC for `name`, or `None` when the core does not implement it.
pub(crate) fn new(name: &str, key: &[u8]) -> Option<Result<Box<dyn PacketMac>, Error>> {
    let base = name
        .strip_suffix("-etm@openssh.com")
        .or_else(|| name.strip_suffix("@openssh.com"))
        .unwrap_or(name);
    Some(match base {
        "hmac-sha2-256" | "hmac-sha2-256-96" => hmac::<sha2::Sha256>(key),
        "hmac-sha2-512" | "hmac-sha2-512-96" => hmac::<sha2::Sha512>(key),
        "hmac-sha1" | "hmac-sha1-96" => hmac::<sha1::Sha1>(key),
        "hmac-md5" | "hmac-md5-96" => hmac::<md5::Md5>(key),
        "hmac-ripemd160" | "hmac-ripemd160-96" => hmac::<ripemd::Ripemd160>(key),
        "umac-64" | "umac-128" => {
            let tag_len = if base == "umac-64" { 8 } else { 16 };
            match Umac::new(key, tag_len) {
                Some(umac) => Ok(Box::new(UmacMac(umac)) as Box<dyn PacketMac>),
                None => Err(Error::KeyLength),
            }
        }
        _ => return None,
    })
}
