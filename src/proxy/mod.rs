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
mod tunnel;
mod url;

pub use env::no_proxy_matches;
pub use tunnel::Tunnel;
use url::Credentials;
pub use url::Proxy;

use crate::error::{ProxyError, UsageError};
use crate::handshake::uri;
use alloc::vec::Vec;
use core::net::IpAddr;

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
