//! permessage-deflate as the connection's [`Extension`]: the codec behind the RSV1 seam.

use super::codec::{Deflater, Inflater};
use super::negotiate::{DeflateConfig, DeflateParams};
use crate::Role;
use crate::error::ProtocolError;
use crate::extension::Extension;
use crate::frame::RSV1;
use alloc::vec::Vec;

/// The negotiated permessage-deflate of one connection: RFC 7692 §6's "Per-Message
/// Compressed" bit is RSV1, set on the first frame of each compressed message.
///
/// Built by the handshakes from the agreed [`DeflateParams`]; a connection made directly
/// (upgraded elsewhere) can install one with
/// [`Connection::with_extension`](crate::Connection::with_extension):
///
/// ```
/// use rfc6455::deflate::{DeflateConfig, PerMessageDeflate, accept_offer};
/// use rfc6455::{Config, Connection, Role};
///
/// let config = DeflateConfig::default();
/// let (params, _response) = accept_offer(&config, ["permessage-deflate"]).unwrap();
/// let conn = Connection::server(Config::default())
///     .with_extension(Box::new(PerMessageDeflate::new(&params, Role::Server, &config)));
/// # let _ = conn;
/// ```
#[derive(Debug)]
pub struct PerMessageDeflate {
    params: DeflateParams,
    inflater: Inflater,
    deflater: Deflater,
}

impl PerMessageDeflate {
    /// The codec for an endpoint of `role` with the agreed `params`.
    #[must_use]
    pub fn new(params: &DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self {
            params: *params,
            inflater: Inflater::new(params, role, config),
            deflater: Deflater::new(params, role, config),
        }
    }

    /// The parameters agreed in the handshake.
    #[must_use]
    pub const fn params(&self) -> &DeflateParams {
        &self.params
    }
}

impl Extension for PerMessageDeflate {
    fn reserved_bits(&self) -> u8 {
        RSV1
    }

    fn decode(
        &mut self,
        _rsv: u8,
        input: &[u8],
        end: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        // RFC 7692 §7.2.2: the payload is inflated as the frames arrive; the limit bounds
        // what it may produce (a decompression bomb stops at it, with 1009).
        self.inflater.inflate(input, out, limit)?;
        if end {
            self.inflater.finish_message(out, limit)?;
        }
        Ok(())
    }

    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> u8 {
        // RFC 7692 §6: "An endpoint MAY send a message that is not compressed" (RSV1 clear);
        // below the threshold that is cheaper than DEFLATE's block headers.
        if !self.deflater.should_compress(payload.len()) {
            return 0;
        }
        self.deflater.compress(payload, out);
        RSV1
    }
}
