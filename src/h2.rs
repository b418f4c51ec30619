//! WebSocket over HTTP/2 for clients (RFC 8441; feature `h2`), on the `h2` crate.
//!
//! A WebSocket here is one HTTP/2 stream opened by an *extended CONNECT*: method `CONNECT`,
//! `:protocol websocket`, no `Sec-WebSocket-Key`; the server answers `200` instead of `101`
//! and the stream then carries ordinary WebSocket frames (masked by the client, as over
//! TCP) for the same [`Connection`] core. Many WebSockets can share one
//! connection ([`H2Connection::open`]), and a browser page loaded over HTTP/2 opens its
//! WebSockets this way too.
//!
//! ```no_run
//! # async fn run() -> Result<(), rfc6455::Error> {
//! // h2c (`ws://`), or TLS with ALPN h2 for `wss://` (feature `tokio-rustls`).
//! let (mut socket, response) = rfc6455::h2::connect("ws://127.0.0.1:8080/chat").await?;
//! assert_eq!(response.status(), 200);
//! socket.send_text("hello over h2").await?;
//! # Ok(()) }
//! ```
//!
//! The server must have sent `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (RFC 8441 §3);
//! [`H2Connection::handshake`] waits for the server's SETTINGS and `open` fails with
//! [`HandshakeError::InvalidResponse`] when the server did not offer it. A server in this
//! crate: `rfc6455::hyper` (feature `hyper`) on hyper's HTTP/2 with `enable_connect_protocol()`.

use crate::config::Config;
use crate::connection::{Connection, Role};
use crate::entropy::default_entropy;
use crate::error::{Error, HandshakeError, UsageError};
use crate::handshake::http::{self as wire, Head};
use crate::handshake::{
    ClientHandshake, ClientRequest, IntoClientRequest, MAX_REJECTION_BODY, Response,
};
use crate::tokio::WebSocket;
use crate::trace::Trace;
use ::h2::client::SendRequest;
use ::h2::{RecvStream, SendStream};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::{Instant, timeout_at};
use bytes::{Buf, Bytes};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// An HTTP/2 client connection that opens WebSocket streams (RFC 8441).
///
/// Cheap to clone: clones share the connection, whose frames a spawned tokio task reads and
/// writes until every clone and every stream is gone.
#[derive(Debug, Clone)]
pub struct H2Connection {
    send: SendRequest<Bytes>,
    /// The server's address, for the tracing span, when the connect functions know it.
    peer: Option<std::net::SocketAddr>,
}

