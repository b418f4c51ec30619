//! The blocking adapter (feature `std`): a loop that pumps the sans-IO core over any
//! [`Transport`] (`Read + Write` plus read timeouts and a write shutdown).
//!
//! ```no_run
//! # fn main() -> Result<(), rfc6455::Error> {
//! use rfc6455::{Message, sync};
//! let (mut ws, _response) = sync::connect("ws://127.0.0.1:9001/")?;
//! ws.send_text("hello")?;
//! while let Some(message) = ws.recv()? {
//!     println!("{message:?}");
//!     ws.close(rfc6455::CloseCode::NORMAL, "done")?;
//! }
//! # Ok(()) }
//! ```
//!
//! Timeouts (handshake, close, keepalive) come from the core's timers; the adapter turns the
//! next deadline into a read timeout on the transport.
//!
//! `wss://` needs the `rustls` feature: [`connect`] then speaks TLS (see [`crate::tls`]),
//! and `connect_tls` / `accept_tls` take the caller's rustls configs.

mod tls;
// proxy: TCP to the server or through a proxy (crate::proxy), used by tls::connect_tcp.
mod proxy;

pub use tls::MaybeTlsStream;
#[cfg(feature = "rustls")]
pub use tls::{TlsStream, accept_tls, connect_tls};

