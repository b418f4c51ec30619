//! The server's side of the opening handshake (RFC 6455 §4.2).

use super::accept_key;
use super::http::{self, HeadScanner, ScanError};
use super::request::{Request, offer_name, parse_request};
use crate::config::Config;
use crate::connection::Connection;
use crate::connection::timers::{Timer, TimerTable};
use crate::error::{HandshakeError, UsageError};
use crate::pump::Inbox;
use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

/// Headers the 101 response writes itself; [`Accept::header`] may not set them.
/// (`Sec-WebSocket-Extensions` may be set, but only naming extensions the client offered.)
pub const ACCEPT_OWNED_HEADERS: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Content-Length",
    "Transfer-Encoding",
];

/// Why [`ServerHandshake::respond`] did not upgrade the connection; the response it queued
/// says so to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The application rejected the request with this status.
    Rejected(u16),
    /// The application's decision could not be carried out (this misuse); `500 Internal
    /// Server Error` was queued instead.
    Invalid(UsageError),
}

/// Headers a rejection writes itself; [`Reject::header`] may not set them.
pub const REJECT_OWNED_HEADERS: &[&str] = &["Connection", "Content-Length", "Transfer-Encoding"];

/// How to accept a request: the chosen subprotocol and extra response headers.
///
/// ```
/// use rfc6455::handshake::Accept;
/// let accept = Accept::new().protocol("chat").header("Set-Cookie", "id=1");
/// # let _ = accept;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol and no extra headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses a subprotocol; it must be one the client offered.
    #[must_use]
    pub fn protocol(mut self, name: &str) -> Self {
        self.protocol = Some(name.to_owned());
        self
    }

    /// Adds a response header (not one of [`ACCEPT_OWNED_HEADERS`]).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// How to refuse a request: an HTTP status (300-599), headers and a text body.
///
/// Status 200 is allowed too, to answer a request as plain HTTP instead of upgrading it:
/// typically the page that opens the WebSocket, see [`ServerHandshake::plain_http_path`].
///
/// ```
/// use rfc6455::handshake::Reject;
/// let reject = Reject::new(403).body("origin not allowed");
/// assert_eq!(reject.status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reject {
    /// A rejection with this status, no extra headers and an empty body.
    #[must_use]
    pub const fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Adds a header (`Location` for a redirect, `WWW-Authenticate` for a 401, ...); not one
    /// of [`REJECT_OWNED_HEADERS`].
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body, sent as `text/plain; charset=utf-8` unless a `Content-Type` header is
    /// given.
    #[must_use]
    pub fn body(mut self, text: &str) -> Self {
        text.clone_into(&mut self.body);
        self
    }

    /// The status.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the request head.
    Reading,
    /// A valid request awaits `accept` or `reject`.
    Ready,
    /// Accepted, rejected or failed.
    Done,
}

