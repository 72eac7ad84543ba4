//! The packet ciphers and MACs the core implements, with the sizes the key exchange needs to
//! derive their keys (RFC 4253 §7.2) and the framing needs to pad packets (§6).

/// Sizes of one packet cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherInfo {
    pub name: &'static str,
    pub key_len: usize,
    pub iv_len: usize,
    /// Padding alignment; for stream ciphers the SSH minimum of 8.
    pub block_size: usize,
    /// AEAD ciphers carry their own tag, and the negotiated MAC is not used.
    pub aead: bool,
}

/// Sizes of one packet MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacInfo {
    pub name: &'static str,
    pub key_len: usize,
    pub tag_len: usize,
    /// Encrypt-then-MAC: the length field stays in clear and the MAC covers the ciphertext.
    pub etm: bool,
}

const fn cipher(
    name: &'static str,
    key_len: usize,
    iv_len: usize,
    block_size: usize,
    aead: bool,
) -> CipherInfo {
    CipherInfo {
        name,
        key_len,
        iv_len,
        block_size,
        aead,
    }
}

const fn mac(name: &'static str, key_len: usize, tag_len: usize, etm: bool) -> MacInfo {
    MacInfo {
        name,
        key_len,
        tag_len,
        etm,
    }
}

pub const CIPHERS: &[CipherInfo] = &[
    cipher("aes128-gcm@openssh.com", 16, 12, 16, true),
    cipher("aes256-gcm@openssh.com", 32, 12, 16, true),
    // Two 256-bit keys: the first for the payload, the second for the length field.
    cipher("chacha20-poly1305@openssh.com", 64, 0, 8, true),
    cipher("aes128-ctr", 16, 16, 16, false),
    cipher("aes192-ctr", 24, 16, 16, false),
    cipher("aes256-ctr", 32, 16, 16, false),
    cipher("aes128-cbc", 16, 16, 16, false),
    cipher("aes192-cbc", 24, 16, 16, false),
    cipher("aes256-cbc", 32, 16, 16, false),
    cipher("rijndael-cbc@lysator.liu.se", 32, 16, 16, false),
    cipher("3des-ctr", 24, 8, 8, false),
    cipher("3des-cbc", 24, 8, 8, false),
    cipher("blowfish-cbc", 16, 8, 8, false),
    cipher("cast128-cbc", 16, 8, 8, false),
    // RC4 has no IV; RFC 4345's variants discard the first 1536 bytes of keystream.
    cipher("arcfour", 16, 0, 8, false),
    cipher("arcfour128", 16, 0, 8, false),
    cipher("arcfour256", 32, 0, 8, false),
];

pub const MACS: &[MacInfo] = &[
    mac("hmac-sha2-256", 32, 32, false),
    mac("hmac-sha2-512", 64, 64, false),
    mac("hmac-sha1", 20, 20, false),
    mac("hmac-md5", 16, 16, false),
    mac("hmac-ripemd160", 20, 20, false),
    mac("hmac-ripemd160@openssh.com", 20, 20, false),
    mac("hmac-sha1-96", 20, 12, false),
    mac("hmac-md5-96", 16, 12, false),
    mac("hmac-sha2-256-96", 32, 12, false),
    mac("hmac-sha2-512-96", 64, 12, false),
    mac("hmac-ripemd160-96", 20, 12, false),
    mac("umac-64@openssh.com", 16, 8, false),
    mac("umac-128@openssh.com", 16, 16, false),
    mac("hmac-sha2-256-etm@openssh.com", 32, 32, true),
    mac("hmac-sha2-512-etm@openssh.com", 64, 64, true),
    mac("hmac-sha1-etm@openssh.com", 20, 20, true),
    mac("hmac-md5-etm@openssh.com", 16, 16, true),
    mac("hmac-ripemd160-etm@openssh.com", 20, 20, true),
    mac("hmac-sha1-96-etm@openssh.com", 20, 12, true),
    mac("hmac-md5-96-etm@openssh.com", 16, 12, true),
    mac("hmac-sha2-256-96-etm@openssh.com", 32, 12, true),
    mac("hmac-sha2-512-96-etm@openssh.com", 64, 12, true),
    mac("umac-64-etm@openssh.com", 16, 8, true),
    mac("umac-128-etm@openssh.com", 16, 16, true),
];

pub fn cipher_info(name: &str) -> Option<&'static CipherInfo> {
    CIPHERS.iter().find(|c| c.name == name)
}

pub fn mac_info(name: &str) -> Option<&'static MacInfo> {
    MACS.iter().find(|m| m.name == name)
}
