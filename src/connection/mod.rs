//! The connection after the opening handshake: bytes in, events out; commands in, bytes out.
//!
//! # One path, from the socket to `Event::Message`
//!
//! Take a byte the tokio adapter reads from the peer:
//!
//! 1. `tokio/driver.rs` polls the stream into the spare room that
//!    [`Connection::read_space`] hands out, and reports it with `commit_space` (the blocking
//!    adapter does the same with `read_buf` / `commit_read`; a caller holding the bytes
//!    calls `receive`).
//! 2. `connection/recv_buf.rs` (those input methods and `RecvBuf`) counts the byte in,
//!    sizing the next read by the frame in progress, and runs the assembler.
//! 3. `connection/assemble.rs` (`Assembler`) parses the frame header with
//!    `frame/decode.rs`, checks it against the role, the reserved bits and the size budget,
//!    unmasks the payload, decodes it through the extension if the message is encoded (the
//!    piecewise paths are in `connection/pieces.rs`), checks its UTF-8, and assembles the
//!    message.
//! 4. `connection/mod.rs` (this file) keeps the obligations that events bring (a Pong owed
//!    for a Ping, keepalive reset by a Pong), queues the events, and hands out
//!    `Event::Message` from [`Connection::poll_event`]; for the peer's Close it echoes it
//!    and moves the phase (`connection/phase.rs`).
//!
//! Output takes the mirror path: `send_*` (this file) → `connection/send.rs` (framing,
//! fragmenting, masking, the extension's encoding) → `connection/tx_queue.rs` →
//! `pending_transmit` / `advance_transmit`. Every deadline lives in one table,
//! `connection/timers.rs`.

mod assemble;
mod control;
mod phase;
mod pieces;
mod recv_buf;
mod send;
pub(crate) mod timers;
mod tx_queue;

pub use tx_queue::PreparedMessage;

use crate::close::CloseFrame;
use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::ProtocolError;
use crate::extension::Extension;
use crate::message::Message;
use alloc::boxed::Box;
use assemble::{Assembler, Step};
use bytes::Bytes;
use phase::Phase;
use recv_buf::RecvBuf;
use send::Sender;
use timers::{Timer, TimerTable};

/// Room a connection keeps in its transmit queue and encoder between messages. A larger
/// message grows them as it needs; the growth is given back `SHRINK_AFTER` after the queue
/// has emptied, if it is empty then, so a long-lived connection that once sent a 1 MiB message
/// does not hold 1 MiB for the rest of its life. (A received payload leaves the receive
/// buffer with its message, so that buffer does not stay grown.) Reasons:
/// `benches/README.md`.
const BUFFER_KEEP: usize = 64 << 10;
/// How long the buffers must sit unused before their growth is given back.
const SHRINK_AFTER: core::time::Duration = core::time::Duration::from_secs(1);

/// Which end of the connection this is; it decides the masking direction (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection; masks every frame it sends.
    Client,
    /// The end that accepted it; never masks.
    Server,
}

/// Where the closing handshake stands (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close frame and wait for the peer's; received messages are still delivered.
    CloseSent,
    /// The closing handshake is over, failed, or the transport ended. Nothing more is sent
    /// except what is already queued.
    Closed,
}

/// Something the peer did that the application may want to see.
///
/// Non-exhaustive: match it with a wildcard arm, so that a new kind of event (as
/// [`Event::Chunk`] was) does not break your build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// A piece of a message larger than `Config::streaming_threshold`, delivered as it
    /// arrives instead of assembled (off by default). The kind of `data` is the message's;
    /// a text chunk is valid UTF-8 on its own (chunks are cut at code point boundaries).
    /// `fin` marks the message's last chunk, which may be empty.
    Chunk {
        /// The bytes of this piece.
        data: Message,
        /// Whether this is the message's last piece.
        fin: bool,
    },
    /// A Ping arrived (already answered when `Config::auto_pong` is on).
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The peer's Close frame (already echoed). Nothing follows it.
    Close(CloseFrame),
}

