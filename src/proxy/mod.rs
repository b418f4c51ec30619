//! Clients through proxies, sans-IO: HTTP CONNECT (RFC 9110 §9.3.6, with Basic credentials)
//! and SOCKS5 (RFC 1928, with the username/password method of RFC 1929).
//!
//! A [`Proxy`] says where the proxy is and how to speak to it; parse one from a URL
//! (`http://`, `socks5://`, `socks5h://`) or take it from the environment the way curl does
//! (`Proxy::from_env` with `std`, [`Proxy::from_env_with`], [`no_proxy_matches`]). A [`Tunnel`] is
//! the exchange with the proxy that opens a byte stream to the server, pumped with the same
//! verbs as the handshakes. Once [`Tunnel::is_ready`], the same transport carries the
//! connection to the server: TLS first for `wss://` (the proxy sees only ciphertext), then
//! the WebSocket handshake.
//!
//! The adapters' connect functions (`sync::connect_with`, `tokio::connect_with`, the
//! `connect_tls` variants) do all of this when the request names a proxy
//! ([`ClientRequest::proxy`]) or asks for the environment's
//! ([`ClientRequest::proxy_from_env`]); the whole exchange is bounded by
//! `Config::handshake_timeout`.
//!
//! ```
//! use rfc6455::proxy::{Proxy, Tunnel};
//! use rfc6455::Config;
//!
//! let proxy: Proxy = "http://alice:s%3Acret@proxy.example:3128".parse()?;
//! let mut tunnel = Tunnel::new(&proxy, "echo.example", 443, &Config::default())?;
//! let request = tunnel.pending_transmit().to_vec();
//! tunnel.advance_transmit(request.len());
//! assert_eq!(request, b"CONNECT echo.example:443 HTTP/1.1\r\nHost: echo.example:443\r\n\
//!     Proxy-Authorization: Basic YWxpY2U6czpjcmV0\r\n\r\n");
//!
//! // The answer and, in the same read, the first bytes from the server: they are kept.
//! tunnel.receive(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01").unwrap();
//! assert!(tunnel.is_ready());
//! assert_eq!(tunnel.leftover(), b"\x16\x03\x01");
//! # Ok::<(), rfc6455::UsageError>(())
//! ```
//!
//! Decisions:
//!
//! * `socks5://` resolves the server's name on the client and sends the address (what curl
//!   and reqwest do); `socks5h://` sends the name and lets the proxy resolve it. A [`Tunnel`]
//!   for `socks5://` therefore needs the target as an IP address: the adapters resolve it.
//! * A proxy URL without a port uses 80 for `http://` (the scheme's port; curl uses 1080) and
//!   1080 for SOCKS5 (RFC 1928 §3: "conventionally located on TCP port 1080").
//! * HTTP interim (1xx) answers before the final one are skipped; all heads together are
//!   bounded by `Config::max_handshake_size`. A non-2xx answer is an error that keeps the
//!   status; its body is never read.
//! * Bytes the proxy sends past its answer belong to the server: the tunnel keeps them
//!   ([`Tunnel::leftover`]). The adapters go further and never read past the answer (they
//!   peek at the socket and consume only the answer's bytes), so the server's first bytes
//!   stay in the socket for TLS or the handshake.
//!
//! [`ClientRequest::proxy`]: crate::ClientRequest::proxy
//! [`ClientRequest::proxy_from_env`]: crate::ClientRequest::proxy_from_env

mod env;
mod http_connect;
mod socks5;

pub use env::no_proxy_matches;

use crate::config::Config;
use crate::error::{ProxyError, UsageError};
use crate::handshake::uri;
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;
use core::time::Duration;

/// How to speak to a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `http://`: an HTTP proxy, asked with `CONNECT host:port` (RFC 9110 §9.3.6).
    Http,
    /// `socks5://`: SOCKS5 (RFC 1928), the server's name resolved by the client.
    Socks5,
    /// `socks5h://`: SOCKS5, the server's name sent to the proxy, which resolves it.
    Socks5h,
}

impl Scheme {
    /// The URL scheme: `"http"`, `"socks5"` or `"socks5h"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }

    /// The port of a proxy URL that names none: 80 for `http`, 1080 for SOCKS5.
    #[must_use]
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            // RFC 1928 §3: "The SOCKS service is conventionally located on TCP port 1080."
            Self::Socks5 | Self::Socks5h => 1080,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    username: String,
    password: String,
}

