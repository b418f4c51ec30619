//! The opening handshake over an async stream: the driver runs `ClientHandshake` /
//! `ServerHandshake` as it runs a connection, bounded by their timers.

use super::WebSocket;
use super::driver::{Driver, Outcome};
use crate::adapters::client_handshake_failed;
use crate::config::Config;
use crate::connection::Role;
use crate::entropy::default_entropy;
use crate::error::{Error, HandshakeError, ProtocolError};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, Refusal, Reject, Request, Response, ServerHandshake,
};
use crate::trace::Trace;
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::time::Instant;
use std::future::poll_fn;
use std::net::SocketAddr;

/// Performs the client handshake over an already connected stream.
///
/// Bounded by `Config::handshake_timeout`. Not cancel safe.
///
/// # Errors
/// [`Error::Rejected`] (with the server's status, headers and body) if the server answers
/// other than 101, [`Error::Handshake`] if it answers wrongly or too late, [`Error::Io`] on
/// transport failure, [`Error::Usage`] for invalid caller-supplied values.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    client_started(stream, request, config, Instant::now(), None).await
}

/// [`client`], for a connection whose handshake time budget started at `start` (before
/// connecting and TLS).
pub(super) async fn client_started<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: ClientRequest,
    config: Config,
    start: Instant,
    peer: Option<SocketAddr>,
) -> Result<(WebSocket<S>, Response), Error> {
    let trace = Trace::new(Role::Client, peer);
    // Boxed: the handshake's state (its buffers, the driver, the connection) lives on the
    // heap while it runs and is freed once it is done, so the caller's task keeps only the
    // `WebSocket` for the rest of the connection (see `accept_started`).
    let result = Box::pin(client_handshake(stream, request, config, start, &trace)).await;
    match &result {
        Ok((_, response)) => trace.handshake_done(response.status(), response.protocol()),
        Err(e) => trace.handshake_failed(e),
    }
    result
}

/// [`client_started`] without the reporting.
async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: ClientRequest,
    config: Config,
    start: Instant,
    trace: &Trace,
) -> Result<(WebSocket<S>, Response), Error> {
    let mut hs = ClientHandshake::new(request, config, default_entropy())?;
    // The time budget counts from `start`, before connecting and TLS.
    hs.handle_timeout(std::time::Duration::ZERO);
    let mut driver = Driver::new(stream, start);
    let step = |hs: &mut ClientHandshake| hs.is_complete().then_some(());
    match poll_fn(|cx| driver.poll_drive(cx, &mut hs, step)).await? {
        Outcome::Step(()) => {}
        // A rejection carries the server's response (status, headers, body).
        Outcome::Ended => return Err(client_handshake_failed(hs)),
    }
    let (conn, response) = hs.into_connection()?;
    Ok((
        WebSocket::with_driver(driver, conn, trace.clone()),
        response,
    ))
}

/// Performs the server handshake, accepting any valid WebSocket request.
///
/// Bounded by `Config::handshake_timeout` (default 10 s): a peer that sends half a request
/// and stalls is answered 408 and dropped. Not cancel safe.
///
/// The default [`Config`] refuses a browser page of another host with 403 (see
/// [`OriginPolicy`](crate::handshake::OriginPolicy)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), rfc6455::Error> {
/// use rfc6455::{ClientRequest, CloseCode, Config, tokio as ws};
///
/// // An in-memory pair of streams stands in for a TCP connection.
/// let (client_io, server_io) = tokio::io::duplex(64 * 1024);
/// let server = tokio::spawn(async move {
///     let mut socket = ws::accept(server_io).await?;
///     let greeting = socket.recv().await?;
///     socket.close(CloseCode::NORMAL, "").await?;
///     Ok::<_, rfc6455::Error>(greeting)
/// });
/// let request = ClientRequest::new("ws://localhost/chat")?;
/// let (mut client, _) = ws::client(client_io, request, Config::default()).await?;
/// client.send_text("hi").await?;
/// assert_eq!(client.recv().await?, None); // the server closed; the handshake completed
/// assert_eq!(server.await.expect("no panic")?, Some("hi".into()));
/// # Ok(()) }
/// ```
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
/// Reading the request and writing the 101 are bounded by `Config::handshake_timeout`;
/// writing a rejection by `Config::close_timeout`.
///
/// # Errors
/// As [`accept`]; a rejection is written to the peer and reported as
/// [`HandshakeError::Rejected`]; an `Accept` the handshake cannot honour is answered 500 and
/// reported as the [`Error::Usage`] it is.
pub async fn accept_with<S, F>(
    stream: S,
    config: Config,
    callback: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    accept_started(stream, config, callback, Instant::now(), None).await
}

/// [`accept_with`], for a connection whose handshake time budget started at `start` (before
/// TLS).
pub(super) async fn accept_started<S, F>(
    stream: S,
    config: Config,
    callback: F,
    start: Instant,
    peer: Option<SocketAddr>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let trace = Trace::new(Role::Server, peer);
    let mut protocol = None;
    // Boxed: a task that awaits this future and then serves the connection is as large as
    // the larger of the two states, and the handshake's (request buffer, `ServerHandshake`,
    // the driver and the `Connection` together) is over three times a `WebSocket`. On the
    // heap it is freed once the handshake is done (idle memory per connection before and
    // after: `benches/README.md`).
    let result = Box::pin(server_handshake(
        stream,
        config,
        callback,
        start,
        &trace,
        &mut protocol,
    ))
    .await;
    match &result {
        Ok(_) => trace.handshake_done(101, protocol.as_deref()),
        Err(e) => trace.handshake_failed(e),
    }
    result
}

/// [`accept_started`] without the reporting; `protocol` gets the subprotocol accepted.
async fn server_handshake<S, F>(
    stream: S,
    config: Config,
    callback: F,
    start: Instant,
    trace: &Trace,
    protocol: &mut Option<String>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(config);
    // The time budget counts from the driver's start (before TLS, for `accept_tls`).
    hs.handle_timeout(std::time::Duration::ZERO);
    let mut driver = Driver::new(stream, start);
    let step = |hs: &mut ServerHandshake| hs.request().is_some().then_some(());
    if let Outcome::Ended = poll_fn(|cx| driver.poll_drive(cx, &mut hs, step)).await? {
        return Err(hs.error().unwrap_or(HandshakeError::UnexpectedEof).into());
    }
    let decision = callback(hs.request().ok_or(HandshakeError::UnexpectedEof)?);
    protocol.clone_from(&decision.as_ref().ok().and_then(|a| a.protocol.clone()));
    let mut conn = match hs.respond(decision) {
        Ok(conn) => conn,
        Err(refusal) => {
            // Write the response that ends the exchange (bounded by the handshake's linger).
            let never = |_: &mut ServerHandshake| None::<()>;
            let _ = poll_fn(|cx| driver.poll_drive(cx, &mut hs, never)).await;
            return Err(match refusal {
                Refusal::Rejected(status) => HandshakeError::Rejected(status).into(),
                Refusal::Invalid(e) => e.into(),
            });
        }
    };
    // The 101 is queued in the connection, bounded by the handshake timeout.
    let written = |c: &mut crate::Connection| (!c.handshake_unwritten()).then_some(());
    if let Outcome::Ended = poll_fn(|cx| driver.poll_drive(cx, &mut conn, written)).await? {
        return Err(match conn.error() {
            Some(ProtocolError::HandshakeTimeout) | None => HandshakeError::Timeout.into(),
            Some(e) => e.into(),
        });
    }
    Ok(WebSocket::with_driver(driver, conn, trace.clone()))
}
