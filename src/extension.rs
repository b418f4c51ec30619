//! The seam where a negotiated extension (permessage-deflate, RFC 7692, on RSV1) plugs into a
//! [`Connection`](crate::Connection).
//!
//! RFC 6455 §5.2: RSV bits "MUST be 0 unless an extension is negotiated that defines meanings
//! for non-zero values". A connection with an extension accepts frames carrying the bits the
//! extension claims on a message's first frame, and routes that message's payload through
//! [`Extension::decode`] *piece by piece, as it arrives* (never buffering the encoded message
//! whole); what the extension produces goes through the same size budget and UTF-8 check as
//! any other payload. On the send side, [`Extension::encode`] transforms a whole message
//! before it is framed.

use crate::error::ProtocolError;
use alloc::vec::Vec;

/// A negotiated per-message extension.
///
/// ```
/// use rfc6455::{Extension, ProtocolError};
/// use rfc6455::frame::RSV1;
///
/// /// A toy transform on RSV1: every payload byte travels XORed with 0x20.
/// struct Flip;
///
/// impl Extension for Flip {
///     fn reserved_bits(&self) -> u8 {
///         RSV1
///     }
///     fn decode(
///         &mut self,
///         _rsv: u8,
///         input: &[u8],
///         _end: bool,
///         out: &mut Vec<u8>,
///         limit: usize,
///     ) -> Result<(), ProtocolError> {
///         if out.len() + input.len() > limit {
///             let size = (out.len() + input.len()) as u64;
///             return Err(ProtocolError::MessageTooLarge { size, limit: limit as u64 });
///         }
///         out.extend(input.iter().map(|b| b ^ 0x20));
///         Ok(())
///     }
///     fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> u8 {
///         out.extend(payload.iter().map(|b| b ^ 0x20));
///         RSV1
///     }
/// }
/// # let _ = Flip;
/// ```
pub trait Extension: Send {
    /// The RSV bits (a subset of `frame::RSV1 | RSV2 | RSV3`) this extension may set on the
    /// first frame of a message.
    fn reserved_bits(&self) -> u8;

    /// Decodes the next piece of a received message whose first frame carried `rsv`,
    /// appending the application's bytes to `out`. `end` is true for the last call of the
    /// message (its final frame is complete; `input` may be empty then).
    ///
    /// `out.len()` must never exceed `limit` (what is left of `Config::max_message_size`, or
    /// of the frame budget): an extension that would produce more fails with
    /// [`ProtocolError::MessageTooLarge`] *before* producing it (decompression bombs), and
    /// reserves memory only as it produces output.
    ///
    /// # Errors
    /// Any [`ProtocolError`]; the connection fails with its close code.
    fn decode(
        &mut self,
        rsv: u8,
        input: &[u8],
        end: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError>;

    /// Transforms a whole outgoing message, appending the bytes to frame to `out`; returns
    /// the RSV bits for the first frame (zero, with `out` left empty, to send `payload`
    /// untouched, e.g. a message too small to be worth compressing).
    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> u8;

    /// How long after the last message it handled the extension would like
    /// [`release`](Self::release) to be called, if it holds state it can rebuild (a
    /// compressor kept between messages for speed). The connection checks after each
    /// message the extension handles, and calls `release` once it has been idle that long.
    /// Default `None`: nothing to release.
    fn release_after(&self) -> Option<core::time::Duration> {
        None
    }

    /// Frees state the extension can rebuild (see [`release_after`](Self::release_after)):
    /// an idle connection should cost as little memory as possible.
    fn release(&mut self) {}
}
