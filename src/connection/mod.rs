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
//! 2. `connection/recv_buf.rs` (`RecvBuf`) counts the byte in, sizing the next read by the
//!    frame in progress.
//! 3. `connection/mod.rs` (this file) runs the assembler until it needs more input, keeps
//!    the obligations that events bring (a Pong owed for a Ping, keepalive reset by a Pong),
//!    and queues the events.
//! 4. `connection/assemble.rs` (`Assembler`) parses the frame header (`frame/decode.rs`),
//!    checks it against the role, the reserved bits and the size budget, unmasks the payload,
//!    decodes it through the extension if the message is encoded, checks its UTF-8, and
//!    assembles the message.
//! 5. [`Connection::poll_event`] (this file again) hands out `Event::Message`, and for the
//!    peer's Close, echoes it and moves the phase (`connection/phase.rs`).
//!
//! Output takes the mirror path: `send_*` (this file) → `connection/send.rs` (framing,
//! fragmenting, masking, the extension's encoding) → `connection/tx_queue.rs` →
//! `pending_transmit` / `advance_transmit`. Every deadline lives in one table,
//! `connection/timers.rs`.

mod assemble;
mod phase;
mod recv_buf;
mod send;
pub(crate) mod timers;
mod tx_queue;

pub use tx_queue::PreparedMessage;

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::extension::Extension;
use crate::frame::Opcode;
use crate::message::{Message, MessageKind};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::ToString;
use assemble::{Assembler, EVENT_BATCH, Step};
use bytes::buf::Limit;
use bytes::{Bytes, BytesMut};
use core::time::Duration;
use phase::Phase;
use recv_buf::RecvBuf;
use send::{Sender, ZERO_COPY_MIN};
use timers::{Deadline, Timer, TimerTable};

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
/// `send_*` returns [`UsageError::Failed`] with it.
pub struct Connection {
    role: Role,
    config: Config,
    recv: RecvBuf,
    asm: Assembler,
    events: VecDeque<Event>,
    send: Sender,
    extension: Option<Box<dyn Extension>>,
    phase: Phase,
    timers: TimerTable,
    /// Bytes of the opening handshake's response (a server's 101) not yet written; the
    /// handshake timer bounds them.
    handshake_left: u64,
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
            events: VecDeque::new(),
            send: Sender::new(role, config.max_send_frame_size, entropy),
            extension: None,
            phase: Phase::Open,
            timers,
            handshake_left: 0,
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

    /// Feeds bytes received from the peer (copying them).
    ///
    /// Bytes that arrive after the peer's Close or after a failure are ignored.
    ///
    /// # Errors
    /// The sticky [`ProtocolError`] once the connection has failed; its Close frame is already
    /// queued. Events parsed before the error are still delivered by `poll_event`.
    pub fn receive(&mut self, mut data: &[u8]) -> Result<(), ProtocolError> {
        if self.accepts_input() && !data.is_empty() {
            self.activity();
            // The rest of a payload in progress goes in first, on its own (a masked one
            // unmasked as it is copied), into the room kept for it after the frame.
            loop {
                match self.asm.take_direct(&mut self.recv, data) {
                    Ok(Some(taken)) => {
                        data = &data[taken..];
                        self.process();
                        if data.is_empty() || !self.accepts_input() {
                            return self.result();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.parse_failed(e);
                        return self.result();
                    }
                }
            }
            self.recv.append(data);
        }
        self.process();
        self.result()
    }

    /// Spare room to read into directly; report how much was filled with
    /// [`commit_read`](Self::commit_read). Never empty.
    ///
    /// Its size follows the frame in progress, but never runs far ahead of what has arrived:
    /// at most the bytes already buffered or 64 KiB, whichever is more (so past 64 KiB the
    /// buffer at most doubles per read), at most 1 MiB per call, and at least 2 KiB, more (up
    /// to 16 KiB) while reads keep filling the room they are offered. Between frames it is
    /// room for a frame as large as the last data frame (at most 64 KiB and a header), so a
    /// peer that sends 16 KiB messages has each read whole, in one read. A peer that declares
    /// 16 MiB and sends one byte costs 64 KiB, not 16 MiB. The room is zeroed before it is
    /// first offered (a `&mut [u8]` must be initialised); readers that can append to spare
    /// capacity should use [`read_space`](Self::read_space), which does not touch the room.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let left = self.frame_left();
        self.recv.read_buf(left)
    }

    /// Accepts `n` bytes written into [`read_buf`](Self::read_buf).
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn commit_read(&mut self, n: usize) -> Result<(), ProtocolError> {
        if self.accepts_input() && self.recv.commit_read(n) {
            self.activity();
        }
        self.process();
        self.result()
    }

