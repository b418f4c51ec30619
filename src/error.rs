//! Errors, split by whose fault they are.
//!
//! * [`ProtocolError`]: the peer broke RFC 6455. Each variant maps to exactly one close code,
//!   in [`ProtocolError::close_code`], the only place where errors become wire codes.
//! * [`UsageError`]: the caller misused the API. Nothing was queued.
//! * [`HandshakeError`]: the opening handshake failed; knows its HTTP status.
//! * `Error` (in the adapters) wraps these and `std::io::Error`.

use crate::close::CloseCode;

/// The peer violated the protocol, or the connection ended abnormally.
///
/// When a `Connection` reports one of these, it has already queued a Close frame carrying
/// [`close_code`](Self::close_code) and stopped processing input. Three have the code 1006,
/// which never appears on the wire: [`UnexpectedEof`](Self::UnexpectedEof), where there is no
/// one left to send a Close to, [`CloseTimeout`](Self::CloseTimeout), where our Close had
/// already gone out, and [`HandshakeTimeout`](Self::HandshakeTimeout), where the peer never
/// read the 101 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame had RSV bits set that no negotiated extension claims.
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// A frame used one of the reserved opcodes 0x3-0x7 or 0xB-0xF.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A client sent an unmasked frame.
    #[error("frame from client is not masked")]
    UnmaskedFrame,
    /// A server sent a masked frame.
    #[error("frame from server is masked")]
    MaskedFrame,
    /// A control frame declared more than 125 bytes of payload.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlFrameTooLong(u64),
    /// A control frame had FIN clear.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A 64-bit payload length had its most significant bit set.
    #[error("64-bit payload length has its most significant bit set")]
    LengthOverflow,
    /// A payload length was not encoded in the minimal number of bytes.
    #[error("payload length {0} not encoded in the minimal form")]
    NonMinimalLength(u64),
    /// A continuation frame arrived with no fragmented message in progress.
    #[error("continuation frame with no message to continue")]
    UnexpectedContinuation,
    /// A text or binary frame arrived while a fragmented message was unfinished.
    #[error("new data frame while a fragmented message is unfinished")]
    ExpectedContinuation,
    /// A frame declared a payload larger than `Config::max_frame_size`.
    #[error("frame of {size} bytes exceeds limit of {limit}")]
    FrameTooLarge {
        /// Declared payload length.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A message grew past `Config::max_message_size`.
    #[error("message of {size} bytes exceeds limit of {limit}")]
    MessageTooLarge {
        /// Message size including the frame that crossed the limit.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A text message (or a close reason) was not valid UTF-8.
    #[error("invalid utf-8 in text message")]
    InvalidUtf8,
    /// A Close frame carried a 1-byte payload.
    #[error("close frame with a 1-byte payload")]
    CloseFrameTooShort,
    /// A Close frame carried a status code that may not appear on the wire.
    #[error("close code {0} may not appear on the wire")]
    InvalidCloseCode(u16),
    /// A Close frame's reason was not valid UTF-8.
    #[error("close reason is not valid utf-8")]
    InvalidCloseReason,
    /// A negotiated extension rejected a message.
    #[error("extension failed: {0}")]
    Extension(&'static str),
    /// The keepalive Ping got no Pong within the deadline.
    #[error("no pong within the keepalive deadline")]
    KeepaliveTimeout,
    /// The transport reached end-of-file before the closing handshake.
    #[error("connection closed without a close frame")]
    UnexpectedEof,
    /// We sent a Close and the peer did not answer it within `Config::close_timeout`: the
    /// closing handshake never completed.
    #[error("no close frame from the peer within the close timeout")]
    CloseTimeout,
    /// The peer did not read our handshake response (the server's 101) within
    /// `Config::handshake_timeout`.
    #[error("the peer did not read the handshake response within the handshake timeout")]
    HandshakeTimeout,
}

impl ProtocolError {
    /// The close code this error is reported with (RFC 6455 §7.4.1).
    ///
    /// This `match` is the one place in the crate where errors become wire codes.
    #[must_use]
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::ReservedBits(_)
            | Self::ReservedOpcode(_)
            | Self::UnmaskedFrame
            | Self::MaskedFrame
            | Self::ControlFrameTooLong(_)
            | Self::FragmentedControlFrame
            | Self::LengthOverflow
            | Self::NonMinimalLength(_)
            | Self::UnexpectedContinuation
            | Self::ExpectedContinuation
            | Self::CloseFrameTooShort
            | Self::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::Extension(_) => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::KeepaliveTimeout => CloseCode::INTERNAL_ERROR,
            Self::UnexpectedEof | Self::CloseTimeout | Self::HandshakeTimeout => {
                CloseCode::ABNORMAL
            }
        }
    }
}

