//! The frame-phase state machine: bytes in, events out; commands in, bytes out.

use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{ProtocolError, UsageError};
use crate::extension::Extension;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, Opcode};
use crate::message::{Message, MessageKind, OutgoingFragments};
pub use crate::transmit::PreparedMessage;
use crate::transmit::{TxQueue, data_opcode, for_each_fragment};
use crate::utf8::Utf8Validator;
use receive::{Incoming, Recv};

mod receive;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::ToString;
use bytes::buf::Limit;
use bytes::{BufMut, Bytes, BytesMut};
use core::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete data message.
    Message(Message),
    /// A Ping arrived (already answered when `Config::auto_pong` is on).
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The peer's Close frame (already echoed). Nothing follows it.
    Close(CloseFrame),
}

/// Queued output above which Pongs coalesce into one slot.
const PONG_BACKLOG: u64 = 8 << 10;
/// Smallest and largest spare room `read_buf` and `read_space` offer. The smallest is what
/// every idle connection holds (2 KiB rather than 4 KiB took idle server RSS per connection
/// from 8.2 KB to 6.2 KB); a frame larger than that gets more room once its header is read.
const READ_MIN: usize = 2048;
const READ_MAX: usize = 1 << 20;
/// The most the adaptive minimum room grows to, for a busy connection reading many frames
/// per read. Measured: 1 KiB fragments assembled in 359 us per MiB at 16 KiB, 423 at
/// 64 KiB, 635 with fixed 2 KiB reads; at 64 KiB the 1 x 64 KiB echo lost 10% (large
/// frames get their room from `READ_FRAME_MIN` instead).
const READ_BATCH_MAX: usize = 16 << 10;
/// Inside a frame, room up to this much is offered even before that much has arrived:
/// growing a buffer from a few KiB by doubling costs a copy of everything received at
/// every step (measured through `read_space`, against a 4 KiB start: 64 KiB frames decoded
/// 1.9x faster, 1 MiB frames 1.3x), and this is what a stalled peer can make us reserve.
const READ_FRAME_MIN: usize = 64 << 10;
/// Server payloads at least this large are queued by reference instead of copied.
const ZERO_COPY_MIN: usize = 16 << 10;

