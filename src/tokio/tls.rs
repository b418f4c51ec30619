//! The tokio adapter's streams for `ws://` and `wss://`, and its TLS entry points (feature
//! `tokio-rustls`; see [`crate::tls`]).

#[cfg(feature = "tokio-rustls")]
use super::WebSocket;
#[cfg(feature = "tokio-rustls")]
use super::handshake::{accept_started, client_started, connect_tcp};
#[cfg(feature = "tokio-rustls")]
use crate::config::Config;
#[cfg(feature = "tokio-rustls")]
use crate::error::{Error, HandshakeError};
#[cfg(feature = "tokio-rustls")]
use crate::handshake::{Accept, ClientRequest, Reject, Request, Response};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
#[cfg(feature = "tokio-rustls")]
use ::tokio::time::{Instant, timeout_at};
#[cfg(feature = "tokio-rustls")]
use rustls::{ClientConfig, ServerConfig};
use std::io::{self, IoSlice};
use std::pin::Pin;
#[cfg(feature = "tokio-rustls")]
use std::sync::Arc;
use std::task::{Context, Poll};

/// The stream of a connection opened by [`connect`](super::connect): TCP for `ws://`, TLS
/// over TCP for `wss://` (feature `tokio-rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection (boxed: the TLS state is large).
    #[cfg(feature = "tokio-rustls")]
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath (for its addresses or socket options; reading or writing it
    /// directly corrupts the connection).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => tls.get_ref(),
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "tokio-rustls")]
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Like [`connect_with`](super::connect_with), with a caller's TLS client config for
/// `wss://` (a private CA, client certificates, ALPN); `ws://` URIs connect without TLS.
///
/// Connecting, the TLS handshake and the WebSocket handshake together are bounded by
/// `Config::handshake_timeout`. Not cancel safe.
///
/// # Errors
/// As [`connect`](super::connect); a TLS failure (e.g. an untrusted certificate) is an
/// [`Error::Io`] of kind [`InvalidData`](io::ErrorKind::InvalidData) wrapping the
/// [`rustls::Error`].
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), rfc6455::Error> {
/// use rfc6455::{ClientRequest, Config, tls, tokio as ws};
/// let mut roots = tls::rustls::RootCertStore::empty();
/// # let my_ca_der = tls::rustls::pki_types::CertificateDer::from(Vec::new());
/// roots.add(my_ca_der).expect("a valid CA certificate");
/// let request = ClientRequest::new("wss://internal.example:8443/feed")?;
/// let (mut socket, _) =
///     ws::connect_tls(request, Config::default(), tls::client_config(roots)).await?;
/// socket.send_text("hello").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio-rustls")]
pub async fn connect_tls(
    request: ClientRequest,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let start = Instant::now();
    let name = if request.is_tls() {
        Some(crate::tls::server_name(request.host())?)
    } else {
        None
    };
    let tcp = connect_tcp(&request, &config, start).await?;
    let stream = match name {
        Some(name) => {
            let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, tcp);
            let tls = within_handshake_timeout(&config, start, handshake).await?;
            MaybeTlsStream::Tls(Box::new(TlsStream(tls.into())))
        }
        None => MaybeTlsStream::Plain(tcp),
    };
    client_started(stream, request, config, start).await
}

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
#[cfg(feature = "tokio-rustls")]
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
    accept_started(TlsStream(tls.into()), config, callback, start).await
}

/// Awaits a TLS handshake until `Config::handshake_timeout` after `start`.
#[cfg(feature = "tokio-rustls")]
async fn within_handshake_timeout<T>(
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
/// [`accept_tls`] returns and what a `wss://` [`MaybeTlsStream`] holds.
///
/// A TCP end-of-file without `close_notify` reads as end-of-file (see [`crate::tls`]); the
/// write shutdown sends `close_notify` first.
#[cfg(feature = "tokio-rustls")]
#[derive(Debug)]
pub struct TlsStream<S>(tokio_rustls::TlsStream<S>);

#[cfg(feature = "tokio-rustls")]
impl<S> TlsStream<S> {
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

#[cfg(feature = "tokio-rustls")]
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

#[cfg(feature = "tokio-rustls")]
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
