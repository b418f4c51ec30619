//! The seam where a negotiated extension (e.g. permessage-deflate, RFC 7692, on RSV1) plugs
//! into a [`Connection`](crate::Connection).
//!
//! RFC 6455 §5.2: RSV bits "MUST be 0 unless an extension is negotiated that defines meanings
//! for non-zero values". A connection with an extension accepts frames carrying the bits the
//! extension claims and routes those messages through it: payloads are transformed after
//! reassembly on receipt (then UTF-8 checked, for text) and before framing on send.

use crate::error::ProtocolError;
use bytes::BytesMut;

/// A negotiated per-message extension.
pub trait Extension: Send {
    /// The RSV bits (a subset of `frame::RSV1 | RSV2 | RSV3`) this extension may set on the
    /// first frame of a message.
    fn reserved_bits(&self) -> u8;

    /// Turns a received message payload, whose first frame carried `rsv`, back into the
    /// application's bytes. `max_size` is `Config::max_message_size`: an output larger than
    /// it must fail with [`ProtocolError::MessageTooLarge`] before it is produced in full
    /// (decompression bombs).
    ///
    /// # Errors
    /// Any [`ProtocolError`]; the connection fails with its close code.
    fn decode(
        &mut self,
        rsv: u8,
        payload: BytesMut,
        max_size: u64,
    ) -> Result<BytesMut, ProtocolError>;

    /// Transforms an outgoing message payload; returns the RSV bits for the first frame
    /// (zero to send `payload` untouched) and the bytes to frame.
    fn encode(&mut self, payload: &[u8]) -> (u8, BytesMut);
}
