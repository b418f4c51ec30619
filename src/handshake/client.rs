//! The client's side of the opening handshake (RFC 6455 §4.1).

use super::accept_key;
use super::body::BodyReader;
use super::http::{self, Head, HeadScanner, ScanError};
use super::uri;
use crate::config::Config;
use crate::connection::Connection;
use crate::connection::timers::{Timer, TimerTable};
use crate::entropy::Entropy;
use crate::error::{HandshakeError, UsageError};
use crate::proxy::Proxy;
use crate::pump::Inbox;
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use base64::Engine as _;
use core::fmt;
use core::ops::Range;
use core::time::Duration;

/// Headers the client handshake writes itself; [`ClientRequest::header`] may not set them.
///
/// `Host` comes from the URI (put the name the server expects in the URI and connect the
/// socket wherever you like); the `Sec-WebSocket-*` headers are generated or come from
/// [`ClientRequest::protocol`] / [`ClientRequest::extension`]; a GET handshake has no body,
/// so the framing headers are refused too.
pub const CLIENT_OWNED_HEADERS: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// What the client asks for: a `ws://` / `wss://` URI plus subprotocols, extensions and
/// extra headers. A builder; nothing is validated beyond the URI until
/// [`ClientHandshake::new`].
///
/// ```
/// use rfc6455::handshake::ClientRequest;
/// let request = ClientRequest::new("wss://[::1]/chat?room=1")?
///     .protocol("chat.v2")
///     .header("Origin", "https://example.com");
/// assert_eq!((request.host(), request.port(), request.is_tls()), ("::1", 443, true));
/// assert_eq!(request.path(), "/chat?room=1");
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    host: String,
    host_header: String,
    port: u16,
    tls: bool,
    path: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
    proxy: Option<Proxy>,
    proxy_from_env: bool,
}

impl ClientRequest {
    /// Parses a WebSocket URI (RFC 6455 §3): `ws://` or `wss://` (scheme case-insensitive), a
    /// host (registered name, IPv4, or bracketed IPv6), an optional port (default 80 for
    /// `ws`, 443 for `wss`), then path and query (default `/`).
    ///
    /// # Errors
    /// [`UsageError::InvalidUri`] for another scheme, a fragment (`#`), userinfo (`user@`), an
    /// empty host, a bad or zero port, whitespace, control or non-ASCII bytes (percent-encode
    /// them), or a character RFC 3986 does not allow in a path or query.
    pub fn new(uri: &str) -> Result<Self, UsageError> {
        let parsed = uri::parse_ws_uri(uri).map_err(UsageError::InvalidUri)?;
        let default_port = if parsed.tls { 443 } else { 80 };
        let port = parsed.authority.port.unwrap_or(default_port);
        // RFC 6455 §4.1: the Host value "contains /host/ plus optionally ":" followed by
        // /port/ (when not using the default port)".
        let mut host_header = parsed.authority.host_text.to_owned();
        if port != default_port {
            host_header.push(':');
            host_header.push_str(&port.to_string());
        }
        Ok(Self {
            host: parsed.authority.host.to_owned(),
            host_header,
            port,
            tls: parsed.tls,
            path: parsed.resource,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            proxy: None,
            proxy_from_env: false,
        })
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`), after those already offered: the
    /// order is the order of preference (RFC 6455 §4.1).
    #[must_use]
    pub fn protocol(mut self, name: &str) -> Self {
        self.protocols.push(name.to_owned());
        self
    }

    /// Offers an extension (`Sec-WebSocket-Extensions`), sent verbatim, e.g.
    /// `"permessage-deflate; client_max_window_bits"`. It must follow the `extension-list`
    /// grammar of RFC 6455 §9.1; the server may only answer with extensions named here.
    #[must_use]
    pub fn extension(mut self, offer: &str) -> Self {
        self.extensions.push(offer.to_owned());
        self
    }

    /// Adds a header (`Origin`, `Authorization`, `Cookie`, ...). The headers in
    /// [`CLIENT_OWNED_HEADERS`] are refused by [`ClientHandshake::new`].
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Connects through `proxy` (HTTP CONNECT or SOCKS5; see [`crate::proxy`]). For `wss://`
    /// the TLS session runs inside the tunnel, with the server.
    ///
    /// The adapters' connect functions (`sync::connect_with`, `tokio::connect_with` and the
    /// `connect_tls` variants) honour it; [`ClientHandshake`], which starts once a stream to
    /// the server exists, ignores it (run a [`proxy::Tunnel`](crate::proxy::Tunnel) first).
    /// An explicit proxy is used for every host: `NO_PROXY` applies only to
    /// [`proxy_from_env`](Self::proxy_from_env).
    #[must_use]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Whether the adapters' connect functions take the proxy from the environment
    /// (`wss_proxy` / `https_proxy` / `all_proxy` for `wss://`, `ws_proxy` / `http_proxy` /
    /// `all_proxy` for `ws://`, minus `NO_PROXY`; see [`Proxy::from_env_with`]) when no
    /// [`proxy`](Self::proxy) is set. Default `false`: the environment is only read when
    /// asked. A malformed variable fails the connect with [`UsageError::InvalidProxy`].
    #[must_use]
    pub const fn proxy_from_env(mut self, enabled: bool) -> Self {
        self.proxy_from_env = enabled;
        self
    }

    /// The explicit proxy, and whether the environment's is wanted.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn proxy_setting(&self) -> (Option<&Proxy>, bool) {
        (self.proxy.as_ref(), self.proxy_from_env)
    }

