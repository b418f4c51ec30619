//! The frame layer (RFC 6455 §5.2): opcodes, headers, decoding, encoding and masking.
//!
//! A supported, stable codec for protocol crates that need frames rather than messages (a
//! proxy that inspects traffic, a test peer that sends malformed frames on purpose, a
//! framing layer for another transport). Everything here is stateless and role-agnostic:
//! the role rules (masking direction, limits, fragmentation, extensions' RSV bits, UTF-8)
//! are [`Connection`](crate::Connection)'s, so an application should use that instead.
//!
//! ```
//! use rfc6455::frame::{FrameHeader, MAX_HEADER_LEN, Opcode, apply_mask, decode_header, encode_header};
//!
//! // A client's masked "Hello" (RFC 6455 §5.7), built and read back.
//! let key = [0x37, 0xfa, 0x21, 0x3d];
//! let header = FrameHeader { fin: true, rsv: 0, opcode: Opcode::Text, mask: Some(key), payload_len: 5 };
//! let mut wire = [0u8; MAX_HEADER_LEN];
//! let n = encode_header(&mut wire, &header);
//! let mut frame = wire[..n].to_vec();
//! let mut payload = *b"Hello";
//! apply_mask(&mut payload, key, 0);
//! frame.extend_from_slice(&payload);
//! assert_eq!(frame, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//!
//! // Decoding needs only the header's bytes; `Ok(None)` asks for more.
//! assert_eq!(decode_header(&frame[..3]), Ok(None));
//! let (read, len) = decode_header(&frame).unwrap().unwrap();
//! assert_eq!((read, len), (header, 6));
//! let mut body = frame[len..].to_vec();
//! apply_mask(&mut body, key, 0);
//! assert_eq!(body, b"Hello");
//! ```

mod decode;
mod encode;

pub use crate::raw::apply_mask;
pub(crate) use crate::raw::{extend_masked, extend_vec_masked, masked_vec, unmask_fresh};
pub use decode::decode_header;
pub use encode::{MAX_HEADER_LEN, encode_header};

/// A frame opcode (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: Close.
    Close,
    /// 0x9: Ping.
    Ping,
    /// 0xA: Pong.
    Pong,
}

impl Opcode {
    /// Decodes the low nibble of a frame's first byte.
    ///
    /// # Errors
    /// Returns the raw value for the reserved opcodes 0x3-0x7 and 0xB-0xF.
    pub const fn from_u8(value: u8) -> Result<Self, u8> {
        match value {
            0x0 => Ok(Self::Continuation),
            0x1 => Ok(Self::Text),
            0x2 => Ok(Self::Binary),
            0x8 => Ok(Self::Close),
            0x9 => Ok(Self::Ping),
            0xA => Ok(Self::Pong),
            other => Err(other),
        }
    }

    /// The 4-bit wire value.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (Close, Ping, Pong; RFC 6455 §5.5).
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// RSV1, as it sits in a frame's first byte; permessage-deflate (RFC 7692) uses it.
pub const RSV1: u8 = 0x40;
/// RSV2, as it sits in a frame's first byte.
pub const RSV2: u8 = 0x20;
/// RSV3, as it sits in a frame's first byte.
pub const RSV3: u8 = 0x10;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// The RSV bits, in their wire positions (a subset of `RSV1 | RSV2 | RSV3`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub payload_len: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: Opcode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn roundtrip_every_length_form() {
        for len in [0, 1, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = header(Opcode::Binary, len, mask);
                let mut buf = [0; MAX_HEADER_LEN];
                let n = encode_header(&mut buf, &h);
                assert_eq!(decode_header(&buf[..n]), Ok(Some((h, n))));
                for short in 0..n {
                    assert_eq!(
                        decode_header(&buf[..short]),
                        Ok(None),
                        "prefix {short} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn opcodes_roundtrip_and_reserved_fail() {
        for v in 0..16u8 {
            match Opcode::from_u8(v) {
                Ok(op) => assert_eq!(op.as_u8(), v),
                Err(raw) => assert!(matches!(raw, 3..=7 | 11..=15)),
            }
        }
    }
}