impl H2Connection {
    /// Runs the HTTP/2 handshake over `io` (TCP for h2c, or TLS that negotiated `h2` by
    /// ALPN), spawns the task that drives the connection, and waits for the server's first
    /// SETTINGS (RFC 8441 §3: a client "MUST NOT send a CONNECT request with :protocol"
    /// before it has seen SETTINGS_ENABLE_CONNECT_PROTOCOL). Bounded by
    /// `Config::handshake_timeout`.
    ///
    /// # Errors
    /// [`Error::Io`] when the HTTP/2 handshake fails, [`Error::Handshake`] with
    /// [`HandshakeError::Timeout`] when it takes too long.
    pub async fn handshake<T>(io: T, config: &Config) -> Result<Self, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let deadline = Instant::now().checked_add(config.handshake_timeout);
        within(deadline, Self::handshake_inner(io)).await
    }

    async fn handshake_inner<T>(io: T) -> Result<Self, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut connection) = ::h2::client::Builder::new()
            // Room for a 1 MiB message in flight on a stream before the reader frees it.
            .initial_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(h2_io)?;
        let mut ping = connection
            .ping_pong()
            .ok_or_else(|| h2_io("no ping handle"))?;
        ::tokio::spawn(async move {
            let _ = connection.await;
        });
        // The server's SETTINGS is the first frame it sends (RFC 9113 §3.4), and h2 applies
        // it before reading further: once our PING is answered, it has been seen.
        ping.ping(::h2::Ping::opaque()).await.map_err(h2_io)?;
        Ok(Self { send, peer: None })
    }

    /// Whether the server allows extended CONNECT (RFC 8441 §3), i.e. WebSockets.
    #[must_use]
    pub fn supports_websocket(&self) -> bool {
        self.send.is_extended_connect_protocol_enabled()
    }

    /// Opens a WebSocket on a new stream: sends the extended CONNECT for `request` (its
    /// path, subprotocols, extensions and headers; its scheme gives `:scheme`, `wss` being
    /// `https`) and checks the answer (RFC 8441 §5, and RFC 6455 §4.1 for the subprotocol
    /// and extensions). The response's status is 200 (or another 2xx).
    ///
    /// # Errors
    /// [`Error::Usage`] for what [`ClientHandshake::new`] refuses; [`Error::Rejected`] for a
    /// non-2xx answer, with its status, headers and the start of its body;
    /// [`Error::Handshake`]: [`HandshakeError::InvalidResponse`] for a server without extended CONNECT or an
    /// answer choosing what was not offered, [`HandshakeError::Timeout`] after
    /// `Config::handshake_timeout`; [`Error::Io`] when the stream or connection fails.
    pub async fn open(
        &self,
        request: impl IntoClientRequest,
        config: Config,
    ) -> Result<(WebSocket<H2Stream>, Response), Error> {
        let request = request.into_client_request()?;
        let deadline = Instant::now().checked_add(config.handshake_timeout);
        let trace = Trace::new(Role::Client, self.peer);
        match within(deadline, self.open_inner(request, config)).await {
            Ok((socket, response)) => {
                trace.handshake_done(response.status(), response.protocol());
                Ok((socket.with_trace(trace), response))
            }
            Err(e) => {
                trace.handshake_failed(&e);
                Err(e)
            }
        }
    }

    async fn open_inner(
        &self,
        request: ClientRequest,
        config: Config,
    ) -> Result<(WebSocket<H2Stream>, Response), Error> {
        // The same checks of the caller's subprotocols, extensions and headers as over
        // HTTP/1.1 (the request it builds is not sent; its nonce is not needed here).
        ClientHandshake::new(
            request.clone(),
            config.clone(),
            Box::new(|d: &mut [u8]| d.fill(0)),
        )?;
        if !self.supports_websocket() {
            return Err(HandshakeError::InvalidResponse(
                "server does not offer extended connect (rfc 8441 settings_enable_connect_protocol)",
            )
            .into());
        }
        let connect = extended_connect(&request)?;
        let mut send = self.send.clone().ready().await.map_err(h2_io)?;
        let (response, stream) = send.send_request(connect, false).map_err(h2_io)?;
        let response = response.await.map_err(h2_io)?;
        let (parts, mut recv) = response.into_parts();
        // RFC 7231 §4.3.6 (CONNECT): "Any 2xx (Successful) response indicates that the
        // sender ... will switch to tunnel mode"; RFC 8441 §5 has the server answer 200.
        if !parts.status.is_success() {
            // As over HTTP/1.1: the status, the headers and the start of the body, for the
            // application to tell the user why (bounded by the handshake timeout too).
            let (body, complete) = rejection_body(&mut recv).await;
            let response =
                Response::from_head(parts.status.as_u16(), head_of(&parts), body, complete);
            return Err(Error::Rejected(Box::new(response)));
        }
        let response = check_response(&parts, &request)?;
        let stream = H2Stream {
            send: stream,
            recv,
            buf: Bytes::new(),
            shut_down: false,
        };
        // EXTENSION HOOK (permessage-deflate, the lead's): install the extension the server
        // agreed to in `response.extensions()` (`Connection::with_extension`), as the
        // HTTP/1.1 client handshake does.
        let connection = Connection::client(config, default_entropy());
        Ok((WebSocket::from_connection(stream, connection), response))
    }
}

/// Connects to `request`'s host (TCP, through its proxy if any, and for `wss://` TLS with
/// ALPN `h2` trusting the webpki roots, feature `tokio-rustls`), runs the HTTP/2 handshake
/// and opens one WebSocket over it (see [`H2Connection::open`]).
///
/// # Errors
/// As [`H2Connection::handshake`] and [`H2Connection::open`];
/// [`UsageError::InvalidUri`] for `wss://` without the `tokio-rustls` feature.
pub async fn connect(
    request: impl IntoClientRequest,
) -> Result<(WebSocket<H2Stream>, Response), Error> {
    connect_with(request, Config::default()).await
}