/// A proxy: its scheme, host, port and optional credentials.
///
/// `Debug` and `Display` never show the password.
///
/// ```
/// use rfc6455::proxy::{Proxy, Scheme};
///
/// let proxy = Proxy::parse("socks5h://bob:p%40ss@[::1]:9050")?;
/// assert_eq!(proxy.scheme(), Scheme::Socks5h);
/// assert_eq!((proxy.host(), proxy.port()), ("::1", 9050));
/// assert_eq!((proxy.username(), proxy.password()), (Some("bob"), Some("p@ss")));
/// assert_eq!(proxy.to_string(), "socks5h://[::1]:9050");
///
/// assert_eq!(Proxy::parse("http://proxy.example")?.port(), 80);
/// assert!(Proxy::parse("https://proxy.example").is_err()); // TLS to the proxy: not supported
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: Scheme,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl Proxy {
    /// A proxy at `host` (a name, an IPv4 address or an IPv6 address, with or without
    /// brackets) and `port`, without credentials.
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] for an empty or malformed host, or port 0.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Result<Self, UsageError> {
        let host = match target_host(host)? {
            TargetHost::Ip(_) => host.trim_start_matches('[').trim_end_matches(']'),
            TargetHost::Name(name) => name,
        };
        if port == 0 {
            return Err(UsageError::InvalidProxy("port 0"));
        }
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            credentials: None,
        })
    }

    /// Parses `scheme://[user[:password]@]host[:port][/]`, the scheme being `http`, `socks5` or
    /// `socks5h` (ASCII case-insensitive). The user and password are percent-decoded (a `:` or
    /// `@` in them must be written `%3A` / `%40`); a missing port is the scheme's
    /// [`default_port`](Scheme::default_port).
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] naming the problem: another scheme (`https` and `socks4`
    /// proxies are not supported), a path, query or fragment, whitespace or control bytes, a
    /// bad host or port, bad percent-encoding, credentials that are not UTF-8, or credentials
    /// the scheme cannot carry (see [`with_credentials`](Self::with_credentials)).
    pub fn parse(url: &str) -> Result<Self, UsageError> {
        let invalid = UsageError::InvalidProxy;
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid("whitespace or control character in proxy url"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(invalid("expected http://, socks5:// or socks5h://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "https" => {
                return Err(invalid(
                    "https proxies (tls to the proxy) are not supported",
                ));
            }
            "socks4" | "socks4a" => return Err(invalid("socks4 is not supported; use socks5")),
            _ => return Err(invalid("scheme must be http, socks5 or socks5h")),
        };
        // Environment variables often end in "/"; anything more names a resource, which a
        // proxy URL has no use for.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(invalid("a proxy url has no path, query or fragment"));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let parsed = uri::parse_authority(host_port).map_err(UsageError::InvalidProxy)?;
        let port = parsed.port.unwrap_or(scheme.default_port());
        let proxy = Self::new(scheme, parsed.host, port)?;
        match userinfo {
            None => Ok(proxy),
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                proxy.with_credentials(&percent_decode(user)?, &percent_decode(password)?)
            }
        }
    }

    /// Adds credentials: Basic authentication (RFC 7617) for `http`, the username/password
    /// method (RFC 1929) for SOCKS5.
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`]: for `http`, a username containing `:` (RFC 7617 §2: "a
    /// user-id containing a colon character is invalid") or a control character; for SOCKS5,
    /// a username or password that is empty or longer than 255 bytes (RFC 1929 §2: each is
    /// "1 to 255" octets).
    pub fn with_credentials(mut self, username: &str, password: &str) -> Result<Self, UsageError> {
        let invalid = UsageError::InvalidProxy;
        match self.scheme {
            Scheme::Http => {
                if username.contains(':') {
                    return Err(invalid("a basic-auth username may not contain ':'"));
                }
                if username
                    .chars()
                    .chain(password.chars())
                    .any(char::is_control)
                {
                    return Err(invalid("control character in proxy credentials"));
                }
            }
            Scheme::Socks5 | Scheme::Socks5h => {
                for field in [username, password] {
                    if !(1..=255).contains(&field.len()) {
                        return Err(invalid(
                            "socks5 username and password must be 1 to 255 bytes each",
                        ));
                    }
                }
            }
        }
        self.credentials = Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        Ok(self)
    }

    /// The scheme.
    #[must_use]
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The proxy's host, without the brackets of an IPv6 literal.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The username, if credentials were given.
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The password, if credentials were given.
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    /// Whether the client resolves the server's name itself (`socks5://`) and hands the proxy
    /// an IP address; for `http://` and `socks5h://` the proxy gets the name.
    #[must_use]
    pub const fn resolves_locally(&self) -> bool {
        matches!(self.scheme, Scheme::Socks5)
    }
}