    /// The host to connect to, without the brackets of an IPv6 literal (`::1`), as the
    /// address to pass to a socket and the name to verify a TLS certificate against.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port: the URI's, or 80 for `ws` and 443 for `wss` (RFC 6455 §3).
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URI is `wss` ("secure", RFC 6455 §3): the adapter must run TLS first.
    #[must_use]
    pub const fn is_tls(&self) -> bool {
        self.tls
    }

    /// The resource name sent in the request line: path and query, `/` if the path is empty.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The offered subprotocols, in order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.protocols.iter().map(String::as_str)
    }

    /// The `Host` value the request is sent with: the host as written in the URI, plus
    /// `:port` when it is not the scheme's default (RFC 6455 §4.1).
    #[must_use]
    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// The offered extensions, as given to [`extension`](Self::extension).
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.extensions.iter().map(String::as_str)
    }

    /// The extra headers, as given to [`header`](Self::header).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The server's response to the opening handshake: status, reason, headers, and for a
/// rejection the start of its body.
///
/// Available from [`ClientHandshake::response`] once the head arrived, also when the status
/// was not 101 (a 401 with `WWW-Authenticate`, a 3xx with `Location`, a 429 or 503 with
/// `Retry-After`, ...). The adapters return a rejection as `Error::Rejected`, holding this.
#[derive(Clone)]
pub struct Response {
    status: u16,
    reason: Range<usize>,
    head: Head,
    extensions: Option<String>,
    body: Vec<u8>,
    body_complete: bool,
}

impl Response {
    /// The status code.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase ("" if there was none or it was not UTF-8).
    #[must_use]
    pub fn reason(&self) -> &str {
        self.head.str(self.reason.clone())
    }

    /// The first value of header `name` (ASCII case-insensitive), if it is UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// Every header in order, names as sent, values as raw bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head.headers()
    }

    /// The subprotocol the server chose (_Subprotocol In Use_, RFC 6455 §4.1), or `None`.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.header("sec-websocket-protocol")
    }

    /// The negotiated extensions (_Extensions In Use_, RFC 6455 §4.1): the
    /// `Sec-WebSocket-Extensions` values joined with `", "` when the server split them over
    /// several headers, `None` when it sent none.
    #[must_use]
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// The body of a rejection (a status other than 101), at most
    /// [`MAX_REJECTION_BODY`](super::MAX_REJECTION_BODY) (4 KiB) of it: an error page, a JSON
    /// error. Empty for a 101, whose next bytes are WebSocket frames.
    ///
    /// It is read after the head until the body ends (`Content-Length`, the last chunk, or
    /// the server closing the connection), the cap is reached, or the handshake timeout
    /// passes, whichever comes first; [`body_complete`](Self::body_complete) says which.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether [`body`](Self::body) is the whole body: `false` when it was cut at the cap,
    /// the connection ended or failed before the announced end, the handshake timed out
    /// first, or the body's framing was invalid (an unreadable `Content-Length`, broken
    /// chunks). Always `true` for a 101.
    #[must_use]
    pub const fn body_complete(&self) -> bool {
        self.body_complete
    }
}

