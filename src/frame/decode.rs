//! Frame header decoding (RFC 6455 §5.2).

use super::{FrameHeader, Opcode};
use crate::error::ProtocolError;

/// Decodes a frame header from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a header (nothing is consumed, so the
/// caller retries with more bytes), or the header and its length in bytes. The checks that
/// need no context are made here: reserved opcodes, control frame rules, the 64-bit length's
/// top bit and the minimal length encoding. Role, extension and limit checks belong to the
/// connection.
///
/// # Errors
/// The [`ProtocolError`] for the first rule the header breaks.
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    let fin = b0 & 0x80 != 0;
    let rsv = b0 & 0x70;
    // RFC 6455 §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the
    // WebSocket Connection_."
    let opcode = Opcode::from_u8(b0 & 0x0F).map_err(ProtocolError::ReservedOpcode)?;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less
        // and MUST NOT be fragmented."
        if len7 > 125 {
            return Err(ProtocolError::ControlFrameTooLong(u64::from(len7)));
        }
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
    }
    let ext_len = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext_len + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(None);
    }
    let payload_len = match len7 {
        126 => {
            let len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
            // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
            // We hold the peer to it: a 16-bit form for a length under 126 is a protocol error.
            if len < 126 {
                return Err(ProtocolError::NonMinimalLength(len));
            }
            len
        }
        127 => {
            let mut raw = [0; 8];
            raw.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(raw);
            // RFC 6455 §5.2: "the most significant bit MUST be 0".
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthOverflow);
            }
            if len <= 0xFFFF {
                return Err(ProtocolError::NonMinimalLength(len));
            }
            len
        }
        short => u64::from(short),
    };
    let mask = masked.then(|| {
        let at = 2 + ext_len;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    Ok(Some((
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        },
        header_len,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_2_length_top_bit_fails_1002() {
        let buf = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_header(&buf), Err(ProtocolError::LengthOverflow));
    }

    #[test]
    fn rfc6455_5_2_non_minimal_lengths_fail() {
        assert_eq!(
            decode_header(&[0x82, 126, 0, 5]),
            Err(ProtocolError::NonMinimalLength(5))
        );
        let buf = [0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        assert_eq!(
            decode_header(&buf),
            Err(ProtocolError::NonMinimalLength(65535))
        );
    }

    #[test]
    fn rfc6455_5_5_control_frame_rules() {
        assert_eq!(
            decode_header(&[0x89, 126]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert_eq!(
            decode_header(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_fail() {
        for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assert_eq!(
                decode_header(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }
}
