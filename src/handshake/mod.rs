//! The opening handshake (RFC 6455 §4).
//!
//! [`ClientHandshake`] and [`ServerHandshake`] are sans-IO like [`Connection`]: bytes in,
//! bytes out, time as an argument. Each hands over to a [`Connection`] together with any bytes
//! that arrived after the HTTP head, so a frame sent in the same read as the handshake is not
//! lost.
//!
//! Decisions, where the RFCs leave room:
//!
//! * Only CRLF ends a line of the HTTP head; a bare LF or CR fails the handshake at once
//!   (400 on the server). Leading empty lines before the start line are skipped
//!   (RFC 7230 §3.5).
//! * The head is scanned once, byte by byte, and parsed once when complete: linear time
//!   however the input is split, and memory bounded by `Config::max_handshake_size`.
//! * A server accepts absolute-form request-targets (`GET http://host/path`) whose authority
//!   matches `Host`; [`Request::path`] is then the path and query.
//! * A request announcing a body (`Transfer-Encoding`, or `Content-Length` other than 0) is
//!   refused with 400, and a 101 announcing one fails the client: the bytes after the head
//!   are frames.
//! * A server handshake that times out while reading the request queues `408 Request Timeout`;
//!   its timer stops once the request is complete (the decision is the application's).
//!   Before the first `handle_timeout` call, `poll_timeout` returns `Some(Duration::ZERO)`
//!   so that the adapter tells the time at once and the clock starts.
//! * Headers the handshake writes itself cannot be set by the caller:
//!   [`CLIENT_OWNED_HEADERS`], [`ACCEPT_OWNED_HEADERS`], [`REJECT_OWNED_HEADERS`].
//! * A client that gets a status other than 101 reads the body that follows, at most
//!   [`MAX_REJECTION_BODY`] (4 KiB) of it, framed per RFC 9112 §6.3 (`Content-Length`,
//!   chunked, or until the server closes), within the handshake timeout; then the handshake
//!   fails with the status and [`Response::body`] holds what was read.
//!
//! [`Connection`]: crate::Connection

mod body;
mod client;
pub(crate) mod http;
mod into_request;
mod origin;
pub(crate) mod request;
mod server;
#[cfg(feature = "http")]
pub(crate) use server::check_accept;
pub(crate) mod uri;

pub use body::MAX_REJECTION_BODY;
pub use client::{CLIENT_OWNED_HEADERS, ClientHandshake, ClientRequest, Response};
pub use into_request::IntoClientRequest;
pub use origin::OriginPolicy;
pub use request::Request;
pub use server::{
    ACCEPT_OWNED_HEADERS, Accept, REJECT_OWNED_HEADERS, Refusal, Reject, ServerHandshake,
};

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §1.3, §4.2.2):
/// base64 of the SHA-1 of the key followed by the GUID.
///
/// ```
/// assert_eq!(rfc6455::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[must_use]
pub fn accept_key(key: &[u8]) -> alloc::string::String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}