impl FromStr for Proxy {
    type Err = UsageError;

    /// [`Proxy::parse`].
    fn from_str(url: &str) -> Result<Self, UsageError> {
        Self::parse(url)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// `scheme://host:port`, credentials left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, UsageError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(UsageError::InvalidProxy(
                    "bad percent-encoding in credentials",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UsageError::InvalidProxy("credentials are not utf-8"))
}

/// The server a tunnel leads to: an address, or a name for the proxy to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetHost<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// Checks a host: an IP address (an IPv6 one with or without brackets) or an RFC 3986
/// reg-name, which cannot carry spaces, CR or LF into a request line.
fn target_host(host: &str) -> Result<TargetHost<'_>, UsageError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(TargetHost::Ip(ip));
    }
    if host.is_empty() || !uri::is_reg_name(host) {
        return Err(UsageError::InvalidProxy("invalid host"));
    }
    Ok(TargetHost::Name(host))
}

/// One protocol's exchange with the proxy; [`Tunnel`] adds the clock and the sticky error.
trait Exchange {
    fn pending_transmit(&self) -> &[u8];
    fn advance_transmit(&mut self, n: usize);
    /// Takes bytes from the proxy; past the end of its answer they go to `leftover`.
    fn receive(&mut self, data: &[u8]) -> Result<(), ProxyError>;
    fn is_ready(&self) -> bool;
    fn leftover(&self) -> &[u8];
    fn take_leftover(&mut self) -> Vec<u8>;
}