/// The server's opening handshake, sans-IO.
///
/// Pump it like this:
///
/// 1. Call [`handle_timeout`](Self::handle_timeout) with the current time (it starts the
///    clock); afterwards whenever [`poll_timeout`](Self::poll_timeout) passes.
/// 2. Feed what arrives to [`receive`](Self::receive) ([`receive_eof`](Self::receive_eof) at
///    end of stream) until [`request`](Self::request) is `Some` or an error. On an error, an
///    HTTP rejection is already queued: write [`pending_transmit`](Self::pending_transmit),
///    then close.
/// 3. Decide: [`accept`](Self::accept) returns the [`Connection`], with the 101 response as
///    its first output; [`reject`](Self::reject) queues a response here to write before
///    closing.
///
/// The timeout covers reading the request only: once `request()` is `Some`, the decision is
/// the application's. When it passes first, a `408 Request Timeout` is queued.
///
/// ```
/// use rfc6455::handshake::{Accept, ServerHandshake};
/// use rfc6455::Config;
///
/// let mut hs = ServerHandshake::new(Config::default());
/// hs.receive(b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n").unwrap();
/// assert_eq!(hs.request().unwrap().path(), "/chat");
/// let connection = hs.accept(Accept::new())?;
/// assert!(connection.pending_transmit().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
pub struct ServerHandshake {
    config: Config,
    scanner: HeadScanner,
    head: Vec<u8>,
    leftover: Vec<u8>,
    /// Where the adapters' reads land (see `Pump`).
    pub(crate) inbox: Inbox,
    /// Writing the rejection took longer than `Config::close_timeout`: given up.
    linger_over: bool,
    request: Option<Request>,
    /// The path of a plain HTTP GET (no `Upgrade: websocket`), see `plain_http_path`.
    plain_path: Option<String>,
    phase: Phase,
    error: Option<HandshakeError>,
    tx: Vec<u8>,
    sent: usize,
    timers: TimerTable,
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("phase", &self.phase)
            .field("error", &self.error)
            .field("request", &self.request)
            .field("pending_transmit", &(self.tx.len() - self.sent))
            .finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// A handshake waiting for the client's request.
    #[must_use]
    pub const fn new(config: Config) -> Self {
        let config_timeout = config.handshake_timeout;
        Self {
            scanner: HeadScanner::new(config.max_handshake_size, config.max_headers),
            config,
            head: Vec::new(),
            leftover: Vec::new(),
            inbox: Inbox::new(),
            linger_over: false,
            request: None,
            plain_path: None,
            phase: Phase::Reading,
            error: None,
            tx: Vec::new(),
            sent: 0,
            timers: TimerTable::with(Timer::Handshake, config_timeout),
        }
    }

