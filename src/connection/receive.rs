//! The receive parser: frames out of the read buffer, checked and assembled into events.

use super::{Connection, Role};
use crate::close::CloseFrame;
use crate::connection::Event;
use crate::error::ProtocolError;
use crate::frame::{self, FrameHeader, Opcode};
use crate::message::{Message, MessageKind, Utf8Bytes};
use crate::utf8::Utf8Validator;
use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};

/// Most events processed ahead of the application: parsing pauses here, so a read full of
/// tiny frames costs queue memory in proportion to this, not to the read. Kept below the
/// seven blocks per size that glibc's thread cache holds: at 32, a batch of small messages
/// freed together overflowed it, and each allocation took malloc's slow path (16 B frames
/// decoded in 0.90x the time at 4; at 1 the per-call overhead made it 1.06x slower than 4).
pub(super) const EVENT_BATCH: usize = 4;

/// Whole messages up to this size are copied out of the read buffer rather than split off it.
/// Larger masked frames that start a slice given to `receive` are unmasked as they are copied
/// in (`receive_direct`), rather than copied in and then unmasked in place.
const SMALL_MESSAGE: usize = 512;
pub(super) enum Recv {
    Header,
    /// `done` payload bytes, at the front of the read buffer, are unmasked and checked.
    Payload {
        header: FrameHeader,
        len: usize,
        done: usize,
        check_utf8: bool,
    },
}

pub(super) struct Incoming {
    pub(super) kind: MessageKind,
    pub(super) rsv: u8,
    /// The payload so far. A `Vec` rather than a `BytesMut`, so that the room reserved ahead
    /// can be given back (`shrink_to_fit`) before the message is handed out.
    pub(super) buf: Vec<u8>,
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

impl Connection {
    pub(super) fn process(&mut self) {
        while self.events.len() < EVENT_BATCH && self.parses_input() {
            match self.recv {
                Recv::Header => {
                    let (header, header_len) = match frame::decode_header(&self.rbuf[..self.filled])
                    {
                        Ok(Some(parsed)) => parsed,
                        Ok(None) => return self.need_more(),
                        Err(e) => return self.parse_failed(e),
                    };
                    let (len, check_utf8) = match self.check_header(&header) {
                        Ok(ok) => ok,
                        Err(e) => return self.parse_failed(e),
                    };
                    if !header.opcode.is_control() {
                        // Between frames, offer room for exactly this frame's size on the
                        // wire, so that a stream of equal frames is read one frame per read
                        // with nothing left over to move (cutting a 64 KiB frame a few bytes
                        // short made the next read grow the buffer by reallocating it, a copy
                        // of the whole frame: 64 KiB decode took 1.3x as long). No more than a
                        // frame in progress may be offered anyway (`read_want`).
                        self.frame_room = len
                            .saturating_add(header_len)
                            .min(super::READ_FRAME_MIN + frame::MAX_HEADER_LEN);
                    }
                    if self.filled - header_len >= len {
                        let taken = if Self::whole_message(&header) {
                            self.take_whole_message(header, header_len, len)
                                .map(|()| true)
                        } else if Self::plain_fragment(&header) {
                            self.take_fragment(header, header_len, len, check_utf8)
                        } else {
                            Ok(false)
                        };
                        match taken {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => return self.parse_failed(e),
                        }
                    }
                    self.rbuf.advance(header_len);
                    self.filled -= header_len;
                    if len > self.rbuf.capacity() {
                        // The frame does not fit in the room ahead of where the buffer now
                        // starts, but may fit in its allocation: move what has arrived to
                        // the front now, while that is one read, rather than when the room
                        // runs out with most of the frame in (at 1 MiB frames the room came
                        // up 14 bytes short each frame, and each paid a copy of 768 KiB).
                        // `try_reclaim` never allocates, so the declared length reserves
                        // nothing.
                        let _ = self.rbuf.try_reclaim(len - self.filled.min(len));
                    }
                    self.recv = Recv::Payload {
                        header,
                        len,
                        done: 0,
                        check_utf8,
                    };
                }
                Recv::Payload {
                    header,
                    len,
                    done,
                    check_utf8,
                } => {
                    let avail = self.filled.min(len);
                    if avail > done {
                        let fresh = &mut self.rbuf[done..avail];
                        if let Some(key) = header.mask {
                            frame::unmask_fresh(fresh, key, done);
                        }
                        // RFC 6455 §8.1: invalid UTF-8 fails the connection; checking each
                        // chunk as it arrives catches it before the frame ends.
                        if check_utf8 && self.utf8.feed(fresh).is_err() {
                            return self.parse_failed(ProtocolError::InvalidUtf8);
                        }
                        self.recv = Recv::Payload {
                            header,
                            len,
                            done: avail,
                            check_utf8,
                        };
                    }
                    if avail < len {
                        return self.need_more();
                    }
                    self.recv = Recv::Header;
                    let done = if header.opcode == Opcode::Continuation {
                        self.on_continuation(header.fin, len)
                    } else {
                        if header.fin || header.opcode.is_control() {
                            // A whole message (or control frame): handed out without a copy.
                            let payload = self.rbuf.split_to(len);
                            self.filled -= len;
                            self.on_frame(header, payload)
                        } else {
                            self.start_message(&header, len);
                            Ok(())
                        }
                    };
                    if let Err(e) = done {
                        return self.parse_failed(e);
                    }
                }
            }
        }
    }

