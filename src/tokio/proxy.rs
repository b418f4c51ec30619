//! The tokio adapter's TCP connect: straight to the server, or to a proxy and through it
//! ([`crate::proxy`]), bounded by `Config::handshake_timeout` from the connect's start.

use crate::config::Config;
use crate::error::{Error, HandshakeError, ProxyError};
use crate::handshake::ClientRequest;
use crate::proxy::{self, Proxy, Tunnel};
use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
use ::tokio::time::{Instant, timeout_at};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Poll, ready};

/// Opens the TCP stream that leads to the request's server: directly, or through the
/// request's proxy (its own, or the environment's if it asked for that), everything by
/// `Config::handshake_timeout` after `start`. Through a proxy the stream is returned
/// positioned just after the proxy's answer: it is read by peeking and consuming only its
/// bytes, so whatever the server sends first is still in the socket.
pub(crate) async fn connect_tcp(
    request: &ClientRequest,
    config: &Config,
    start: Instant,
) -> Result<TcpStream, Error> {
    let deadline = start.checked_add(config.handshake_timeout);
    let Some(proxy) = proxy::for_request(request)? else {
        let connecting = TcpStream::connect((request.host(), request.port()));
        let stream = bounded(deadline, connecting)
            .await
            .ok_or(HandshakeError::Timeout)??;
        stream.set_nodelay(true)?;
        return Ok(stream);
    };
    let timeout = HandshakeError::Proxy(ProxyError::Timeout);
    let connecting = TcpStream::connect((proxy.host(), proxy.port()));
    let mut stream = bounded(deadline, connecting)
        .await
        .ok_or(timeout)?
        .map_err(|e| unreachable(&proxy, &e))?;
    stream.set_nodelay(true)?;
    let host = if proxy.resolves_locally() {
        let resolving = ::tokio::net::lookup_host((request.host(), request.port()));
        let address = bounded(deadline, resolving).await.ok_or(timeout)??.next();
        let address = address.ok_or_else(|| io::Error::other("server name has no address"))?;
        address.ip().to_string()
    } else {
        request.host().to_owned()
    };
    let mut tunnel = Tunnel::new(&proxy, &host, request.port(), config)?;
    tunnel.handle_timeout(std::time::Duration::ZERO);
    match bounded(deadline, run(&mut stream, &mut tunnel)).await {
        Some(result) => result?,
        None => {
            tunnel.handle_timeout(start.elapsed());
            return Err(
                HandshakeError::Proxy(tunnel.error().unwrap_or(ProxyError::Timeout)).into(),
            );
        }
    }
    Ok(stream)
}

/// Pumps `tunnel` over `stream` until it is ready, never reading past the proxy's answer.
async fn run(stream: &mut TcpStream, tunnel: &mut Tunnel) -> Result<(), Error> {
    // Enough for any SOCKS5 answer and most HTTP heads in one read; longer heads take more.
    let mut buf = [0u8; 2048];
    loop {
        poll_fn(|cx| {
            loop {
                let chunk = tunnel.pending_transmit();
                if chunk.is_empty() {
                    return Pin::new(&mut *stream).poll_flush(cx);
                }
                match ready!(Pin::new(&mut *stream).poll_write(cx, chunk)) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => tunnel.advance_transmit(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        })
        .await?;
        if tunnel.is_ready() {
            return Ok(());
        }
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            tunnel.receive_eof().map_err(HandshakeError::Proxy)?;
            continue; // not reached: end of stream before the answer is an error
        }
        tunnel.receive(&buf[..n]).map_err(HandshakeError::Proxy)?;
        // Consume what belonged to the answer; the rest stays for the server's reader.
        let used = n - tunnel.leftover().len();
        consume(stream, &mut buf[..used]).await?;
        tunnel.take_leftover();
    }
}

/// Reads exactly `buf.len()` bytes, which a peek has shown are there.
async fn consume(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut buf[done..]);
            ready!(Pin::new(&mut *stream).poll_read(cx, &mut rb))?;
            Poll::Ready(Ok::<_, io::Error>(rb.filled().len()))
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        done += n;
    }
    Ok(())
}

/// `future`, or `None` if `deadline` passes first.
async fn bounded<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(at) => timeout_at(at, future).await.ok(),
        None => Some(future.await),
    }
}

/// The failure to reach `proxy`, naming it (never its credentials), same kind.
fn unreachable(proxy: &Proxy, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot reach proxy {proxy}: {e}"))
}