    /// Feeds bytes received from the client.
    ///
    /// Each byte is scanned once for the end of the head (linear time however the input is
    /// split); the head is parsed and validated once, when its blank line arrives, so the
    /// outcome never depends on the split. The head is capped at `Config::max_handshake_size`
    /// bytes and `Config::max_headers` headers (431); bytes past the cap are never buffered.
    /// Only CRLF ends a line: a bare LF or CR fails with 400.
    ///
    /// Bytes after the head are kept and handed to the [`Connection`] by
    /// [`accept`](Self::accept); stop reading once [`request`](Self::request) is `Some`, as
    /// they are not capped (RFC 6455 §4.1 has the client wait for the response anyway).
    /// Bytes fed after `accept` are ignored: feed them to the connection.
    ///
    /// # Errors
    /// The sticky [`HandshakeError`]; its HTTP rejection (status from
    /// [`HandshakeError::http_status`], with `Connection: close` and a short text body) is
    /// already queued in [`pending_transmit`](Self::pending_transmit).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), HandshakeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.phase {
            Phase::Done => return Ok(()),
            Phase::Ready => {
                self.leftover.extend_from_slice(data);
                return Ok(());
            }
            Phase::Reading => {}
        }
        match self.scanner.scan(data) {
            Ok(None) => {
                self.head.extend_from_slice(data);
                Ok(())
            }
            Ok(Some(n)) => {
                self.head.extend_from_slice(&data[..n]);
                let head = core::mem::take(&mut self.head);
                // `parse_request` consumes the head; keep the request-target in case the
                // request turns out to be plain HTTP (see `plain_http_path`).
                let target = request_target(&head).map(ToOwned::to_owned);
                match parse_request(
                    head,
                    self.scanner.header_lines(),
                    &self.config.origin_policy,
                ) {
                    Ok(request) => {
                        self.leftover.extend_from_slice(&data[n..]);
                        self.request = Some(request);
                        self.phase = Phase::Ready;
                        Ok(())
                    }
                    Err(e) => {
                        // `parse_request` checks the method, HTTP version, Host, target and
                        // body before Upgrade, so this error means: a well-formed HTTP/1.1 GET
                        // that is not a WebSocket upgrade.
                        if e == HandshakeError::BadRequest(NOT_AN_UPGRADE) {
                            self.plain_path = target.as_deref().map(origin_form);
                        }
                        Err(self.fail(e))
                    }
                }
            }
            Err(e) => Err(self.fail(match e {
                ScanError::TooLarge => HandshakeError::HeadTooLarge(self.config.max_handshake_size),
                ScanError::TooManyHeaders => {
                    HandshakeError::TooManyHeaders(self.config.max_headers)
                }
                ScanError::Malformed(why) => HandshakeError::BadRequest(why),
            })),
        }
    }

    /// Reports that the transport reached end-of-file.
    ///
    /// # Errors
    /// [`HandshakeError::UnexpectedEof`] if the request head was unfinished (nothing is
    /// queued: the client is gone); or the earlier sticky error.
    pub fn receive_eof(&mut self) -> Result<(), HandshakeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.phase == Phase::Reading {
            self.error = Some(HandshakeError::UnexpectedEof);
            self.phase = Phase::Done;
            self.head = Vec::new();
            self.timers.stop(Timer::Handshake);
            return Err(HandshakeError::UnexpectedEof);
        }
        Ok(())
    }

    /// The request, once its head is complete and valid.
    #[must_use]
    pub const fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// The path and query of a plain HTTP GET request: one that failed the handshake only
    /// because it asks for no WebSocket upgrade (no `Upgrade: websocket`), while being
    /// well-formed HTTP/1.1 with a valid `Host` and no body. `None` for every other outcome.
    ///
    /// [`receive`](Self::receive) has failed with a 400 for such a request, like any other
    /// invalid one, so adapters that do not look here answer 400 as before. A server that
    /// also serves pages on its port (the HTML that opens the WebSocket, a health check) can
    /// instead answer it with [`reject`](Self::reject), which replaces the queued 400 as long
    /// as none of it was written: `Reject::new(200)` with a body, or 404.
    ///
    /// ```
    /// use rfc6455::handshake::{Reject, ServerHandshake};
    /// use rfc6455::Config;
    ///
    /// let mut hs = ServerHandshake::new(Config::default());
    /// assert!(hs.receive(b"GET /?room=1 HTTP/1.1\r\nHost: example.com\r\n\r\n").is_err());
    /// assert_eq!(hs.plain_http_path(), Some("/?room=1"));
    /// hs.reject(Reject::new(200).header("Content-Type", "text/html").body("<h1>hi</h1>"))?;
    /// assert!(hs.pending_transmit().starts_with(b"HTTP/1.1 200 OK\r\n"));
    /// # Ok::<(), rfc6455::UsageError>(())
    /// ```
    #[must_use]
    pub fn plain_http_path(&self) -> Option<&str> {
        self.plain_path.as_deref()
    }

    /// The sticky error, if the handshake failed or was rejected
    /// ([`HandshakeError::Rejected`]).
    #[must_use]
    pub const fn error(&self) -> Option<HandshakeError> {
        self.error
    }

    /// Accepts the request: returns a server [`Connection`] (same `Config`) whose first output
    /// is the 101 response (RFC 6455 §4.2.2), already fed with the bytes that followed the
    /// request head. The handshake is spent afterwards.
    ///
    /// # Errors
    /// Nothing is queued and the handshake can still be rejected on
    /// [`UsageError::ProtocolNotOffered`] (the subprotocol was not offered),
    /// [`UsageError::InvalidHeader`] (a bad or owned header, or `Sec-WebSocket-Extensions`
    /// naming an extension the client did not offer);
    /// [`UsageError::HandshakeState`] if there is no valid request or it was already answered.
    pub fn accept(&mut self, accept: Accept) -> Result<Connection, UsageError> {
        let request = match (&self.request, self.phase) {
            (Some(request), Phase::Ready) if self.error.is_none() => request,
            _ => return Err(UsageError::HandshakeState),
        };
        check_accept(request, &accept)?;

        let mut out = Vec::with_capacity(160);
        // RFC 6455 §4.2.2: "A Status-Line with a 101 response code", "An |Upgrade| header
        // field with value "websocket"", "A |Connection| header field with value "Upgrade"",
        // "A |Sec-WebSocket-Accept| header field".
        http::write_status_line(&mut out, 101);
        http::write_header(&mut out, "Upgrade", "websocket");
        http::write_header(&mut out, "Connection", "Upgrade");
        http::write_header(
            &mut out,
            "Sec-WebSocket-Accept",
            &accept_key(request.key().as_bytes()),
        );
        if let Some(chosen) = &accept.protocol {
            http::write_header(&mut out, "Sec-WebSocket-Protocol", chosen);
        }
        for (name, value) in &accept.headers {
            http::write_header(&mut out, name, value);
        }
        // RFC 7692 §5: the server answers the first permessage-deflate offer it can accept
        // (an offer it cannot is declined, and the handshake goes on without it), unless the
        // application answers extensions itself.
        #[cfg(feature = "deflate")]
        let deflate = if accept
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
        {
            None
        } else {
            crate::deflate::accept_offer(&self.config.deflate, request.extensions())
        };
        #[cfg(feature = "deflate")]
        if let Some((_, response)) = &deflate {
            http::write_header(&mut out, "Sec-WebSocket-Extensions", response);
        }
        out.extend_from_slice(b"\r\n");

        let mut connection = Connection::server(self.config.clone());
        #[cfg(feature = "deflate")]
        if let Some((params, _)) = deflate {
            // Installed before the bytes that followed the request are fed to it.
            connection = connection.with_deflate(&params, &self.config.deflate);
        }
        // The 101 must be written by the end of the handshake timeout too.
        connection.queue_handshake_response(&out, self.timers.deadline(Timer::Handshake));
        if !self.leftover.is_empty() {
            // A protocol error in these bytes is sticky inside the connection and reported by
            // its next call, with its Close frame queued after the 101.
            let _ = connection.receive(&self.leftover);
        }
        self.leftover = Vec::new();
        self.phase = Phase::Done;
        Ok(connection)
    }

    /// Refuses the request with an HTTP response (e.g. 403 for an unwelcome `Origin`, RFC
    /// 6455 §4.2.2), queued in [`pending_transmit`](Self::pending_transmit); write it, then
    /// close. Allowed before the request is complete too (e.g. 503 when overloaded), and
    /// after a plain HTTP request failed the handshake (see
    /// [`plain_http_path`](Self::plain_http_path)), replacing its unwritten 400. Status 200
    /// answers as plain HTTP instead of upgrading. The handshake then reports
    /// [`HandshakeError::Rejected`].
    ///
    /// # Errors
    /// Nothing is queued on [`UsageError::InvalidStatus`] (neither 200 nor 300-599),
    /// [`UsageError::InvalidHeader`] (a bad or owned header), or
    /// [`UsageError::HandshakeState`] (already accepted, rejected or failed, except as above).
    pub fn reject(&mut self, reject: Reject) -> Result<(), UsageError> {
        let replaces_plain_400 = self.plain_path.is_some()
            && self.sent == 0
            && matches!(self.error, Some(HandshakeError::BadRequest(_)));
        if (self.phase == Phase::Done || self.error.is_some()) && !replaces_plain_400 {
            return Err(UsageError::HandshakeState);
        }
        if reject.status != 200 && !(300..=599).contains(&reject.status) {
            return Err(UsageError::InvalidStatus(reject.status));
        }
        for (name, value) in &reject.headers {
            http::check_header(name, value)?;
            if http::is_owned(name, REJECT_OWNED_HEADERS) {
                return Err(UsageError::InvalidHeader(
                    "header is set by the handshake itself",
                ));
            }
        }
        let mut out = Vec::new();
        write_rejection(&mut out, reject.status, &[], &reject.headers, &reject.body);
        self.tx = out;
        self.sent = 0;
        self.error = Some(HandshakeError::Rejected(reject.status));
        self.phase = Phase::Done;
        self.head = Vec::new();
        self.leftover = Vec::new();
        self.linger();
        Ok(())
    }

    /// Answers the request with the application's decision, as the adapters do: `Ok` accepts
    /// (see [`accept`](Self::accept)), `Err` rejects (see [`reject`](Self::reject)).
    ///
    /// A decision the handshake cannot carry out as given (a subprotocol the client did not
    /// offer, a header it may not set, a status a rejection cannot use) is the server's own
    /// fault, not the client's: the handshake answers `500 Internal Server Error` instead and
    /// reports [`Refusal::Invalid`] with the reason.
    ///
    /// # Errors
    /// [`Refusal::Rejected`] when the decision was a rejection, [`Refusal::Invalid`] as
    /// above; either way the response to write is queued in
    /// [`pending_transmit`](Self::pending_transmit). [`Refusal::Invalid`] with
    /// [`UsageError::HandshakeState`] and nothing queued when there is no request to answer.
    pub fn respond(&mut self, decision: Result<Accept, Reject>) -> Result<Connection, Refusal> {
        if self.phase != Phase::Ready || self.error.is_some() {
            return Err(Refusal::Invalid(UsageError::HandshakeState));
        }
        let refused = match decision {
            Ok(accept) => match self.accept(accept) {
                Ok(connection) => return Ok(connection),
                Err(e) => e,
            },
            Err(reject) => {
                let status = reject.status();
                match self.reject(reject) {
                    Ok(()) => return Err(Refusal::Rejected(status)),
                    Err(e) => e,
                }
            }
        };
        self.reject(Reject::new(500)).map_err(Refusal::Invalid)?;
        Err(Refusal::Invalid(refused))
    }

    /// Whether the adapter should shut down the write half: a rejection (or failure) has
    /// been written out whole.
    #[must_use]
    pub fn wants_shutdown(&self) -> bool {
        self.error.is_some() && self.pending_transmit().is_empty() && !self.linger_over
    }

    /// Whether the adapter is done with the transport: the handshake failed or was
    /// rejected, and its response is written (or writing it took longer than
    /// `Config::close_timeout`, a peer that does not read).
    #[must_use]
    pub fn is_terminated(&self) -> bool {
        self.error.is_some() && (self.pending_transmit().is_empty() || self.linger_over)
    }

    /// A response that ends the exchange is queued: writing it is bounded too.
    fn linger(&mut self) {
        self.timers.stop(Timer::Handshake);
        self.timers.arm(Timer::Close, self.config.close_timeout);
    }

    /// Bytes waiting to be written (a rejection).
    #[must_use]
    pub fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.sent..]
    }

    /// Reports that the first `n` bytes of [`pending_transmit`](Self::pending_transmit) were
    /// written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.tx.len());
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the deadline for
    /// the request head, `Some(Duration::ZERO)` before the first call (which starts the
    /// clock), or `None` once the head arrived or the handshake failed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_terminated() {
            return None;
        }
        match (self.phase, self.error) {
            // Reading the request, or writing the response that ends the exchange.
            (Phase::Reading, None) | (_, Some(_)) => self.timers.next(),
            // The decision is the application's; the 101 is bounded by the connection.
            _ => None,
        }
    }

    /// Tells the handshake the time. The first call starts the clock: the deadline is that
    /// `now` plus `Config::handshake_timeout`. A call at or past it, with the request head
    /// still unfinished (a slowloris client), fails with [`HandshakeError::Timeout`] and
    /// queues `408 Request Timeout` with `Connection: close`.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.timers.advance(now);
        while let Some(timer) = self.timers.take_expired() {
            match timer {
                Timer::Handshake if self.phase == Phase::Reading && self.error.is_none() => {
                    self.fail(HandshakeError::Timeout);
                }
                Timer::Close => self.linger_over = true,
                _ => {}
            }
        }
    }

    /// Fails the handshake and queues the rejection for `error`.
    fn fail(&mut self, error: HandshakeError) -> HandshakeError {
        self.error = Some(error);
        self.phase = Phase::Done;
        self.head = Vec::new();
        self.leftover = Vec::new();
        let status = error.http_status();
        let extra: &[(&str, &str)] = match error {
            // RFC 7231 §6.5.5: the origin server "MUST generate an Allow header field in a 405
            // response containing a list of the target resource's currently supported
            // methods."
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            // RFC 6455 §4.2.2: "send an appropriate HTTP error code (such as 426 Upgrade
            // Required) and a |Sec-WebSocket-Version| header field indicating the version(s)
            // the server is capable of understanding". RFC 7231 §6.5.15: a 426 MUST carry
            // Upgrade, which RFC 7230 §6.7 pairs with the "upgrade" connection option.
            HandshakeError::UnsupportedVersion => &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade, close"),
                ("Sec-WebSocket-Version", "13"),
            ],
            _ => &[],
        };
        let mut out = Vec::new();
        write_rejection(&mut out, status, extra, &[], &format!("{error}\n"));
        self.tx = out;
        self.sent = 0;
        self.linger();
        error
    }
}