impl Response {
    /// A response that did not come through the byte parser: the answer to an HTTP/2
    /// extended CONNECT (RFC 8441 §5), its reason phrase empty, with the start of a
    /// rejection's body (at most `MAX_REJECTION_BODY` bytes, the caller's to bound).
    #[cfg(feature = "h2")]
    pub(crate) fn from_head(status: u16, head: Head, body: Vec<u8>, body_complete: bool) -> Self {
        let extensions = {
            let mut values = head
                .values("sec-websocket-extensions")
                .map(|v| String::from_utf8_lossy(v));
            values
                .next()
                .map(|first| values.fold(first.into_owned(), |acc, v| acc + ", " + &v))
        };
        Self {
            status,
            reason: 0..0,
            head,
            extensions,
            body,
            body_complete,
        }
    }

    /// Where the response's bytes are kept, for the checks the HTTP/2 client shares.
    #[cfg(feature = "h2")]
    pub(crate) const fn head(&self) -> &Head {
        &self.head
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("reason", &self.reason())
            .field("headers", &self.head)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("body_complete", &self.body_complete)
            .finish_non_exhaustive()
    }
}

/// The client's opening handshake, sans-IO.
///
/// Pump it like this:
///
/// 1. [`new`](Self::new) queues the request; write [`pending_transmit`](Self::pending_transmit)
///    and report it with [`advance_transmit`](Self::advance_transmit) until it is empty.
/// 2. Feed what arrives to [`receive`](Self::receive) ([`receive_eof`](Self::receive_eof) at
///    end of stream) until [`is_complete`](Self::is_complete) or an error.
/// 3. Call [`handle_timeout`](Self::handle_timeout) with the current time before the first
///    read (it starts the clock) and whenever [`poll_timeout`](Self::poll_timeout) passes.
/// 4. [`into_connection`](Self::into_connection) gives the [`Connection`], already fed with
///    any bytes that followed the response head.
///
/// ```
/// use rfc6455::handshake::{accept_key, ClientHandshake, ClientRequest};
/// use rfc6455::Config;
///
/// let entropy = Box::new(|dest: &mut [u8]| dest.fill(7));
/// let mut hs = ClientHandshake::new(ClientRequest::new("ws://example.com/chat")?,
///                                   Config::default(), entropy)?;
/// let request = hs.pending_transmit().to_vec();
/// hs.advance_transmit(request.len());
/// assert!(request.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
///
/// let key = "BwcHBwcHBwcHBwcHBwcHBw=="; // base64 of the 16 bytes of 7 drawn above
/// let response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n", accept_key(key.as_bytes()));
/// hs.receive(response.as_bytes()).unwrap();
/// assert!(hs.is_complete());
/// let (_connection, response) = hs.into_connection()?;
/// assert_eq!(response.status(), 101);
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
pub struct ClientHandshake {
    config: Config,
    entropy: Box<dyn Entropy>,
    expected_accept: String,
    protocols: Vec<String>,
    extension_names: Vec<String>,
    /// Whether we offered permessage-deflate, and what the server agreed to.
    #[cfg(feature = "deflate")]
    deflate_offered: bool,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::deflate::DeflateParams>,
    tx: Vec<u8>,
    sent: usize,
    scanner: HeadScanner,
    head: Vec<u8>,
    leftover: Vec<u8>,
    /// Where the adapters' reads land (see `Pump`).
    pub(crate) inbox: Inbox,
    response: Option<Response>,
    /// After a non-101 head: its body, until read (the handshake ends then).
    body: Option<BodyReader>,
    complete: bool,
    error: Option<HandshakeError>,
    timers: TimerTable,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("complete", &self.complete)
            .field("error", &self.error)
            .field("response", &self.response)
            .field("pending_transmit", &(self.tx.len() - self.sent))
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Checks every caller-supplied value, then draws a fresh key and queues the request.
    ///
    /// Nothing is queued (and no entropy drawn) unless every check passes:
    /// subprotocols must be distinct tokens (RFC 6455 §4.1: "non-empty strings with characters
    /// in the range U+0021 to U+007E not including separator characters ... and MUST all be
    /// unique strings"); extension offers must follow the `extension-list` grammar (§9.1);
    /// header names must be tokens, values free of control characters other than HTAB, and
    /// none of [`CLIENT_OWNED_HEADERS`].
    ///
    /// # Errors
    /// [`UsageError::InvalidHeader`] naming the first problem.
    pub fn new(
        request: ClientRequest,
        config: Config,
        mut entropy: Box<dyn Entropy>,
    ) -> Result<Self, UsageError> {
        for (i, p) in request.protocols.iter().enumerate() {
            if !http::is_token(p.as_bytes()) {
                return Err(UsageError::InvalidHeader("subprotocol is not a token"));
            }
            if request.protocols[..i].contains(p) {
                return Err(UsageError::InvalidHeader("subprotocol offered twice"));
            }
        }
        let mut extension_names = Vec::new();
        for offer in &request.extensions {
            http::parse_extension_list(offer.as_bytes(), |name, _| {
                extension_names.push(String::from_utf8_lossy(name).into_owned());
            })
            .map_err(|_| {
                UsageError::InvalidHeader("extension offer is not a valid extension-list")
            })?;
        }
        for (name, value) in &request.headers {
            http::check_header(name, value)?;
            if http::is_owned(name, CLIENT_OWNED_HEADERS) {
                return Err(UsageError::InvalidHeader(
                    "header is set by the handshake itself",
                ));
            }
        }

        // RFC 6455 §4.1: "The value of this header field MUST be a nonce consisting of a
        // randomly selected 16-byte value that has been base64-encoded ... The nonce MUST be
        // selected randomly for each connection."
        let mut nonce = [0u8; 16];
        entropy.fill(&mut nonce);
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);