    /// Spare room to append to without zeroing it first: the connection's own buffer,
    /// limited to what it wants next (the same amount [`read_buf`](Self::read_buf) offers,
    /// with that room already reserved). For readers that fill a [`bytes::BufMut`] in place,
    /// such as tokio's `poll_read_buf`; a `&mut [u8]` reader (`std::io::Read`) needs
    /// initialised memory and should use `read_buf`. Then report with
    /// [`commit_space`](Self::commit_space).
    ///
    /// Only append: the bytes already in the buffer belong to the connection.
    pub fn read_space(&mut self) -> Limit<&mut BytesMut> {
        let left = self.frame_left();
        self.recv.read_space(left)
    }

    /// Accepts what was appended to [`read_space`](Self::read_space) since it was called.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    ///
    /// # Panics
    /// If the buffer was shortened instead of appended to.
    pub fn commit_space(&mut self) -> Result<(), ProtocolError> {
        if self.recv.commit_space(self.accepts_input()) {
            self.activity();
        }
        self.process();
        self.result()
    }

    /// Reports that the transport reached end-of-file.
    ///
    /// After a completed closing handshake this just terminates the connection. Otherwise the
    /// connection ended abnormally: it fails with [`ProtocolError::UnexpectedEof`] (1006,
    /// RFC 6455 §7.1.5), which is reported but never sent.
    ///
    /// # Errors
    /// The sticky error, [`ProtocolError::UnexpectedEof`] if this EOF caused it.
    pub fn receive_eof(&mut self) -> Result<(), ProtocolError> {
        // Complete frames already buffered still count (they are parsed as events are
        // polled); the error is decided when the parser runs out of them without a Close.
        self.recv.eof = true;
        self.phase = self.phase.ended(None);
        self.process();
        self.result()
    }