/// The exchange with a proxy that opens a tunnel to the server, sans-IO.
///
/// Pump it like [`ClientHandshake`](crate::ClientHandshake):
///
/// 1. [`new`](Self::new) queues the first message; write
///    [`pending_transmit`](Self::pending_transmit) and report it with
///    [`advance_transmit`](Self::advance_transmit). SOCKS5 takes several round trips, so
///    check for output again after every [`receive`](Self::receive).
/// 2. Feed what the proxy sends to [`receive`](Self::receive)
///    ([`receive_eof`](Self::receive_eof) at end of stream) until
///    [`is_ready`](Self::is_ready) or an error.
/// 3. Call [`handle_timeout`](Self::handle_timeout) before the first read (it starts the
///    clock) and whenever [`poll_timeout`](Self::poll_timeout) passes.
/// 4. Once ready, the transport leads to the server; [`leftover`](Self::leftover) holds what
///    the proxy sent past its answer, the server's first bytes.
///
/// ```
/// use rfc6455::proxy::{Proxy, Tunnel};
/// use rfc6455::{Config, ProxyError};
///
/// // socks5h: the proxy resolves the name.
/// let proxy = Proxy::parse("socks5h://127.0.0.1:1080")?;
/// let mut tunnel = Tunnel::new(&proxy, "echo.example", 80, &Config::default())?;
/// assert_eq!(tunnel.pending_transmit(), [5, 1, 0]); // version 5, one method: no auth
/// tunnel.advance_transmit(3);
/// tunnel.receive(&[5, 0]).unwrap(); // the proxy picks "no auth"
/// let request = tunnel.pending_transmit().to_vec();
/// assert_eq!(request, b"\x05\x01\x00\x03\x0cecho.example\x00\x50");
/// tunnel.advance_transmit(request.len());
/// // "host unreachable" (RFC 1928 §6, X'04')
/// assert_eq!(tunnel.receive(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]), Err(ProxyError::Socks5Reply(4)));
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
pub struct Tunnel {
    exchange: alloc::boxed::Box<dyn Exchange + Send + Sync>,
    timeout: Duration,
    deadline: Option<Duration>,
    error: Option<ProxyError>,
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("ready", &self.is_ready())
            .field("error", &self.error)
            .field("pending_transmit", &self.pending_transmit().len())
            .field("leftover", &self.leftover().len())
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// Starts the exchange with `proxy` for a tunnel to `host:port` and queues the first
    /// message. `host` is the server's name or address as in its URI (an IPv6 address with or
    /// without brackets); for `socks5://`, which resolves on the client, it must be an IP
    /// address. `config` gives the limits on the proxy's answer (`max_handshake_size`,
    /// `max_headers`) and the time it may take (`handshake_timeout`).
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] for a malformed host, a name with `socks5://` (resolve
    /// it first, or use `socks5h://`), a name longer than SOCKS5's 255 bytes, or port 0.
    pub fn new(proxy: &Proxy, host: &str, port: u16, config: &Config) -> Result<Self, UsageError> {
        let target = target_host(host)?;
        if port == 0 {
            return Err(UsageError::InvalidProxy("target port 0"));
        }
        let credentials = proxy.credentials.as_ref();
        let exchange: alloc::boxed::Box<dyn Exchange + Send + Sync> = match proxy.scheme {
            Scheme::Http => alloc::boxed::Box::new(http_connect::HttpConnect::new(
                target,
                port,
                credentials,
                config,
            )),
            Scheme::Socks5 | Scheme::Socks5h => {
                if proxy.scheme == Scheme::Socks5 && matches!(target, TargetHost::Name(_)) {
                    return Err(UsageError::InvalidProxy(
                        "socks5:// needs the server's ip address (resolve it, or use socks5h://)",
                    ));
                }
                alloc::boxed::Box::new(socks5::Socks5::new(target, port, credentials)?)
            }
        };
        Ok(Self {
            exchange,
            timeout: config.handshake_timeout,
            deadline: None,
            error: None,
        })
    }

    /// Bytes waiting to be written to the proxy.
    #[must_use]
    pub fn pending_transmit(&self) -> &[u8] {
        self.exchange.pending_transmit()
    }

    /// Reports that the first `n` bytes of [`pending_transmit`](Self::pending_transmit) were
    /// written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.exchange.advance_transmit(n);
    }

    /// Feeds bytes received from the proxy. The outcome never depends on how the input was
    /// split. Once the tunnel is ready, further bytes (and those after the answer in the same
    /// call) are the server's and go to [`leftover`](Self::leftover).
    ///
    /// # Errors
    /// The sticky [`ProxyError`]: the proxy refused (HTTP status, SOCKS5 reply code), wants
    /// or rejected credentials, answered in a way its protocol does not allow, sent a head
    /// over the limits, or an earlier [`Timeout`](ProxyError::Timeout).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.exchange.receive(data).map_err(|e| self.fail(e))
    }

    /// Reports that the proxy closed the connection.
    ///
    /// # Errors
    /// [`ProxyError::UnexpectedEof`] unless the tunnel was ready; or the earlier sticky error.
    pub fn receive_eof(&mut self) -> Result<(), ProxyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.is_ready() {
            return Ok(());
        }
        Err(self.fail(ProxyError::UnexpectedEof))
    }

    /// Whether the proxy opened the tunnel: from here on the transport leads to the server.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.error.is_none() && self.exchange.is_ready()
    }

    /// Bytes received past the proxy's answer: the server's, to be read before anything else
    /// from the transport.
    #[must_use]
    pub fn leftover(&self) -> &[u8] {
        self.exchange.leftover()
    }

    /// Takes the [`leftover`](Self::leftover) bytes.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        self.exchange.take_leftover()
    }

    /// The sticky error, if the exchange failed.
    #[must_use]
    pub const fn error(&self) -> Option<ProxyError> {
        self.error
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the deadline, or
    /// `Some(Duration::ZERO)` before the first call (which starts the clock), or `None` once
    /// the tunnel is ready or the exchange failed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_ready() || self.error.is_some() {
            return None;
        }
        Some(self.deadline.unwrap_or(Duration::ZERO))
    }

    /// Tells the exchange the time. The first call starts the clock: the deadline is that
    /// `now` plus `Config::handshake_timeout`. A call at or past the deadline fails the
    /// exchange with [`ProxyError::Timeout`].
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_ready() || self.error.is_some() {
            return;
        }
        let deadline = *self
            .deadline
            .get_or_insert(now.saturating_add(self.timeout));
        if now >= deadline {
            self.fail(ProxyError::Timeout);
        }
    }

    fn fail(&mut self, error: ProxyError) -> ProxyError {
        self.error = Some(error);
        error
    }
}

