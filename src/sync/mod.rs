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
//! # Batching replies
//!
//! `send*` writes its message at once: one `write` system call per message. A server that
//! answers each message it receives can [`feed`](WebSocket::feed) the answers instead: they
//! are queued, and [`recv`](WebSocket::recv) writes them together once it has handed out
//! every message that arrived in the last read and is about to read again (or once 64 KiB
//! are queued). A peer that sends sixteen requests at once then gets sixteen answers in one
//! write. Nothing waits longer than it would have: the answers go out before `recv` blocks.
//! [`flush`](WebSocket::flush) writes the queue at any time.
//!
//! ```
//! use rfc6455::{Config, Connection, Message, OsEntropy, sync};
//! use std::io::Cursor;
//!
//! // A client's three messages, as they would arrive in one read.
//! let mut client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
//! for text in ["one", "two", "three"] {
//!     client.send_text(text)?;
//! }
//! let mut wire = Vec::new();
//! for chunk in client.transmit_chunks() {
//!     wire.extend_from_slice(chunk);
//! }
//!
//! // The server end, over an in-memory stream: it echoes with `feed`.
//! let stream = sync::NoTimeouts(Cursor::new(wire));
//! let mut ws = sync::WebSocket::from_connection(stream, Connection::server(Config::default()));
//! for _ in 0..3 {
//!     let message = ws.recv()?.expect("a message");
//!     ws.feed(message)?;
//! }
//! // Three answers queued, none written yet; `flush` (or the next `recv`) writes them.
//! assert!(ws.connection().transmit_len() > 0);
//! ws.flush()?;
//! assert_eq!(ws.connection().transmit_len(), 0);
//! # Ok::<(), rfc6455::Error>(())
//! ```
//!
//! `wss://` needs the `rustls` feature: [`connect`] then speaks TLS (see [`crate::tls`]),
//! and `connect_tls` / `accept_tls` take the caller's rustls configs.

mod connect;
mod driver;
mod handshake;
// TCP to the server, or through a proxy (crate::proxy): used by connect.rs.
mod proxy;
#[cfg(feature = "rustls")]
mod tls;

#[cfg(feature = "rustls")]
pub use connect::connect_tls;
pub use connect::{connect, connect_with};
pub use handshake::{accept, accept_with, client};
#[cfg(feature = "rustls")]
pub use tls::{TlsStream, accept_tls};

use crate::adapters::{MaybeTls, NoTls, either, maybe_tls_stream, send_family};
use crate::connection::{Connection, Event};
use crate::error::{Error, UsageError};
use crate::message::Message;
use crate::trace::Trace;
use driver::{Driver, Outcome};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

maybe_tls_stream!(TcpStream, TlsStream<TcpStream>, "rustls");

/// A byte stream the blocking adapter can drive: `Read + Write`, plus a read timeout (so the
/// core's timers can fire while a read blocks) and a way to end the write direction.
pub trait Transport: Read + Write {
    /// Sets how long a read may block; `None` blocks indefinitely.
    ///
    /// # Errors
    /// Whatever the underlying stream reports.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets how long a write may block; `None` blocks indefinitely. The adapter bounds the
    /// opening handshake's writes with it. The default does nothing (no write timeouts).
    ///
    /// # Errors
    /// Whatever the underlying stream reports.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Ends the write direction (TCP FIN), keeping the read direction open.
    ///
    /// # Errors
    /// Whatever the underlying stream reports.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout.map(|t| t.max(Duration::from_millis(1))))
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout.map(|t| t.max(Duration::from_millis(1))))
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
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(
            self,
            timeout.map(|t| t.max(Duration::from_millis(1))),
        )
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl<P: Transport, T: Transport> Transport for MaybeTls<P, T> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        either!(self, s => s.set_read_timeout(timeout))
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        either!(self, s => s.set_write_timeout(timeout))
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        either!(self, s => s.shutdown_write())
    }
}

impl Transport for NoTls {
    fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        match *self {}
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        match *self {}
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

/// A WebSocket over a blocking transport.
#[derive(Debug)]
pub struct WebSocket<S> {
    driver: Driver<S>,
    conn: Connection,
    /// The connection's tracing span (nothing without the `tracing` feature).
    trace: Trace,
}

impl<S: Transport> WebSocket<S> {
    /// Wraps a transport whose handshake happened elsewhere, with a core `Connection` (which
    /// may already hold bytes read past the HTTP head, fed with `Connection::receive`).
    #[must_use]
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        let trace = Trace::new(conn.role(), None);
        Self::with_driver(Driver::new(stream, Instant::now()), conn, trace)
    }

    const fn with_driver(driver: Driver<S>, conn: Connection, trace: Trace) -> Self {
        Self {
            driver,
            conn,
            trace,
        }
    }

    /// The connection's tracing span (feature `tracing`), `websocket` with the fields `role`
    /// and `peer`: record the peer's address when the adapter could not know it
    /// (`span().record("peer", tracing::field::display(addr))`), or make it the parent of
    /// your own spans. See the crate's `tracing` feature for the events it carries.
    #[cfg(feature = "tracing")]
    #[must_use]
    pub fn span(&self) -> &tracing::Span {
        self.trace.span()
    }

    /// The sans-IO connection (state, role, config).
    #[must_use]
    pub const fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The transport.
    #[must_use]
    pub const fn get_ref(&self) -> &S {
        &self.driver.stream
    }