        let mut tx = Vec::with_capacity(256);
        // RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST be
        // at least 1.1."
        tx.extend_from_slice(b"GET ");
        tx.extend_from_slice(request.path.as_bytes());
        tx.extend_from_slice(b" HTTP/1.1\r\n");
        http::write_header(&mut tx, "Host", &request.host_header);
        http::write_header(&mut tx, "Upgrade", "websocket");
        http::write_header(&mut tx, "Connection", "Upgrade");
        http::write_header(&mut tx, "Sec-WebSocket-Key", &key);
        http::write_header(&mut tx, "Sec-WebSocket-Version", "13");
        if !request.protocols.is_empty() {
            http::write_header(
                &mut tx,
                "Sec-WebSocket-Protocol",
                &request.protocols.join(", "),
            );
        }
        // RFC 7692 §5: offer permessage-deflate as browsers do, unless the request offers
        // extensions of its own.
        #[cfg(feature = "deflate")]
        let deflate_offer = if request.extensions.is_empty() {
            crate::deflate::client_offer(&config.deflate)
        } else {
            None
        };
        #[cfg(feature = "deflate")]
        if let Some(offer) = &deflate_offer {
            http::write_header(&mut tx, "Sec-WebSocket-Extensions", offer);
            extension_names.push(crate::deflate::EXTENSION_NAME.into());
        }
        if !request.extensions.is_empty() {
            http::write_header(
                &mut tx,
                "Sec-WebSocket-Extensions",
                &request.extensions.join(", "),
            );
        }
        for (name, value) in &request.headers {
            http::write_header(&mut tx, name, value);
        }
        tx.extend_from_slice(b"\r\n");

