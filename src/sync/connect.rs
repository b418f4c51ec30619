//! Opening a client connection: TCP, then TLS for `wss://`, then the handshake. Above both
//! `handshake.rs` and `tls.rs`, which do not know about each other.

use super::handshake::client_started;
use super::{MaybeTlsStream, WebSocket};
use crate::config::Config;
use crate::error::Error;
use crate::handshake::{IntoClientRequest, Response};
use std::time::Instant;
#[cfg(feature = "rustls")]
use {super::tls::TlsStream, rustls::ClientConfig, std::io, std::sync::Arc};

/// Opens a TCP connection to a `ws://` URI (or, with the `rustls` feature, a TLS connection
/// to a `wss://` URI, trusting the [`webpki-roots`](crate::tls::default_client_config)) and
/// performs the client handshake.
///
/// `request` is anything [`IntoClientRequest`]: a URI as `&str` or `String`, a
/// [`ClientRequest`](crate::ClientRequest), or with the `http` feature an `http::Uri` or
/// `http::Request<()>`.
///
/// # Errors
/// [`Error::Usage`] for a bad URI (or `wss://` without the `rustls` feature),
/// [`Error::Io`] if the connection fails (a TLS failure, such as an untrusted certificate, is
/// of kind [`InvalidData`](std::io::ErrorKind::InvalidData)), [`Error::Rejected`] (with the
/// server's status, headers and body) if the server answers other than 101,
/// [`Error::Handshake`] if it answers wrongly or too late.
pub fn connect(
    request: impl IntoClientRequest,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(request, Config::default())
}

/// Like [`connect`], with a config. `request` may be a URI or a
/// [`ClientRequest`](crate::ClientRequest) builder (subprotocols, headers), or with the
/// `http` feature an `http::Request<()>`: anything [`IntoClientRequest`].
///
/// # Errors
/// As [`connect`].
pub fn connect_with(
    request: impl IntoClientRequest,
    config: Config,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let request = request.into_client_request()?;
    #[cfg(feature = "rustls")]
    {
        connect_tls(request, config, crate::tls::default_client_config())
    }
    #[cfg(not(feature = "rustls"))]
    {
        if request.is_tls() {
            let reason = "wss:// needs the rustls feature";
            return Err(crate::error::UsageError::InvalidUri(reason).into());
        }
        let start = Instant::now();
        let stream = super::proxy::connect_tcp(&request, &config)?;
        let peer = stream.peer_addr().ok();
        client_started(MaybeTlsStream::Plain(stream), request, config, start, peer)
    }
}

/// Like [`connect_with`], with a caller's TLS client config for `wss://` (a private CA,
/// client certificates, ALPN); `ws://` URIs connect without TLS.
///
/// The TLS handshake runs inside the WebSocket handshake's time budget
/// (`Config::handshake_timeout`).
///
/// # Errors
/// As [`connect`]; a TLS failure (e.g. an untrusted certificate) is an
/// [`Error::Io`] of kind [`InvalidData`](std::io::ErrorKind::InvalidData) wrapping the
/// [`rustls::Error`].
///
/// # Examples
/// ```no_run
/// # fn main() -> Result<(), rfc6455::Error> {
/// use rfc6455::{Config, ClientRequest, sync, tls};
/// let mut roots = tls::rustls::RootCertStore::empty();
/// # let my_ca_der = tls::rustls::pki_types::CertificateDer::from(Vec::new());
/// roots.add(my_ca_der).expect("a valid CA certificate");
/// let request = ClientRequest::new("wss://internal.example:8443/feed")?;
/// let (mut ws, _) = sync::connect_tls(request, Config::default(), tls::client_config(roots))?;
/// ws.send_text("hello")?;
/// # Ok(()) }
/// ```
#[cfg(feature = "rustls")]
pub fn connect_tls(
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
    // Through the proxy, if any: TLS runs inside the tunnel.
    let tcp = super::proxy::connect_tcp(&request, &config)?;
    let peer = tcp.peer_addr().ok();
    let stream = match name {
        Some(name) => {
            let session = rustls::ClientConnection::new(tls, name).map_err(io::Error::other)?;
            MaybeTlsStream::Tls(Box::new(TlsStream::new(session, tcp)))
        }
        None => MaybeTlsStream::Plain(tcp),
    };
    // The TLS handshake happens in the first reads of the WebSocket handshake, under its
    // timer.
    client_started(stream, request, config, start, peer)
}