/// The proxy a client request uses: its own, or the environment's if it asked for that.
#[cfg(feature = "std")]
pub(crate) fn for_request(
    request: &crate::handshake::ClientRequest,
) -> Result<Option<Proxy>, UsageError> {
    match request.proxy_setting() {
        (Some(proxy), _) => Ok(Some(proxy.clone())),
        (None, true) => Proxy::from_env(request.is_tls(), request.host(), request.port()),
        (None, false) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HandshakeError;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn proxy_urls() {
        // (url, scheme, host, port, credentials)
        type Row<'a> = (&'a str, Scheme, &'a str, u16, Option<(&'a str, &'a str)>);
        let table: &[Row] = &[
            ("http://proxy:3128", Scheme::Http, "proxy", 3128, None),
            ("HTTP://proxy:3128/", Scheme::Http, "proxy", 3128, None),
            ("http://proxy", Scheme::Http, "proxy", 80, None),
            ("http://10.0.0.1:8080", Scheme::Http, "10.0.0.1", 8080, None),
            ("http://[::1]:8080", Scheme::Http, "::1", 8080, None),
            ("socks5://proxy", Scheme::Socks5, "proxy", 1080, None),
            ("SOCKS5H://proxy:9050", Scheme::Socks5h, "proxy", 9050, None),
            (
                "http://u:p@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("u", "p")),
            ),
            (
                "http://u@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("u", "")),
            ),
            (
                "http://us%65r:p%3A%40%25@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("user", "p:@%")),
            ),
            // The last '@' ends the userinfo; an '@' in a password may also be written raw.
            (
                "socks5://u:p@ss@proxy",
                Scheme::Socks5,
                "proxy",
                1080,
                Some(("u", "p@ss")),
            ),
            (
                "socks5h://%C3%BC:x@proxy",
                Scheme::Socks5h,
                "proxy",
                1080,
                Some(("ü", "x")),
            ),
        ];
        for &(url, scheme, host, port, credentials) in table {
            let proxy = Proxy::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(proxy.scheme(), scheme, "{url}");
            assert_eq!((proxy.host(), proxy.port()), (host, port), "{url}");
            let got = proxy.username().zip(proxy.password());
            assert_eq!(got, credentials, "{url}");
        }
    }

    #[test]
    fn bad_proxy_urls_say_why() {
        let table: &[(&str, &str)] = &[
            ("proxy:3128", "expected http://, socks5:// or socks5h://"),
            (
                "https://proxy",
                "https proxies (tls to the proxy) are not supported",
            ),
            ("socks4://proxy", "socks4 is not supported; use socks5"),
            ("ftp://proxy", "scheme must be http, socks5 or socks5h"),
            (
                "http://proxy/path",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://proxy?x",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://proxy#x",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://pro xy",
                "whitespace or control character in proxy url",
            ),
            ("http://proxy:0", "port 0"),
            ("http://proxy:99999", "port out of range"),
            ("http://proxy:x", "port is not a number"),
            ("http://", "empty host"),
            ("http://u:p@", "empty host"),
            ("http://[::1", "unterminated ipv6 literal"),
            ("http://u%zz:p@proxy", "bad percent-encoding in credentials"),
            ("http://u%+f:p@proxy", "bad percent-encoding in credentials"),
            ("http://u%f:p@proxy", "bad percent-encoding in credentials"),
            ("http://u:%ff@proxy", "credentials are not utf-8"),
            (
                "http://a%3Ab:p@proxy",
                "a basic-auth username may not contain ':'",
            ),
            (
                "http://u:%0d%0a@proxy",
                "control character in proxy credentials",
            ),
            (
                "socks5://u@proxy",
                "socks5 username and password must be 1 to 255 bytes each",
            ),
        ];
        for &(url, why) in table {
            assert_eq!(
                Proxy::parse(url),
                Err(UsageError::InvalidProxy(why)),
                "{url}"
            );
        }
        let long = "x".repeat(256);
        assert!(
            Proxy::parse(&format!("socks5h://{long}:p@proxy")).is_err(),
            "rfc1929_2_username_over_255_bytes_is_refused"
        );
        assert!(Proxy::parse(&format!("socks5h://{}:p@proxy", &long[1..])).is_ok());
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let proxy = Proxy::parse("http://alice:hunter2@proxy:3128").unwrap();
        let shown = format!("{proxy:?} {proxy}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        assert_eq!(proxy.to_string(), "http://proxy:3128");
        let v6 = Proxy::new(Scheme::Socks5, "[::1]", 1).unwrap();
        assert_eq!(v6.to_string(), "socks5://[::1]:1");
        assert_eq!("socks5://[::1]:1".parse::<Proxy>(), Ok(v6));
    }

    #[test]
    fn tunnel_targets_are_checked() {
        let config = Config::default();
        let socks5 = Proxy::parse("socks5://p").unwrap();
        let http = Proxy::parse("http://p").unwrap();
        assert!(Tunnel::new(&socks5, "192.0.2.1", 80, &config).is_ok());
        assert!(Tunnel::new(&socks5, "[2001:db8::1]", 80, &config).is_ok());
        assert_eq!(
            Tunnel::new(&socks5, "example.com", 80, &config).err(),
            Some(UsageError::InvalidProxy(
                "socks5:// needs the server's ip address (resolve it, or use socks5h://)"
            ))
        );
        for bad in ["", "a b", "a\r\nX: y", "a/b"] {
            assert!(Tunnel::new(&http, bad, 80, &config).is_err(), "{bad:?}");
        }
        assert!(Tunnel::new(&http, "a", 0, &config).is_err());
    }

    #[test]
    fn tunnel_timeout_starts_on_first_call() {
        let config = Config::default().handshake_timeout(Duration::from_secs(2));
        let proxy = Proxy::parse("http://p").unwrap();
        let mut tunnel = Tunnel::new(&proxy, "a", 1, &config).unwrap();
        assert_eq!(tunnel.poll_timeout(), Some(Duration::ZERO));
        tunnel.handle_timeout(Duration::from_secs(1));
        assert_eq!(tunnel.poll_timeout(), Some(Duration::from_secs(3)));
        tunnel.handle_timeout(Duration::from_millis(2999));
        assert_eq!(tunnel.error(), None);
        tunnel.handle_timeout(Duration::from_secs(3));
        assert_eq!(tunnel.error(), Some(ProxyError::Timeout));
        assert_eq!(
            tunnel.receive(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ProxyError::Timeout)
        );
        assert!(!tunnel.is_ready());
        assert_eq!(tunnel.poll_timeout(), None);
    }

    #[test]
    fn eof_before_the_answer_fails_and_after_it_does_not() {
        let config = Config::default();
        let proxy = Proxy::parse("http://p").unwrap();
        let mut tunnel = Tunnel::new(&proxy, "a", 1, &config).unwrap();
        tunnel.receive(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert_eq!(tunnel.receive_eof(), Err(ProxyError::UnexpectedEof));
        assert_eq!(tunnel.receive(b"\r\n"), Err(ProxyError::UnexpectedEof));

        let mut tunnel = Tunnel::new(&proxy, "a", 1, &config).unwrap();
        tunnel.receive(b"HTTP/1.1 200 OK\r\n\r\nab").unwrap();
        tunnel.receive(b"c").unwrap();
        assert_eq!(tunnel.receive_eof(), Ok(()));
        assert_eq!(tunnel.take_leftover(), b"abc");
        assert!(tunnel.leftover().is_empty());
    }

    #[test]
    fn proxy_errors_read_well_and_stay_small() {
        let table: &[(ProxyError, &str)] = &[
            (
                ProxyError::Refused(403),
                "proxy refused the tunnel with status 403",
            ),
            (ProxyError::AuthRequired, "proxy authentication required"),
            (
                ProxyError::AuthFailed,
                "proxy authentication failed: credentials rejected",
            ),
            (
                ProxyError::Socks5Reply(5),
                "socks5 proxy could not connect: connection refused (reply 5)",
            ),
            (
                ProxyError::Socks5Reply(0x2a),
                "socks5 proxy could not connect: unassigned failure code (reply 42)",
            ),
            (
                ProxyError::HeadTooLarge(16384),
                "proxy answer head exceeds limit of 16384 bytes",
            ),
            (
                ProxyError::Timeout,
                "proxy did not open the tunnel within the handshake timeout",
            ),
        ];
        for (error, text) in table {
            assert_eq!(error.to_string(), *text);
            assert_eq!(HandshakeError::Proxy(*error).to_string(), *text);
        }
        assert!(core::mem::size_of::<HandshakeError>() <= 24);
    }
}