        Ok(Self {
            scanner: HeadScanner::new(config.max_handshake_size, config.max_headers),
            entropy,
            expected_accept: accept_key(key.as_bytes()),
            protocols: request.protocols,
            extension_names,
            #[cfg(feature = "deflate")]
            deflate_offered: deflate_offer.is_some(),
            #[cfg(feature = "deflate")]
            deflate: None,
            tx,
            sent: 0,
            head: Vec::new(),
            leftover: Vec::new(),
            inbox: Inbox::new(),
            response: None,
            body: None,
            complete: false,
            error: None,
            timers: TimerTable::with(Timer::Handshake, config.handshake_timeout),
            config,
        })
    }

    /// Bytes waiting to be written to the transport.
    #[must_use]
    pub fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.sent..]
    }

    /// Reports that the first `n` bytes of [`pending_transmit`](Self::pending_transmit) were
    /// written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.tx.len());
    }

    /// Feeds bytes received from the server.
    ///
    /// Bytes are buffered until the response head (up to the blank line) is complete; only
    /// then is it parsed and validated, once. Partial input changes nothing observable, so the
    /// outcome never depends on how the input was split. Bytes after the head are kept for
    /// the [`Connection`]. The head is capped at `Config::max_handshake_size` bytes and
    /// `Config::max_headers` headers; bytes past the cap are never buffered.
    ///
    /// After a head with a status other than 101 the handshake goes on reading its body
    /// (see [`Response::body`]), at most
    /// [`MAX_REJECTION_BODY`](super::MAX_REJECTION_BODY) bytes of it, and fails with the
    /// status once the body is read.
    ///
    /// # Errors
    /// The sticky [`HandshakeError`]: [`UnexpectedStatus`](HandshakeError::UnexpectedStatus)
    /// for a status other than 101, once its body is read ([`response`](Self::response) has
    /// the details), [`InvalidResponse`](HandshakeError::InvalidResponse) for a 101 that
    /// breaks RFC 6455 §4.1, [`HeadTooLarge`](HandshakeError::HeadTooLarge) /
    /// [`TooManyHeaders`](HandshakeError::TooManyHeaders), or an earlier
    /// [`Timeout`](HandshakeError::Timeout).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), HandshakeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(body) = self.body.as_mut() {
            body.receive(data);
            return self.end_rejection();
        }
        if self.response.is_some() {
            self.leftover.extend_from_slice(data);
            return Ok(());
        }
        match self.scanner.scan(data) {
            Ok(None) => {
                self.head.extend_from_slice(data);
                Ok(())
            }
            Ok(Some(n)) => {
                self.head.extend_from_slice(&data[..n]);
                self.leftover.extend_from_slice(&data[n..]);
                let result = self.parse_response();
                result.map_err(|e| self.fail(e))
            }
            Err(e) => Err(self.fail(match e {
                ScanError::TooLarge => HandshakeError::HeadTooLarge(self.config.max_handshake_size),
                ScanError::TooManyHeaders => {
                    HandshakeError::TooManyHeaders(self.config.max_headers)
                }
                ScanError::Malformed(why) => HandshakeError::InvalidResponse(why),
            })),
        }
    }

    /// Reports that the transport reached end-of-file.
    ///
    /// # Errors
    /// [`HandshakeError::UnexpectedEof`] unless the handshake was already complete;
    /// [`HandshakeError::UnexpectedStatus`] while a rejection's body was being read (the
    /// end of the stream ends it); or the earlier sticky error.
    pub fn receive_eof(&mut self) -> Result<(), HandshakeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.complete {
            return Ok(());
        }
        if let Some(body) = self.body.as_mut() {
            body.stop(true);
            return self.end_rejection();
        }
        Err(self.fail(HandshakeError::UnexpectedEof))
    }

    /// Reports that the transport failed with an I/O error; `true` if that settles nothing
    /// new: a rejection's body was being read, and the failure ends it (the handshake then
    /// fails with [`HandshakeError::UnexpectedStatus`], its body marked incomplete), so the
    /// server's answer is reported rather than the I/O error.
    pub fn transport_failed(&mut self) -> bool {
        let Some(body) = self.body.as_mut() else {
            return false;
        };
        body.stop(false);
        let _ = self.end_rejection();
        true
    }

    /// Whether a valid 101 response was received.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.complete
    }

    /// The server's response, once its head was parsed (whatever its status).
    #[must_use]
    pub const fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// Takes the server's response out (for the adapters' rejection error).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn take_response(&mut self) -> Option<Response> {
        self.response.take()
    }

    /// The sticky error, if the handshake failed.
    #[must_use]
    pub const fn error(&self) -> Option<HandshakeError> {
        self.error
    }

    /// Whether the adapter should shut down the write half: never for a client, which
    /// closes the transport only after the connection's closing handshake.
    #[must_use]
    pub const fn wants_shutdown(&self) -> bool {
        false
    }

    /// Whether the adapter is done with the transport: the handshake failed (the client
    /// has nothing to write then). After a non-101 head that is once its body is read.
    #[must_use]
    pub const fn is_terminated(&self) -> bool {
        self.error.is_some()
    }

    /// Hands over to a client [`Connection`] with the same `Config` and the entropy source,
    /// already fed with the bytes that followed the response head (a frame that came in the
    /// same read as the 101 is not lost), together with the [`Response`].
    ///
    /// # Errors
    /// [`UsageError::HandshakeState`] unless [`is_complete`](Self::is_complete).
    pub fn into_connection(self) -> Result<(Connection, Response), UsageError> {
        let (true, Some(response)) = (self.complete, self.response) else {
            return Err(UsageError::HandshakeState);
        };
        let mut connection = Connection::client(self.config, self.entropy);
        #[cfg(feature = "deflate")]
        if let Some(params) = self.deflate {
            // Installed before the bytes that followed the response are fed to it.
            let deflate = connection.config().deflate.clone();
            connection = connection.with_deflate(&params, &deflate);
        }
        if !self.leftover.is_empty() {
            // A protocol error in these bytes is sticky inside the connection and reported by
            // its next call, with its Close frame already queued.
            let _ = connection.receive(&self.leftover);
        }
        Ok((connection, response))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the handshake
    /// deadline, or `Some(Duration::ZERO)` before the first call (which starts the clock),
    /// or `None` once the handshake is complete or failed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.complete || self.error.is_some() {
            return None;
        }
        self.timers.next()
    }

    /// Tells the handshake the time. The first call starts the clock: the deadline is that
    /// `now` plus `Config::handshake_timeout`. A call at or past the deadline fails the
    /// handshake with [`HandshakeError::Timeout`], reported by the next `receive` /
    /// `receive_eof` and by [`error`](Self::error); if a rejection's body was being read,
    /// it ends that instead (with [`HandshakeError::UnexpectedStatus`], the body marked
    /// incomplete): the status is the answer, the body only its explanation.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.timers.advance(now);
        if self.complete || self.error.is_some() {
            return;
        }
        if self.timers.take_expired() == Some(Timer::Handshake) {
            if let Some(body) = self.body.as_mut() {
                body.stop(false);
                let _ = self.end_rejection();
            } else {
                self.fail(HandshakeError::Timeout);
            }
        }
    }

    /// Ends a rejection once its body is read as far as it will be: the body joins the
    /// response and the handshake fails with the status. `Ok` while the body is still
    /// arriving.
    fn end_rejection(&mut self) -> Result<(), HandshakeError> {
        let Some(complete) = self.body.as_ref().and_then(BodyReader::finished) else {
            return Ok(());
        };
        let body = self
            .body
            .take()
            .map(BodyReader::into_body)
            .unwrap_or_default();
        let Some(response) = self.response.as_mut() else {
            return Err(self.fail(HandshakeError::InvalidResponse("missing")));
        };
        response.body = body;
        response.body_complete = complete;
        let status = response.status;
        Err(self.fail(HandshakeError::UnexpectedStatus(status)))
    }

    fn fail(&mut self, error: HandshakeError) -> HandshakeError {
        self.error = Some(error);
        // Neither the partial head nor any leftover is needed any more.
        if self.response.is_none() {
            self.head = Vec::new();
        }
        self.leftover = Vec::new();
        error
    }

    /// Parses the complete head in `self.head` and checks it against RFC 6455 §4.1.
    fn parse_response(&mut self) -> Result<(), HandshakeError> {
        let head = core::mem::take(&mut self.head);
        let mut slots = vec![httparse::EMPTY_HEADER; self.scanner.header_lines()];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                return Err(HandshakeError::InvalidResponse(
                    "malformed status line or header",
                ));
            }
        }
        let status = parsed.code.unwrap_or(0);
        let version = parsed.version;
        let reason = http::range_in(&head, parsed.reason.unwrap_or("").as_bytes());
        let positions = Head::positions(&head, parsed.headers);
        let head = Head::new(head, positions);
        let rejection_body = (status != 101).then(|| BodyReader::new(status, &head));
        let extensions = {
            let mut values = head
                .values("sec-websocket-extensions")
                .map(|v| String::from_utf8_lossy(v));
            values
                .next()
                .map(|first| values.fold(first.into_owned(), |acc, v| acc + ", " + &v))
        };
        self.response = Some(Response {
            status,
            reason,
            head,
            extensions,
            body: Vec::new(),
            body_complete: true,
        });
        if let Some(mut body) = rejection_body {
            // RFC 6455 §4.1: "If the status code received from the server is not 101, the
            // client handles the response per HTTP [RFC2616] procedures." What to do is the
            // application's call; it gets the status, the headers and the body (bounded, see
            // `Response::body`), read here before the handshake fails with the status.
            body.receive(&core::mem::take(&mut self.leftover));
            self.body = Some(body);
            return self.end_rejection();
        }
        let response = self
            .response
            .as_ref()
            .ok_or(HandshakeError::InvalidResponse("missing"))?;
        let head = &response.head;

        if version != Some(1) {
            return Err(HandshakeError::InvalidResponse("response is not http/1.1"));
        }
        // RFC 7230 §3.3.1, §3.3.2: a server "MUST NOT send a Transfer-Encoding header field"
        // nor "a Content-Length header field in any response with a status code of 1xx";
        // what follows a 101 head is frames. (`Content-Length: 0` is tolerated: it changes
        // nothing.)
        if head.announces_body() {
            return Err(HandshakeError::InvalidResponse(
                "101 response announces a body",
            ));
        }
        // RFC 6455 §4.1: "If the response lacks an |Upgrade| header field or the |Upgrade|
        // header field contains a value that is not an ASCII case-insensitive match for the
        // value "websocket", the client MUST _Fail the WebSocket Connection_."
        let mut upgrades = head
            .values("upgrade")
            .flat_map(http::list_elements)
            .peekable();
        if upgrades.peek().is_none() {
            return Err(HandshakeError::InvalidResponse("missing upgrade header"));
        }
        if !upgrades.all(|u| u.eq_ignore_ascii_case(b"websocket")) {
            return Err(HandshakeError::InvalidResponse(
                "upgrade header is not websocket",
            ));
        }
        // RFC 6455 §4.1: "If the response lacks a |Connection| header field or the
        // |Connection| header field doesn't contain a token that is an ASCII case-insensitive
        // match for the value "Upgrade", the client MUST _Fail the WebSocket Connection_."
        if !head.list_contains("connection", "upgrade") {
            return Err(HandshakeError::InvalidResponse(
                "connection header lacks the upgrade token",
            ));
        }
        // RFC 6455 §4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or the
        // |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
        // concatenation of the |Sec-WebSocket-Key| ... with the string
        // "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing
        // whitespace, the client MUST _Fail the WebSocket Connection_."
        let accept = match head.single("sec-websocket-accept") {
            Ok(range) => http::trim_ows(&head.bytes()[range]),
            Err(0) => {
                return Err(HandshakeError::InvalidResponse(
                    "missing sec-websocket-accept",
                ));
            }
            Err(_) => {
                return Err(HandshakeError::InvalidResponse(
                    "more than one sec-websocket-accept",
                ));
            }
        };
        if accept != self.expected_accept.as_bytes() {
            return Err(HandshakeError::InvalidResponse(
                "sec-websocket-accept does not match the key",
            ));
        }
        // RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Extensions| header field
        // and this header field indicates the use of an extension that was not present in the
        // client's handshake ..., the client MUST _Fail the WebSocket Connection_."
        for value in head.values("sec-websocket-extensions") {
            let mut unoffered = false;
            http::parse_extension_list(value, |name, _| {
                unoffered |= !self.extension_names.iter().any(|n| n.as_bytes() == name);
            })
            .map_err(|_| HandshakeError::InvalidResponse("malformed sec-websocket-extensions"))?;
            if unoffered {
                return Err(HandshakeError::InvalidResponse(
                    "server chose an extension that was not offered",
                ));
            }
        }
        // RFC 7692 §5: "A client MUST _Fail the WebSocket Connection_ if the peer server
        // accepted an extension negotiation offer for this extension with an extension
        // negotiation response" it cannot accept (a parameter its offer did not allow, a
        // duplicate, a value out of range).
        #[cfg(feature = "deflate")]
        if self.deflate_offered {
            self.deflate = crate::deflate::check_response(
                &self.config.deflate,
                head.values("sec-websocket-extensions"),
            )
            .map_err(HandshakeError::InvalidResponse)?;
        }
        // RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Protocol| header field
        // and this header field indicates the use of a subprotocol that was not present in the
        // client's handshake ..., the client MUST _Fail the WebSocket Connection_." §4.3:
        // `Sec-WebSocket-Protocol-Server = token`, a single value.
        match head.single("sec-websocket-protocol") {
            Err(0) => {}
            Err(_) => {
                return Err(HandshakeError::InvalidResponse(
                    "more than one sec-websocket-protocol",
                ));
            }
            Ok(range) => {
                let chosen = &head.bytes()[range];
                if !http::is_token(chosen) {
                    return Err(HandshakeError::InvalidResponse(
                        "sec-websocket-protocol is not a single token",
                    ));
                }
                if !self.protocols.iter().any(|p| p.as_bytes() == chosen) {
                    return Err(HandshakeError::InvalidResponse(
                        "server chose a subprotocol that was not offered",
                    ));
                }
            }
        }
        self.complete = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Box<dyn Entropy> {
        Box::new(|d: &mut [u8]| d.fill(1))
    }

    fn handshake(uri: &str) -> ClientHandshake {
        ClientHandshake::new(ClientRequest::new(uri).unwrap(), Config::default(), fixed()).unwrap()
    }

    fn ok_response(hs: &ClientHandshake, extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            hs.expected_accept
        )
    }

    #[test]
    fn request_bytes() {
        let hs = handshake("ws://example.com:8080/chat?x=1");
        let text = core::str::from_utf8(hs.pending_transmit()).unwrap();
        // RFC 7692: offered by default, as browsers do (without the `deflate` feature, no
        // offer).
        let offer = if cfg!(feature = "deflate") {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        };
        assert_eq!(
            text,
            format!(
                "GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: AQEBAQEBAQEBAQEBAQEBAQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n{offer}\r\n"
            )
        );
    }

    #[test]
    fn head_is_buffered_only_up_to_the_cap() {
        let mut hs = ClientHandshake::new(
            ClientRequest::new("ws://a/").unwrap(),
            Config::default().max_handshake_size(1024),
            fixed(),
        )
        .unwrap();
        let chunk = [b'a'; 100];
        hs.receive(b"HTTP/1.1 200 OK\r\nX: ").unwrap();
        let mut result = Ok(());
        for _ in 0..100 {
            result = hs.receive(&chunk);
            assert!(hs.head.len() <= 1024);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HandshakeError::HeadTooLarge(1024)));
        assert!(hs.head.capacity() <= 2048);
    }

    #[test]
    fn rfc6455_4_1_accept_with_surrounding_whitespace() {
        let mut hs = handshake("ws://a/");
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: \t {} \t\r\n\r\n",
            hs.expected_accept
        );
        hs.receive(response.as_bytes()).unwrap();
        assert!(hs.is_complete());
    }

    #[test]
    fn rfc6455_4_1_upgrade_must_only_be_websocket() {
        let mut hs = handshake("ws://a/");
        let response = ok_response(&hs, "Upgrade: h2c\r\n");
        assert_eq!(
            hs.receive(response.as_bytes()),
            Err(HandshakeError::InvalidResponse(
                "upgrade header is not websocket"
            ))
        );
    }

    #[test]
    fn rfc6455_4_1_http_1_0_101_is_invalid() {
        let mut hs = handshake("ws://a/");
        let response = ok_response(&hs, "").replace("HTTP/1.1", "HTTP/1.0");
        assert_eq!(
            hs.receive(response.as_bytes()),
            Err(HandshakeError::InvalidResponse("response is not http/1.1"))
        );
    }

    #[test]
    fn timeout_starts_on_first_call() {
        let mut hs = handshake("ws://a/");
        assert_eq!(hs.poll_timeout(), Some(Duration::ZERO));
        hs.handle_timeout(Duration::from_secs(5));
        assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(15)));
        hs.handle_timeout(Duration::from_secs(14));
        assert_eq!(hs.error(), None);
        hs.handle_timeout(Duration::from_secs(15));
        assert_eq!(hs.error(), Some(HandshakeError::Timeout));
        assert_eq!(hs.receive(b"HTTP/1.1"), Err(HandshakeError::Timeout));
        assert_eq!(hs.poll_timeout(), None);
    }
}
