//! THE receive path: frames out of the read buffer, checked, and assembled into events.
//!
//! Every payload byte a peer sends goes through [`Assembler::step`] (or, for a slice given to
//! `Connection::receive`, first through [`Assembler::take_direct`], which lands it where
//! `step` will find it). The assembler alone owns message assembly, the size budget and UTF-8
//! validation; the fast paths live inside it:
//! - a whole message whose frame is already buffered is unmasked, checked and handed out in
//!   one step (copied out below `SMALL_MESSAGE`, split off the read buffer above it);
//! - a fragment already buffered is unmasked as it is copied into the message being built;
//! - bytes of a frame in progress that a caller hands over are unmasked as they are copied in.
//!
//! A frame is routed once, at its header: a whole message ([`Route::Whole`]), a piece of a
//! message assembled in its own buffer ([`Route::Append`]), a piece of a message an extension
//! encoded ([`Route::Decode`]: decoded piece by piece as it arrives, the output then checked
//! like any other payload), or a control frame. A message over `Config::streaming_threshold`
//! is delivered as [`Event::Chunk`]s as its bytes arrive instead of being assembled.

use super::Role;
use super::recv_buf::{READ_FRAME_MIN, RecvBuf};
use crate::config::Config;
use crate::connection::Event;
use crate::error::ProtocolError;
use crate::extension::Extension;
use crate::frame::{self, FrameHeader, MAX_HEADER_LEN, Opcode};
use crate::message::{Message, MessageKind, Utf8Bytes};
use crate::utf8::{Utf8Validator, fast_valid};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Buf, Bytes};

/// Most events processed ahead of the application: parsing pauses here, so a read full of
/// tiny frames costs queue memory in proportion to this, not to the read (kept small so a
/// batch of small messages freed together stays within the allocator's thread cache).
pub(super) const EVENT_BATCH: usize = 4;

/// Whole messages up to this size are copied out of the read buffer rather than split off it
/// (a small allocation costs less than sharing the read buffer's, and does not pin it).
/// Larger masked frames that start a slice given to `receive` are unmasked as they are copied
/// in (`take_direct`).
pub(super) const SMALL_MESSAGE: usize = 512;

/// What a frame's payload becomes, decided once at its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// A whole message in one frame (FIN, no reserved bits): handed out as it stands.
    Whole,
    /// A piece of a message assembled in its own buffer (or streamed out as chunks).
    Append,
    /// A piece of a message the extension encoded: decoded as it arrives.
    Decode,
    /// A Ping, Pong or Close.
    Control,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Recv {
    Header,
    /// Inside a frame's payload. Kept frames (`consume == false`) stay in the read buffer
    /// until they are complete, `done` bytes at its front already unmasked (and, for text,
    /// checked). Consumed frames (decoded or streamed) are processed as they arrive, and
    /// `done` counts the bytes already taken out.
    Payload {
        header: FrameHeader,
        len: usize,
        done: usize,
        route: Route,
        consume: bool,
        text: bool,
    },
    /// After the peer's Close or a failure: nothing more is parsed.
    Stopped,
}

/// A message being assembled from fragments.
#[derive(Debug)]
pub(super) struct Incoming {
    pub(super) kind: MessageKind,
    /// The reserved bits of its first frame: non-zero means extension-encoded.
    pub(super) rsv: u8,
    /// The payload so far (decoded, if encoded): a `Vec` rather than a `BytesMut`, so the
    /// room reserved ahead can be given back before the message is handed out.
    pub(super) buf: Vec<u8>,
    /// Payload bytes received so far, as they were on the wire.
    pub(super) received: u64,
    /// Bytes the application has been given so far (decoded), for the budget of a message
    /// streamed out in chunks.
    pub(super) delivered: u64,
    /// Delivered as chunks while it arrives.
    pub(super) streamed: bool,
    /// `size()` when the current frame started: a frame's decoded bytes count against
    /// `max_frame_size` too.
    pub(super) frame_start: u64,
}

impl Incoming {
    /// Decoded bytes so far, delivered or not: what the message budget counts.
    pub(super) fn size(&self) -> u64 {
        self.delivered + self.buf.len() as u64
    }
}

/// What one step of the parser did. Events it produces go straight into
/// [`Assembler::events`], where `Connection::poll_event` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Progress: a header read, a fragment added, or an event queued (from `run`: enough
    /// events wait).
    Progress,
    /// A Ping was queued (at the back of `events`): a Pong may be owed.
    Ping,
    /// A Pong was queued: the keepalive Pong deadline is met.
    Pong,
    /// The read buffer holds no complete next piece.
    NeedMore,
}

