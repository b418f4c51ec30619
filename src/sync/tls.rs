//! The blocking adapter's streams for `ws://` and `wss://`, and its TLS entry points
//! (feature `rustls`; see [`crate::tls`]).

use super::Transport;
#[cfg(feature = "rustls")]
use super::{WebSocket, accept_with, client};
use crate::config::Config;
use crate::error::Error;
use crate::handshake::ClientRequest;
#[cfg(feature = "rustls")]
use crate::handshake::{Accept, Reject, Request, Response};
#[cfg(feature = "rustls")]
use rustls::{ClientConfig, ServerConfig};
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
#[cfg(feature = "rustls")]
use std::sync::Arc;
use std::time::Duration;

/// The stream of a connection opened by [`connect`](super::connect): TCP for `ws://`, TLS
/// over TCP for `wss://` (feature `rustls`).
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection (boxed: the TLS state is large).
    #[cfg(feature = "rustls")]
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath (for its addresses or socket options; reading or writing it
    /// directly corrupts the connection).
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.flush(),
        }
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => Transport::set_read_timeout(tcp, timeout),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.set_read_timeout(timeout),
        }
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.shutdown_write(),
            #[cfg(feature = "rustls")]
            Self::Tls(tls) => tls.shutdown_write(),
        }
    }
}

/// Opens the TCP connection to the request's host and port, or through its proxy (see
/// `super::proxy`), by `Config::handshake_timeout`.
pub(super) fn connect_tcp(request: &ClientRequest, config: &Config) -> Result<TcpStream, Error> {
    super::proxy::connect_tcp(request, config)
}

/// Like [`connect_with`](super::connect_with), with a caller's TLS client config for
/// `wss://` (a private CA, client certificates, ALPN); `ws://` URIs connect without TLS.
///
/// The TLS handshake runs inside the WebSocket handshake's time budget
/// (`Config::handshake_timeout`).
///
/// # Errors
/// As [`connect`](super::connect); a TLS failure (e.g. an untrusted certificate) is an
/// [`Error::Io`] of kind [`InvalidData`](io::ErrorKind::InvalidData) wrapping the
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
    request: ClientRequest,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let name = if request.is_tls() {
        Some(crate::tls::server_name(request.host())?)
    } else {
        None
    };
    let tcp = connect_tcp(&request, &config)?; // through the proxy, if any: TLS runs inside
    let stream = match name {
        Some(name) => {
            let session = rustls::ClientConnection::new(tls, name).map_err(io::Error::other)?;
            MaybeTlsStream::Tls(Box::new(TlsStream::new(session, tcp)))
        }
        None => MaybeTlsStream::Plain(tcp),
    };
    client(stream, request, config)
}

/// Runs a TLS server handshake with `tls` over `stream`, then the WebSocket handshake as
/// [`accept_with`]; the two together are bounded by `Config::handshake_timeout`.
///
/// # Errors
/// As [`accept_with`]; a TLS failure (e.g. the client does not trust our certificate) is an
/// [`Error::Io`] of kind [`InvalidData`](io::ErrorKind::InvalidData) wrapping the
/// [`rustls::Error`].
///
/// # Examples
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rfc6455::{Config, handshake::Accept, sync, tls};
/// # let (cert_chain, key) = (Vec::new(), tls::rustls::pki_types::PrivateKeyDer::Pkcs8(Vec::new().into()));
/// let server = tls::server_config(cert_chain, key)?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:8443")?;
/// let (tcp, _) = listener.accept()?;
/// let mut ws = sync::accept_tls(tcp, server, Config::default(), |_| Ok(Accept::new()))?;
/// while let Some(message) = ws.recv()? {
///     ws.send(message)?;
/// }
/// # Ok(()) }
/// ```
#[cfg(feature = "rustls")]
pub fn accept_tls<S, F>(
    stream: S,
    tls: Arc<ServerConfig>,
    config: Config,
    callback: F,
) -> Result<WebSocket<TlsStream<S>>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let session = rustls::ServerConnection::new(tls).map_err(io::Error::other)?;
    // The TLS handshake happens in the first reads of `accept_with`, under its timer.
    accept_with(TlsStream::new(session, stream), config, callback)
}

/// A rustls session over a blocking [`Transport`], itself a [`Transport`]: what
/// [`accept_tls`] returns and what a `wss://` [`MaybeTlsStream`] holds.
///
/// Unlike `rustls::StreamOwned`, a read makes at most one read of the transport: when that
/// brings TLS records but no application data (handshake messages, session tickets, a partial
/// record) it fails with [`Interrupted`](io::ErrorKind::Interrupted), to be retried, so the
/// adapter re-checks its deadlines and a peer trickling bytes cannot hold a read open past
/// them. A TCP end-of-file without `close_notify` reads as end-of-file (see [`crate::tls`]).
#[cfg(feature = "rustls")]
#[derive(Debug)]
pub struct TlsStream<S> {
    session: rustls::Connection,
    stream: S,
}

#[cfg(feature = "rustls")]
impl<S> TlsStream<S> {
    /// Runs `session` over `stream`; the TLS handshake happens during the first reads.
    pub fn new(session: impl Into<rustls::Connection>, stream: S) -> Self {
        Self {
            session: session.into(),
            stream,
        }
    }

    /// The transport underneath.
    #[must_use]
    pub const fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport underneath, mutably (reading or writing it corrupts the session).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The TLS session: negotiated version, ALPN protocol, peer certificates, ...
    #[must_use]
    pub const fn session(&self) -> &rustls::Connection {
        &self.session
    }
}

#[cfg(feature = "rustls")]
impl<S: Read + Write> TlsStream<S> {
    /// Writes every TLS record the session has queued.
    fn write_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(feature = "rustls")]
impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.session.reader().read(buf) {
                Ok(n) => return Ok(n),
                // No data yet: read more records below.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP end-of-file without close_notify: the WebSocket closing handshake, not
                // TLS, tells a complete conversation from a cut one (see `crate::tls`).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Handshake messages, alerts or key-update replies the peer may be waiting for.
            self.write_records()?;
            let n = self.session.read_tls(&mut self.stream)?;
            let state = match self.session.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Best effort: the alert that tells the peer why.
                    let _ = self.write_records();
                    let _ = self.stream.flush();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            if n > 0 && state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() {
                // Progress without data: let the caller look at its clock before reading on.
                self.write_records()?;
                return Err(io::ErrorKind::Interrupted.into());
            }
        }
    }
}

#[cfg(feature = "rustls")]
impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Earlier records first, so the session's buffer stays bounded.
        self.write_records()?;
        let n = self.session.writer().write(buf)?;
        // `n` bytes were taken: a write failure now is reported by the next call.
        let _ = self.write_records();
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_records()?;
        let n = self.session.writer().write_vectored(bufs)?;
        let _ = self.write_records();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.session.writer().flush()?;
        self.write_records()?;
        self.stream.flush()
    }
}

#[cfg(feature = "rustls")]
impl<S: Transport> Transport for TlsStream<S> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Sends `close_notify`, then ends the transport's write direction.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        self.write_records()?;
        self.stream.shutdown_write()
    }
}
