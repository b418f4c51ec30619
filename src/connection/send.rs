//! The send side: application commands and protocol obligations become frames in the
//! transmit queue, split at `Config::max_send_frame_size`, masked by a client, encoded by the
//! extension when one is negotiated.

use super::Connection;
use super::Role;
use super::phase::Phase;
use super::timers::{Deadline, Timer};
use super::tx_queue::PreparedMessage;
use super::tx_queue::{TxQueue, data_opcode, for_each_fragment};
use super::{BUFFER_KEEP, SHRINK_AFTER};
use crate::close::CloseCode;
use crate::entropy::Entropy;
use crate::error::UsageError;
use crate::extension::Extension;
use crate::frame::{FrameHeader, Opcode};
use crate::message::Message;
use crate::message::MessageKind;
use crate::utf8::Utf8Validator;
use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::Bytes;

/// Queued output above which Pongs coalesce into one slot.
const PONG_BACKLOG: u64 = 8 << 10;
/// Server payloads at least this large are queued by reference instead of copied.
pub(super) const ZERO_COPY_MIN: usize = 16 << 10;
/// The largest payload [`Sender::small_message`] frames (a 2- or 4-byte length form).
const SMALL_FRAME_MAX: usize = 0xFFFF;

pub(super) struct Sender {
    pub(super) tx: TxQueue,
    role: Role,
    entropy: Option<Box<dyn Entropy>>,
    max_frame: u64,
    /// The newest Ping's payload, owed a Pong (see `flush_pong`).
    pong_slot: Option<Bytes>,
    /// The kind of the outgoing fragmented message in progress (one at a time, RFC 6455
    /// §5.4), and the UTF-8 state of its text so far.
    fragments: Option<MessageKind>,
    fragment_utf8: Utf8Validator,
    /// Our Close frame is queued: RFC 6455 §5.5.1: "After sending a Close frame, the
    /// endpoint MUST NOT send any further data frames".
    close_queued: bool,
    /// The extension's output for the message being sent, reused between messages.
    encoded: Vec<u8>,
}