use crate::close::CloseCode;
use crate::config::Config;
use crate::connection::PreparedMessage;
use crate::connection::{Connection, Event};
use crate::entropy::default_entropy;
use crate::error::{Error, HandshakeError};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, Reject, Request, Response, ServerHandshake,
};
use crate::message::{Message, MessageKind};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A byte stream the blocking adapter can drive: `Read + Write`, plus a read timeout (so the
/// core's timers can fire while a read blocks) and a way to end the write direction.
pub trait Transport: Read + Write {
    /// Sets how long a read may block; `None` blocks indefinitely.
    ///
    /// # Errors
    /// Whatever the underlying stream reports.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Ends the write direction (TCP FIN), keeping the read direction open.
    ///
    /// # Errors
    /// Whatever the underlying stream reports.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout.map(|t| t.max(Duration::from_millis(1))))
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(
            self,
            timeout.map(|t| t.max(Duration::from_millis(1))),
        )
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Wraps any `Read + Write` that has no read timeouts (e.g. an in-memory pipe). Timers then
/// fire only between reads, so a silent peer can block a read for ever: prefer a real socket.
#[derive(Debug)]
pub struct NoTimeouts<S>(pub S);

impl<S: Read> Read for NoTimeouts<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for NoTimeouts<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Transport for NoTimeouts<S> {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Opens a TCP connection to a `ws://` URI (or, with the `rustls` feature, a TLS connection
/// to a `wss://` URI, trusting the [`webpki-roots`](crate::tls::default_client_config)) and
/// performs the client handshake.
///
/// # Errors
/// [`Error::Usage`] for a bad URI (or `wss://` without the `rustls` feature),
/// [`Error::Io`] if the connection fails (a TLS failure, such as an untrusted certificate, is
/// of kind [`InvalidData`](io::ErrorKind::InvalidData)), [`Error::Handshake`] if the server
/// refuses.
pub fn connect(uri: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(ClientRequest::new(uri)?, Config::default())
}

/// Like [`connect`], with a request builder (subprotocols, headers) and a config.
///
/// # Errors
/// As [`connect`].
pub fn connect_with(
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
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
        let stream = tls::connect_tcp(&request, &config)?; // proxy: passes the config
        client(MaybeTlsStream::Plain(stream), request, config)
    }
}

/// Performs the client handshake over an already connected transport.
///
/// # Errors
/// [`Error::Handshake`] if the server refuses or answers wrongly, [`Error::Io`] on
/// transport failure, [`Error::Usage`] for invalid caller-supplied values.
pub fn client<S: Transport>(
    mut stream: S,
    request: ClientRequest,
    config: Config,
) -> Result<(WebSocket<S>, Response), Error> {
    let start = Instant::now();
    let mut hs = ClientHandshake::new(request, config, default_entropy())?;
    hs.handle_timeout(Duration::ZERO);
    write_all_pending(
        &mut stream,
        |s| s.pending_transmit(),
        |s, n| s.advance_transmit(n),
        &mut hs,
    )?;
    let mut buf = [0u8; 4096];
    while !hs.is_complete() {
        match read_until(&mut stream, &mut buf, hs.poll_timeout(), start)? {
            ReadOutcome::Data(n) => hs.receive(&buf[..n])?,
            ReadOutcome::Eof => hs.receive_eof()?,
            ReadOutcome::TimedOut | ReadOutcome::WouldBlock => {
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
/// # Errors
/// As [`accept`]; a rejection is written to the peer and reported as
/// [`HandshakeError::Rejected`].
pub fn accept_with<S, F>(mut stream: S, config: Config, callback: F) -> Result<WebSocket<S>, Error>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let start = Instant::now();
    let mut hs = ServerHandshake::new(config);
    hs.handle_timeout(Duration::ZERO);
    let mut buf = [0u8; 4096];
    while hs.request().is_none() {
        let step = match read_until(&mut stream, &mut buf, hs.poll_timeout(), start)? {
            ReadOutcome::Data(n) => hs.receive(&buf[..n]),
            ReadOutcome::Eof => hs.receive_eof(),
            ReadOutcome::TimedOut | ReadOutcome::WouldBlock => {
                hs.handle_timeout(start.elapsed());
                hs.error().map_or(Ok(()), Err)
            }
        };
        if let Err(e) = step {
            // The rejection (if any) is queued; deliver it before giving up.
            let _ = write_all_pending(
                &mut stream,
                |s| s.pending_transmit(),
                |s, n| s.advance_transmit(n),
                &mut hs,
            );
            let _ = stream.shutdown_write();
            return Err(e.into());
        }
    }
    let decision = callback(hs.request().expect("request parsed"));
    match decision {
        Ok(accept) => {
            let conn = match hs.accept(accept) {
                Ok(conn) => conn,
                Err(e) => {
                    // A callback asking for something impossible is our side's fault: 500.
                    hs.reject(Reject::new(500))?;
                    let _ = write_all_pending(
                        &mut stream,
                        |s| s.pending_transmit(),
                        |s, n| s.advance_transmit(n),
                        &mut hs,
                    );
                    return Err(e.into());
                }
            };
            let mut ws = WebSocket::new(stream, conn, start);
            ws.flush()?;
            Ok(ws)
        }
        Err(reject) => {
            let status = reject.status();
            hs.reject(reject)?;
            write_all_pending(
                &mut stream,
                |s| s.pending_transmit(),
                |s, n| s.advance_transmit(n),
                &mut hs,
            )?;
            let _ = stream.shutdown_write();
            Err(HandshakeError::Rejected(status).into())
        }
    }
}

/// A WebSocket over a blocking transport.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    start: Instant,
    write_shut: bool,
    /// The caller's deadline for the current `recv_timeout`, from `start`.
    user_deadline: Option<Duration>,
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a transport whose handshake happened elsewhere, with a core `Connection` (which
    /// may already hold bytes read past the HTTP head, fed with `Connection::receive`).
    #[must_use]
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self::new(stream, conn, Instant::now())
    }

    fn new(stream: S, mut conn: Connection, start: Instant) -> Self {
        conn.handle_timeout(start.elapsed());
        Self {
            stream,
            conn,
            start,
            write_shut: false,
            user_deadline: None,
        }
    }

    /// The sans-IO connection (state, role, config).
    #[must_use]
    pub const fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    #[must_use]
    pub const fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably (reading or writing it directly corrupts the stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends a message and writes it out.
    ///
    /// Over a blocking transport this returns once the message has been written (a peer that
    /// never reads blocks it, so memory stays bounded by the kernel's buffers). Over a
    /// transport that can refuse a write (a non-blocking socket, or one with a write
    /// timeout), what is not written stays queued for later calls, up to
    /// `Config::write_buffer_high_water` bytes: while more than that is queued, `send`
    /// refuses the message with an [`io::ErrorKind::WouldBlock`] error **without queueing
    /// it**, so retrying the same call later sends it exactly once. [`flush`](Self::flush)
    /// drains the queue.
    ///
    /// # Errors
    /// [`Error::Usage`] after close; [`Error::Io`] on transport failure or, as above,
    /// `WouldBlock` when the queue is over the high-water mark.
    pub fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        let message = message.into();
        self.queue(|conn| conn.send(message))
    }

    /// Sends a text message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.queue(|conn| conn.send_text(text))
    }

    /// Sends a binary message.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.queue(|conn| conn.send_binary(data))
    }

    /// Sends a message encoded once for many connections (server only).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.queue(|conn| conn.send_prepared(prepared))
    }

    /// Sends one fragment of a message (see `Connection::send_fragment`).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.queue(|conn| conn.send_fragment(kind, data, fin))
    }

    /// Sends a Ping.
    ///
    /// # Errors
    /// As [`send`](Self::send); payloads over 125 bytes are a usage error.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.queue(|conn| conn.send_ping(payload))
    }

    /// Receives the next message. Pings are answered automatically; Pongs are skipped.
    /// Returns `Ok(None)` once the closing handshake has completed.
    ///
    /// Over a non-blocking stream (`TcpStream::set_nonblocking`), a call that finds no whole
    /// message buffered and nothing to read returns an [`io::ErrorKind::WouldBlock`] error at
    /// once instead of waiting; nothing is lost (a partial frame stays buffered), so call
    /// again when the stream is readable. The handshake itself needs a blocking stream.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the peer broke the protocol (the Close frame with its code
    /// has been sent) or the stream ended without a Close (1006); [`Error::Io`] on transport
    /// failure, or of kind `WouldBlock` as above.
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.recv_event()? {
                Some(Event::Message(message)) => return Ok(Some(message)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with an
    /// [`io::ErrorKind::TimedOut`] error. Nothing is lost when it does: partial frames and
    /// queued events stay in the connection for the next call.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), plus the timeout.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Message>, Error> {
        self.user_deadline = Some(self.start.elapsed().saturating_add(timeout));
        let result = self.recv();
        self.user_deadline = None;
        result
    }

    /// Receives the next event (messages, Pings, Pongs, the peer's Close).
    /// Returns `Ok(None)` once the closing handshake has completed.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_event(&mut self) -> Result<Option<Event>, Error> {
        loop {
            self.tick();
            if let Some(event) = self.conn.poll_event() {
                // Write what the event obliged (a Pong, a Close echo) before handing it over.
                // A transport that refuses the write leaves it queued: what reading queues is
                // bounded by the core (Pongs merge under backlog), and the event is not lost.
                self.write_out()?;
                return Ok(Some(event));
            }
            self.write_out()?;
            if self.conn.is_closed() {
                self.finish()?;
                return match self.conn.error() {
                    Some(e) => Err(e.into()),
                    None => Ok(None),
                };
            }
            self.read_some()?;
        }
    }

    /// Starts the closing handshake and waits for the peer's Close (bounded by
    /// `Config::close_timeout`); messages that arrive meanwhile are discarded.
    ///
    /// Returns `Ok(())` only if the closing handshake completed: the peer answered our Close.
    /// Either way the connection is over when it returns.
    ///
    /// # Errors
    /// [`Error::Usage`] for an invalid code or reason, or if already closing (nothing was
    /// sent); [`Error::Io`] on transport failure; [`Error::Protocol`] if the peer never
    /// answered: [`ProtocolError::CloseTimeout`](crate::ProtocolError::CloseTimeout),
    /// [`UnexpectedEof`](crate::ProtocolError::UnexpectedEof) if the stream ended first, or
    /// the peer's protocol error if it broke the protocol while we waited.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.tick();
        self.conn.send_close(code, reason)?;
        while self.recv_event()?.is_some() {}
        Ok(())
    }

    /// Sends a Close frame without waiting for the peer's; keep calling [`recv`](Self::recv)
    /// to receive what the peer still sends, until it returns `Ok(None)`.
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.tick();
        self.conn.send_close(code, reason)?;
        // The Close is always queued (one small frame), whatever the backlog.
        self.write_out()?;
        Ok(())
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// [`Error::Io`] on transport failure; of kind [`io::ErrorKind::WouldBlock`] when the
    /// transport refused a write (it would block, or its write timeout fired) with bytes
    /// still queued: call again later.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.write_out()? {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WouldBlock).into())
        }
    }

    /// The send path: refuses the command while the queue is over the high-water mark
    /// (nothing is queued then), else queues it and writes what the transport takes.
    fn queue<E: Into<Error>>(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), E>,
    ) -> Result<(), Error> {
        self.tick();
        let high_water = self.conn.config().write_buffer_high_water as u64;
        if self.conn.transmit_len() > high_water
            && !self.write_out()?
            && self.conn.transmit_len() > high_water
        {
            return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
        }
        command(&mut self.conn).map_err(Into::into)?;
        self.write_out()?;
        Ok(())
    }

    /// Writes queued bytes; `Ok(false)` when the transport refused a write (would block, or
    /// its write timeout fired) with bytes still queued.
    fn write_out(&mut self) -> io::Result<bool> {
        while self.conn.transmit_len() > 0 {
            let mut slices = [IoSlice::new(&[]); 8];
            let mut count = 0;
            for chunk in self.conn.transmit_chunks().take(slices.len()) {
                slices[count] = IoSlice::new(chunk);
                count += 1;
            }
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => self.conn.advance_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()?;
        Ok(true)
    }

    fn tick(&mut self) {
        self.conn.handle_timeout(self.start.elapsed());
    }

    fn read_some(&mut self) -> Result<(), Error> {
        let timeout = match (self.conn.poll_timeout(), self.user_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self
            .user_deadline
            .is_some_and(|d| self.start.elapsed() >= d)
        {
            return Err(io::Error::from(io::ErrorKind::TimedOut).into());
        }
        let outcome = read_until(&mut self.stream, self.conn.read_buf(), timeout, self.start);
        match outcome {
            Ok(ReadOutcome::Data(n)) => {
                let _ = self.conn.commit_read(n);
            }
            Ok(ReadOutcome::Eof) => {
                let _ = self.conn.receive_eof();
            }
            Ok(ReadOutcome::TimedOut) => {}
            // Nothing is lost: a partial frame stays in the connection for the next call.
            Ok(ReadOutcome::WouldBlock) => {
                return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
            }
            Err(e) if self.conn.is_closed() => {
                // A reset while closing ends the wait for the peer; the outcome is known.
                let _ = e;
                let _ = self.conn.receive_eof();
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// After the closing handshake (or a failure): shut down our write half when the core
    /// says it is our turn, then wait for the peer's EOF, bounded by the close timeout.
    fn finish(&mut self) -> Result<(), Error> {
        while !self.conn.is_terminated() {
            self.tick();
            self.write_out()?;
            if self.conn.wants_shutdown() && !self.write_shut {
                self.write_shut = true;
                let _ = self.stream.shutdown_write();
            }
            if self.conn.is_terminated() {
                break;
            }
            self.read_some()?;
        }
        if !self.write_shut {
            self.write_shut = true;
            let _ = self.stream.shutdown_write();
        }
        Ok(())
    }
}

enum ReadOutcome {
    Data(usize),
    Eof,
    /// The deadline passed with nothing read.
    TimedOut,
    /// A non-blocking transport had nothing to read: the read returned at once, with the
    /// deadline still ahead (or with no deadline at all).
    WouldBlock,
}

/// Reads once, giving up at `deadline` (measured from `start`).
fn read_until<S: Transport>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Option<Duration>,
    start: Instant,
) -> io::Result<ReadOutcome> {
    loop {
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Ok(ReadOutcome::TimedOut);
                }
                Some(left)
            }
            None => None,
        };
        stream.set_read_timeout(timeout)?;
        let began = start.elapsed();
        return match stream.read(buf) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            // A signal, or a TLS stream that took records but no data yet: time has passed,
            // so the read timeout is recomputed before reading on.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // A blocking read gives up only when its timeout fires; one that returns
                // before half of it has passed (or that had no timeout) did not block.
                let waited = start.elapsed().saturating_sub(began);
                match timeout {
                    Some(t) if waited >= t / 2 => Ok(ReadOutcome::TimedOut),
                    _ => Ok(ReadOutcome::WouldBlock),
                }
            }
            Err(e) => Err(e),
        };
    }
}

fn write_all_pending<S: Write, H>(
    stream: &mut S,
    pending: impl Fn(&H) -> &[u8],
    advance: impl Fn(&mut H, usize),
    hs: &mut H,
) -> io::Result<()> {
    loop {
        let chunk = pending(hs);
        if chunk.is_empty() {
            return stream.flush();
        }
        match stream.write(chunk) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => advance(hs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
