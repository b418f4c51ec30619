//! The tokio adapter's TLS (feature `tokio-rustls`; see [`crate::tls`]): the stream type and
//! the server entry point. (`connect_tls` is with the other ways to connect, in `connect.rs`.)

use super::WebSocket;
use super::handshake::accept_started;
use crate::config::Config;
use crate::error::{Error, HandshakeError};
use crate::handshake::{Accept, Reject, Request};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::{Instant, timeout_at};
use rustls::ServerConfig;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Runs a TLS server handshake with `tls` over `stream`, then the WebSocket handshake as
/// [`accept_with`](super::accept_with); the two together are bounded by
/// `Config::handshake_timeout`. Not cancel safe.
///
/// # Errors
/// As [`accept_with`](super::accept_with); a TLS failure (e.g. the client does not trust our
/// certificate) is an [`Error::Io`] of kind [`InvalidData`](io::ErrorKind::InvalidData)
/// wrapping the [`rustls::Error`]; a TLS handshake that outlasts the timeout is
/// [`HandshakeError::Timeout`] (no HTTP response can be sent without TLS).
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use rfc6455::{Config, handshake::Accept, tls, tokio as ws};
/// # let (cert_chain, key) = (Vec::new(), tls::rustls::pki_types::PrivateKeyDer::Pkcs8(Vec::new().into()));
/// let server = tls::server_config(cert_chain, key)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let (tcp, _) = listener.accept().await?;
/// let mut socket = ws::accept_tls(tcp, server, Config::default(), |_| Ok(Accept::new())).await?;
/// while let Some(message) = socket.recv().await? {
///     socket.send(message).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn accept_tls<S, F>(
    stream: S,
    tls: Arc<ServerConfig>,
    config: Config,
    callback: F,
) -> Result<WebSocket<TlsStream<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let start = Instant::now();
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    let tls = within_handshake_timeout(&config, start, handshake).await?;
    accept_started(TlsStream(tls.into()), config, callback, start, None).await
}

/// Awaits a TLS handshake until `Config::handshake_timeout` after `start`.
pub(super) async fn within_handshake_timeout<T>(
    config: &Config,
    start: Instant,
    handshake: impl Future<Output = io::Result<T>>,
) -> Result<T, Error> {
    Ok(match start.checked_add(config.handshake_timeout) {
        Some(at) => timeout_at(at, handshake)
            .await
            .map_err(|_| HandshakeError::Timeout)??,
        None => handshake.await?,
    })
}

/// A TLS stream (client or server side, from tokio-rustls) for the tokio adapter: what
/// [`accept_tls`] returns and what a `wss://` [`MaybeTlsStream`](super::MaybeTlsStream) holds.
///
/// A TCP end-of-file without `close_notify` reads as end-of-file (see [`crate::tls`]); the
/// write shutdown sends `close_notify` first.
#[derive(Debug)]
pub struct TlsStream<S>(tokio_rustls::TlsStream<S>);

impl<S> TlsStream<S> {
    pub(super) const fn from_inner(inner: tokio_rustls::TlsStream<S>) -> Self {
        Self(inner)
    }

    /// The transport underneath.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        self.0.get_ref().0
    }

    /// The transport underneath, mutably (reading or writing it corrupts the session).
    pub fn get_mut(&mut self) -> &mut S {
        self.0.get_mut().0
    }

    /// The TLS session's state: negotiated version, ALPN protocol, peer certificates, ...
    #[must_use]
    pub fn session(&self) -> &rustls::CommonState {
        self.0.get_ref().1
    }

    /// The tokio-rustls stream.
    #[must_use]
    pub fn into_inner(self) -> tokio_rustls::TlsStream<S> {
        self.0
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match std::task::ready!(Pin::new(&mut self.0).poll_read(cx, buf)) {
            // TCP end-of-file without close_notify: the WebSocket closing handshake, not TLS,
            // tells a complete conversation from a cut one (see `crate::tls`).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            result => Poll::Ready(result),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Sends `close_notify`, then shuts down the transport's write direction.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