/// The error `parse_request` reports for a request without `Upgrade: websocket` (the unit
/// test `plain_http_get_can_be_answered_as_http` fails if the two drift apart).
const NOT_AN_UPGRADE: &str = "upgrade header does not name websocket";

/// The request-target of a complete head (after any leading empty lines, RFC 7230 §3.5).
fn request_target(head: &[u8]) -> Option<&str> {
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = head[start..].split(|&b| b == b'\r').next()?;
    let target = line.split(|&b| b == b' ').nth(1)?;
    core::str::from_utf8(target).ok()
}

/// A request-target `parse_request` has already validated, reduced to path and query (an
/// absolute-form `http://host/a?b` becomes `/a?b`), as `Request::path` does.
fn origin_form(target: &str) -> String {
    if target.starts_with('/') {
        return target.to_owned();
    }
    let rest = target.split_once("://").map_or(target, |(_, rest)| rest);
    let path = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// Writes a complete HTTP/1.1 response that ends the exchange: `Connection: close` (unless
/// `extra` sets Connection), `Content-Length`, and the body.
fn write_rejection(
    out: &mut Vec<u8>,
    status: u16,
    extra: &[(&str, &str)],
    headers: &[(String, String)],
    body: &str,
) {
    http::write_status_line(out, status);
    for (name, value) in extra {
        http::write_header(out, name, value);
    }
    if !extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        http::write_header(out, "Connection", "close");
    }
    for (name, value) in headers {
        http::write_header(out, name, value);
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        http::write_header(out, "Content-Type", "text/plain; charset=utf-8");
    }
    http::write_header(out, "Content-Length", &format!("{}", body.len()));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// The application's `accept` checked against the request it answers (both the byte parser's
/// handshake and the `http` path use it): nothing is sent when it fails.
pub(crate) fn check_accept(request: &Request, accept: &Accept) -> Result<(), UsageError> {
    // RFC 6455 §4.2.2: the subprotocol "MUST be derived from the client's handshake,
    // specifically by selecting one of the values from the |Sec-WebSocket-Protocol| field".
    if let Some(chosen) = &accept.protocol {
        if !request.protocols().any(|p| p == chosen) {
            return Err(UsageError::ProtocolNotOffered);
        }
    }
    for (name, value) in &accept.headers {
        http::check_header(name, value)?;
        if http::is_owned(name, ACCEPT_OWNED_HEADERS) {
            return Err(UsageError::InvalidHeader(
                "header is set by the handshake itself",
            ));
        }
        if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            // RFC 6455 §4.2.2: "Extensions not listed by the client MUST NOT be listed."
            let mut unoffered = false;
            http::parse_extension_list(value.as_bytes(), |name, _| {
                unoffered |= !request.extensions().any(|offer| offer_name(offer) == name);
            })
            .map_err(|_| {
                UsageError::InvalidHeader("sec-websocket-extensions is not a valid extension-list")
            })?;
            if unoffered {
                return Err(UsageError::InvalidHeader(
                    "extension was not offered by the client",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] =
        b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn head_buffer_never_exceeds_the_cap() {
        let mut hs = ServerHandshake::new(Config::default().max_handshake_size(4096));
        hs.receive(b"GET / HTTP/1.1\r\nX: ").unwrap();
        let chunk = [b'a'; 1024];
        let mut fed = 0;
        loop {
            match hs.receive(&chunk) {
                Ok(()) => assert!(hs.head.len() <= 4096),
                Err(e) => {
                    assert_eq!(e, HandshakeError::HeadTooLarge(4096));
                    break;
                }
            }
            fed += chunk.len();
            assert!(fed < 8192);
        }
        assert!(hs.head.capacity() == 0 && hs.pending_transmit().starts_with(b"HTTP/1.1 431 "));
    }

    /// `SAMPLE` is RFC 6455 §1.2's request, which is cross-origin: the default policy refuses
    /// it (see `origin_policy_runs_last_and_answers_403`).
    fn any_origin() -> Config {
        Config::default().origin_policy(crate::handshake::OriginPolicy::Any)
    }

    #[test]
    fn request_fields() {
        let mut hs = ServerHandshake::new(any_origin());
        hs.receive(SAMPLE).unwrap();
        let r = hs.request().unwrap();
        assert_eq!(
            (r.method(), r.path(), r.host(), r.key()),
            (
                "GET",
                "/chat",
                "server.example.com",
                "dGhlIHNhbXBsZSBub25jZQ=="
            )
        );
        assert_eq!(r.origin(), Some("http://example.com"));
        assert_eq!(r.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        assert_eq!(r.extensions().count(), 0);
        assert_eq!(r.header("UPGRADE"), Some("websocket"));
        assert_eq!(r.headers().count(), 7);
    }

    #[test]
    fn rejection_format() {
        let mut out = Vec::new();
        write_rejection(&mut out, 403, &[], &[("X-A".into(), "b".into())], "no");
        assert_eq!(
            out,
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nX-A: b\r\n\
              Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nno"
        );
    }

    #[test]
    fn plain_http_get_can_be_answered_as_http() {
        // Split anywhere, a plain GET fails with 400 but exposes its path.
        let req: &[u8] =
            b"\r\nGET http://example.com/page?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
        for cut in 0..=req.len() {
            let mut hs = ServerHandshake::new(Config::default());
            let result = hs
                .receive(&req[..cut])
                .and_then(|()| hs.receive(&req[cut..]));
            assert_eq!(result, Err(HandshakeError::BadRequest(NOT_AN_UPGRADE)));
            assert_eq!(hs.plain_http_path(), Some("/page?x=1"));
            assert!(hs.pending_transmit().starts_with(b"HTTP/1.1 400 "));
        }
        let mut hs = ServerHandshake::new(Config::default());
        let _ = hs.receive(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(hs.plain_http_path(), Some("/index.html"));
        let page = Reject::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body("<p>hi</p>");
        assert_eq!(hs.reject(page.clone()), Ok(()));
        assert_eq!(
            hs.pending_transmit(),
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html; charset=utf-8\r\n\
              Content-Length: 9\r\n\r\n<p>hi</p>"
        );
        assert_eq!(hs.error(), Some(HandshakeError::Rejected(200)));
        assert_eq!(hs.receive(b"x"), Err(HandshakeError::Rejected(200)));
        // Answered once only.
        assert_eq!(hs.reject(page.clone()), Err(UsageError::HandshakeState));

        // Once part of the 400 is written, it can no longer be replaced.
        let mut hs = ServerHandshake::new(Config::default());
        let _ = hs.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        hs.advance_transmit(1);
        assert_eq!(hs.reject(page), Err(UsageError::HandshakeState));
        // Still invalid: 1xx, 2xx other than 200.
        let mut hs = ServerHandshake::new(Config::default());
        let _ = hs.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        for status in [101, 199, 204, 299, 600] {
            assert_eq!(
                hs.reject(Reject::new(status)),
                Err(UsageError::InvalidStatus(status))
            );
        }
    }

    #[test]
    fn other_failures_are_not_plain_http() {
        for req in [
            // A WebSocket request with one fault is not a page request.
            &b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
            b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let mut hs = ServerHandshake::new(Config::default());
            assert!(hs.receive(req).is_err());
            assert_eq!(hs.plain_http_path(), None);
            assert_eq!(hs.reject(Reject::new(200)), Err(UsageError::HandshakeState));
        }
        let mut hs = ServerHandshake::new(any_origin());
        hs.receive(SAMPLE).unwrap();
        assert_eq!(hs.plain_http_path(), None);
    }

    #[test]
    fn origin_policy_runs_last_and_answers_403() {
        // Split anywhere, the RFC sample's foreign Origin gets 403 under the default policy.
        for cut in 0..=SAMPLE.len() {
            let mut hs = ServerHandshake::new(Config::default());
            let result = hs
                .receive(&SAMPLE[..cut])
                .and_then(|()| hs.receive(&SAMPLE[cut..]));
            assert_eq!(result, Err(HandshakeError::OriginNotAllowed));
            assert!(hs.request().is_none() && hs.plain_http_path().is_none());
            let response = core::str::from_utf8(hs.pending_transmit()).unwrap();
            assert!(
                response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
                "{response}"
            );
            assert!(response.ends_with("origin not allowed by the server's origin policy\n"));
        }
        // Any other fault keeps its own status: the policy is the last check.
        let bad_key = SAMPLE
            .windows(4)
            .position(|w| w == b"dGhl")
            .map(|i| [&SAMPLE[..i], b"x", &SAMPLE[i + 4..]].concat())
            .unwrap();
        let mut hs = ServerHandshake::new(Config::default());
        assert!(matches!(
            hs.receive(&bad_key),
            Err(HandshakeError::BadRequest(_))
        ));
        // The same request from a page of the server's own host is accepted.
        let same = SAMPLE
            .split(|&b| b == b'\n')
            .map(|line| {
                if line.starts_with(b"Origin:") {
                    b"Origin: http://server.example.com\r".to_vec()
                } else {
                    line.to_vec()
                }
            })
            .collect::<Vec<_>>()
            .join(&b'\n');
        let mut hs = ServerHandshake::new(Config::default());
        hs.receive(&same).unwrap();
        assert_eq!(
            hs.request().unwrap().origin(),
            Some("http://server.example.com")
        );
    }

    #[test]
    fn accept_error_leaves_handshake_usable() {
        let mut hs = ServerHandshake::new(any_origin());
        hs.receive(SAMPLE).unwrap();
        assert_eq!(
            hs.accept(Accept::new().protocol("nope")).err(),
            Some(UsageError::ProtocolNotOffered)
        );
        assert!(hs.accept(Accept::new().header("Upgrade", "x")).is_err());
        assert!(hs.accept(Accept::new().header("X", "a\nb")).is_err());
        assert!(hs.pending_transmit().is_empty());
        hs.reject(Reject::new(500)).unwrap();
        assert!(
            hs.pending_transmit()
                .starts_with(b"HTTP/1.1 500 Internal Server Error\r\n")
        );
        assert_eq!(hs.error(), Some(HandshakeError::Rejected(500)));
        assert_eq!(hs.reject(Reject::new(500)), Err(UsageError::HandshakeState));
    }
}
