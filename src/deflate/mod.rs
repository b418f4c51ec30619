//! permessage-deflate (RFC 7692): negotiation and the per-message codec.
//!
//! * Negotiation, both roles, as pure functions over header values: [`accept_offer`] (server),
//!   [`client_offer`] and [`check_response`] (client). They agree on a [`DeflateParams`].
//! * The codec: an [`Inflater`] for the receive path, fed frame by frame under a size limit
//!   (decompression bombs stop at the limit), and a [`Deflater`] for the send path.
//!
//! ```
//! use rfc6455::deflate::{accept_offer, check_response, client_offer, DeflateConfig};
//! use rfc6455::deflate::{Deflater, Inflater};
//! use rfc6455::Role;
//!
//! let config = DeflateConfig::default();
//! let offer = client_offer(&config).unwrap();
//! assert_eq!(offer, "permessage-deflate; client_max_window_bits");
//! let (server_params, response) = accept_offer(&config, [&offer]).unwrap();
//! let client_params = check_response(&config, [&response])?.unwrap();
//!
//! // The client compresses a message; the server inflates it frame by frame.
//! let mut deflater = Deflater::new(&client_params, Role::Client, &config);
//! let mut inflater = Inflater::new(&server_params, Role::Server, &config);
//! let text = br#"{"nick":"ada","text":"hello, hello, hello"}"#;
//! let mut payload = Vec::new();
//! deflater.compress(text, &mut payload);
//! let mut message = Vec::new();
//! for frame in payload.chunks(5) {
//!     inflater.inflate(frame, &mut message, 1 << 20).unwrap();
//! }
//! inflater.finish_message(&mut message, 1 << 20).unwrap();
//! assert_eq!(message, text);
//! # Ok::<(), &'static str>(())
//! ```

mod codec;
mod extension;
mod header;
mod negotiate;

pub use codec::{Deflater, InflateError, Inflater};
pub use extension::PerMessageDeflate;
pub use negotiate::{
    DEFAULT_SERVER_WINDOW_BITS, DeflateConfig, DeflateParams, EXTENSION_NAME, MAX_WINDOW_BITS,
    MIN_WINDOW_BITS, MemoryPolicy, accept_offer, check_response, client_offer,
};