/// A WebSocket connection after the opening handshake, in either role.
///
/// It never touches a socket or a clock. Pump it like this:
///
/// 1. Feed what the transport delivered: [`receive`](Self::receive) (a copy), or
///    [`read_buf`](Self::read_buf) + [`commit_read`](Self::commit_read) (read straight into
///    the connection's buffer), or [`read_space`](Self::read_space) +
///    [`commit_space`](Self::commit_space) (append to its spare capacity, unzeroed);
///    [`receive_eof`](Self::receive_eof) at end of stream.
/// 2. Drain events with [`poll_event`](Self::poll_event) until `None`.
/// 3. Issue commands (`send_*`).
/// 4. Write [`pending_transmit`](Self::pending_transmit) to the transport and report what was
///    written with [`advance_transmit`](Self::advance_transmit), until it is empty.
/// 5. Before waiting, ask [`poll_timeout`](Self::poll_timeout); on waking, call
///    [`handle_timeout`](Self::handle_timeout) with the current time (it also advances the
///    connection's clock, from which new deadlines are measured).
/// 6. Once [`wants_shutdown`](Self::wants_shutdown), shut down the transport's write half; once
///    [`is_terminated`](Self::is_terminated), drop the transport.
///
/// Obligations are automatic: Pings are answered, a Close is echoed, and a protocol error
/// queues a Close frame with its code before the error is reported (RFC 6455 §7.1.7). Errors
/// are sticky: after one, input is ignored and every call that reports errors repeats it.
pub struct Connection {
    role: Role,
    config: Config,
    entropy: Option<Box<dyn Entropy>>,
    extension: Option<Box<dyn Extension>>,
    // Receive side. `rbuf[..filled]` holds received bytes; the rest is zeroed spare room, kept
    // so that `read_buf` does not zero memory before every read.
    rbuf: BytesMut,
    filled: usize,
    /// The least room the next read gets (`READ_MIN` to `READ_BATCH_MAX`): doubled after a
    /// read that filled what it was offered, halved after one that used under a quarter.
    read_room: usize,
    /// The room the last `read_buf` / `read_space` offered.
    offered: usize,
    /// Room for a frame like the last data frame, header included (at most
    /// `READ_FRAME_MIN`): offered between frames, so that a peer sending frames of a few
    /// KiB to 64 KiB gets each one read whole.
    frame_room: usize,
    recv: Recv,
    incoming: Option<Incoming>,
    /// The size of the last fragmented message, which the next one's assembly buffer
    /// reserves (see `start_message`).
    assembly_hint: usize,
    utf8: Utf8Validator,
    /// An error the parser found behind events the application has not taken yet.
    pending_error: Option<ProtocolError>,
    events: VecDeque<Event>,
    // Transmit side: frozen chunks first, then the tail being written into.
    tx: TxQueue,
    pong_slot: Option<Bytes>,
    outgoing: OutgoingFragments,
    // Closing.
    close_sent: bool,
    close_received: bool,
    error: Option<ProtocolError>,
    eof: bool,
    terminated: bool,
    // Time. Until the first `handle_timeout`, deadlines count from zero; that call rebases them.
    clock_started: bool,
    now: Duration,
    close_deadline: Option<Duration>,
    last_received: Duration,
    pong_deadline: Option<Duration>,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("error", &self.error)
            .field("buffered", &self.filled)
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
        Self {
            role,
            config,
            entropy,
            extension: None,
            rbuf: BytesMut::new(),
            filled: 0,
            read_room: READ_MIN,
            offered: 0,
            frame_room: 0,
            recv: Recv::Header,
            incoming: None,
            assembly_hint: 0,
            utf8: Utf8Validator::new(),
            pending_error: None,
            events: VecDeque::new(),
            tx: TxQueue::default(),
            pong_slot: None,
            outgoing: OutgoingFragments::default(),
            close_sent: false,
            close_received: false,
            error: None,
            eof: false,
            terminated: false,
            clock_started: false,
            now: Duration::ZERO,
            close_deadline: None,
            last_received: Duration::ZERO,
            pong_deadline: None,
        }
    }

    /// Installs a negotiated extension; frames carrying its RSV bits are routed through it.
    #[must_use]
    pub fn with_extension(mut self, extension: Box<dyn Extension>) -> Self {
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
        if self.error.is_some()
            || self.eof
            || self.terminated
            || (self.close_sent && self.close_received)
        {
            State::Closed
        } else if self.close_sent {
            State::CloseSent
        } else {
            State::Open
        }
    }

    /// Whether the time matters to what the connection does next: a timer is armed, the
    /// closing handshake has begun, or a Close or an error waits behind queued events (taking
    /// it starts the close timeout). While this is false an adapter may skip reading the clock
    /// before `poll_event`; `now` is then stale, and nothing uses it.
    #[cfg(feature = "tokio")]
    pub(crate) fn needs_clock(&self) -> bool {
        self.close_received
            || self.pending_error.is_some()
            || self.state() != State::Open
            || self.poll_timeout().is_some()
    }

    /// Whether the peer's Close frame arrived.
    #[must_use]
    pub const fn close_received(&self) -> bool {
        self.close_received
    }

    /// Whether our Close frame is queued (or sent).
    #[must_use]
    pub const fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the closing handshake is over, failed, or the transport ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// The error the connection failed with, if any (sticky).
    #[must_use]
    pub const fn error(&self) -> Option<ProtocolError> {
        self.error
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
            && (self.role == Role::Server || self.error.is_some() || self.terminated)
    }

    /// Whether the adapter may drop the transport: end-of-file was seen once closed, or the
    /// close timeout passed.
    #[must_use]
    pub const fn is_terminated(&self) -> bool {
        self.terminated
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
            self.last_received = self.now;
            // Appended, not copied into zeroed room: one pass over the bytes.
            self.rbuf.truncate(self.filled);
            // The rest of a payload in progress goes in first, on its own (a masked one
            // unmasked as it is copied), into the room kept for it below.
            while let Some(taken) = self.receive_direct(data) {
                data = &data[taken..];
                self.process();
                if data.is_empty() || !self.accepts_input() {
                    return self.result();
                }
            }
            if self.filled == 0 && data.len() > READ_FRAME_MIN {
                // Nothing is buffered: go back to the front of the allocation (moving
                // nothing) rather than append after the last frame, so a large frame finds
                // the whole allocation ahead instead of being moved there half-way in.
                // `try_reclaim` never allocates.
                let _ = self.rbuf.try_reclaim(self.rbuf.capacity() + 1);
            }
            // Room after the slice for the rest of a frame like the last one, so that a
            // frame the slice leaves unfinished is finished where it stands by the next call
            // (`receive_direct`), not moved to the front or into a new buffer first (that
            // move was 16% of receiving 64 KiB frames fed in 256 KiB slices). At most the
            // slice's own length again, and `frame_room` was set by a frame that passed
            // the limits, capped at 64 KiB and a header.
            let ahead = data.len().min(self.frame_room);
            self.rbuf.reserve(data.len() + ahead);
            self.rbuf.extend_from_slice(data);
            self.filled += data.len();
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
    /// room for a frame as large as the last data frame (at most 64 KiB and a header), so a peer that
    /// sends 16 KiB messages has each read whole, in one read. A peer that declares 16 MiB
    /// and sends one byte costs 64 KiB, not 16 MiB. The room is zeroed
    /// before it is first offered (a `&mut [u8]` must be initialised); readers that can
    /// append to spare capacity should use [`read_space`](Self::read_space), which does not
    /// touch the room.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let want = self.read_want();
        self.reserve_read(want);
        self.offered = self.rbuf.len() - self.filled;
        &mut self.rbuf[self.filled..]
    }

    /// Spare room to append to without zeroing it first: the connection's own buffer,
    /// limited to what it wants next (the same amount [`read_buf`](Self::read_buf) offers,
    /// with that room already reserved). For readers that fill a [`bytes::BufMut`] in place,
    /// such as tokio's `AsyncReadExt::read_buf`; a `&mut [u8]` reader (`std::io::Read`)
    /// needs initialised memory and should use `read_buf`. Then report with
    /// [`commit_space`](Self::commit_space).
    ///
    /// Only append: the bytes already in the buffer belong to the connection.
    pub fn read_space(&mut self) -> Limit<&mut BytesMut> {
        let want = self.read_want();
        // Room `read_buf` zeroed is dropped from the length (it stays in the capacity).
        self.rbuf.truncate(self.filled);
        self.rbuf.reserve(want);
        self.offered = want;
        (&mut self.rbuf).limit(want)
    }

    /// Accepts what was appended to [`read_space`](Self::read_space) since it was called.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    ///
    /// # Panics
    /// If the buffer was shortened instead of appended to.
    pub fn commit_space(&mut self) -> Result<(), ProtocolError> {
        let len = self.rbuf.len();
        assert!(
            len >= self.filled,
            "read_space: bytes were removed from the connection's buffer"
        );
        if self.accepts_input() && len > self.filled {
            self.adapt_read_room(len - self.filled);
            self.filled = len;
            self.last_received = self.now;
        } else {
            self.rbuf.truncate(self.filled);
        }
        self.process();
        self.result()
    }

    /// How much room the next read gets: it follows the frame in progress, but never runs
    /// ahead of what has arrived (see [`read_buf`](Self::read_buf)).
    fn read_want(&self) -> usize {
        let want = match self.recv {
            Recv::Payload { len, .. } if self.accepts_input() => len
                .saturating_sub(self.filled)
                .saturating_add(MAX_HEADER_LEN)
                .min(self.filled.max(READ_FRAME_MIN)),
            _ => self.frame_room,
        };
        want.clamp(self.read_room, READ_MAX)
    }

    /// Sizes the next reads by the last one: a connection whose reads fill their room is
    /// offered more (up to 16 KiB), so a stream of small frames takes fewer, larger reads,
    /// while an idle or trickling one keeps 2 KiB. The room grows only with bytes received.
    fn adapt_read_room(&mut self, n: usize) {
        if n >= self.offered {
            self.read_room = (self.read_room * 2).min(READ_BATCH_MAX);
        } else if n < self.read_room / 4 {
            self.read_room = (self.read_room / 2).max(READ_MIN);
        }
    }

    /// Accepts `n` bytes written into [`read_buf`](Self::read_buf).
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn commit_read(&mut self, n: usize) -> Result<(), ProtocolError> {
        if self.accepts_input() && n > 0 {
            self.adapt_read_room(n);
            self.filled = (self.filled + n).min(self.rbuf.len());
            self.last_received = self.now;
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
        self.eof = true;
        self.terminated = true;
        self.process();
        self.result()
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
            if let Some(error) = self.pending_error.take() {
                self.fail(error);
                return None;
            }
            self.process();
        }
        let event = self.events.pop_front()?;
        if let Event::Close(frame) = &event {
            if !self.close_sent {
                // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not
                // previously send a Close frame, the endpoint MUST send a Close frame in
                // response. (When sending a Close frame in response, the endpoint typically
                // echos the status code it received.)"
                let code = (frame.code != CloseCode::NO_STATUS).then_some(frame.code);
                self.write_close(code, "");
            }
            // The client now waits for the server to close TCP, but not forever.
            self.close_deadline = Some(self.now.saturating_add(self.config.close_timeout));
        }
        Some(event)
    }

    /// Bytes waiting to be written to the transport (the front chunk of the queue).
    #[must_use]
    pub fn pending_transmit(&self) -> &[u8] {
        self.tx.front()
    }

    /// Every chunk waiting to be written, in order, for vectored writes.
    pub fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.tx.chunks()
    }

    /// Total bytes waiting to be written.
    #[must_use]
    pub const fn transmit_len(&self) -> u64 {
        self.tx.len()
    }

    /// Reports that the first `n` bytes of the pending output were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.tx.advance(n);
        self.flush_pong();
    }

    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.terminated {
            return None;
        }
        let mut next = self.close_deadline;
        if self.state() == State::Open {
            if let Some(interval) = self.config.keepalive_interval {
                let keepalive = match self.pong_deadline {
                    Some(deadline) => deadline,
                    None => self.last_received.saturating_add(interval),
                };
                next = Some(next.map_or(keepalive, |n| n.min(keepalive)));
            }
        }
        next
    }

    /// Advances the connection's clock to `now` and fires due timers: the close timeout
    /// (terminates the connection, failing it with [`ProtocolError::CloseTimeout`] if the
    /// peer never answered our Close) and keepalive (queues a Ping, or fails with 1011 when
    /// the Pong is late). `now` is monotonic, from an origin the caller picks.
    pub fn handle_timeout(&mut self, now: Duration) {
        if !self.clock_started {
            // The caller's origin is not ours: move what was measured from zero to `now`.
            self.clock_started = true;
            let shift = |d: Duration| d.saturating_add(now);
            self.close_deadline = self.close_deadline.map(shift);
            self.pong_deadline = self.pong_deadline.map(shift);
            self.last_received = shift(self.last_received);
        }
        self.now = self.now.max(now);
        let now = self.now;
        if let Some(deadline) = self.close_deadline {
            if now >= deadline {
                // RFC 6455 §7.1.1: the client "MAY close the connection at any time after
                // sending and receiving a Close message", so once both Closes have crossed,
                // giving up on the peer's TCP close is still a clean end. Our Close left
                // unanswered is not. RFC 6455 §7.1.5: "If _The WebSocket Connection is
                // Closed_ and no Close control frame was received by the endpoint [...] _The
                // WebSocket Connection Close Code_ is considered to be 1006." The caller must
                // be able to tell that from a clean close.
                //
                // A protocol error already found behind undelivered events stays the one
                // reported.
                if self.close_sent
                    && !self.close_received
                    && self.error.is_none()
                    && self.pending_error.is_none()
                {
                    self.error = Some(ProtocolError::CloseTimeout);
                }
                self.terminated = true;
                self.close_deadline = None;
            }
        }
        if self.state() != State::Open {
            return;
        }
        if let Some(interval) = self.config.keepalive_interval {
            match self.pong_deadline {
                Some(deadline) if now >= deadline => self.fail(ProtocolError::KeepaliveTimeout),
                Some(_) => {}
                None if now >= self.last_received.saturating_add(interval) => {
                    self.write_control(Opcode::Ping, b"keepalive");
                    self.pong_deadline = Some(now.saturating_add(self.config.keepalive_timeout));
                }
                None => {}
            }
        }
    }

    // ---------------------------------------------------------------- commands

    /// Queues a text message.
    ///
    /// # Errors
    /// [`UsageError::Closed`] after our Close, [`UsageError::FragmentInProgress`] while a
    /// fragmented message is unfinished.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_data(MessageKind::Text, text.as_bytes(), None)
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_data(MessageKind::Binary, data, None)
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
        // A server payload big enough is queued by reference: this handle itself, moved into
        // the queue when it goes out as one frame (each clone is an atomic increment and a
        // decrement later, 4% of encoding 64 KiB messages when there were two of them).
        // Anything else is copied into the frame.
        if self.role == Role::Server && bytes.len() >= ZERO_COPY_MIN {
            self.send_shared(kind, bytes)
        } else {
            self.send_data(kind, &bytes, None)
        }
    }

    /// Queues a message encoded once for many server connections.
    ///
    /// # Errors
    /// [`UsageError::PreparedForServerOnly`] on a client; otherwise as
    /// [`send_text`](Self::send_text).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        if self.role == Role::Client {
            return Err(UsageError::PreparedForServerOnly);
        }
        self.tx.push_chunk(prepared.frames.clone());
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
        if self.send_closed() {
            return Err(UsageError::Closed);
        }
        let opcode = match self.outgoing.kind {
            None => data_opcode(kind),
            Some(current) if current == kind => Opcode::Continuation,
            Some(_) => return Err(UsageError::FragmentInProgress),
        };
        if kind == MessageKind::Text {
            let mut check = self.outgoing.utf8.clone();
            check.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                check.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.outgoing.utf8 = check;
        }
        self.outgoing.kind = if fin { None } else { Some(kind) };
        for_each_fragment(
            data.len(),
            self.config.max_send_frame_size,
            |range, first, last| {
                let opcode = if first { opcode } else { Opcode::Continuation };
                let header = FrameHeader {
                    fin: fin && last,
                    rsv: 0,
                    opcode,
                    mask: None,
                    payload_len: 0,
                };
                self.write(header, &data[range]);
            },
        );
        Ok(())
    }

    /// Queues a Ping.
    ///
    /// # Errors
    /// [`UsageError::ControlPayloadTooLong`] over 125 bytes; [`UsageError::Closed`] after our
    /// Close.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_control(payload)?;
        self.write_control(Opcode::Ping, payload);
        Ok(())
    }

    /// Queues an unsolicited Pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    ///
    /// # Errors
    /// As [`send_ping`](Self::send_ping).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_control(payload)?;
        self.write_control(Opcode::Pong, payload);
        Ok(())
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2). [`CloseCode::NO_STATUS`] with an empty
    /// reason sends a Close frame without a body.
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent,
    /// [`UsageError::CloseReasonTooLong`] over 123 bytes, [`UsageError::Closed`] if a Close
    /// was already sent.
    pub fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        if self.send_closed() {
            return Err(UsageError::Closed);
        }
        if code == CloseCode::NO_STATUS && reason.is_empty() {
            self.write_close(None, "");
            return Ok(());
        }
        if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        // RFC 6455 §5.5: control payloads are at most 125 bytes, two of which hold the code.
        if reason.len() > 123 {
            return Err(UsageError::CloseReasonTooLong(reason.len()));
        }
        self.write_close(Some(code), reason);
        Ok(())
    }

    // ---------------------------------------------------------------- crate-internal

    /// Queues raw bytes ahead of any frame (the handshake's 101 response).
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.tx.push_bytes(bytes);
    }

    // ---------------------------------------------------------------- receive internals

    /// Whether new bytes from the peer are taken.
    fn accepts_input(&self) -> bool {
        self.parses_input() && !self.eof
    }

    /// Whether buffered bytes are still parsed.
    fn parses_input(&self) -> bool {
        self.error.is_none() && self.pending_error.is_none() && !self.close_received
    }

    /// The parser needs more bytes: after EOF there are none, so the connection ended
    /// without a Close (RFC 6455 §7.1.5: "_The WebSocket Connection Close Code_ is considered
    /// to be 1006").
    fn need_more(&mut self) {
        if self.eof && self.parses_input() {
            self.parse_failed(ProtocolError::UnexpectedEof);
        }
    }

    /// The parser found `error`: fail now, or once the events before it are taken.
    fn parse_failed(&mut self, error: ProtocolError) {
        if self.events.is_empty() {
            self.fail(error);
        } else {
            self.pending_error = Some(error);
        }
    }

    fn result(&self) -> Result<(), ProtocolError> {
        self.error.map_or(Ok(()), Err)
    }

    fn reserve_read(&mut self, want: usize) {
        let need = self.filled.saturating_add(want);
        if self.rbuf.len() < need {
            self.rbuf.resize(need, 0);
        }
    }

    fn fail(&mut self, error: ProtocolError) {
        if self.error.is_some() {
            return;
        }
        self.error = Some(error);
        self.pending_error = None;
        // RFC 6455 §7.1.7: "If _The WebSocket Connection is Established_ prior to the point
        // where the endpoint is required to _Fail the WebSocket Connection_, the endpoint
        // SHOULD send a Close frame with an appropriate status code (Section 7.4)".
        // After EOF there is no one to send a Close to (1006 is never on the wire).
        if !self.close_sent && error != ProtocolError::UnexpectedEof {
            let mut reason = error.to_string();
            let mut cut = reason.len().min(123);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            self.write_close(Some(error.close_code()), &reason);
        }
        self.pong_slot = None;
        self.incoming = None;
        self.pong_deadline = None;
        self.close_deadline = Some(self.now.saturating_add(self.config.close_timeout));
    }

    // ---------------------------------------------------------------- transmit internals

    /// Whether nothing more may be sent: our Close is out, or the connection failed or ended.
    fn send_closed(&self) -> bool {
        self.close_sent || self.error.is_some() || self.eof || self.terminated
    }

    fn check_can_send_data(&self) -> Result<(), UsageError> {
        if self.send_closed() {
            Err(UsageError::Closed)
        } else if self.outgoing.kind.is_some() {
            Err(UsageError::FragmentInProgress)
        } else {
            Ok(())
        }
    }

    fn check_control(&self, payload: &[u8]) -> Result<(), UsageError> {
        if self.send_closed() {
            Err(UsageError::Closed)
        } else if payload.len() > 125 {
            Err(UsageError::ControlPayloadTooLong(payload.len()))
        } else {
            Ok(())
        }
    }

    /// [`send_data`](Self::send_data) for a server payload queued by reference: a message
    /// that goes out as one frame, as it is, queues `bytes` itself.
    fn send_shared(&mut self, kind: MessageKind, bytes: Bytes) -> Result<(), UsageError> {
        if self.extension.is_some() || bytes.len() as u64 > self.config.max_send_frame_size {
            return self.send_data(kind, &bytes, Some(&bytes));
        }
        self.check_can_send_data()?;
        self.tx.push_shared_frame(whole_message_header(kind), bytes);
        Ok(())
    }

    fn send_data(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        if self.extension.is_none()
            && shared.is_none()
            && payload.len() as u64 <= self.config.max_send_frame_size
        {
            // One frame, copied in: most messages, without the fragmenting machinery.
            self.write(whole_message_header(kind), payload);
            return Ok(());
        }
        let (rsv, encoded) = match self.extension.as_mut() {
            Some(ext) => {
                let (rsv, out) = ext.encode(payload);
                if rsv == 0 {
                    (0, None)
                } else {
                    (rsv, Some(out.freeze()))
                }
            }
            None => (0, None),
        };
        let (payload, shared) = match &encoded {
            Some(bytes) => (&bytes[..], Some(bytes)),
            None => (payload, shared),
        };
        for_each_fragment(
            payload.len(),
            self.config.max_send_frame_size,
            |range, first, fin| {
                let opcode = if first {
                    data_opcode(kind)
                } else {
                    Opcode::Continuation
                };
                let rsv = if first { rsv } else { 0 };
                let header = FrameHeader {
                    fin,
                    rsv,
                    opcode,
                    mask: None,
                    payload_len: 0,
                };
                match shared {
                    Some(bytes) if self.role == Role::Server && range.len() >= ZERO_COPY_MIN => {
                        self.tx.push_shared_frame(header, bytes.slice(range));
                    }
                    _ => self.write(header, &payload[range]),
                }
            },
        );
        Ok(())
    }

    fn write_control(&mut self, opcode: Opcode, payload: &[u8]) {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: 0,
        };
        self.write(header, payload);
    }

    fn write_close(&mut self, code: Option<CloseCode>, reason: &str) {
        // A Ping that arrived before this point is still owed its Pong (RFC 6455 §5.5.2);
        // only later Pings are excused.
        if let Some(payload) = self.pong_slot.take() {
            self.write_control(Opcode::Pong, &payload);
        }
        let mut body = [0u8; 125];
        let len = match code {
            Some(code) => {
                body[..2].copy_from_slice(&code.0.to_be_bytes());
                let reason = &reason.as_bytes()[..reason.len().min(123)];
                body[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
            None => 0,
        };
        self.write_control(Opcode::Close, &body[..len]);
        // RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any
        // further data frames", and a Pong to a Ping queued earlier is moot.
        self.close_sent = true;
        self.pong_slot = None;
        self.close_deadline = Some(self.now.saturating_add(self.config.close_timeout));
    }

    /// Queues the Pong for the newest Ping unless output is backed up: every Ping is
    /// answered while the peer reads, but a Ping flood while it does not costs one slot, not
    /// a growing queue (RFC 6455 §5.5.3 allows answering only the most recent Ping).
    #[inline]
    fn flush_pong(&mut self) {
        if self.pong_slot.is_none() || self.transmit_len() > PONG_BACKLOG || self.close_sent {
            return;
        }
        if let Some(payload) = self.pong_slot.take() {
            self.write_control(Opcode::Pong, &payload);
        }
    }

    fn write(&mut self, header: FrameHeader, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => {
                let mut key = [0; 4];
                if let Some(entropy) = self.entropy.as_mut() {
                    entropy.fill(&mut key);
                }
                Some(key)
            }
            Role::Server => None,
        };
        self.tx.push_frame(header, payload, mask);
    }
}

/// The header of a message sent as one frame, with no extension: FIN, no reserved bits, and
/// the length and masking filled in when it is written.
const fn whole_message_header(kind: MessageKind) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: data_opcode(kind),
        mask: None,
        payload_len: 0,
    }
}
