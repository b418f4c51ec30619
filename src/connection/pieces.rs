//! The pieces of the receive path that take a frame's bytes out of the read buffer as they
//! arrive, rather than when the frame is complete: frames of a message the extension encoded
//! (decoded piece by piece, never buffered whole), frames of a message streamed out as
//! chunks, and the rest of a frame in progress handed over by `Connection::receive`.

use super::assemble::{Assembler, Recv, Route, SMALL_MESSAGE, Step, chunk, text_piece};
use super::recv_buf::RecvBuf;
use crate::error::ProtocolError;
use crate::extension::Extension;
use crate::frame::{self, FrameHeader};
use crate::message::MessageKind;
use bytes::{Buf, Bytes};

impl Assembler {
    /// A decoded or streamed frame: what has arrived is taken out of the read buffer at once
    /// (unmasked, decoded, checked, and for a streamed message handed out as a chunk).
    pub(super) fn consume(
        &mut self,
        rb: &mut RecvBuf,
        ext: Option<&mut (dyn Extension + 'static)>,
        header: FrameHeader,
        len: usize,
        done: usize,
        route: Route,
    ) -> Result<Step, ProtocolError> {
        let avail = rb.filled.min(len - done);
        let last = done + avail == len;
        if avail == 0 && !last {
            return Ok(Step::NeedMore);
        }
        let piece = &mut rb.buf[..avail];
        if let Some(key) = header.mask {
            frame::unmask_fresh(piece, key, done);
        }
        let end_of_message = last && header.fin;
        let msg = self
            .incoming
            .as_mut()
            .expect("routed: a message is in progress");
        let start = msg.buf.len();
        match route {
            Route::Decode => {
                let ext = ext.ok_or(ProtocolError::ReservedBits(msg.rsv >> 4))?;
                // Decoded bytes count against the message and frame budgets as they are
                // produced, so a decompression bomb fails at the limit, not after it.
                let message_room = self.max_message.saturating_sub(msg.size());
                let frame_room = self.max_frame.saturating_sub(msg.size() - msg.frame_start);
                let over = if frame_room < message_room {
                    ProtocolError::FrameTooLarge {
                        size: self.max_frame.saturating_add(1),
                        limit: self.max_frame,
                    }
                } else {
                    ProtocolError::MessageTooLarge {
                        size: self.max_message.saturating_add(1),
                        limit: self.max_message,
                    }
                };
                let limit = usize::try_from(message_room.min(frame_room))
                    .unwrap_or(usize::MAX)
                    .saturating_add(start);
                let decoded = ext.decode(msg.rsv, piece, end_of_message, &mut msg.buf, limit);
                if decoded.is_err() || msg.buf.len() > limit {
                    // What was decoded before the failure is checked first: fed in smaller
                    // pieces, it would have been checked before the failure was reached, and
                    // the outcome must not depend on the cut (tests/deflate_split.rs).
                    if msg.kind == MessageKind::Text {
                        let end = msg.buf.len().min(limit);
                        text_piece(&mut self.utf8, &msg.buf[start.min(end)..end])?;
                    }
                    return Err(match decoded {
                        Err(ProtocolError::MessageTooLarge { .. }) | Ok(()) => over,
                        Err(e) => e,
                    });
                }
            }
            _ => msg.buf.extend_from_slice(piece),
        }
        rb.buf.advance(avail);
        rb.filled -= avail;
        self.set_done(done + avail);
        if self
            .incoming
            .as_ref()
            .is_some_and(|m| m.kind == MessageKind::Text)
        {
            let msg = self.incoming.as_ref().expect("in progress");
            text_piece(&mut self.utf8, &msg.buf[start..])?;
        }
        if last {
            self.recv = Recv::Header;
        }
        if end_of_message {
            return self.finish();
        }
        let msg = self.incoming.as_mut().expect("in progress");
        if msg.streamed {
            // What is complete so far goes out now; a text chunk stops before an unfinished
            // code point, so each chunk is UTF-8 on its own.
            let keep = if msg.kind == MessageKind::Text {
                self.utf8.incomplete_len()
            } else {
                0
            };
            if msg.buf.len() > keep {
                let cut = msg.buf.len() - keep;
                let tail = msg.buf.split_off(cut);
                let data = core::mem::replace(&mut msg.buf, tail);
                msg.delivered += data.len() as u64;
                let kind = msg.kind;
                return Ok(self.emit(chunk(kind, Bytes::from(data), false)));
            }
        }
        Ok(if last { Step::Progress } else { Step::NeedMore })
    }

    /// For `Connection::receive`: takes the front of `data` where it can go straight to its
    /// place, and returns how much it took (the caller then runs `step`), or `None`, having
    /// done nothing, where `data` should just be appended.
    ///
    /// It takes the rest of a kept payload in progress (unmasked as it is copied, and checked
    /// on the way in), on its own, so that it lands in the room kept after the frame's start
    /// rather than moving the frame; and the header of a masked frame over `SMALL_MESSAGE`
    /// that starts `data` while nothing is buffered, so that its payload is then unmasked as
    /// it is copied in.
    pub(super) fn take_direct(
        &mut self,
        rb: &mut RecvBuf,
        data: &[u8],
    ) -> Result<Option<usize>, ProtocolError> {
        match self.recv {
            Recv::Payload {
                header,
                len,
                done,
                consume: false,
                text,
                ..
            } if done == rb.filled && done < len && !data.is_empty() => {
                let n = (len - done).min(data.len());
                rb.buf.truncate(rb.filled);
                match header.mask {
                    Some(key) => frame::extend_masked(&mut rb.buf, &data[..n], key, done),
                    None => rb.buf.extend_from_slice(&data[..n]),
                }
                rb.filled += n;
                self.set_done(done + n);
                // RFC 6455 §8.1: invalid UTF-8 fails the connection as soon as it is seen.
                if text {
                    text_piece(&mut self.utf8, &rb.buf[done..done + n])?;
                }
                Ok(Some(n))
            }
            Recv::Header if rb.filled == 0 => match frame::decode_header(data) {
                Ok(Some((header, header_len)))
                    if header.mask.is_some() && header.payload_len > SMALL_MESSAGE as u64 =>
                {
                    rb.append(&data[..header_len]);
                    Ok(Some(header_len))
                }
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}
