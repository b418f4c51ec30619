//! The blocking adapter's TCP connect: straight to the server, or to a proxy and through
//! it ([`crate::proxy`]), bounded by `Config::handshake_timeout`.

use crate::config::Config;
use crate::error::{Error, HandshakeError, ProxyError};
use crate::handshake::ClientRequest;
use crate::proxy::{self, Proxy, Tunnel};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Opens the TCP stream that leads to the request's server: directly, or through the
/// request's proxy (its own, or the environment's if it asked for that). Through a proxy,
/// the stream is returned positioned just after the proxy's answer: the answer is read by
/// peeking and consuming only its bytes, so whatever the server sends first is still in the
/// socket (there are no leftover bytes to hand over).
///
/// Connecting and the proxy exchange are bounded by `Config::handshake_timeout` (name
/// resolution is not: `std` has no resolver with a timeout).
pub(super) fn connect_tcp(request: &ClientRequest, config: &Config) -> Result<TcpStream, Error> {
    let start = Instant::now();
    let deadline = start.checked_add(config.handshake_timeout);
    let Some(proxy) = proxy::for_request(request)? else {
        let stream = connect_deadline((request.host(), request.port()), deadline)
            .map_err(|e| timeout_as(e, HandshakeError::Timeout))?;
        stream.set_nodelay(true)?;
        return Ok(stream);
    };
    let mut stream = connect_deadline((proxy.host(), proxy.port()), deadline).map_err(|e| {
        let e = timeout_as(e, HandshakeError::Proxy(ProxyError::Timeout));
        match e {
            Error::Io(e) => Error::Io(unreachable(&proxy, &e)),
            e => e,
        }
    })?;
    stream.set_nodelay(true)?;
    let host = if proxy.resolves_locally() {
        let address = (request.host(), request.port()).to_socket_addrs()?.next();
        let address = address.ok_or_else(|| io::Error::other("server name has no address"))?;
        address.ip().to_string()
    } else {
        request.host().to_owned()
    };
    let mut tunnel = Tunnel::new(&proxy, &host, request.port(), config)?;
    tunnel.handle_timeout(Duration::ZERO);
    run(&mut stream, &mut tunnel, start)?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(stream)
}

/// Pumps `tunnel` over `stream` until the tunnel is ready, never reading past the proxy's
/// answer.
fn run(stream: &mut TcpStream, tunnel: &mut Tunnel, start: Instant) -> Result<(), Error> {
    let failed = |tunnel: &mut Tunnel| {
        tunnel.handle_timeout(start.elapsed());
        tunnel.error().map(|e| Error::Handshake(e.into()))
    };
    // Enough for any SOCKS5 answer and most HTTP heads in one read; longer heads take more.
    let mut buf = [0u8; 2048];
    loop {
        while !tunnel.pending_transmit().is_empty() {
            let left =
                remaining(tunnel, start).ok_or(HandshakeError::Proxy(ProxyError::Timeout))?;
            stream.set_write_timeout(Some(left))?;
            match stream.write(tunnel.pending_transmit()) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => tunnel.advance_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if let Some(e) = failed(tunnel) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if tunnel.is_ready() {
            return Ok(());
        }
        let Some(left) = remaining(tunnel, start) else {
            return Err(failed(tunnel).unwrap_or(HandshakeError::Proxy(ProxyError::Timeout).into()));
        };
        stream.set_read_timeout(Some(left))?;
        match stream.peek(&mut buf) {
            Ok(0) => tunnel.receive_eof().map_err(HandshakeError::Proxy)?,
            Ok(n) => {
                tunnel.receive(&buf[..n]).map_err(HandshakeError::Proxy)?;
                // Consume what belonged to the answer; the rest stays for the server's reader.
                let used = n - tunnel.leftover().len();
                stream.read_exact(&mut buf[..used])?;
                tunnel.take_leftover();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                if let Some(e) = failed(tunnel) {
                    return Err(e);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Time left before the tunnel's deadline (measured from `start`); `None` once it passed.
fn remaining(tunnel: &Tunnel, start: Instant) -> Option<Duration> {
    let left = tunnel.poll_timeout()?.saturating_sub(start.elapsed());
    (!left.is_zero()).then_some(left)
}

/// Connects to the first address of `target` that answers, by `deadline`.
fn connect_deadline(
    target: impl ToSocketAddrs,
    deadline: Option<Instant>,
) -> io::Result<TcpStream> {
    let mut last = None;
    for address in target.to_socket_addrs()? {
        let result = match deadline {
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => TcpStream::connect_timeout(&address, left),
                _ => return Err(io::ErrorKind::TimedOut.into()),
            },
            None => TcpStream::connect(address),
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host name has no address")))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connect that ran out of time becomes `timeout`; other failures stay I/O errors.
fn timeout_as(e: io::Error, timeout: HandshakeError) -> Error {
    if e.kind() == io::ErrorKind::TimedOut {
        timeout.into()
    } else {
        e.into()
    }
}

/// The failure to reach `proxy`, naming it (never its credentials), same kind.
fn unreachable(proxy: &Proxy, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot reach proxy {proxy}: {e}"))
}
