//! Opening a client connection: TCP, then TLS for `wss://`, then the handshake, together
//! bounded by `Config::handshake_timeout`. Above both `handshake.rs` and `tls.rs`, which do
//! not know about each other.

use super::handshake::client_started;
use super::{MaybeTlsStream, WebSocket};
use crate::config::Config;
use crate::error::Error;
use crate::handshake::{ClientRequest, IntoClientRequest, Response};
use ::tokio::net::TcpStream;
use ::tokio::time::Instant;
#[cfg(feature = "tokio-rustls")]
use {
    super::tls::{TlsStream, within_handshake_timeout},
    rustls::ClientConfig,
    std::sync::Arc,
};

/// Opens a TCP connection to a `ws://` URI (or, with the `tokio-rustls` feature, a TLS
/// connection to a `wss://` URI, trusting the
/// [`webpki-roots`](crate::tls::default_client_config)) and performs the client handshake.
///
/// `request` is anything [`IntoClientRequest`]: a URI as `&str` or `String`, a
/// [`ClientRequest`], or with the `http` feature an `http::Uri` or
/// `http::Request<()>`.
///
/// Connecting (and TLS) and the handshake together are bounded by
/// `Config::handshake_timeout`. Not cancel safe: dropping the future abandons the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rfc6455::handshake::Accept;
/// use rfc6455::{ClientRequest, CloseCode, Config, tokio as ws};
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// tokio::spawn(async move {
///     while let Ok((tcp, _)) = listener.accept().await {
///         tokio::spawn(async move {
///             // Choose the client's first subprotocol, if it offered any.
///             let mut socket = ws::accept_with(tcp, Config::default(), |request| {
///                 Ok(match request.protocols().next() {
///                     Some(first) => Accept::new().protocol(first),
///                     None => Accept::new(),
///                 })
///             })
///             .await?;
///             while socket.recv().await?.is_some() {}
///             Ok::<_, rfc6455::Error>(())
///         });
///     }
/// });
///
/// // A plain URI ...
/// let (mut socket, response) = ws::connect(format!("ws://{addr}/")).await?;
/// assert_eq!(response.protocol(), None);
/// socket.close(CloseCode::NORMAL, "").await?;
/// // ... or a request with subprotocols and headers.
/// let request = ClientRequest::new(&format!("ws://{addr}/"))?.protocol("chat.v2");
/// let (mut socket, response) = ws::connect_with(request, Config::default()).await?;
/// assert_eq!(response.protocol(), Some("chat.v2"));
/// socket.close(CloseCode::NORMAL, "").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Usage`] for a bad URI (or `wss://` without the `tokio-rustls` feature),
/// [`Error::Io`] if the connection fails (a TLS failure, such as an untrusted certificate, is
/// of kind [`InvalidData`](std::io::ErrorKind::InvalidData)), [`Error::Rejected`] (with the
/// server's status, headers and body) if the server answers other than 101,
/// [`Error::Handshake`] if it answers wrongly or the handshake times out.
pub async fn connect(
    request: impl IntoClientRequest,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(request, Config::default()).await
}

/// Like [`connect`], with a config. `request` may be a URI or a
/// [`ClientRequest`] builder (subprotocols, headers), or with the
/// `http` feature an `http::Request<()>`: anything [`IntoClientRequest`].
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    request: impl IntoClientRequest,
    config: Config,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let request = request.into_client_request()?;
    #[cfg(feature = "tokio-rustls")]
    {
        connect_tls(request, config, crate::tls::default_client_config()).await
    }
    #[cfg(not(feature = "tokio-rustls"))]
    {
        if request.is_tls() {
            let reason = "wss:// needs the tokio-rustls feature";
            return Err(crate::error::UsageError::InvalidUri(reason).into());
        }
        let start = Instant::now();
        let stream = connect_tcp(&request, &config, start).await?;
        let peer = stream.peer_addr().ok();
        client_started(MaybeTlsStream::Plain(stream), request, config, start, peer).await
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
/// [`Error::Io`] of kind [`InvalidData`](std::io::ErrorKind::InvalidData) wrapping the
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
    request: impl IntoClientRequest,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let request = request.into_client_request()?;
    let start = Instant::now();
    let name = if request.is_tls() {
        Some(crate::tls::server_name(request.host())?)
    } else {
        None
    };
    let tcp = connect_tcp(&request, &config, start).await?;
    let peer = tcp.peer_addr().ok();
    let stream = match name {
        Some(name) => {
            let handshake = tokio_rustls::TlsConnector::from(tls).connect(name, tcp);
            let tls = within_handshake_timeout(&config, start, handshake).await?;
            MaybeTlsStream::Tls(Box::new(TlsStream::from_inner(tls.into())))
        }
        None => MaybeTlsStream::Plain(tcp),
    };
    client_started(stream, request, config, start, peer).await
}

/// Opens the TCP connection to the request's host and port, or through its proxy (see
/// `super::proxy`), by `Config::handshake_timeout` after `start`.
async fn connect_tcp(
    request: &ClientRequest,
    config: &Config,
    start: Instant,
) -> Result<TcpStream, Error> {
    super::proxy::connect_tcp(request, config, start).await
}