#[derive(Debug)]
pub(super) struct Assembler {
    /// Parsed events the application has not taken yet, oldest first.
    pub(super) events: VecDeque<Event>,
    pub(super) role: Role,
    pub(super) max_frame: u64,
    pub(super) max_message: u64,
    pub(super) stream_over: Option<u64>,
    /// The RSV bits a negotiated extension claims on a message's first frame.
    pub(super) claimed: u8,
    pub(super) recv: Recv,
    pub(super) incoming: Option<Incoming>,
    /// The size of the last fragmented message, which the next one's assembly buffer
    /// reserves (see `new_message`).
    pub(super) assembly_hint: usize,
    pub(super) utf8: Utf8Validator,
    pub(super) close_seen: bool,
    /// A protocol error found behind events the application has not taken yet: parsing has
    /// stopped there, and the connection fails once those events are taken.
    pub(super) failure: Option<ProtocolError>,
    /// The extension decoded a message since the connection last looked.
    pub(super) decoded: bool,
}

impl MessageKind {
    /// The kind of message a Text or Binary frame starts.
    fn of(opcode: Opcode) -> Self {
        if opcode == Opcode::Text {
            Self::Text
        } else {
            Self::Binary
        }
    }
}

impl Assembler {
    pub(super) fn new(role: Role, config: &Config) -> Self {
        Self {
            role,
            max_frame: config.max_frame_size,
            max_message: config.max_message_size,
            stream_over: config.streaming_threshold,
            claimed: 0,
            events: VecDeque::new(),
            recv: Recv::Header,
            incoming: None,
            assembly_hint: 0,
            utf8: Utf8Validator::new(),
            close_seen: false,
            failure: None,
            decoded: false,
        }
    }

    /// Accepts the RSV bits of a negotiated extension.
    pub(super) fn claim(&mut self, bits: u8) {
        self.claimed = bits;
    }

    /// Whether frames are still parsed: not after the peer's Close, nor after a failure.
    pub(super) const fn parsing(&self) -> bool {
        !matches!(self.recv, Recv::Stopped)
    }

    /// Whether the peer's Close frame has been parsed.
    pub(super) const fn close_seen(&self) -> bool {
        self.close_seen
    }

    /// Stops parsing for good (the connection failed or ended): what is buffered or arrives
    /// is discarded, and a message in progress is dropped.
    pub(super) fn stop(&mut self) {
        self.recv = Recv::Stopped;
        self.incoming = None;
    }

    /// Stops parsing at `error`, which takes effect once the events before it are taken.
    pub(super) fn fail_behind_events(&mut self, error: ProtocolError) {
        self.stop();
        self.failure = Some(error);
    }

    /// Whether an error waits behind undelivered events.
    pub(super) const fn has_failure(&self) -> bool {
        self.failure.is_some()
    }

    /// The error that waited behind the events now taken.
    pub(super) fn take_failure(&mut self) -> Option<ProtocolError> {
        self.failure.take()
    }

    /// Payload bytes of the frame in progress still to arrive, for sizing the next read.
    pub(super) fn frame_left(&self, rb: &RecvBuf) -> Option<usize> {
        match self.recv {
            Recv::Payload {
                len, done, consume, ..
            } => {
                let left = if consume { len - done } else { len };
                Some(left.saturating_sub(rb.filled))
            }
            _ => None,
        }
    }

