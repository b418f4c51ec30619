//! The tokio adapter (feature `tokio`): the blocking adapter's API as `async` methods over any
//! `AsyncRead + AsyncWrite + Unpin` stream, plus [`Stream`] / [`Sink`] impls and a
//! [`split`](WebSocket::split) into halves that two tasks can drive at once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rfc6455::{CloseCode, tokio as ws};
//! use tokio::net::TcpListener;
//!
//! // A server on a free port that echoes every message.
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let mut socket = ws::accept(tcp).await?;
//!     while let Some(message) = socket.recv().await? {
//!         socket.send(message).await?;
//!     }
//!     Ok::<_, rfc6455::Error>(())
//! });
//!
//! let (mut socket, _response) = ws::connect(format!("ws://{addr}/")).await?;
//! socket.send_text("hello").await?;
//! assert_eq!(socket.recv().await?, Some("hello".into()));
//! socket.close(CloseCode::NORMAL, "done").await?;
//! # Ok(()) }
//! ```
//!
//! Like the blocking adapter this is a loop that pumps the sans-IO [`Connection`]; every
//! protocol decision (Pong replies, Close echoes, failure codes, timers) is the core's.
//!
//! [`reconnect::Client`] is a client that reconnects by itself, with backoff, an outbox and
//! connection-state updates.
//!
//! `wss://` needs the `tokio-rustls` feature: [`connect`] then speaks TLS (see
//! [`crate::tls`]), and `connect_tls` / `accept_tls` take the caller's rustls configs.
//!
//! # `Stream` and `Sink`
//!
//! A [`WebSocket`] is a [`Stream`] of `Result<Message, Error>` (ending after a clean close)
//! and a [`Sink`] of [`Message`]s, for `futures-util`'s `StreamExt` / `SinkExt` and for
//! anything built on them (`forward`, `select`, codecs). What `SinkExt::send` and
//! `StreamExt::next` do, spelled out with the traits alone:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use futures_core::Stream;
//! use futures_sink::Sink;
//! use rfc6455::{ClientRequest, Config, Message, tokio as ws};
//! use std::future::poll_fn;
//! use std::pin::Pin;
//!
//! // An in-memory pair of streams stands in for a TCP connection; the server echoes.
//! let (client_io, server_io) = tokio::io::duplex(64 * 1024);
//! tokio::spawn(async move {
//!     let mut socket = ws::accept(server_io).await?;
//!     while let Some(message) = socket.recv().await? {
//!         socket.send(message).await?;
//!     }
//!     Ok::<_, rfc6455::Error>(())
//! });
//! let request = ClientRequest::new("ws://localhost/")?;
//! let (mut socket, _) = ws::client(client_io, request, Config::default()).await?;
//!
//! // SinkExt::send: wait until ready, queue, flush.
//! poll_fn(|cx| Pin::new(&mut socket).poll_ready(cx)).await?;
//! Pin::new(&mut socket).start_send(Message::from("through the sink"))?;
//! poll_fn(|cx| Pin::new(&mut socket).poll_flush(cx)).await?;
//! // StreamExt::next.
//! let echoed = poll_fn(|cx| Pin::new(&mut socket).poll_next(cx)).await;
//! assert_eq!(echoed.transpose()?, Some(Message::from("through the sink")));
//! # Ok(()) }
//! ```
//!
//! # Timers
//!
//! The handshake timeout, the close timeout and keepalive are the core's timers. The adapter
//! measures time with [`tokio::time::Instant`] from the instant the
//! handshake started (so tokio's paused test clock drives them), sleeps until the core's
//! `poll_timeout` alongside every read, and calls `handle_timeout` on every wake. Timers fire
//! while [`recv`](WebSocket::recv) (or the [`ReadHalf`], or the [`Stream`]) is being polled:
//! keep a task reading, as any WebSocket application must to see Pings and Close frames.
//!
//! # Back-pressure
//!
//! [`Sink::poll_ready`] applies [`Config::write_buffer_high_water`] (default 1 MiB): while
//! more than that many bytes are queued it writes and returns `Pending` until the queue is at
//! or below the mark, so a peer that never reads holds at most the mark plus one message of
//! our memory. The `send*` methods queue their message and then wait until everything queued
//! has been written.
//!
//! # Batching replies
//!
//! `send*` writes its message before it completes: one `write` system call per message. A
//! server that answers each message it receives can [`feed`](WebSocket::feed) the answers
//! instead: they are queued, and [`recv`](WebSocket::recv) writes them together once it has
//! handed out every message that arrived in the last read and is about to wait for more (or
//! once 64 KiB are queued). A client that sends sixteen requests at once then gets sixteen
//! answers in one write, and the server makes one system call where it made sixteen. Nothing
//! waits longer than it would have: the answers go out before `recv` waits.
//! [`flush`](WebSocket::flush) writes the queue at any time; the [`Sink`] impl queues in
//! `start_send` and writes in `poll_flush` (so `StreamExt::forward` batches the same way).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rfc6455::Error> {
//! use rfc6455::{Config, Connection, OsEntropy, tokio::WebSocket};
//!
//! let (near, far) = tokio::io::duplex(64 << 10);
//! let mut server = WebSocket::from_connection(near, Connection::server(Config::default()));
//! let client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
//! let mut client = WebSocket::from_connection(far, client);
//!
//! // The client pipelines three requests, written together by `flush`.
//! for text in ["one", "two", "three"] {
//!     client.feed_text(text).await?;
//! }
//! client.flush().await?;
//!
//! // The echo loop of a server: answers are fed, and written by the `recv` that would wait.
//! let echo = tokio::spawn(async move {
//!     while let Some(message) = server.recv().await? {
//!         server.feed(message).await?;
//!     }
//!     Ok::<_, rfc6455::Error>(())
//! });
//! for text in ["one", "two", "three"] {
//!     let answer = client.recv().await?.expect("an answer");
//!     assert_eq!(answer.as_text(), Some(text));
//! }
//! client.close(rfc6455::CloseCode::NORMAL, "").await?;
//! echo.await.expect("echo task")?;
//! # Ok(()) }
//! ```
//!
//! # Split halves without a waker shim
//!
//! [`WebSocket::split`] shares the state in an `Arc<std::sync::Mutex<_>>`, locked only inside
//! `poll` calls (never across an `.await`). Each task registers its own waker, each on one
//! direction of the stream: the reader on read readiness (and the timer), the writer on write
//! readiness. No waker merges the two tasks.
//!
//! The reader still has writes to make (the automatic Pong, the Close echo, the failure Close,
//! keepalive Pings, the final shutdown). It makes them itself, choosing whose waker the write
//! registers so the writer's registration is never stolen:
//!
//! * the writer half is idle: the reader writes with its own waker, so if the transport is
//!   full the reader is woken when it drains and finishes the write;
//! * the writer is parked on write readiness (its last poll returned `Pending`): the reader
//!   writes with the *writer's* waker, so the transport's write registration stays the
//!   writer's. The writer, once woken, writes everything queued (the reader's frames
//!   included), then wakes the reader if it was waiting for that write; and if the reader's
//!   attempt made progress, it wakes the writer, which may be waiting for that room.
//!
//! The writer half's `async` methods clear the "parked" mark when their future is dropped. A
//! bare [`Sink`] poll that returned `Pending` and is never polled again leaves it set: the
//! reader's queued frames then go out at its next wake (the peer's next frame, a timer) or the
//! writer's next call.
//!
//! # Cancel safety
//!
//! All state lives in the [`WebSocket`] (or the shared halves), never in a future:
//!
//! * [`recv`](WebSocket::recv), [`recv_event`](WebSocket::recv_event), [`Stream::poll_next`]:
//!   cancel safe. An event is taken from the core only in the poll that returns it, so
//!   dropping the future (e.g. losing a `tokio::select!`) loses no message and duplicates none;
//!   bytes already read stay buffered in the core for the next call.
//! * `send`, `send_text`, `send_binary`, `send_prepared`, `send_fragment`, `send_ping`,
//!   `send_pong`, `send_close`: the message is
//!   queued, exactly once, during the first poll (an invalid one returns its error there). If
//!   the future is dropped after that, the message stays queued and goes out, once, with the
//!   next `send*`, `flush`, `close` or `recv` (which writes the queue as it reads). A future
//!   dropped before its first poll queues nothing.
//! * [`flush`](WebSocket::flush): cancel safe; partial writes are accounted in the core, so no
//!   byte is written twice or skipped.
//! * [`close`](WebSocket::close): the Close frame is queued during the first poll; dropping the
//!   future then abandons only the wait for the peer's Close (a later `recv` completes the
//!   handshake and returns `Ok(None)`; calling `close` again is a [`UsageError::Closed`]).
//! * [`connect`], [`connect_with`], [`client`], [`accept`], [`accept_with`]: not cancel safe;
//!   dropping them abandons the handshake and the stream.

