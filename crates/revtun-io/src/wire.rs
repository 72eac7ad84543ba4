//! The few wire numbers and fields the data plane reads itself (RFC 4253 §12, RFC 4254 §9).
//! Every other message is passed up whole, and the TypeScript core decodes it.

pub const MSG_DISCONNECT: u8 = 1;
pub const MSG_KEXINIT: u8 = 20;
pub const MSG_NEWKEYS: u8 = 21;
pub const MSG_CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const MSG_CHANNEL_DATA: u8 = 94;
pub const MSG_CHANNEL_EXTENDED_DATA: u8 = 95;
pub const MSG_CHANNEL_EOF: u8 = 96;
pub const MSG_CHANNEL_CLOSE: u8 = 97;
pub const MSG_CHANNEL_REQUEST: u8 = 98;
pub const MSG_CHANNEL_SUCCESS: u8 = 99;
pub const MSG_CHANNEL_FAILURE: u8 = 100;

/// Messages that may be sent between our KEXINIT and our NEWKEYS (RFC 4253 §7.1): the key
/// exchange's own (20-49) and DISCONNECT. The same rule as `isKexMessage` in
/// `ts/protocol/client.ts`.
pub fn is_kex_message(id: u8) -> bool {
    (20..=49).contains(&id) || id == MSG_DISCONNECT
}

/// Channel messages whose first field is the recipient channel (RFC 4254 §5).
pub fn is_channel_message(id: u8) -> bool {
    (MSG_CHANNEL_WINDOW_ADJUST..=MSG_CHANNEL_FAILURE).contains(&id)
}

pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

pub fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