    /// Parses the read buffer until `EVENT_BATCH` events wait, it needs more input, or a
    /// control frame brings an obligation for the connection to keep (`Ping`, `Pong`).
    ///
    /// # Errors
    /// The peer broke the protocol.
    pub(super) fn run(
        &mut self,
        rb: &mut RecvBuf,
        mut ext: Option<&mut (dyn Extension + 'static)>,
    ) -> Result<Step, ProtocolError> {
        while self.events.len() < EVENT_BATCH {
            let step = match self.recv {
                Recv::Header => self.header(rb)?,
                Recv::Payload { .. } => self.payload(rb, ext.as_deref_mut())?,
                Recv::Stopped => return Ok(Step::NeedMore),
            };
            if step != Step::Progress {
                return Ok(step);
            }
        }
        Ok(Step::Progress)
    }

    // ------------------------------------------------------------------ headers

    #[inline(always)]
    fn header(&mut self, rb: &mut RecvBuf) -> Result<Step, ProtocolError> {
        let Some((header, header_len)) = frame::decode_header(rb.data())? else {
            return Ok(Step::NeedMore);
        };
        let len = self.check_header(&header)?;
        let route = self.route(&header, len);
        if route != Route::Control {
            // Between frames, offer room for exactly this frame's size on the wire, so that
            // a stream of equal frames is read one frame per read with nothing left over to
            // move (a frame cut a few bytes short made the next read reallocate the buffer,
            // a copy of the whole frame). No more than a frame in progress may be offered
            // anyway (`RecvBuf::want`).
            rb.frame_room = len
                .saturating_add(header_len)
                .min(READ_FRAME_MIN + MAX_HEADER_LEN);
        }
        let text = self.is_text(&header, route);
        if rb.filled - header_len >= len {
            match route {
                Route::Whole => return self.take_whole(rb, header, header_len, len),
                Route::Append if !self.streams(&header) => {
                    return self.take_fragment(rb, header, header_len, len, text);
                }
                _ => {}
            }
        }
        rb.buf.advance(header_len);
        rb.filled -= header_len;
        if len > rb.buf.capacity() {
            // The frame does not fit in the room ahead of where the buffer now starts, but
            // may fit in its allocation: move what has arrived to the front now, while that
            // is one read, rather than when the room runs out with most of the frame in.
            // `try_reclaim` never allocates, so the declared length reserves nothing.
            let _ = rb.buf.try_reclaim(len - rb.filled.min(len));
        }
        let consume = route == Route::Decode || (route == Route::Append && self.streams(&header));
        self.recv = Recv::Payload {
            header,
            len,
            done: 0,
            route,
            consume,
            text,
        };
        Ok(Step::Progress)
    }

    /// The checks that need the connection's context; returns the payload length as `usize`.
    /// Limits are checked here, on the header, before any payload is buffered.
    fn check_header(&mut self, h: &FrameHeader) -> Result<usize, ProtocolError> {
        // RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines
        // meanings for non-zero values". RFC 7692 §6.1: the "Per-Message Compressed" bit is
        // set on "the first frame of the message" only: a continuation or control frame
        // with it set is an error.
        let claimed = match h.opcode {
            Opcode::Text | Opcode::Binary => self.claimed,
            _ => 0,
        };
        if h.rsv & !claimed != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv >> 4));
        }
        match (self.role, h.mask.is_some()) {
            // RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame that
            // is not masked."
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            // RFC 6455 §5.1: "A client MUST close a connection if it detects a masked frame."
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if !h.opcode.is_control() {
            let so_far = match (h.opcode, &self.incoming) {
                // RFC 6455 §5.4: fragments of one message "MUST NOT be interleaved" with
                // another message's.
                (Opcode::Text | Opcode::Binary, Some(_)) => {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (Opcode::Continuation, Some(msg)) => msg.received,
                _ => 0,
            };
            if h.payload_len > self.max_frame {
                return Err(ProtocolError::FrameTooLarge {
                    size: h.payload_len,
                    limit: self.max_frame,
                });
            }
            let total = so_far.saturating_add(h.payload_len);
            if total > self.max_message {
                return Err(ProtocolError::MessageTooLarge {
                    size: total,
                    limit: self.max_message,
                });
            }
        }
        usize::try_from(h.payload_len).map_err(|_| ProtocolError::FrameTooLarge {
            size: h.payload_len,
            limit: usize::MAX as u64,
        })
    }

    /// Decides where the frame's payload goes, and starts a message if it begins one.
    fn route(&mut self, h: &FrameHeader, len: usize) -> Route {
        match h.opcode {
            Opcode::Close | Opcode::Ping | Opcode::Pong => Route::Control,
            Opcode::Continuation => {
                let msg = self
                    .incoming
                    .as_mut()
                    .expect("checked: a message is in progress");
                msg.received += len as u64;
                msg.frame_start = msg.size();
                if !msg.streamed && self.stream_over.is_some_and(|t| msg.received > t) {
                    msg.streamed = true;
                }
                if msg.rsv == 0 {
                    Route::Append
                } else {
                    Route::Decode
                }
            }
            Opcode::Text | Opcode::Binary => {
                if h.opcode == Opcode::Text {
                    self.utf8 = Utf8Validator::new();
                }
                let streamed = self.stream_over.is_some_and(|t| len as u64 > t);
                if h.fin && h.rsv == 0 && !streamed {
                    return Route::Whole;
                }
                let reserve = if h.rsv != 0 || streamed {
                    // Decoded or streamed output grows as it is produced, never from a size.
                    0
                } else {
                    // As much as the previous fragmented message needed (at most
                    // `max_message_size`): a stream of similar messages then assembles
                    // without reallocating; `finish` gives back what a smaller one leaves.
                    len.max(self.assembly_hint)
                };
                self.incoming = Some(Incoming {
                    kind: MessageKind::of(h.opcode),
                    rsv: h.rsv,
                    buf: Vec::with_capacity(reserve),
                    received: len as u64,
                    delivered: 0,
                    streamed,
                    frame_start: 0,
                });
                if h.rsv == 0 {
                    Route::Append
                } else {
                    Route::Decode
                }
            }
        }
    }

    /// Whether the message a data frame belongs to is streamed out in chunks.
    fn streams(&self, h: &FrameHeader) -> bool {
        !h.opcode.is_control() && self.incoming.as_ref().is_some_and(|m| m.streamed)
    }

    /// Whether the frame's raw payload is text to check as it arrives (decoded payloads are
    /// checked after decoding instead).
    fn is_text(&self, h: &FrameHeader, route: Route) -> bool {
        match route {
            Route::Whole => h.opcode == Opcode::Text,
            Route::Append => self
                .incoming
                .as_ref()
                .is_some_and(|m| m.kind == MessageKind::Text),
            Route::Decode | Route::Control => false,
        }
    }

    // ------------------------------------------------------------------ buffered frames

    /// A whole message whose frame is already buffered (the common case for small
    /// messages): unmasked, checked and cut off the read buffer in one step.
    fn take_whole(
        &mut self,
        rb: &mut RecvBuf,
        h: FrameHeader,
        header_len: usize,
        len: usize,
    ) -> Result<Step, ProtocolError> {
        rb.filled -= header_len + len;
        let end = header_len + len;
        let payload = if len <= SMALL_MESSAGE {
            // Copied out, unmasked on the way. One `advance` over header and payload
            // together: each costs a rewrite of the buffer's packed offset.
            let src = &rb.buf[header_len..end];
            let copy = match h.mask {
                Some(key) => Bytes::from(frame::masked_vec(src, key, 0)),
                None => Bytes::copy_from_slice(src),
            };
            rb.buf.advance(end);
            copy
        } else {
            if let Some(key) = h.mask {
                frame::unmask_fresh(&mut rb.buf[header_len..end], key, 0);
            }
            rb.buf.advance(header_len);
            rb.buf.split_to(len).freeze()
        };
        let kind = MessageKind::of(h.opcode);
        if kind == MessageKind::Text {
            self.text_whole(&payload)?;
        }
        Ok(self.emit(deliver(kind, payload)))
    }

    /// A fragment whose frame is already buffered: copied into the message being assembled
    /// (unmasked on the way, one pass instead of an unmask in place and a copy) and checked
    /// there.
    fn take_fragment(
        &mut self,
        rb: &mut RecvBuf,
        h: FrameHeader,
        header_len: usize,
        len: usize,
        text: bool,
    ) -> Result<Step, ProtocolError> {
        rb.buf.advance(header_len);
        rb.filled -= header_len;
        let msg = self
            .incoming
            .as_mut()
            .expect("routed: a message is in progress");
        let start = msg.buf.len();
        match h.mask {
            Some(key) => frame::extend_vec_masked(&mut msg.buf, &rb.buf[..len], key, 0),
            None => msg.buf.extend_from_slice(&rb.buf[..len]),
        }
        rb.buf.advance(len);
        rb.filled -= len;
        if text {
            let msg = self.incoming.as_ref().expect("still in progress");
            text_piece(&mut self.utf8, &msg.buf[start..])?;
        }
        if h.fin {
            self.finish()
        } else {
            Ok(Step::Progress)
        }
    }

    // ------------------------------------------------------------------ frames in progress

    fn payload(
        &mut self,
        rb: &mut RecvBuf,
        ext: Option<&mut (dyn Extension + 'static)>,
    ) -> Result<Step, ProtocolError> {
        let Recv::Payload {
            header,
            len,
            done,
            route,
            consume,
            text,
        } = self.recv
        else {
            unreachable!("called in Recv::Payload");
        };
        if consume {
            return self.consume(rb, ext, header, len, done, route);
        }
        let avail = rb.filled.min(len);
        if avail > done {
            let fresh = &mut rb.buf[done..avail];
            if let Some(key) = header.mask {
                frame::unmask_fresh(fresh, key, done);
            }
            // RFC 6455 §8.1: invalid UTF-8 fails the connection; checking each chunk as it
            // arrives catches it before the frame ends.
            if text {
                text_piece(&mut self.utf8, fresh)?;
            }
            self.set_done(avail);
        }
        if avail < len {
            return Ok(Step::NeedMore);
        }
        self.recv = Recv::Header;
        match route {
            Route::Whole => {
                // Handed out without a copy; its UTF-8 was checked as it arrived.
                let payload = rb.buf.split_to(len).freeze();
                rb.filled -= len;
                if text {
                    text_end(&mut self.utf8)?;
                }
                Ok(self.emit(deliver(MessageKind::of(header.opcode), payload)))
            }
            Route::Append => {
                let msg = self
                    .incoming
                    .as_mut()
                    .expect("routed: a message is in progress");
                msg.buf.extend_from_slice(&rb.buf[..len]);
                rb.buf.advance(len);
                rb.filled -= len;
                if header.fin {
                    self.finish()
                } else {
                    Ok(Step::Progress)
                }
            }
            Route::Control => {
                let payload = rb.buf.split_to(len).freeze();
                rb.filled -= len;
                self.control(header.opcode, payload)
            }
            Route::Decode => unreachable!("decoded frames are consumed"),
        }
    }

    pub(super) fn set_done(&mut self, now_done: usize) {
        if let Recv::Payload { done, .. } = &mut self.recv {
            *done = now_done;
        }
    }

    /// The final fragment is in: the assembled message is checked and handed out.
    pub(super) fn finish(&mut self) -> Result<Step, ProtocolError> {
        let Incoming {
            kind,
            rsv,
            mut buf,
            streamed,
            ..
        } = self.incoming.take().expect("a message in progress");
        // RFC 6455 §8.1: a text message that ends inside a code point is invalid too.
        if kind == MessageKind::Text {
            text_end(&mut self.utf8)?;
        }
        self.decoded |= rsv != 0;
        if streamed {
            return Ok(self.emit(chunk(kind, Bytes::from(buf), true)));
        }
        if rsv == 0 {
            self.assembly_hint = buf.len();
        }
        if buf.capacity() > buf.len() {
            // In place with the common allocators: shrinking splits the block.
            buf.shrink_to_fit();
        }
        Ok(self.emit(deliver(kind, Bytes::from(buf))))
    }

    /// Queues an event for the application.
    pub(super) fn emit(&mut self, event: Event) -> Step {
        self.events.push_back(event);
        Step::Progress
    }

    // ------------------------------------------------------------------ UTF-8

    /// A whole text payload, in one SIMD pass.
    fn text_whole(&self, payload: &[u8]) -> Result<(), ProtocolError> {
        // RFC 6455 §8.1: a text message that is not valid UTF-8 fails the connection.
        if fast_valid(payload) {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }
}

/// The next piece of a text message. RFC 6455 §8.1: "When an endpoint is to interpret a byte
/// stream as UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8 stream, that
/// endpoint MUST _Fail the WebSocket Connection_", as soon as it is seen.
pub(super) fn text_piece(utf8: &mut Utf8Validator, piece: &[u8]) -> Result<(), ProtocolError> {
    utf8.feed(piece).map_err(|_| ProtocolError::InvalidUtf8)
}

/// The end of a text message: it may not end inside a code point.
fn text_end(utf8: &mut Utf8Validator) -> Result<(), ProtocolError> {
    utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)
}

/// A whole message, its payload checked.
fn deliver(kind: MessageKind, bytes: Bytes) -> Event {
    Event::Message(message(kind, bytes))
}

/// A piece of a streamed message, its payload checked.
pub(super) fn chunk(kind: MessageKind, bytes: Bytes, fin: bool) -> Event {
    Event::Chunk {
        data: message(kind, bytes),
        fin,
    }
}

fn message(kind: MessageKind, bytes: Bytes) -> Message {
    match kind {
        MessageKind::Text => Message::Text(Utf8Bytes::from_validated(bytes)),
        MessageKind::Binary => Message::Binary(bytes),
    }
}