impl core::fmt::Debug for Sender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("queued", &self.tx.len())
            .field("close_queued", &self.close_queued)
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub(super) fn new(role: Role, max_frame: u64, entropy: Option<Box<dyn Entropy>>) -> Self {
        Self {
            tx: TxQueue::default(),
            role,
            entropy,
            max_frame,
            pong_slot: None,
            fragments: None,
            fragment_utf8: Utf8Validator::new(),
            close_queued: false,
            encoded: Vec::new(),
        }
    }

    pub(super) const fn close_queued(&self) -> bool {
        self.close_queued
    }

    /// Whether a whole message may be queued now.
    pub(super) const fn check_message(&self) -> Result<(), UsageError> {
        if self.fragments.is_some() {
            Err(UsageError::FragmentInProgress)
        } else {
            Ok(())
        }
    }

    /// A whole message; `shared` is `payload` as a handle a server may queue by reference.
    /// Returns whether the extension encoded it.
    pub(super) fn message(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        shared: Option<&Bytes>,
        ext: Option<&mut (dyn Extension + 'static)>,
    ) -> bool {
        let rsv = match ext {
            Some(ext) => {
                self.encoded.clear();
                ext.encode(payload, &mut self.encoded)
            }
            None => 0,
        };
        if rsv != 0 {
            let encoded = core::mem::take(&mut self.encoded);
            self.frames(kind, rsv, &encoded, None);
            self.encoded = encoded;
            return true;
        }
        if shared.is_none() && payload.len() as u64 <= self.max_frame {
            // One frame, copied in: most messages, without the fragmenting machinery.
            self.write(whole_message_header(kind), payload);
            return false;
        }
        self.frames(kind, 0, payload, shared);
        false
    }

    /// Gives back the queue's and the encoder's room beyond `keep` when nothing waits.
    pub(super) fn shrink(&mut self, keep: usize) {
        self.tx.shrink(keep);
        if self.encoded.capacity() > keep {
            self.encoded = Vec::new();
        }
    }

    /// A whole message of at most 64 KiB that goes out as one frame, unencoded (no extension
    /// is negotiated): the path most messages take.
    #[inline]
    pub(super) fn small_message(&mut self, kind: MessageKind, payload: &[u8]) {
        // FIN, no reserved bits, the message's opcode.
        let first = 0x80 | data_opcode(kind).as_u8();
        let mask = self.mask_key();
        self.tx.push_small_frame(first, payload, mask);
    }

    /// Whether `len` bytes go out through [`small_message`](Self::small_message).
    #[inline]
    pub(super) const fn fits_small(&self, len: usize) -> bool {
        len <= SMALL_FRAME_MAX && len as u64 <= self.max_frame
    }

    /// A client's masking key for the next frame, `None` for a server (RFC 6455 §5.1, §5.3).
    #[inline]
    fn mask_key(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => {
                let mut key = [0; 4];
                if let Some(entropy) = self.entropy.as_mut() {
                    entropy.fill(&mut key);
                }
                Some(key)
            }
            Role::Server => None,
        }
    }

    /// A server's whole message queued by reference: one that goes out as one frame, as it
    /// is, queues `bytes` itself (no clone: each is an atomic increment and a decrement).
    pub(super) fn shared_message(
        &mut self,
        kind: MessageKind,
        bytes: Bytes,
        ext: Option<&mut (dyn Extension + 'static)>,
    ) -> bool {
        if ext.is_some() || bytes.len() as u64 > self.max_frame {
            return self.message(kind, &bytes, Some(&bytes), ext);
        }
        self.tx.push_shared_frame(whole_message_header(kind), bytes);
        false
    }

    /// `payload` as one message of frames of at most `max_frame` bytes, the first carrying
    /// `rsv`.
    fn frames(&mut self, kind: MessageKind, rsv: u8, payload: &[u8], shared: Option<&Bytes>) {
        for_each_fragment(payload.len(), self.max_frame, |range, first, fin| {
            let header = FrameHeader {
                fin,
                rsv: if first { rsv } else { 0 },
                opcode: if first {
                    data_opcode(kind)
                } else {
                    Opcode::Continuation
                },
                mask: None,
                payload_len: 0,
            };
            match shared {
                Some(bytes) if self.role == Role::Server && range.len() >= ZERO_COPY_MIN => {
                    self.tx.push_shared_frame(header, bytes.slice(range));
                }
                _ => self.write(header, &payload[range]),
            }
        });
    }

    /// One fragment of a message whose size is not known up front (RFC 6455 §5.4).
    pub(super) fn fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        let opcode = match self.fragments {
            None => data_opcode(kind),
            Some(current) if current == kind => Opcode::Continuation,
            Some(_) => return Err(UsageError::FragmentInProgress),
        };
        if kind == MessageKind::Text {
            let mut check = self.fragment_utf8.clone();
            check.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                check.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.fragment_utf8 = check;
        }
        self.fragments = if fin { None } else { Some(kind) };
        for_each_fragment(data.len(), self.max_frame, |range, first, last| {
            let header = FrameHeader {
                fin: fin && last,
                rsv: 0,
                opcode: if first { opcode } else { Opcode::Continuation },
                mask: None,
                payload_len: 0,
            };
            self.write(header, &data[range]);
        });
        Ok(())
    }

    /// A control frame.
    pub(super) fn control(&mut self, opcode: Opcode, payload: &[u8]) {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: 0,
        };
        self.write(header, payload);
    }

    /// Our Close frame, with a body when `code` is given (RFC 6455 §5.5.1).
    pub(super) fn close(&mut self, code: Option<CloseCode>, reason: &str) {
        // A Ping that arrived before this point is still owed its Pong (RFC 6455 §5.5.2);
        // only later Pings are excused.
        if let Some(payload) = self.pong_slot.take() {
            self.control(Opcode::Pong, &payload);
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
        self.control(Opcode::Close, &body[..len]);
        // RFC 6455 §5.5.1: "After sending a Close frame, the endpoint MUST NOT send any
        // further data frames", and a Pong to a Ping queued earlier is moot.
        self.close_queued = true;
        self.pong_slot = None;
    }

    /// A Ping arrived: its Pong is owed (replacing an older one not yet written).
    pub(super) fn owe_pong(&mut self, payload: Bytes) {
        // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
        // in response, unless it already received a Close frame."
        if !self.close_queued {
            self.pong_slot = Some(payload);
            self.flush_pong();
        }
    }

    /// Drops a Pong still owed (the connection failed: nothing more is sent after its Close).
    pub(super) fn forget_pong(&mut self) {
        self.pong_slot = None;
    }

    /// Queues the Pong for the newest Ping unless output is backed up: every Ping is
    /// answered while the peer reads, but a Ping flood while it does not costs one slot, not
    /// a growing queue (RFC 6455 §5.5.3 allows answering only the most recent Ping).
    #[inline]
    pub(super) fn flush_pong(&mut self) {
        if self.pong_slot.is_none() || self.tx.len() > PONG_BACKLOG || self.close_queued {
            return;
        }
        if let Some(payload) = self.pong_slot.take() {
            self.control(Opcode::Pong, &payload);
        }
    }

    fn write(&mut self, header: FrameHeader, payload: &[u8]) {
        let mask = self.mask_key();
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

impl Connection {
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
            self.handshake_written(n);
        }
        self.send.flush_pong();
        if self.send.tx.capacity() > BUFFER_KEEP
            && self.send.tx.len() == 0
            && !self.timers.is_armed(Timer::Shrink)
        {
            // A large message grew the queue: look again in a second, when the room is given
            // back if nothing waits. Armed once, not at every write (arming makes the
            // adapters read the clock); a busy connection reallocates at most once a second.
            self.timers.arm(Timer::Shrink, SHRINK_AFTER);
        }
    }

    /// `n` more bytes of the queue went out while the 101 response was being written.
    #[cold]
    fn handshake_written(&mut self, n: usize) {
        self.handshake_left = self.handshake_left.saturating_sub(n as u64);
        if self.handshake_left == 0 {
            self.timers.stop(Timer::Handshake);
        }
    }

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
            if self
                .send
                .shared_message(kind, bytes, self.extension.as_deref_mut())
            {
                self.extension_used();
            }
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
        if self.extension.is_some() {
            #[cfg(feature = "deflate")]
            if let (Some((bits, frames)), Some((window, true))) =
                (&prepared.compressed, self.deflate_send)
            {
                // Compressed from an empty window no larger than this connection's: valid
                // for a connection without context takeover (RFC 7692 §7.1.1.1).
                if *bits <= window {
                    self.send.tx.push_chunk(frames.clone());
                    return Ok(());
                }
            }
            // Encoded for this connection: its compressor's context is its own.
            let kind = prepared.message.kind();
            if self.send.message(
                kind,
                prepared.message.as_bytes(),
                None,
                self.extension.as_deref_mut(),
            ) {
                self.extension_used();
            }
            return Ok(());
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

    /// Whether the opening handshake's response (a server's 101) is still being written.
    #[cfg(feature = "std")]
    pub(crate) const fn handshake_unwritten(&self) -> bool {
        self.handshake_left > 0
    }

    /// Queues the opening handshake's response (a server's 101) ahead of any frame; it must
    /// be written by `deadline`, the rest of the handshake timeout.
    pub(crate) fn queue_handshake_response(&mut self, bytes: &[u8], deadline: Option<Deadline>) {
        self.send.tx.push_bytes(bytes);
        self.handshake_left += bytes.len() as u64;
        if let Some(deadline) = deadline {
            self.timers.arm_from(Timer::Handshake, deadline);
        }
    }

    /// Whether anything may be sent: not after our Close, a failure, or the end.
    #[inline]
    pub(super) fn check_send(&self) -> Result<(), UsageError> {
        // The common case first, in one test: open, and the transport not gone.
        if matches!(self.phase, Phase::Open) && !self.recv.eof {
            return Ok(());
        }
        if let Some(error) = self.error() {
            Err(UsageError::Failed(error))
        } else if self.send.close_queued() || self.recv.eof || self.is_terminated() {
            Err(UsageError::Closed)
        } else {
            Ok(())
        }
    }

    pub(super) fn check_control(&self, payload: &[u8]) -> Result<(), UsageError> {
        self.check_send()?;
        if payload.len() > 125 {
            Err(UsageError::ControlPayloadTooLong(payload.len()))
        } else {
            Ok(())
        }
    }

    #[inline]
    pub(super) fn send_data(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), UsageError> {
        self.check_send()?;
        self.send.check_message()?;
        if self.extension.is_none() && self.send.fits_small(payload.len()) {
            self.send.small_message(kind, payload);
            return Ok(());
        }
        if self
            .send
            .message(kind, payload, None, self.extension.as_deref_mut())
        {
            self.extension_used();
        }
        Ok(())
    }
}

#[cfg(feature = "deflate")]
impl Connection {
    /// Installs permessage-deflate with the agreed `params`, as the handshakes do: for a
    /// connection whose handshake happened elsewhere (an HTTP server's upgrade), after
    /// [`accept_offer`](crate::deflate::accept_offer) or
    /// [`check_response`](crate::deflate::check_response). Unlike installing a
    /// [`PerMessageDeflate`](crate::deflate::PerMessageDeflate) with
    /// [`with_extension`](Self::with_extension), it also lets
    /// [`send_prepared`](Self::send_prepared) send a message compressed once for many
    /// connections when this one has no context takeover.
    ///
    /// ```
    /// use rfc6455::deflate::{DeflateConfig, accept_offer};
    /// use rfc6455::{Config, Connection};
    ///
    /// let config = Config::default();
    /// // The request's Sec-WebSocket-Extensions values, as the HTTP server parsed them.
    /// let offers = ["permessage-deflate; client_max_window_bits"];
    /// let (params, response_header) = accept_offer(&config.deflate, offers).unwrap();
    /// assert!(response_header.starts_with("permessage-deflate"));
    /// let deflate = config.deflate.clone();
    /// let conn = Connection::server(config).with_deflate(&params, &deflate);
    /// # let _ = conn;
    /// ```
    #[must_use]
    pub fn with_deflate(
        mut self,
        params: &crate::deflate::DeflateParams,
        config: &crate::deflate::DeflateConfig,
    ) -> Self {
        let send = params.send(self.role);
        self.deflate_send = Some((send.window_bits, send.no_context_takeover));
        let codec = crate::deflate::PerMessageDeflate::new(params, self.role, config);
        self.with_extension(Box::new(codec))
    }
}