mod connect;
mod driver;
mod handshake;
// TCP to the server, or through a proxy (crate::proxy): used by connect.rs and crate::h2.
pub(crate) mod proxy;
pub mod reconnect;
mod split;
#[cfg(feature = "tokio-rustls")]
mod tls;

#[cfg(feature = "tokio-rustls")]
pub use connect::connect_tls;
pub use connect::{connect, connect_with};
pub use handshake::{accept, accept_with, client};
pub use split::{ReadHalf, ReuniteError, WriteHalf};
#[cfg(feature = "tokio-rustls")]
pub use tls::{TlsStream, accept_tls};

use crate::adapters::{maybe_tls_stream, send_family};
use crate::close::CloseCode;
use crate::config::Config;
use crate::connection::{Connection, Event, Role};
use crate::entropy::default_entropy;
use crate::error::{Error, UsageError};
use crate::message::Message;
use crate::trace::Trace;
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::TcpStream;
use ::tokio::time::Instant;
use driver::{Driver, Outcome};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

maybe_tls_stream!(TcpStream, TlsStream<TcpStream>, "tokio-rustls");

// ------------------------------------------------------------------ WebSocket

/// A WebSocket over an async stream.
///
/// Also a [`Stream`] of received messages (ending after a clean close; an error is its last
/// item) and a [`Sink`] of messages to send (see the module docs for back-pressure).
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S: core::fmt::Debug> core::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocket")
            .field("stream", &self.inner.driver.stream)
            .field("connection", &self.inner.conn)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream whose handshake happened elsewhere, with a core [`Connection`] (which
    /// may already hold bytes read past the HTTP head, fed with `Connection::receive`).
    #[must_use]
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        let trace = Trace::new(conn.role(), None);
        Self::with_driver(Driver::new(stream, Instant::now()), conn, trace)
    }

    /// Wraps a stream upgraded elsewhere (hyper, axum): `leftover` holds the bytes the
    /// upgrading server (or client) read past the HTTP head; they are fed to the connection
    /// first. A client connection masks with the OS CSPRNG.
    ///
    /// If `leftover` already breaks the protocol, the first `recv` reports it (and the Close
    /// frame with its code is sent).
    #[must_use]
    pub fn from_upgraded(stream: S, role: Role, config: Config, leftover: &[u8]) -> Self {
        let mut conn = match role {
            Role::Server => Connection::server(config),
            Role::Client => Connection::client(config, default_entropy()),
        };
        // Errors are sticky in the core; `recv` reports them.
        let _ = conn.receive(leftover);
        Self::from_connection(stream, conn)
    }

    const fn with_driver(driver: Driver<S>, conn: Connection, trace: Trace) -> Self {
        Self {
            inner: Inner {
                driver,
                conn,
                stream_ended: false,
                trace,
            },
        }
    }

    /// Replaces the connection's tracing span (a helper that knows the peer made it).
    #[cfg_attr(not(any(feature = "hyper", feature = "h2")), allow(dead_code))]
    pub(crate) fn with_trace(mut self, trace: Trace) -> Self {
        self.inner.trace = trace;
        self
    }

    /// The connection's tracing span (feature `tracing`), `websocket` with the fields `role`
    /// and `peer`: record the peer's address when the adapter could not know it
    /// (`span().record("peer", tracing::field::display(addr))`), or make it the parent of
    /// your own spans. See the crate's `tracing` feature for the events it carries.
    #[cfg(feature = "tracing")]
    #[must_use]
    pub fn span(&self) -> &tracing::Span {
        self.inner.trace.span()
    }

    /// The sans-IO connection (state, role, config, queued bytes).
    #[must_use]
    pub const fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The stream.
    #[must_use]
    pub const fn get_ref(&self) -> &S {
        &self.inner.driver.stream
    }

    /// The stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.driver.stream
    }

    /// The one way the send family queues: the command runs against the core at the first
    /// poll (exactly once), then everything queued is written.
    async fn submit(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        self.inner.queue(command)?;
        self.flush().await
    }

    /// The one way the `feed` family queues: waits (writing) while more than
    /// `Config::write_buffer_high_water` bytes are queued, then runs the command against the
    /// core, once, without writing.
    async fn enqueue(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_ready_to_queue(cx)).await?;
        self.inner.queue(command)
    }

    send_family!(submit, enqueue; async; [.await];
        "Cancel safety: the message is queued exactly once, at the first poll; if the future \
         is dropped later, it is still written (once) by the next `send*`, `flush`, `close` \
         or `recv`. The future completes once everything queued is written.";
        "Back-pressure and cancel safety: while more than `Config::write_buffer_high_water` \
         bytes are queued, the future writes and waits for the queue to drain to that mark; \
         the message is queued exactly once, when the future completes (a future dropped \
         before that queues nothing).");

    /// Receives the next message. Pings are answered automatically; Pongs are skipped.
    /// Returns `Ok(None)` once the closing handshake has completed (and the stream is shut
    /// down). Also drives the timers and writes what is queued.
    ///
    /// Cancel safety: cancel safe; a dropped future loses and duplicates no message.
    ///
    /// # Errors
    /// [`Error::Protocol`] when the peer broke the protocol (the Close frame with its code
    /// has been sent), the keepalive Pong was late (1011), or the stream ended without a Close
    /// ([`ProtocolError::UnexpectedEof`](crate::ProtocolError::UnexpectedEof), 1006);
    /// [`Error::Io`] on transport failure.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| self.inner.poll_recv_message(cx)).await
    }

    /// Receives the next event (messages, Pings, Pongs, the peer's Close).
    /// Returns `Ok(None)` once the closing handshake has completed.
    ///
    /// Cancel safety: cancel safe, as [`recv`](Self::recv).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rfc6455::{ClientRequest, CloseCode, Config, Event, tokio as ws};
    ///
    /// let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    /// tokio::spawn(async move {
    ///     let mut socket = ws::accept(server_io).await?;
    ///     socket.send_ping(b"are you there").await?;
    ///     socket.close(CloseCode::GOING_AWAY, "restarting").await
    /// });
    /// let request = ClientRequest::new("ws://localhost/")?;
    /// let (mut socket, _) = ws::client(client_io, request, Config::default()).await?;
    ///
    /// // The connection answers Pings and echoes the Close itself; recv_event shows both.
    /// let Some(Event::Ping(payload)) = socket.recv_event().await? else { panic!() };
    /// assert_eq!(&payload[..], b"are you there");
    /// let Some(Event::Close(frame)) = socket.recv_event().await? else { panic!() };
    /// assert_eq!(frame.code, CloseCode::GOING_AWAY);
    /// assert_eq!(frame.reason.as_str(), "restarting");
    /// assert_eq!(socket.recv_event().await?, None); // the closing handshake is complete
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_event(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| self.inner.poll_recv_event(cx)).await
    }

    /// Starts the closing handshake and waits for the peer's Close and the end of the stream
    /// (bounded by `Config::close_timeout`); messages that arrive meanwhile are discarded.
    ///
    /// Cancel safety: the Close frame is queued at the first poll; dropping the future later
    /// abandons only the wait (a later `recv` finishes the handshake and returns `Ok(None)`).
    ///
    /// Returns `Ok(())` only if the closing handshake completed: the peer answered our Close.
    /// Either way the connection is over when it returns. (This method is why the `Sink`'s
    /// `close`, which does not wait, needs `SinkExt::close(&mut ws)` to be called.)
    ///
    /// # Errors
    /// [`Error::Usage`] for an invalid code or reason, or if already closing (nothing was
    /// sent); [`Error::Io`] on transport failure; [`Error::Protocol`] if the peer never
    /// answered: [`ProtocolError::CloseTimeout`](crate::ProtocolError::CloseTimeout),
    /// [`UnexpectedEof`](crate::ProtocolError::UnexpectedEof) if the stream ended first, or
    /// the peer's protocol error if it broke the protocol while we waited.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.queue(|c| {
            c.send_close(code, reason)?;
            crate::trace::close_sent(code, reason);
            Ok(())
        })?;
        while self.recv_event().await?.is_some() {}
        Ok(())
    }

    /// Writes everything queued and flushes the stream.
    ///
    /// Cancel safety: cancel safe; what was written is accounted, the rest stays queued.
    ///
    /// # Errors
    /// [`Error::Io`] on transport failure.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush_all(cx)).await?;
        Ok(())
    }

    /// Splits into a reading and a writing half that two tasks can drive at once (see the
    /// module docs); [`ReadHalf::reunite`] puts them back together.
    ///
    /// The reader comes first: `(ReadHalf, WriteHalf)`, as `tokio::io::split` orders them.
    /// `futures::StreamExt::split` (also available, through the `Stream` and `Sink` impls)
    /// returns `(sink, stream)`, the other way round.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use rfc6455::{ClientRequest, CloseCode, Config, Message, tokio as ws};
    ///
    /// let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    /// tokio::spawn(async move {
    ///     let mut socket = ws::accept(server_io).await?;
    ///     while let Some(message) = socket.recv().await? {
    ///         socket.send(message).await?;
    ///     }
    ///     Ok::<_, rfc6455::Error>(())
    /// });
    /// let request = ClientRequest::new("ws://localhost/")?;
    /// let (socket, _) = ws::client(client_io, request, Config::default()).await?;
    ///
    /// let (mut reader, mut writer) = socket.split();
    /// let writing = tokio::spawn(async move {
    ///     for n in 1..=3 {
    ///         writer.send_text(&n.to_string()).await?;
    ///     }
    ///     writer.send_close(CloseCode::NORMAL, "").await
    /// });
    /// let mut echoed = Vec::new();
    /// while let Some(message) = reader.recv().await? {
    ///     echoed.push(message);
    /// }
    /// writing.await??;
    /// assert_eq!(echoed, ["1", "2", "3"].map(Message::from));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::split(self.inner)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    /// The next message, as [`WebSocket::recv`]; `None` after a clean close. An error is the
    /// last item. Cancel safe.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_next_message(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    /// Ready once at most `Config::write_buffer_high_water` bytes are queued; above it,
    /// writes and returns `Pending` until the queue has drained to the mark.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready_to_queue(cx)
    }

    /// Queues the message (nothing is written until a flush, or the next `poll_ready` above
    /// the high-water mark).
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().inner.queue(|c| c.send(item))
    }

    /// Writes everything queued and flushes the stream.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_all(cx).map_err(Error::from)
    }

    /// Queues a Close (1000) unless one was sent, writes everything, and shuts down the write
    /// half when the core says so. The handshake completes as the `Stream` side is read.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close_sink(cx)
    }
}

