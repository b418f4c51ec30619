//! Frame header encoding (RFC 6455 §5.2), always in the minimal length form.

use super::FrameHeader;

/// The longest possible header: 2 bytes, an 8-byte length and a 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Writes `header` into `buf` and returns how many bytes it took.
///
/// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
#[must_use]
pub fn encode_header(buf: &mut [u8; MAX_HEADER_LEN], header: &FrameHeader) -> usize {
    buf[0] = (u8::from(header.fin) << 7) | (header.rsv & 0x70) | header.opcode.as_u8();
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    let len = header.payload_len;
    let mut at = if len < 126 {
        buf[1] = mask_bit | len as u8;
        2
    } else if len <= 0xFFFF {
        buf[1] = mask_bit | 126;
        buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        buf[1] = mask_bit | 127;
        buf[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(key) = header.mask {
        buf[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    at
}