/// [`connect`] with a config.
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    request: impl IntoClientRequest,
    config: Config,
) -> Result<(WebSocket<H2Stream>, Response), Error> {
    #[cfg(feature = "tokio-rustls")]
    {
        connect_tls(request, config, crate::tls::default_client_config()).await
    }
    #[cfg(not(feature = "tokio-rustls"))]
    {
        let request = request.into_client_request()?;
        if request.is_tls() {
            let reason = "wss:// needs the tokio-rustls feature";
            return Err(UsageError::InvalidUri(reason).into());
        }
        let start = Instant::now();
        let tcp = crate::tokio::proxy::connect_tcp(&request, &config, start).await?;
        let peer = tcp.peer_addr().ok();
        let mut connection = H2Connection::handshake(tcp, &config).await?;
        connection.peer = peer;
        connection.open(request, config).await
    }
}

/// [`connect_with`] with the caller's TLS config for `wss://`; its ALPN protocols are
/// replaced by `h2`, the only one a WebSocket over HTTP/2 can use.
///
/// # Errors
/// As [`connect`]; [`Error::Io`] when TLS fails or the server does not pick `h2`.
#[cfg(feature = "tokio-rustls")]
pub async fn connect_tls(
    request: impl IntoClientRequest,
    config: Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(WebSocket<H2Stream>, Response), Error> {
    let request = request.into_client_request()?;
    let start = Instant::now();
    let tcp = crate::tokio::proxy::connect_tcp(&request, &config, start).await?;
    let peer = tcp.peer_addr().ok();
    let mut connection = if request.is_tls() {
        let name = crate::tls::server_name(request.host())?;
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
        let deadline = start.checked_add(config.handshake_timeout);
        let stream = within(deadline, async {
            connector.connect(name, tcp).await.map_err(Error::Io)
        })
        .await?;
        // RFC 7540 §3.3: h2 over TLS is chosen by ALPN; a server that picked nothing (or
        // http/1.1) would read our preface as garbage.
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server did not negotiate h2 by alpn",
            )
            .into());
        }
        H2Connection::handshake(stream, &config).await?
    } else {
        H2Connection::handshake(tcp, &config).await?
    };
    connection.peer = peer;
    connection.open(request, config).await
}

/// One HTTP/2 stream as a byte stream: DATA frames in and out, END_STREAM as end of file
/// (a read of 0) and as the write shutdown.
pub struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received bytes not yet read; their flow-control window is released as they are read.
    buf: Bytes,
    shut_down: bool,
}

