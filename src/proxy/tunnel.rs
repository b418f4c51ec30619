//! [`Tunnel`]: the exchange with a proxy, sans-IO, with its clock and sticky error.

use super::{Exchange, Proxy, Scheme, TargetHost, http_connect, socks5, target_host};
use crate::config::Config;
use crate::error::{ProxyError, UsageError};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

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
    exchange: Box<dyn Exchange + Send + Sync>,
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
        let credentials = proxy.credentials();
        let exchange: Box<dyn Exchange + Send + Sync> = match proxy.scheme() {
            Scheme::Http => Box::new(http_connect::HttpConnect::new(
                target,
                port,
                credentials,
                config,
            )),
            Scheme::Socks5 | Scheme::Socks5h => {
                if proxy.scheme() == Scheme::Socks5 && matches!(target, TargetHost::Name(_)) {
                    return Err(UsageError::InvalidProxy(
                        "socks5:// needs the server's ip address (resolve it, or use socks5h://)",
                    ));
                }
                Box::new(socks5::Socks5::new(target, port, credentials)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HandshakeError;
    use alloc::string::ToString;

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
