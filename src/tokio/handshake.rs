//! The opening handshake over an async stream: loops that pump `ClientHandshake` /
//! `ServerHandshake`, bounded by `Config::handshake_timeout`.

use super::WebSocket;
use super::tls::MaybeTlsStream;
use crate::config::Config;
use crate::entropy::default_entropy;
use crate::error::{Error, HandshakeError, UsageError};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, Reject, Request, Response, ServerHandshake,
};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
use ::tokio::time::{Instant, timeout_at};
use core::time::Duration;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Poll, ready};

/// Opens a TCP connection to a `ws://` URI (or, with the `tokio-rustls` feature, a TLS
/// connection to a `wss://` URI, trusting the
/// [`webpki-roots`](crate::tls::default_client_config)) and performs the client handshake.
///
/// Connecting (and TLS) and the handshake together are bounded by
/// `Config::handshake_timeout`. Not cancel safe: dropping the future abandons the connection.
///
/// # Errors
/// [`Error::Usage`] for a bad URI (or `wss://` without the `tokio-rustls` feature),
/// [`Error::Io`] if the connection fails (a TLS failure, such as an untrusted certificate, is
/// of kind [`InvalidData`](io::ErrorKind::InvalidData)), [`Error::Handshake`] if the server
/// refuses or the handshake times out.
pub async fn connect(uri: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(ClientRequest::new(uri)?, Config::default()).await
}

/// Like [`connect`], with a request builder (subprotocols, headers) and a config.
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    #[cfg(feature = "tokio-rustls")]
    {
        super::tls::connect_tls(request, config, crate::tls::default_client_config()).await
    }
    #[cfg(not(feature = "tokio-rustls"))]
    {
        if request.is_tls() {
            let reason = "wss:// needs the tokio-rustls feature";
            return Err(UsageError::InvalidUri(reason).into());
        }
        let start = Instant::now();
        let stream = connect_tcp(&request, &config, start).await?;
        client_started(MaybeTlsStream::Plain(stream), request, config, start).await
    }
}

/// Opens the TCP connection to the request's host and port, or through its proxy (see
/// `super::proxy`), by `Config::handshake_timeout` after `start`.
pub(super) async fn connect_tcp(
    request: &ClientRequest,
    config: &Config,
    start: Instant,
) -> Result<TcpStream, Error> {
    super::proxy::connect_tcp(request, config, start).await
}

/// Performs the client handshake over an already connected stream.
///
/// Bounded by `Config::handshake_timeout`. Not cancel safe.
///
/// # Errors
/// [`Error::Handshake`] if the server refuses, answers wrongly or too late, [`Error::Io`] on
/// transport failure, [`Error::Usage`] for invalid caller-supplied values.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    client_started(stream, request, config, Instant::now()).await
}

/// [`client`], for a connection whose handshake time budget started at `start` (before
/// connecting and TLS).
pub(super) async fn client_started<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: ClientRequest,
    config: Config,
    start: Instant,
) -> Result<(WebSocket<S>, Response), Error> {
    let mut hs = ClientHandshake::new(request, config, default_entropy())?;
    hs.handle_timeout(Duration::ZERO);
    let deadline = hs.poll_timeout().and_then(|d| start.checked_add(d));
    let sent = write_handshake(
        &mut stream,
        &mut hs,
        ClientHandshake::pending_transmit,
        ClientHandshake::advance_transmit,
        deadline,
    );
    if !sent.await? {
        hs.handle_timeout(start.elapsed());
        return Err(hs.error().unwrap_or(HandshakeError::Timeout).into());
    }
    let mut buf = vec![0u8; 4096];
    while !hs.is_complete() {
        let deadline = hs.poll_timeout().and_then(|d| start.checked_add(d));
        match read_until(&mut stream, &mut buf, deadline).await? {
            ReadOutcome::Data(n) => hs.receive(&buf[..n])?,
            ReadOutcome::Eof => hs.receive_eof()?,
            ReadOutcome::TimedOut => {
                hs.handle_timeout(start.elapsed());
                if let Some(e) = hs.error() {
                    return Err(e.into());
                }
            }
        }
    }
    let (conn, response) = hs.into_connection()?;
    Ok((WebSocket::new(stream, conn, start), response))
}

/// Performs the server handshake, accepting any valid WebSocket request.
///
/// Bounded by `Config::handshake_timeout` (default 10 s): a peer that sends half a request
/// and stalls is answered 408 and dropped. Not cancel safe.
///
/// # Errors
/// [`Error::Handshake`] for an invalid or late request (its HTTP rejection was written
/// first), [`Error::Io`] on transport failure.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), |_| Ok(Accept::new())).await
}