impl std::fmt::Debug for H2Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Stream")
            .field("buffered", &self.buf.len())
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.buf.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(data)) => this.buf = data,
                // The peer reset the stream, or the connection failed.
                Some(Err(e)) => return Poll::Ready(Err(h2_io(e))),
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        // Flow control (RFC 9113 §5.2): the peer may send as much again as was read.
        this.recv
            .flow_control()
            .release_capacity(n)
            .map_err(h2_io)?;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Ask for room for all of it; send what the peer's window allows now.
        this.send.reserve_capacity(data.len());
        let room = match this.send.poll_capacity(cx) {
            Poll::Ready(Some(Ok(room))) => room,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(h2_io(e))),
            Poll::Ready(None) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            Poll::Pending => {
                // No room: also wake up if the peer resets the stream meanwhile.
                return match this.send.poll_reset(cx) {
                    Poll::Ready(Ok(reason)) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        format!("stream reset by the peer: {reason}"),
                    ))),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(h2_io(e))),
                    Poll::Pending => Poll::Pending,
                };
            }
        };
        let n = room.min(data.len());
        this.send
            .send_data(Bytes::copy_from_slice(&data[..n]), false)
            .map_err(h2_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection task writes what `send_data` queued.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut_down {
            this.shut_down = true;
            // RFC 8441 §4: END_STREAM on the stream plays the part of TCP's FIN.
            this.send.send_data(Bytes::new(), true).map_err(h2_io)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// The extended CONNECT for `request` (RFC 8441 §4, §5).
fn extended_connect(request: &ClientRequest) -> Result<http::Request<()>, Error> {
    let mut connect = request.to_http()?;
    // RFC 8441 §5: ":method" is "CONNECT", ":protocol" is "websocket", ":scheme" and
    // ":path" are those of the URI ("https" for wss), and "The Sec-WebSocket-Version
    // header field ... MUST be included" with 13.
    *connect.method_mut() = http::Method::CONNECT;
    *connect.version_mut() = http::Version::HTTP_2;
    let scheme = if request.is_tls() { "https" } else { "http" };
    *connect.uri_mut() = format!("{scheme}://{}{}", request.host_header(), request.path())
        .parse()
        .map_err(|_| UsageError::InvalidUri("not a valid http::Uri"))?;
    // RFC 9113 §8.3.1: the authority goes in ":authority"; no Host next to it.
    connect.headers_mut().remove(http::header::HOST);
    connect.headers_mut().insert(
        http::header::SEC_WEBSOCKET_VERSION,
        http::HeaderValue::from_static("13"),
    );
    connect
        .extensions_mut()
        .insert(::h2::ext::Protocol::from_static("websocket"));
    Ok(connect)
}

/// Checks the server's answer (RFC 8441 §5, RFC 6455 §4.1) and turns it into a
/// [`Response`].
fn check_response(
    parts: &http::response::Parts,
    request: &ClientRequest,
) -> Result<Response, HandshakeError> {
    let response = Response::from_head(parts.status.as_u16(), head_of(parts), Vec::new(), true);
    let head = response.head();
    // RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Extensions| header field
    // and this header field indicates the use of an extension that was not present in the
    // client's handshake ..., the client MUST _Fail the WebSocket Connection_."
    for value in head.values("sec-websocket-extensions") {
        let mut unoffered = false;
        wire::parse_extension_list(value, |name, _| {
            unoffered |= !request.extensions().any(|offer| {
                let mut offered = false;
                let _ = wire::parse_extension_list(offer.as_bytes(), |n, _| offered |= n == name);
                offered
            });
        })
        .map_err(|_| HandshakeError::InvalidResponse("malformed sec-websocket-extensions"))?;
        if unoffered {
            return Err(HandshakeError::InvalidResponse(
                "server chose an extension that was not offered",
            ));
        }
    }
    // RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Protocol| header field and
    // this header field indicates the use of a subprotocol that was not present in the
    // client's handshake ..., the client MUST _Fail the WebSocket Connection_."
    match head.single("sec-websocket-protocol") {
        Err(0) => {}
        Err(_) => {
            return Err(HandshakeError::InvalidResponse(
                "more than one sec-websocket-protocol",
            ));
        }
        Ok(range) => {
            let chosen = &head.bytes()[range];
            if !wire::is_token(chosen) || !request.protocols().any(|p| p.as_bytes() == chosen) {
                return Err(HandshakeError::InvalidResponse(
                    "server chose a subprotocol that was not offered",
                ));
            }
        }
    }
    Ok(response)
}

/// The response's headers, as the byte parser keeps them.
fn head_of(parts: &http::response::Parts) -> Head {
    let fields = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let size = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    Head::assemble(&[], fields, size).0
}

/// The start of a rejection's body: DATA until END_STREAM or `MAX_REJECTION_BODY` bytes
/// (more is not kept, nor waited for); whether that was all of it.
async fn rejection_body(recv: &mut RecvStream) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(data) = std::future::poll_fn(|cx| recv.poll_data(cx)).await else {
            return (body, true);
        };
        let Ok(data) = data else {
            return (body, false);
        };
        let _ = recv.flow_control().release_capacity(data.len());
        let room = MAX_REJECTION_BODY - body.len();
        body.extend_from_slice(&data[..data.len().min(room)]);
        if data.len() >= room {
            // At the cap: complete only if the stream ends right here.
            return (body, data.len() == room && recv.is_end_stream());
        }
    }
}

/// Runs `work` until `deadline` (none: no limit), then fails with
/// [`HandshakeError::Timeout`].
async fn within<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match deadline {
        Some(at) => timeout_at(at, work)
            .await
            .map_err(|_| HandshakeError::Timeout)?,
        None => work.await,
    }
}

fn h2_io(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::other(e)
}