/// A WebSocket connection after the opening handshake, in either role.
///
/// It never touches a socket or a clock. Pump it like this:
///
/// 1. Feed what the transport delivered: [`receive`](Self::receive) (a copy), or one of the
///    zero-copy pairs: [`read_buf`](Self::read_buf) + [`commit_read`](Self::commit_read)
///    for `std::io::Read`-style readers, which need initialised memory (the blocking
///    adapter), or [`read_space`](Self::read_space) + [`commit_space`](Self::commit_space)
///    for readers that append to spare capacity without zeroing it (the tokio adapter);
///    [`receive_eof`](Self::receive_eof) at end of stream.
/// 2. Drain events with [`poll_event`](Self::poll_event) until `None`.
/// 3. Issue commands (`send_*`).
/// 4. Write [`pending_transmit`](Self::pending_transmit) to the transport and report what was
///    written with [`advance_transmit`](Self::advance_transmit), until it is empty.
/// 5. Before waiting, ask [`poll_timeout`](Self::poll_timeout); when it passes, call
///    [`handle_timeout`](Self::handle_timeout) with the current time.
/// 6. Once [`wants_shutdown`](Self::wants_shutdown), shut down the transport's write half; once
///    [`is_terminated`](Self::is_terminated), drop the transport.
///
/// # Time
///
/// The connection never reads a clock, and never computes a deadline from a stale one. An
/// input that starts a timer (our Close, a failure, taking the peer's Close, or received
/// bytes with keepalive on) arms it *relative*: `poll_timeout` then returns
/// `Duration::ZERO`, asking for [`handle_timeout`](Self::handle_timeout) at once, and the
/// deadline counts from the `now` of that call. So a connection idle for an hour and then
/// closed gets its full close timeout, measured from the call after the close. `now` is
/// monotonic, from any origin the caller picks.
///
/// Obligations are automatic: Pings are answered, a Close is echoed, and a protocol error
/// queues a Close frame with its code before the error is reported (RFC 6455 §7.1.7). Errors
/// are sticky: after one, input is ignored, every call that reports errors repeats it, and
/// `send_*` returns [`UsageError::Failed`](crate::UsageError::Failed) with it.
pub struct Connection {
    role: Role,
    config: Config,
    recv: RecvBuf,
    asm: Assembler,
    send: Sender,
    extension: Option<Box<dyn Extension>>,
    phase: Phase,
    timers: TimerTable,
    /// Bytes of the opening handshake's response (a server's 101) not yet written; the
    /// handshake timer bounds them.
    handshake_left: u64,
    /// With permessage-deflate installed by a handshake: the window bits and "no context
    /// takeover" of the direction this end compresses (see `send_prepared`).
    #[cfg(feature = "deflate")]
    deflate_send: Option<(u8, bool)>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("buffered", &self.recv.filled)
            .field("transmit_len", &self.transmit_len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection for a stream whose handshake is done.
    #[must_use]
    pub fn server(config: Config) -> Self {
        Self::new(Role::Server, config, None)
    }

    /// A client-side connection; `entropy` supplies the masking keys (RFC 6455 §5.3).
    #[must_use]
    pub fn client(config: Config, entropy: Box<dyn Entropy>) -> Self {
        Self::new(Role::Client, config, Some(entropy))
    }

    fn new(role: Role, config: Config, entropy: Option<Box<dyn Entropy>>) -> Self {
        let mut timers = TimerTable::new();
        if let Some(interval) = config.keepalive_interval {
            timers.arm(Timer::Idle, interval);
        }
        Self {
            role,
            recv: RecvBuf::new(),
            asm: Assembler::new(role, &config),
            send: Sender::new(role, config.max_send_frame_size, entropy),
            extension: None,
            phase: Phase::Open,
            timers,
            handshake_left: 0,
            #[cfg(feature = "deflate")]
            deflate_send: None,
            config,
        }
    }

    /// Installs a negotiated extension; frames carrying its RSV bits are routed through it.
    #[must_use]
    pub fn with_extension(mut self, extension: Box<dyn Extension>) -> Self {
        self.asm.claim(extension.reserved_bits());
        self.extension = Some(extension);
        self
    }

    // ---------------------------------------------------------------- getters

    /// This end's role.
    #[must_use]
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The configuration in force.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Where the closing handshake stands.
    #[must_use]
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Open => State::Open,
            Phase::CloseSent if !self.asm.close_seen() => State::CloseSent,
            _ => State::Closed,
        }
    }

    /// Whether the peer's Close frame arrived.
    #[must_use]
    pub const fn close_received(&self) -> bool {
        self.asm.close_seen()
    }

    /// Whether our Close frame is queued (or sent).
    #[must_use]
    pub const fn close_sent(&self) -> bool {
        self.send.close_queued()
    }

    /// Whether the closing handshake is over, failed, or the transport ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// The error the connection failed with, if any (sticky).
    #[must_use]
    pub const fn error(&self) -> Option<ProtocolError> {
        self.phase.error()
    }

    /// Whether the adapter should now shut down the transport's write half (after writing
    /// everything pending).
    ///
    /// RFC 6455 §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD be closed
    /// first by the server", and the client "SHOULD wait for the server to close the
    /// connection but MAY close the connection at any time after sending and receiving a Close
    /// message". So: the server after the closing handshake, either side after a failure, the
    /// client once the close timeout has passed.
    #[must_use]
    pub fn wants_shutdown(&self) -> bool {
        self.is_closed()
            && self.transmit_len() == 0
            && (self.role == Role::Server
                || self.error().is_some()
                || matches!(self.phase, Phase::Ended(_)))
    }

    /// Whether the adapter may drop the transport: end-of-file was seen, or the close
    /// timeout passed.
    #[must_use]
    pub const fn is_terminated(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    // ---------------------------------------------------------------- network input

    // ---------------------------------------------------------------- outputs

    /// The next event, if any.
    ///
    /// Protocol events take effect in the order the peer sent them, when they are returned
    /// here: the peer's Close is echoed, and a protocol error found further along the input
    /// fails the connection, only once the application has taken every message that arrived
    /// before it, so it can still answer them (Autobahn counts an unanswered earlier message
    /// as NON-STRICT).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.asm.events.is_empty() {
            if let Some(error) = self.asm.take_failure() {
                self.fail(error);
                return None;
            }
            self.process();
        }
        let event = self.asm.events.pop_front()?;
        if let Event::Close(frame) = &event {
            self.peer_closed(frame.code);
        }
        Some(event)
    }

    // ---------------------------------------------------------------- commands

    // ---------------------------------------------------------------- crate-internal

    // ---------------------------------------------------------------- receive internals

    /// Runs the assembler until it needs more input or enough events wait, keeping the
    /// obligations that events bring as they are parsed.
    fn process(&mut self) {
        self.parse();
        if self.asm.decoded {
            self.asm.decoded = false;
            self.extension_used();
        }
    }

    fn parse(&mut self) {
        while self.asm.parsing() {
            match self.asm.run(&mut self.recv, self.extension.as_deref_mut()) {
                Ok(Step::Progress) => return,
                Ok(Step::Ping) => {
                    if self.config.auto_pong {
                        if let Some(Event::Ping(payload)) = self.asm.events.back() {
                            let payload = payload.clone();
                            self.send.owe_pong(payload);
                        }
                    }
                }
                Ok(Step::Pong) => {
                    if self.timers.is_armed(Timer::Pong) {
                        self.timers.stop(Timer::Pong);
                        if let Some(interval) = self.config.keepalive_interval {
                            self.timers.arm(Timer::Idle, interval);
                        }
                    }
                }
                Ok(Step::NeedMore) => return self.need_more(),
                Err(error) => return self.parse_failed(error),
            }
        }
    }

    /// Gives back what a large message grew, where nothing is in it now (bytes not yet
    /// written keep their queue).
    fn shrink_buffers(&mut self) {
        self.send.shrink(BUFFER_KEEP);
    }

    /// After the extension handled a message: while it holds state it can rebuild, it is
    /// released once the connection has been idle as long as the extension asks.
    pub(super) fn extension_used(&mut self) {
        if let Some(after) = self.extension.as_ref().and_then(|e| e.release_after()) {
            self.timers.arm(Timer::Release, after);
        }
    }

    /// The parser needs more bytes: after EOF there are none, so the connection ended
    /// without a Close (RFC 6455 §7.1.5: "_The WebSocket Connection Close Code_ is considered
    /// to be 1006").
    fn need_more(&mut self) {
        if self.recv.eof && self.asm.parsing() {
            self.parse_failed(ProtocolError::UnexpectedEof);
        }
    }

    /// The parser found `error`: fail now, or once the events before it are taken.
    fn parse_failed(&mut self, error: ProtocolError) {
        if self.asm.events.is_empty() {
            self.fail(error);
        } else {
            self.asm.fail_behind_events(error);
        }
    }

    fn result(&self) -> Result<(), ProtocolError> {
        self.error().map_or(Ok(()), Err)
    }

    // ---------------------------------------------------------------- send internals
}