// ------------------------------------------------------------------ Inner

/// The connection and its driver: owned by a [`WebSocket`], or shared by a [`ReadHalf`] and
/// a [`WriteHalf`].
struct Inner<S> {
    driver: Driver<S>,
    conn: Connection,
    /// The `Stream` impl has yielded its end (`None` or an error).
    stream_ended: bool,
    /// The connection's tracing span (nothing without the `tracing` feature).
    trace: Trace,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// Runs a command against the core. The clock is not read: a timer the command arms is
    /// pinned at the next reading (see `Connection`'s "Time").
    fn queue(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        let close_sent_before = self.conn.close_sent();
        let result = {
            let _span = self.trace.enter();
            command(&mut self.conn)
        };
        self.trace.commanded(close_sent_before, &self.conn);
        Ok(result?)
    }

    /// Writes everything queued and flushes the stream.
    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.driver.poll_flush_all(cx, &mut self.conn)
    }

    /// `Sink::poll_ready`: ready once at most `write_buffer_high_water` bytes are queued.
    fn poll_ready_to_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let high_water = self.conn.config().write_buffer_high_water as u64;
        self.driver
            .poll_below(cx, &mut self.conn, high_water)
            .map_err(Error::from)
    }

    /// `Sink::poll_close`: queues a Close (1000) unless one was sent, writes everything, and
    /// shuts down the write half if the core says it is our turn.
    fn poll_close_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.conn.close_sent() && self.conn.error().is_none() {
            self.queue(|c| {
                c.send_close(CloseCode::NORMAL, "")?;
                crate::trace::close_sent(CloseCode::NORMAL, "");
                Ok(())
            })?;
        }
        ready!(self.driver.poll_flush_all(cx, &mut self.conn))?;
        ready!(self.driver.poll_shutdown_if_wanted(cx, &self.conn))?;
        Poll::Ready(Ok(()))
    }

    /// The receive loop: events out, reads and timers in, obligations written on the way
    /// (at once for the events that bring one; replies to messages once the batch is taken).
    fn poll_recv_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        let result = ready!(self.driver.poll_drive_batched(
            cx,
            &mut self.conn,
            Connection::poll_event,
            |event| !matches!(event, Event::Message(_) | Event::Chunk { .. }),
        ))
        .and_then(|outcome| match outcome {
            Outcome::Step(event) => Ok(Some(event)),
            Outcome::Ended => self.conn.error().map_or(Ok(None), |e| Err(e.into())),
        });
        self.trace.received(&self.conn, &result);
        Poll::Ready(result)
    }

    /// The receive loop for messages: other events are taken (and their obligations kept)
    /// inside the step, so a Ping among messages costs no extra turn of the loop.
    fn poll_recv_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>, Error>> {
        // A streamed message cannot be returned as one `Message`: dropping its chunks would
        // lose data, so say so instead.
        let trace = &mut self.trace;
        let step = |conn: &mut Connection| loop {
            match conn.poll_event()? {
                Event::Message(message) => return Some(Ok(message)),
                Event::Chunk { .. } => return Some(Err(UsageError::StreamedMessage)),
                other => trace.event(conn, &other),
            }
        };
        let ended = match ready!(
            self.driver
                .poll_drive_batched(cx, &mut self.conn, step, |_| false)
        ) {
            Ok(Outcome::Step(Ok(message))) => return Poll::Ready(Ok(Some(message))),
            Ok(Outcome::Step(Err(usage))) => return Poll::Ready(Err(usage.into())),
            Ok(Outcome::Ended) => self.conn.error().map(Error::from),
            Err(e) => Some(e),
        };
        self.trace.ended(ended.as_ref());
        Poll::Ready(ended.map_or(Ok(None), Err))
    }

    /// `Stream::poll_next`: messages until the end, which is yielded once.
    fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.stream_ended {
            return Poll::Ready(None);
        }
        let next = ready!(self.poll_recv_message(cx)).transpose();
        if !matches!(next, Some(Ok(_))) {
            self.stream_ended = true;
        }
        Poll::Ready(next)
    }

    /// A write operation of the `WriteHalf`, registered as the writer's (see the module
    /// docs).
    fn poll_as_writer<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let before = self.conn.transmit_len();
        let poll = op(self, cx);
        self.driver
            .writer_polled(cx, poll.is_pending(), self.conn.transmit_len() < before);
        poll
    }
}