    /// For [`receive`](Connection::receive): takes the front of `data` where it can go
    /// straight to its place, and returns how much it took (then `process` must run), or
    /// `None`, having done nothing, where `data` should just be appended.
    ///
    /// It takes the rest of a payload in progress (unmasked, if masked, and checked on the
    /// way in): on its own, so that it lands in the room `receive` kept after the frame's
    /// start, where appending all of `data` would not fit and would move the frame. And it
    /// takes the header of a masked frame over `SMALL_MESSAGE` that starts `data` while
    /// nothing is buffered, so that its payload is unmasked as it is copied in.
    pub(super) fn receive_direct(&mut self, data: &[u8]) -> Option<usize> {
        match self.recv {
            Recv::Payload {
                header,
                len,
                done,
                check_utf8,
            } if done == self.filled && done < len && !data.is_empty() => {
                let n = (len - done).min(data.len());
                match header.mask {
                    Some(key) => frame::extend_masked(&mut self.rbuf, &data[..n], key, done),
                    None => self.rbuf.extend_from_slice(&data[..n]),
                }
                self.filled += n;
                self.recv = Recv::Payload {
                    header,
                    len,
                    done: done + n,
                    check_utf8,
                };
                // RFC 6455 §8.1: invalid UTF-8 fails the connection as soon as it is seen.
                if check_utf8 && self.utf8.feed(&self.rbuf[done..done + n]).is_err() {
                    self.parse_failed(ProtocolError::InvalidUtf8);
                }
                Some(n)
            }
            Recv::Header if self.filled == 0 => match frame::decode_header(data) {
                Ok(Some((header, header_len)))
                    if header.mask.is_some() && header.payload_len > SMALL_MESSAGE as u64 =>
                {
                    self.rbuf.extend_from_slice(&data[..header_len]);
                    self.filled += header_len;
                    Some(header_len)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether a frame with this header is a whole message of its own, with nothing for an
    /// extension to decode: a final Text or Binary frame with no reserved bits set. (Its
    /// header passed `check_header`, so no message is in progress.)
    fn whole_message(h: &FrameHeader) -> bool {
        h.fin && h.rsv == 0 && matches!(h.opcode, Opcode::Text | Opcode::Binary)
    }

    /// The fast path for a whole message whose frame is already buffered (the common case for
    /// small messages): unmasked, checked and cut off the read buffer in one step, with none
    /// of the per-chunk bookkeeping that a frame arriving in pieces needs.
    fn take_whole_message(
        &mut self,
        h: FrameHeader,
        header_len: usize,
        len: usize,
    ) -> Result<(), ProtocolError> {
        self.filled -= header_len + len;
        let end = header_len + len;
        let payload = if len <= SMALL_MESSAGE {
            // Copied out: a small allocation is cheaper than the atomic reference counting of
            // a handle into the read buffer, and it does not pin that whole buffer in memory
            // for as long as the application keeps the message. A masked payload is
            // unmasked as it is copied. One `advance` over header and payload together: each
            // costs a rewrite of the buffer's packed offset.
            let src = &self.rbuf[header_len..end];
            let copy = match h.mask {
                Some(key) => Bytes::from(frame::masked_vec(src, key, 0)),
                None => Bytes::copy_from_slice(src),
            };
            self.rbuf.advance(end);
            copy
        } else {
            if let Some(key) = h.mask {
                frame::unmask_fresh(&mut self.rbuf[header_len..end], key, 0);
            }
            self.rbuf.advance(header_len);
            self.rbuf.split_to(len).freeze()
        };
        let kind = MessageKind::of(h.opcode);
        // RFC 6455 §8.1: a text message that is not valid UTF-8 fails the connection.
        if kind == MessageKind::Text && !crate::utf8::fast_valid(&payload) {
            return Err(ProtocolError::InvalidUtf8);
        }
        self.deliver(kind, payload);
        Ok(())
    }

    /// Whether a frame with this header is a fragment of a message without reserved bits: a
    /// non-final Text or Binary frame, or a continuation (which never has them; see
    /// `check_header`). Control frames and extension-encoded messages take the slow path.
    fn plain_fragment(h: &FrameHeader) -> bool {
        match h.opcode {
            Opcode::Text | Opcode::Binary => !h.fin && h.rsv == 0,
            Opcode::Continuation => true,
            _ => false,
        }
    }

    /// The fast path for a fragment whose frame is already buffered: copied into the message
    /// being assembled (unmasked on the way, if masked) and checked there, in one step.
    /// Returns `Ok(false)`, having done nothing, for a continuation of an extension-encoded
    /// message.
    fn take_fragment(
        &mut self,
        h: FrameHeader,
        header_len: usize,
        len: usize,
        check_utf8: bool,
    ) -> Result<bool, ProtocolError> {
        if h.opcode == Opcode::Continuation && self.incoming.as_ref().is_none_or(|m| m.rsv != 0) {
            return Ok(false);
        }
        self.rbuf.advance(header_len);
        self.filled -= header_len;
        if h.opcode != Opcode::Continuation {
            self.incoming = Some(self.new_message(&h, len));
        }
        let msg = self.incoming.as_mut().expect("a message in progress");
        let start = msg.buf.len();
        let payload = &self.rbuf[..len];
        match h.mask {
            // One pass instead of an unmask in place and then a copy (a 1 MiB message in
            // 1024 masked fragments took 0.82-0.87x the time).
            Some(key) => frame::extend_vec_masked(&mut msg.buf, payload, key, 0),
            None => msg.buf.extend_from_slice(payload),
        }
        self.rbuf.advance(len);
        self.filled -= len;
        // RFC 6455 §8.1: invalid UTF-8 fails the connection as soon as it is seen.
        if check_utf8 && self.utf8.feed(&msg.buf[start..]).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        if h.fin {
            self.finish_assembly()?;
        }
        Ok(true)
    }

    /// A message's first fragment, `len` checked bytes at the front of the read buffer,
    /// starts the assembly buffer (copied: the next fragments extend it, and a handle split
    /// off the read buffer would be copied out at the first extension anyway).
    fn start_message(&mut self, h: &FrameHeader, len: usize) {
        let mut message = self.new_message(h, len);
        message.buf.extend_from_slice(&self.rbuf[..len]);
        self.rbuf.advance(len);
        self.filled -= len;
        self.incoming = Some(message);
    }

    /// An empty message for a first fragment of `len` bytes to start.
    ///
    /// The buffer reserves as much as the previous fragmented message needed (at most
    /// `max_message_size`): a stream of similar messages then assembles without reallocating,
    /// where doubling from the first fragment's size would copy the message about once more.
    /// `finish_assembly` gives back what a smaller message leaves unused.
    fn new_message(&self, h: &FrameHeader, len: usize) -> Incoming {
        Incoming {
            kind: MessageKind::of(h.opcode),
            rsv: h.rsv,
            buf: Vec::with_capacity(len.max(self.assembly_hint)),
        }
    }

    /// The checks that need the connection's context; returns the payload length as `usize`
    /// and whether the payload is UTF-8 text to check as it arrives.
    fn check_header(&mut self, h: &FrameHeader) -> Result<(usize, bool), ProtocolError> {
        // RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines
        // meanings for non-zero values". Extensions claim bits on a message's first frame only.
        let claimed = match (&self.extension, h.opcode) {
            (Some(ext), Opcode::Text | Opcode::Binary) => ext.reserved_bits(),
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
        let mut check_utf8 = false;
        if !h.opcode.is_control() {
            let so_far = match (h.opcode, &self.incoming) {
                // RFC 6455 §5.4: fragments of one message "MUST NOT be interleaved" with
                // another message's.
                (Opcode::Text | Opcode::Binary, Some(_)) => {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                (Opcode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (Opcode::Continuation, Some(msg)) => {
                    check_utf8 = msg.kind == MessageKind::Text && msg.rsv == 0;
                    msg.buf.len() as u64
                }
                _ => {
                    check_utf8 = h.opcode == Opcode::Text && h.rsv == 0;
                    self.utf8 = Utf8Validator::new();
                    0
                }
            };
            // Limits are checked here, on the header, before any payload is buffered.
            if h.payload_len > self.config.max_frame_size {
                return Err(ProtocolError::FrameTooLarge {
                    size: h.payload_len,
                    limit: self.config.max_frame_size,
                });
            }
            let total = so_far.saturating_add(h.payload_len);
            if total > self.config.max_message_size {
                return Err(ProtocolError::MessageTooLarge {
                    size: total,
                    limit: self.config.max_message_size,
                });
            }
        }
        let len = usize::try_from(h.payload_len).map_err(|_| ProtocolError::FrameTooLarge {
            size: h.payload_len,
            limit: usize::MAX as u64,
        })?;
        Ok((len, check_utf8))
    }

    fn on_frame(&mut self, h: FrameHeader, payload: BytesMut) -> Result<(), ProtocolError> {
        match h.opcode {
            // A whole message in one frame (`process` hands first fragments to
            // `start_message`).
            Opcode::Text | Opcode::Binary => {
                self.finish_message(MessageKind::of(h.opcode), h.rsv, payload)?;
            }
            // `process` hands continuations to `on_continuation`, without splitting them off.
            Opcode::Continuation => return Err(ProtocolError::UnexpectedContinuation),
            Opcode::Ping => {
                let payload = payload.freeze();
                // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                // frame in response, unless it already received a Close frame."
                if self.config.auto_pong && !self.close_sent {
                    self.pong_slot = Some(payload.clone());
                    self.flush_pong();
                }
                self.events.push_back(Event::Ping(payload));
            }
            Opcode::Pong => {
                self.pong_deadline = None;
                self.events.push_back(Event::Pong(payload.freeze()));
            }
            Opcode::Close => {
                let frame = CloseFrame::parse(payload.freeze())?;
                // Nothing after the Close is parsed; the echo is written when the event is
                // polled (see `poll_event`).
                self.close_received = true;
                self.incoming = None;
                self.events.push_back(Event::Close(frame));
            }
        }
        Ok(())
    }

    /// A continuation frame whose `len` payload bytes (unmasked and checked) lead the read
    /// buffer: copied straight into the message being assembled, with no handle split off
    /// the read buffer (a split and its drop cost two atomic operations per fragment).
    fn on_continuation(&mut self, fin: bool, len: usize) -> Result<(), ProtocolError> {
        let Some(msg) = self.incoming.as_mut() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        msg.buf.extend_from_slice(&self.rbuf[..len]);
        self.rbuf.advance(len);
        self.filled -= len;
        if fin { self.finish_assembly() } else { Ok(()) }
    }

    /// The final fragment is in: the assembled message is checked and handed out.
    fn finish_assembly(&mut self) -> Result<(), ProtocolError> {
        let Incoming { kind, rsv, mut buf } = self.incoming.take().expect("message in progress");
        self.assembly_hint = buf.len();
        if rsv != 0 {
            // For the extension to decode (the copy is of the encoded, smaller form).
            return self.finish_message(kind, rsv, BytesMut::from(&buf[..]));
        }
        // RFC 6455 §8.1: a text message that ends inside a code point is invalid too.
        if kind == MessageKind::Text && self.utf8.finish().is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        if buf.capacity() > buf.len() {
            // In place with the common allocators: shrinking splits the block.
            buf.shrink_to_fit();
        }
        self.deliver(kind, Bytes::from(buf));
        Ok(())
    }

    fn finish_message(
        &mut self,
        kind: MessageKind,
        rsv: u8,
        buf: BytesMut,
    ) -> Result<(), ProtocolError> {
        let bytes = if rsv != 0 {
            let ext = self
                .extension
                .as_mut()
                .ok_or(ProtocolError::ReservedBits(rsv >> 4))?;
            let decoded = ext.decode(rsv, buf, self.config.max_message_size)?;
            if kind == MessageKind::Text && core::str::from_utf8(&decoded).is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            decoded.freeze()
        } else {
            // RFC 6455 §8.1: a text message that ends inside a code point is invalid too.
            if kind == MessageKind::Text && self.utf8.finish().is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            buf.freeze()
        };
        self.deliver(kind, bytes);
        Ok(())
    }

    /// Queues a whole message, its payload checked.
    fn deliver(&mut self, kind: MessageKind, bytes: Bytes) {
        let message = match kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(bytes)),
            MessageKind::Binary => Message::Binary(bytes),
        };
        self.events.push_back(Event::Message(message));
    }
}