/// The caller misused the API; nothing was queued or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// We already sent a Close frame, or the connection ended: no more frames may be sent.
    #[error("connection is closing or closed; nothing more can be sent")]
    Closed,
    /// The connection failed with this error (sticky): nothing more may be sent. Its Close
    /// frame, with the error's code, is already queued.
    #[error("connection failed: {0}")]
    Failed(ProtocolError),
    /// A Ping, Pong or Close payload longer than 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlPayloadTooLong(usize),
    /// A close reason longer than 123 bytes.
    #[error("close reason of {0} bytes exceeds 123")]
    CloseReasonTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, below 1000, above 4999, ...).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A whole message was sent while a fragmented one is unfinished (RFC 6455 §5.4).
    #[error("a fragmented message is in progress")]
    FragmentInProgress,
    /// Text fragments that do not form valid UTF-8.
    #[error("text fragment is not valid utf-8")]
    InvalidUtf8,
    /// A prepared message made for another role (client frames must be masked per send).
    #[error("prepared message can only be sent by a server")]
    PreparedForServerOnly,
    /// A URI the client handshake cannot use.
    #[error("invalid uri: {0}")]
    InvalidUri(&'static str),
    /// A header name or value with bytes that may not appear there (CR, LF, NUL, ...).
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),
    /// The server chose a subprotocol the client did not offer.
    #[error("subprotocol was not offered by the client")]
    ProtocolNotOffered,
    /// A status a handshake rejection cannot use (only 300-599 end the exchange).
    #[error("status {0} cannot reject a handshake")]
    InvalidStatus(u16),
    /// The handshake has not reached the state this call needs.
    #[error("handshake is not at the right stage for this call")]
    HandshakeState,
    /// A message over `Config::streaming_threshold` arrived in chunks, which a call that
    /// returns whole messages (`recv`, the `Stream` impl) cannot hand over: read with
    /// `recv_event` when streaming is on.
    #[error("a message arrived in chunks (streaming_threshold): read it with recv_event")]
    StreamedMessage,
    /// A proxy URL or setting the client cannot use (see [`crate::proxy`]).
    #[error("invalid proxy: {0}")]
    InvalidProxy(&'static str),
    /// A request the client handshake cannot send as given (an `http::Request` with another
    /// method than GET, or a header the handshake writes itself with another value).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

/// The opening handshake failed (RFC 6455 §4).
///
/// On the server side every variant knows the HTTP status the rejection carries, so a
/// `ServerHandshake` queues the response mechanically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response was not valid HTTP/1.1 or broke §4.1/§4.2.1 (400).
    #[error("bad handshake: {0}")]
    BadRequest(&'static str),
    /// The request method was not GET (405, with `Allow: GET`).
    #[error("method not allowed: websocket handshakes use GET")]
    MethodNotAllowed,
    /// `Sec-WebSocket-Version` was missing or not 13 (426, with `Sec-WebSocket-Version: 13`).
    #[error("unsupported websocket version; only 13 is supported")]
    UnsupportedVersion,
    /// The HTTP head exceeded `Config::max_handshake_size` (431).
    #[error("handshake head exceeds limit of {0} bytes")]
    HeadTooLarge(usize),
    /// The HTTP head had more than `Config::max_headers` headers (431).
    #[error("handshake has more than {0} headers")]
    TooManyHeaders(usize),
    /// The request's `Origin` is not allowed by `Config::origin_policy` (403): a browser page
    /// of another site tried to open the WebSocket (RFC 6455 §10.2).
    #[error("origin not allowed by the server's origin policy")]
    OriginNotAllowed,
    /// The application rejected the request with this status.
    #[error("rejected with status {0}")]
    Rejected(u16),
    /// The peer did not complete the handshake within `Config::handshake_timeout`.
    #[error("handshake timed out")]
    Timeout,
    /// The transport reached end-of-file during the handshake.
    #[error("connection closed during the handshake")]
    UnexpectedEof,
    /// The server answered with a status other than 101; see the handshake's `response()`
    /// (the adapters report it as `Error::Rejected`, with the response).
    #[error("server answered with status {0} instead of 101")]
    UnexpectedStatus(u16),
    /// The server's response broke RFC 6455 §4.1 (bad accept key, unoffered protocol, ...).
    #[error("invalid handshake response: {0}")]
    InvalidResponse(&'static str),
    /// The proxy in front of the server did not open the tunnel (see [`crate::proxy`]).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// A proxy did not open the tunnel to the server (see [`crate::proxy`]).
///
/// Reported as [`HandshakeError::Proxy`]. A proxy that cannot be reached at all is an I/O
/// error of the adapter instead, its message naming the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// An HTTP proxy answered CONNECT with a status other than 2xx (and other than 407).
    #[error("proxy refused the tunnel with status {0}")]
    Refused(u16),
    /// The proxy wants credentials and none were given: HTTP 407, or a SOCKS5 proxy that
    /// accepts none of the offered methods (RFC 1928 §3, X'FF') when none was a password.
    #[error("proxy authentication required")]
    AuthRequired,
    /// The proxy rejected the credentials: HTTP 407 (or 401) to a request that carried them,
    /// or a SOCKS5 username/password status other than success (RFC 1929 §2).
    #[error("proxy authentication failed: credentials rejected")]
    AuthFailed,
    /// A SOCKS5 proxy that was offered a username/password accepts none of the offered
    /// methods (RFC 1928 §3, X'FF').
    #[error("socks5 proxy accepts none of the offered authentication methods")]
    NoAcceptableMethod,
    /// A SOCKS5 proxy answered the CONNECT request with this failure code (RFC 1928 §6).
    #[error(
        "socks5 proxy could not connect: {text} (reply {code})",
        code = .0,
        text = socks5_reply_text(*.0)
    )]
    Socks5Reply(u8),
    /// The proxy's answer broke its protocol (not HTTP or not SOCKS5, a method or address
    /// type that was not asked for, a bare LF, ...).
    #[error("invalid proxy answer: {0}")]
    InvalidResponse(&'static str),
    /// The HTTP proxy's answer head exceeded `Config::max_handshake_size`.
    #[error("proxy answer head exceeds limit of {0} bytes")]
    HeadTooLarge(usize),
    /// The HTTP proxy's answer head had more than `Config::max_headers` headers.
    #[error("proxy answer has more than {0} headers")]
    TooManyHeaders(usize),
    /// The proxy closed the connection before the tunnel was ready.
    #[error("proxy closed the connection before the tunnel was ready")]
    UnexpectedEof,
    /// The proxy did not open the tunnel within `Config::handshake_timeout`.
    #[error("proxy did not open the tunnel within the handshake timeout")]
    Timeout,
}

/// RFC 1928 §6: the meaning of a REP field.
const fn socks5_reply_text(code: u8) -> &'static str {
    match code {
        0x00 => "succeeded",
        0x01 => "general socks server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "ttl expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned failure code",
    }
}

