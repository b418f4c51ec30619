//! The opening handshake over a blocking transport: the driver runs `ClientHandshake` /
//! `ServerHandshake` as it runs a connection.

use super::driver::{Driver, Outcome};
use super::{Transport, WebSocket};
use crate::adapters::client_handshake_failed;
use crate::config::Config;
use crate::connection::Role;
use crate::entropy::default_entropy;
use crate::error::{Error, HandshakeError, ProtocolError};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, Refusal, Reject, Request, Response, ServerHandshake,
};
use crate::trace::Trace;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// Performs the client handshake over an already connected transport, bounded by
/// `Config::handshake_timeout` (the writes too, on transports with write timeouts).
///
/// # Errors
/// [`Error::Rejected`] (with the server's status, headers and body) if the server answers
/// other than 101, [`Error::Handshake`] if it answers wrongly or too late,
/// [`Error::Io`] on transport failure (of kind `WouldBlock` for a non-blocking transport:
/// the handshake needs a blocking one), [`Error::Usage`] for invalid caller-supplied values.
pub fn client<S: Transport>(
    stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    client_started(stream, request, config, Instant::now(), None)
}

/// [`client`], for a connection whose handshake time budget started at `start` (before
/// connecting and TLS).
pub(super) fn client_started<S: Transport>(
    stream: S,
    request: ClientRequest,
    config: Config,
    start: Instant,
    peer: Option<SocketAddr>,
) -> Result<(WebSocket<S>, Response), Error> {
    let trace = Trace::new(Role::Client, peer);
    let result = client_handshake(stream, request, config, start, &trace);
    match &result {
        Ok((_, response)) => trace.handshake_done(response.status(), response.protocol()),
        Err(e) => trace.handshake_failed(e),
    }
    result
}

/// [`client_started`] without the reporting.
fn client_handshake<S: Transport>(
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
    driver.bound_writes(true)?;
    let done = driver.drive(&mut hs, |hs| hs.is_complete().then_some(()));
    match blocking_only(done)? {
        Outcome::Step(()) => {}
        // A rejection carries the server's response (status, headers, body).
        Outcome::Ended => return Err(client_handshake_failed(hs)),
    }
    driver.bound_writes(false)?;
    let (conn, response) = hs.into_connection()?;
    Ok((
        WebSocket::with_driver(driver, conn, trace.clone()),
        response,
    ))
}

/// Performs the server handshake, accepting any valid WebSocket request.
///
/// # Errors
/// [`Error::Handshake`] for an invalid request (its HTTP rejection was written first),
/// [`Error::Io`] on transport failure.
pub fn accept<S: Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), |_| Ok(Accept::new()))
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
pub fn accept_with<S, F>(stream: S, config: Config, callback: F) -> Result<WebSocket<S>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let trace = Trace::new(Role::Server, None);
    let mut protocol = None;
    let result = server_handshake(stream, config, callback, &trace, &mut protocol);
    match &result {
        Ok(_) => trace.handshake_done(101, protocol.as_deref()),
        Err(e) => trace.handshake_failed(e),
    }
    result
}

/// [`accept_with`] without the reporting; `protocol` gets the subprotocol accepted.
fn server_handshake<S, F>(
    stream: S,
    config: Config,
    callback: F,
    trace: &Trace,
    protocol: &mut Option<String>,
) -> Result<WebSocket<S>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = ServerHandshake::new(config);
    // The time budget counts from the driver's start (before TLS, for `accept_tls`).
    hs.handle_timeout(std::time::Duration::ZERO);
    let mut driver = Driver::new(stream, Instant::now());
    driver.bound_writes(true)?;
    let read = driver.drive(&mut hs, |hs| hs.request().is_some().then_some(()));
    if let Outcome::Ended = blocking_only(read)? {
        return Err(hs.error().unwrap_or(HandshakeError::UnexpectedEof).into());
    }
    let decision = callback(hs.request().ok_or(HandshakeError::UnexpectedEof)?);
    protocol.clone_from(&decision.as_ref().ok().and_then(|a| a.protocol.clone()));
    let mut conn = match hs.respond(decision) {
        Ok(conn) => conn,
        Err(refusal) => {
            // Write the response that ends the exchange, bounded by the handshake.
            let _ = driver.drive(&mut hs, |_| None::<()>);
            return Err(refused(refusal));
        }
    };
    let flushed = driver.drive(&mut conn, |c| (!c.handshake_unwritten()).then_some(()));
    if let Outcome::Ended = blocking_only(flushed)? {
        return Err(match conn.error() {
            Some(ProtocolError::HandshakeTimeout) | None => HandshakeError::Timeout.into(),
            Some(e) => e.into(),
        });
    }
    driver.bound_writes(false)?;
    Ok(WebSocket::with_driver(driver, conn, trace.clone()))
}

/// The error a refused handshake reports.
pub(super) fn refused(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Rejected(status) => HandshakeError::Rejected(status).into(),
        Refusal::Invalid(e) => e.into(),
    }
}

/// The opening handshake cannot be resumed: on a non-blocking transport it fails clearly
/// instead of spinning.
fn blocking_only<T>(result: Result<T, Error>) -> Result<T, Error> {
    result.map_err(|e| match e {
        Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock => Error::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the opening handshake needs a blocking transport (set the socket non-blocking \
             after it)",
        )),
        other => other,
    })
}