#[cfg(test)]
mod shrink_tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::time::Duration;

    fn drain(c: &mut Connection) {
        while c.transmit_len() > 0 {
            let n = c.pending_transmit().len();
            c.advance_transmit(n);
        }
    }

    #[test]
    fn a_large_message_grows_the_queue_and_an_idle_second_gives_it_back() {
        let mut c = Connection::server(Config::default());
        c.handle_timeout(Duration::ZERO);
        c.send_binary(&vec![7u8; 1 << 20]).unwrap();
        drain(&mut c);
        assert!(c.send.tx.capacity() > 1 << 20);
        // The clock pins the timer: one second from this reading.
        c.handle_timeout(Duration::from_millis(10));
        c.handle_timeout(Duration::from_millis(1009));
        assert!(
            c.send.tx.capacity() > 1 << 20,
            "given back before a second idle"
        );
        c.handle_timeout(Duration::from_millis(1010));
        assert!(
            c.send.tx.capacity() <= BUFFER_KEEP,
            "{}",
            c.send.tx.capacity()
        );
        // Small messages go on as before.
        c.send_text("after").unwrap();
        assert_eq!(c.pending_transmit(), b"\x81\x05after");
    }

    #[test]
    fn bytes_not_yet_written_keep_their_queue() {
        let mut c = Connection::server(Config::default());
        c.handle_timeout(Duration::ZERO);
        c.send_binary(&vec![7u8; 1 << 20]).unwrap();
        c.advance_transmit(1000);
        c.handle_timeout(Duration::from_millis(10));
        c.handle_timeout(Duration::from_secs(5));
        let left = c.transmit_len();
        assert_eq!(left, (1 << 20) + 10 - 1000);
        let mut written = Vec::new();
        while c.transmit_len() > 0 {
            let chunk = c.pending_transmit();
            written.extend_from_slice(chunk);
            let n = chunk.len();
            c.advance_transmit(n);
        }
        assert_eq!(written.len() as u64, left);
        assert!(written.iter().all(|&b| b == 7));
    }
}