impl HandshakeError {
    /// The HTTP status a server answers this failure with.
    ///
    /// Client-side variants (which a server never produces) map to 400.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::OriginNotAllowed => 403,
            Self::UnsupportedVersion => 426,
            Self::HeadTooLarge(_) | Self::TooManyHeaders(_) => 431,
            Self::Rejected(status) => *status,
            Self::Timeout => 408,
            _ => 400,
        }
    }
}

/// Everything an adapter call can fail with.
#[cfg(feature = "std")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; the Close frame with its code was sent (or attempted).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The caller misused the API; nothing was sent.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The opening handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The server answered our handshake with a status other than 101 (a client's
    /// [`HandshakeError::UnexpectedStatus`]): its status, headers (`WWW-Authenticate`,
    /// `Location`, `Retry-After`, ...) and the start of its body, at most
    /// [`MAX_REJECTION_BODY`](crate::handshake::MAX_REJECTION_BODY) (4 KiB), see
    /// [`Response::body`](crate::handshake::Response::body). Boxed: the response (120 bytes
    /// and its allocations) is rare, and `Error` stays within its 32 bytes.
    ///
    /// (A server that rejects a request itself reports
    /// [`HandshakeError::Rejected`] instead.)
    #[error("server rejected the handshake with status {}", .0.status())]
    Rejected(Box<crate::handshake::Response>),
    /// The transport failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        // Downstream crates return these in hot paths; keep them a few words at most.
        assert!(core::mem::size_of::<ProtocolError>() <= 24);
        assert!(core::mem::size_of::<UsageError>() <= 24);
        assert!(core::mem::size_of::<HandshakeError>() <= 24);
        assert!(core::mem::size_of::<ProxyError>() <= 24);
        #[cfg(feature = "std")]
        assert!(core::mem::size_of::<Error>() <= 32);
    }

    #[test]
    fn close_codes_per_error_class() {
        assert_eq!(ProtocolError::ReservedOpcode(3).close_code().as_u16(), 1002);
        assert_eq!(ProtocolError::InvalidUtf8.close_code().as_u16(), 1007);
        let big = ProtocolError::MessageTooLarge { size: 2, limit: 1 };
        assert_eq!(big.close_code().as_u16(), 1009);
        assert_eq!(ProtocolError::UnexpectedEof.close_code().as_u16(), 1006);
    }

    #[test]
    fn handshake_statuses() {
        assert_eq!(HandshakeError::UnsupportedVersion.http_status(), 426);
        assert_eq!(HandshakeError::MethodNotAllowed.http_status(), 405);
        assert_eq!(HandshakeError::TooManyHeaders(64).http_status(), 431);
        assert_eq!(HandshakeError::BadRequest("x").http_status(), 400);
        assert_eq!(HandshakeError::OriginNotAllowed.http_status(), 403);
    }
}