    /// Reports that the transport failed (an I/O error on a read or a write), and says
    /// whether that settles nothing the caller needs to know: once the connection is closed
    /// (the closing handshake is over, it failed, or it ended) the outcome is already known,
    /// so the failure counts as end-of-file and this returns `true`. While messages can
    /// still flow it returns `false`, changing nothing: the caller reports the I/O error.
    pub fn transport_failed(&mut self) -> bool {
        if self.is_closed() || self.is_terminated() {
            let _ = self.receive_eof();
            true
        } else {
            false
        }
    }

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
        if self.events.is_empty() {
            if let Some(error) = self.asm.take_failure() {
                self.fail(error);
                return None;
            }
            self.process();
        }
        let event = self.events.pop_front()?;
        if let Event::Close(frame) = &event {
            self.peer_closed(frame.code);
        }
        Some(event)
    }

    /// Bytes waiting to be written to the transport (the front chunk of the queue).
    #[must_use]
    pub fn pending_transmit(&self) -> &[u8] {
        self.send.tx.front()
    }

    /// Every chunk waiting to be written, in order, for vectored writes.
    pub fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.send.tx.chunks()
    }

    /// Total bytes waiting to be written.
    #[must_use]
    pub const fn transmit_len(&self) -> u64 {
        self.send.tx.len()
    }

    /// Reports that the first `n` bytes of the pending output were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.send.tx.advance(n);
        if self.handshake_left > 0 {
            self.handshake_left = self.handshake_left.saturating_sub(n as u64);
            if self.handshake_left == 0 {
                self.timers.stop(Timer::Handshake);
            }
        }
        self.send.flush_pong();
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called;
    /// `Duration::ZERO` when a timer was just armed and waits for a clock reading (see
    /// [Time](Self#time)).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_terminated() {
            return None;
        }
        self.timers.next()
    }

    /// Tells the connection the time and fires due timers: the close timeout (terminates the
    /// connection, failing it with [`ProtocolError::CloseTimeout`] if the peer never answered
    /// our Close), keepalive (queues a Ping, or fails with 1011 when the Pong is late), and
    /// the handshake timeout for a 101 response the peer never read. `now` is monotonic, from
    /// an origin the caller picks; it also starts the timers armed since the last call.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.timers.advance(now);
        while let Some(timer) = self.timers.take_expired() {
            match timer {
                Timer::Close => self.close_timer_fired(),
                Timer::Idle => {
                    if self.phase == Phase::Open {
                        self.send.control(Opcode::Ping, b"keepalive");
                        self.timers
                            .arm_now(Timer::Pong, self.config.keepalive_timeout);
                    }
                }
                Timer::Pong => {
                    if self.phase == Phase::Open {
                        self.fail(ProtocolError::KeepaliveTimeout);
                    }
                }
                Timer::Handshake => {
                    if self.handshake_left > 0 && !self.is_terminated() {
                        self.asm.stop();
                        self.phase = Phase::Ended(Some(ProtocolError::HandshakeTimeout));
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- commands

    /// Queues a text message.
    ///
    /// # Errors
    /// [`UsageError::Closed`] after our Close or the end of the connection,
    /// [`UsageError::Failed`] after a failure, [`UsageError::FragmentInProgress`] while a
    /// fragmented message is unfinished.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_data(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_data(MessageKind::Binary, data)
    }

    /// Queues a message; a server queues large payloads by reference, without copying them.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send(&mut self, message: Message) -> Result<(), UsageError> {
        let kind = message.kind();
        let bytes = match message {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        };
        if self.role == Role::Server && bytes.len() >= ZERO_COPY_MIN {
            self.check_send()?;
            self.send.check_message()?;
            self.send
                .shared_message(kind, bytes, self.extension.as_deref_mut());
            Ok(())
        } else {
            self.send_data(kind, &bytes)
        }
    }

    /// Queues a message encoded once for many server connections. On a connection with a
    /// negotiated extension it goes out unencoded (every extension lets a message through
    /// with its reserved bits clear).
    ///
    /// # Errors
    /// [`UsageError::PreparedForServerOnly`] on a client; otherwise as
    /// [`send_text`](Self::send_text).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), UsageError> {
        self.check_send()?;
        self.send.check_message()?;
        if self.role == Role::Client {
            return Err(UsageError::PreparedForServerOnly);
        }
        self.send.tx.push_chunk(prepared.frames.clone());
        Ok(())
    }

    /// Queues one fragment of a message whose size is not known up front (RFC 6455 §5.4).
    ///
    /// The first call starts a message of `kind`; later calls continue it (with the same
    /// `kind`) until one passes `fin = true`. Text fragments may split a code point, but
    /// together must be UTF-8. Control frames may be sent between fragments; whole messages
    /// may not.
    ///
    /// # Errors
    /// [`UsageError::Closed`] after our Close; [`UsageError::FragmentInProgress`] if `kind`
    /// differs from the message in progress; [`UsageError::InvalidUtf8`] if text fragments
    /// stop being UTF-8 (nothing is queued for that call).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        self.check_send()?;
        self.send.fragment(kind, data, fin)
    }

    /// Queues a Ping.
    ///
    /// # Errors
    /// [`UsageError::ControlPayloadTooLong`] over 125 bytes; [`UsageError::Closed`] after our
    /// Close.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_control(payload)?;
        self.send.control(Opcode::Ping, payload);
        Ok(())
    }

    /// Queues an unsolicited Pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    ///
    /// # Errors
    /// As [`send_ping`](Self::send_ping).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_control(payload)?;
        self.send.control(Opcode::Pong, payload);
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2). [`CloseCode::NO_STATUS`] with an empty
    /// reason sends a Close frame without a body. The close timeout counts from the next
    /// [`handle_timeout`](Self::handle_timeout).
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent,
    /// [`UsageError::CloseReasonTooLong`] over 123 bytes, [`UsageError::Closed`] if a Close
    /// was already sent.
    pub fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        self.check_send()?;
        let code = if code == CloseCode::NO_STATUS && reason.is_empty() {
            None
        } else if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.0));
        } else if reason.len() > 123 {
            // RFC 6455 §5.5: control payloads are at most 125 bytes, two of which hold the
            // code.
            return Err(UsageError::CloseReasonTooLong(reason.len()));
        } else {
            Some(code)
        };
        self.send.close(code, reason);
        self.phase = Phase::CloseSent;
        self.closing_started();
        Ok(())
    }

    // ---------------------------------------------------------------- crate-internal

    /// Queues the opening handshake's response (a server's 101) ahead of any frame; it must
    /// be written by `deadline`, the rest of the handshake timeout.
    pub(crate) fn queue_handshake_response(&mut self, bytes: &[u8], deadline: Option<Deadline>) {
        self.send.tx.push_bytes(bytes);
        self.handshake_left += bytes.len() as u64;
        if let Some(deadline) = deadline {
            self.timers.arm_from(Timer::Handshake, deadline);
        }
    }

    // ---------------------------------------------------------------- receive internals

    /// Whether new bytes from the peer are taken.
    fn accepts_input(&self) -> bool {
        self.asm.parsing() && !self.recv.eof
    }

    fn frame_left(&self) -> Option<usize> {
        if self.accepts_input() {
            self.asm.frame_left(&self.recv)
        } else {
            None
        }
    }

    /// Bytes arrived: with keepalive on, the next Ping is due an interval from now (unless
    /// a Ping is already out, waiting for its Pong).
    fn activity(&mut self) {
        if let Some(interval) = self.config.keepalive_interval {
            if self.phase == Phase::Open && !self.timers.is_armed(Timer::Pong) {
                self.timers.arm(Timer::Idle, interval);
            }
        }
    }

    /// Runs the assembler until it needs more input or enough events wait.
    fn process(&mut self) {
        while self.events.len() < EVENT_BATCH && self.asm.parsing() {
            match self.asm.step(&mut self.recv, self.extension.as_deref_mut()) {
                Step::Event(event) => self.on_event(event),
                Step::Progress => {}
                Step::NeedMore => return self.need_more(),
                Step::Failed(error) => return self.parse_failed(error),
            }
        }
    }

    /// The obligations an event brings as it is parsed, then the event is queued.
    fn on_event(&mut self, event: Event) {
        match &event {
            Event::Ping(payload) if self.config.auto_pong => self.send.owe_pong(payload.clone()),
            Event::Pong(_) if self.timers.is_armed(Timer::Pong) => {
                self.timers.stop(Timer::Pong);
                if let Some(interval) = self.config.keepalive_interval {
                    self.timers.arm(Timer::Idle, interval);
                }
            }
            _ => {}
        }
        self.events.push_back(event);
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
        if self.events.is_empty() {
            self.fail(error);
        } else {
            self.asm.fail_behind_events(error);
        }
    }

    fn result(&self) -> Result<(), ProtocolError> {
        self.error().map_or(Ok(()), Err)
    }

    /// Fails the connection (RFC 6455 §7.1.7), once: the first error stays.
    fn fail(&mut self, error: ProtocolError) {
        if self.error().is_some() {
            return;
        }
        let ended = self.is_terminated();
        self.phase = self.phase.failed(error);
        self.asm.stop();
        // RFC 6455 §7.1.7: "If _The WebSocket Connection is Established_ prior to the point
        // where the endpoint is required to _Fail the WebSocket Connection_, the endpoint
        // SHOULD send a Close frame with an appropriate status code (Section 7.4)".
        // After EOF there is no one to send a Close to (1006 is never on the wire).
        if !self.send.close_queued() && error != ProtocolError::UnexpectedEof {
            let mut reason = error.to_string();
            let mut cut = reason.len().min(123);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            self.send.close(Some(error.close_code()), &reason);
        }
        self.send.forget_pong();
        if !ended {
            self.closing_started();
        }
    }

    /// The peer's Close has been taken by the application.
    fn peer_closed(&mut self, code: CloseCode) {
        if !self.send.close_queued() {
            // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
            // send a Close frame, the endpoint MUST send a Close frame in response. (When
            // sending a Close frame in response, the endpoint typically echos the status code
            // it received.)"
            let code = (code != CloseCode::NO_STATUS).then_some(code);
            self.send.close(code, "");
        }
        if self.phase.is_open_or_closing() {
            self.phase = Phase::Closed;
        }
        // The client now waits for the server to close TCP, but not forever.
        if !self.is_terminated() {
            self.closing_started();
        }
    }

    /// Keepalive stops and the close timer starts: the connection is on its way out.
    fn closing_started(&mut self) {
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::Pong);
        self.timers.arm(Timer::Close, self.config.close_timeout);
    }

    fn close_timer_fired(&mut self) {
        // RFC 6455 §7.1.1: the client "MAY close the connection at any time after sending and
        // receiving a Close message", so once both Closes have crossed, giving up on the
        // peer's TCP close is still a clean end. Our Close left unanswered is not. RFC 6455
        // §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was
        // received by the endpoint [...] _The WebSocket Connection Close Code_ is considered
        // to be 1006." The caller must be able to tell that from a clean close. A protocol
        // error already found behind undelivered events stays the one reported.
        let unanswered = (!self.asm.close_seen() && !self.asm.has_failure())
            .then_some(ProtocolError::CloseTimeout);
        self.phase = self.phase.ended(unanswered);
        if !self.asm.has_failure() {
            self.asm.stop();
        }
    }

    // ---------------------------------------------------------------- send internals

    /// Whether anything may be sent: not after our Close, a failure, or the end.
    fn check_send(&self) -> Result<(), UsageError> {
        if let Some(error) = self.error() {
            Err(UsageError::Failed(error))
        } else if self.send.close_queued() || self.recv.eof || self.is_terminated() {
            Err(UsageError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_control(&self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_send()?;
        if payload.len() > 125 {
            Err(UsageError::ControlPayloadTooLong(payload.len()))
        } else {
            Ok(())
        }
    }

    fn send_data(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), UsageError> {
        self.check_send()?;
        self.send.check_message()?;
        self.send
            .message(kind, payload, None, self.extension.as_deref_mut());
        Ok(())
    }
}
