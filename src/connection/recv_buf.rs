//! The read buffer: where received bytes wait for the assembler, and how much room each read
//! is offered.
//!
//! Two zero-copy ways in, because the two kinds of reader need different memory:
//! - `read_buf` / `commit_read` hand out a `&mut [u8]`, which `std::io::Read` (the blocking
//!   adapter) needs initialised: the room is zeroed once, when the buffer grows, and stays
//!   zeroed spare room behind `filled` after that;
//! - `read_space` / `commit_space` hand out the buffer itself for appending, without zeroing:
//!   tokio's `poll_read_buf` fills spare capacity in place, so a 1 MiB frame costs one copy,
//!   not a `memset` and a copy (the price `std::io::Read` readers pay).
//!
//! `Connection::receive(&[u8])` is the third way, for callers that already hold the bytes.

use super::Connection;
use super::phase::Phase;
use super::timers::Timer;
use crate::error::ProtocolError;
use crate::frame::MAX_HEADER_LEN;
use bytes::buf::Limit;
use bytes::{BufMut, BytesMut};

/// Smallest and largest room a read is offered. The smallest is what every idle connection
/// holds (idle memory per connection is in `benches/README.md`); a frame larger than that
/// gets more room once its header is read.
pub(super) const READ_MIN: usize = 2048;
const READ_MAX: usize = 1 << 20;
/// The most the adaptive minimum room grows to, for a busy connection reading many frames
/// per read; past it, large frames get their room from `READ_FRAME_MIN` instead.
const READ_BATCH_MAX: usize = 16 << 10;
/// Inside a frame, room up to this much is offered even before that much has arrived:
/// growing a buffer from a few KiB by doubling would copy everything received at every step.
/// It is also what a stalled peer can make us reserve.
pub(super) const READ_FRAME_MIN: usize = 64 << 10;

#[derive(Debug)]
pub(super) struct RecvBuf {
    /// `buf[..filled]` holds received bytes; after `read_buf`, the rest of `buf` is zeroed
    /// spare room, kept so that the next `read_buf` does not zero it again.
    pub(super) buf: BytesMut,
    pub(super) filled: usize,
    /// The least room the next read gets (`READ_MIN` to `READ_BATCH_MAX`): doubled after a
    /// read that filled what it was offered, halved after one that used under a quarter.
    read_room: usize,
    /// The room the last `read_buf` / `read_space` offered.
    offered: usize,
    /// Room for a frame like the last data frame, header included (at most
    /// `READ_FRAME_MIN`): offered between frames, so that a peer sending frames of a few KiB
    /// to 64 KiB gets each one read whole.
    pub(super) frame_room: usize,
    /// The transport reached end-of-file: no more bytes will come.
    pub(super) eof: bool,
}

impl RecvBuf {
    pub(super) fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            filled: 0,
            read_room: READ_MIN,
            offered: 0,
            frame_room: 0,
            eof: false,
        }
    }

    /// The received bytes not yet parsed.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// How much room the next read gets: it follows the frame in progress (`frame_left`
    /// payload bytes still to come), but never runs ahead of what has arrived.
    fn want(&self, frame_left: Option<usize>) -> usize {
        let want = match frame_left {
            Some(left) => left
                .saturating_add(MAX_HEADER_LEN)
                .min(self.filled.max(READ_FRAME_MIN)),
            None => self.frame_room,
        };
        want.clamp(self.read_room, READ_MAX)
    }

    /// Zeroed room after the received bytes, for `std::io::Read`.
    pub(super) fn read_buf(&mut self, frame_left: Option<usize>) -> &mut [u8] {
        let want = self.want(frame_left);
        let need = self.filled.saturating_add(want);
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.offered = self.buf.len() - self.filled;
        &mut self.buf[self.filled..]
    }

    /// Accepts `n` bytes written into `read_buf`'s room; returns whether any were taken.
    pub(super) fn commit_read(&mut self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        self.adapt(n);
        self.filled = (self.filled + n).min(self.buf.len());
        true
    }

    /// The buffer itself, to append to in place without zeroing, limited to what it wants.
    pub(super) fn read_space(&mut self, frame_left: Option<usize>) -> Limit<&mut BytesMut> {
        let want = self.want(frame_left);
        // Room `read_buf` zeroed is dropped from the length (it stays in the capacity).
        self.buf.truncate(self.filled);
        self.buf.reserve(want);
        self.offered = want;
        (&mut self.buf).limit(want)
    }

    /// Accepts what was appended since `read_space` (or, when `accept` is false, input after
    /// the peer's Close or a failure, drops it); returns whether anything was taken.
    ///
    /// # Panics
    /// If the buffer was shortened instead of appended to.
    pub(super) fn commit_space(&mut self, accept: bool) -> bool {
        let len = self.buf.len();
        assert!(
            len >= self.filled,
            "read_space: bytes were removed from the connection's buffer"
        );
        if !accept || len == self.filled {
            self.buf.truncate(self.filled);
            return false;
        }
        self.adapt(len - self.filled);
        self.filled = len;
        true
    }

    /// Appends bytes the caller holds (`Connection::receive`), leaving room after them for
    /// the rest of a frame like the last one, so that a frame the slice leaves unfinished is
    /// finished where it stands by the next slice rather than moved first. That room is at
    /// most the slice's own length again, and `frame_room` was set by a frame that passed
    /// the limits, capped at 64 KiB and a header.
    pub(super) fn append(&mut self, data: &[u8]) {
        self.buf.truncate(self.filled);
        if self.filled == 0 && data.len() > READ_FRAME_MIN {
            // Nothing is buffered: go back to the front of the allocation (moving nothing)
            // rather than append after the last frame, so a large frame finds the whole
            // allocation ahead instead of being moved there half-way in. `try_reclaim`
            // never allocates.
            let _ = self.buf.try_reclaim(self.buf.capacity() + 1);
        }
        let ahead = data.len().min(self.frame_room);
        self.buf.reserve(data.len() + ahead);
        self.buf.extend_from_slice(data);
        self.filled += data.len();
    }

    /// Sizes the next reads by the last one: a connection whose reads fill their room is
    /// offered more (up to 16 KiB), so a stream of small frames takes fewer, larger reads,
    /// while an idle or trickling one keeps 2 KiB. The room grows only with bytes received.
    fn adapt(&mut self, n: usize) {
        if n >= self.offered {
            self.read_room = (self.read_room * 2).min(READ_BATCH_MAX);
        } else if n < self.read_room / 4 {
            self.read_room = (self.read_room / 2).max(READ_MIN);
        }
    }
}

impl Connection {
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

    /// Whether new bytes from the peer are taken.
    pub(super) fn accepts_input(&self) -> bool {
        self.asm.parsing() && !self.recv.eof
    }

    pub(super) fn frame_left(&self) -> Option<usize> {
        if self.accepts_input() {
            self.asm.frame_left(&self.recv)
        } else {
            None
        }
    }

    /// Bytes arrived: with keepalive on, the next Ping is due an interval from now (unless
    /// a Ping is already out, waiting for its Pong).
    pub(super) fn activity(&mut self) {
        if let Some(interval) = self.config.keepalive_interval {
            if self.phase == Phase::Open && !self.timers.is_armed(Timer::Pong) {
                self.timers.arm(Timer::Idle, interval);
            }
        }
    }
}