/// Performs the server handshake; `callback` sees the request (path, headers, Origin,
/// offered subprotocols) and accepts it (choosing a subprotocol, adding headers) or rejects it
/// with an HTTP response.
///
/// # Errors
/// As [`accept`]; a rejection is written to the peer and reported as
/// [`HandshakeError::Rejected`].
pub async fn accept_with<S, F>(
    stream: S,
    config: Config,
    callback: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    accept_started(stream, config, callback, Instant::now()).await
}

/// [`accept_with`], for a connection whose handshake time budget started at `start` (before
/// TLS).
pub(super) async fn accept_started<S, F>(
    mut stream: S,
    config: Config,
    callback: F,
    start: Instant,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let handshake_deadline = start.checked_add(config.handshake_timeout);
    // Writing a rejection to a peer that does not read is bounded too.
    let linger = config.close_timeout;
    let mut hs = ServerHandshake::new(config);
    hs.handle_timeout(Duration::ZERO);
    let mut buf = vec![0u8; 4096];
    while hs.request().is_none() {
        let deadline = hs.poll_timeout().and_then(|d| start.checked_add(d));
        let step = match read_until(&mut stream, &mut buf, deadline).await? {
            ReadOutcome::Data(n) => hs.receive(&buf[..n]),
            ReadOutcome::Eof => hs.receive_eof(),
            ReadOutcome::TimedOut => {
                hs.handle_timeout(start.elapsed());
                hs.error().map_or(Ok(()), Err)
            }
        };
        if let Err(e) = step {
            // The rejection (if any) is queued; deliver it before giving up.
            let _ = send_rejection(&mut stream, &mut hs, linger).await;
            return Err(e.into());
        }
    }
    let request = hs.request().ok_or(UsageError::HandshakeState)?;
    match callback(request) {
        Ok(accept) => {
            let conn = match hs.accept(accept) {
                Ok(conn) => conn,
                Err(e) => {
                    // A callback asking for something impossible is our side's fault: 500.
                    hs.reject(Reject::new(500))?;
                    let _ = send_rejection(&mut stream, &mut hs, linger).await;
                    return Err(e.into());
                }
            };
            let mut ws = WebSocket::new(stream, conn, start);
            // The 101 response is queued in the connection.
            match handshake_deadline {
                Some(at) => timeout_at(at, ws.flush())
                    .await
                    .map_err(|_| HandshakeError::Timeout)??,
                None => ws.flush().await?,
            }
            Ok(ws)
        }
        Err(reject) => {
            let status = reject.status();
            hs.reject(reject)?;
            send_rejection(&mut stream, &mut hs, linger).await?;
            Err(HandshakeError::Rejected(status).into())
        }
    }
}

/// Writes the server handshake's queued response, then shuts down the write half; gives up
/// after `linger`.
async fn send_rejection<S: AsyncWrite + Unpin>(
    stream: &mut S,
    hs: &mut ServerHandshake,
    linger: Duration,
) -> io::Result<()> {
    let deadline = Instant::now().checked_add(linger);
    let pending = ServerHandshake::pending_transmit;
    if write_handshake(
        stream,
        hs,
        pending,
        ServerHandshake::advance_transmit,
        deadline,
    )
    .await?
    {
        let shutdown = poll_fn(|cx| Pin::new(&mut *stream).poll_shutdown(cx));
        match deadline {
            Some(at) => timeout_at(at, shutdown).await.unwrap_or(Ok(()))?,
            None => shutdown.await?,
        }
    }
    Ok(())
}

/// Writes everything a handshake has queued; `Ok(false)` if `deadline` passed first.
async fn write_handshake<S: AsyncWrite + Unpin, H>(
    stream: &mut S,
    hs: &mut H,
    pending: fn(&H) -> &[u8],
    advance: fn(&mut H, usize),
    deadline: Option<Instant>,
) -> io::Result<bool> {
    let write_all = poll_fn(|cx| {
        loop {
            let chunk = pending(hs);
            if chunk.is_empty() {
                return Pin::new(&mut *stream).poll_flush(cx);
            }
            match ready!(Pin::new(&mut *stream).poll_write(cx, chunk)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => advance(hs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    });
    match deadline {
        Some(at) => match timeout_at(at, write_all).await {
            Ok(result) => result.map(|()| true),
            Err(_) => Ok(false),
        },
        None => write_all.await.map(|()| true),
    }
}

enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
}

/// Reads once, giving up at `deadline`.
async fn read_until<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<ReadOutcome> {
    let read = poll_fn(|cx| {
        let mut rb = ReadBuf::new(&mut *buf);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut rb))?;
        Poll::Ready(Ok::<_, io::Error>(rb.filled().len()))
    });
    let n = match deadline {
        Some(at) => match timeout_at(at, read).await {
            Ok(result) => result?,
            Err(_) => return Ok(ReadOutcome::TimedOut),
        },
        None => read.await?,
    };
    Ok(if n == 0 {
        ReadOutcome::Eof
    } else {
        ReadOutcome::Data(n)
    })
}