    /// The transport, mutably (reading or writing it directly corrupts the stream).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.driver.stream
    }

    send_family!(submit, enqueue; ; [];
        "Over a blocking transport this returns once the message has been written (a peer \
         that never reads blocks it, so memory stays bounded by the kernel's buffers). Over a \
         transport that can refuse a write (a non-blocking socket, or one with a write \
         timeout), what is not written stays queued for later calls, up to \
         `Config::write_buffer_high_water` bytes: while more than that is queued, a send is \
         refused with an [`io::ErrorKind::WouldBlock`] error **without queueing it**, so \
         retrying the same call later sends it exactly once. [`flush`](Self::flush) drains \
         the queue.";
        "Over a blocking transport this writes only while more than \
         `Config::write_buffer_high_water` bytes are queued (until the queue is empty); over \
         one that can refuse a write, such a call is refused with an \
         [`io::ErrorKind::WouldBlock`] error **without queueing the message**, as `send` is.");

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
        // Other events are taken (and their obligations kept) inside the step, so a Ping
        // among messages costs no extra turn of the loop. A streamed message cannot be
        // returned as one `Message`: dropping its chunks would lose data, so say so instead.
        let trace = &mut self.trace;
        let step = |conn: &mut Connection| loop {
            match conn.poll_event()? {
                Event::Message(message) => return Some(Ok(message)),
                Event::Chunk { .. } => return Some(Err(UsageError::StreamedMessage)),
                other => trace.event(conn, &other),
            }
        };
        let ended = match self.driver.drive_batched(&mut self.conn, step, |_| false) {
            Ok(Outcome::Step(Ok(message))) => return Ok(Some(message)),
            Ok(Outcome::Step(Err(usage))) => return Err(usage.into()),
            Ok(Outcome::Ended) => self.conn.error().map(Error::from),
            Err(e) => Some(e),
        };
        self.trace.ended(ended.as_ref());
        ended.map_or(Ok(None), Err)
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with an
    /// [`io::ErrorKind::TimedOut`] error. Nothing is lost when it does: partial frames and
    /// queued events stay in the connection for the next call.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), plus the timeout.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Message>, Error> {
        let now = self.driver.elapsed();
        self.driver.user_deadline = Some(now.saturating_add(timeout));
        let result = self.recv();
        self.driver.user_deadline = None;
        result
    }

    /// Like [`recv_event`](Self::recv_event), but gives up after `timeout` with an
    /// [`io::ErrorKind::TimedOut`] error, losing nothing (as [`recv_timeout`](Self::recv_timeout)).
    /// A loop that also serves other work sees the peer's Close, with its code and reason.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), plus the timeout.
    pub fn recv_event_timeout(&mut self, timeout: Duration) -> Result<Option<Event>, Error> {
        let now = self.driver.elapsed();
        self.driver.user_deadline = Some(now.saturating_add(timeout));
        let result = self.recv_event();
        self.driver.user_deadline = None;
        result
    }

    /// Receives the next event (messages, Pings, Pongs, the peer's Close).
    /// Returns `Ok(None)` once the closing handshake has completed.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_event(&mut self) -> Result<Option<Event>, Error> {
        let urgent = |event: &Event| !matches!(event, Event::Message(_) | Event::Chunk { .. });
        let result = match self
            .driver
            .drive_batched(&mut self.conn, Connection::poll_event, urgent)
        {
            Ok(Outcome::Step(event)) => Ok(Some(event)),
            Ok(Outcome::Ended) => match self.conn.error() {
                Some(e) => Err(e.into()),
                None => Ok(None),
            },
            Err(e) => Err(e),
        };
        self.trace.received(&self.conn, &result);
        result
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
    pub fn close(&mut self, code: crate::CloseCode, reason: &str) -> Result<(), Error> {
        self.command(|c| {
            c.send_close(code, reason)?;
            crate::trace::close_sent(code, reason);
            Ok(())
        })?;
        while self.recv_event()?.is_some() {}
        Ok(())
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// [`Error::Io`] on transport failure; of kind [`io::ErrorKind::WouldBlock`] when the
    /// transport refused a write (it would block, or its write timeout fired) with bytes
    /// still queued: call again later.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.driver.write_out(&mut self.conn)? {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WouldBlock).into())
        }
    }

    /// The one way the send family queues: refuses the command while the queue is over the
    /// high-water mark (nothing is queued then), else queues it and writes what the
    /// transport takes.
    fn submit(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        self.enqueue(command)?;
        self.driver.write_out(&mut self.conn)?;
        Ok(())
    }

    /// The one way the `feed` family queues: as [`submit`](Self::submit), without the
    /// write after it.
    fn enqueue(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        let high_water = self.conn.config().write_buffer_high_water as u64;
        if self.conn.transmit_len() > high_water
            && !self.driver.write_out(&mut self.conn)?
            && self.conn.transmit_len() > high_water
        {
            return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
        }
        self.command(command)?;
        Ok(())
    }

    /// Runs an application command against the core, inside the connection's span.
    fn command(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), UsageError> {
        let close_sent_before = self.conn.close_sent();
        let result = {
            let _span = self.trace.enter();
            command(&mut self.conn)
        };
        self.trace.commanded(close_sent_before, &self.conn);
        result
    }
}
