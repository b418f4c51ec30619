//! The transmit queue: encoded frames waiting for the transport, frame writing, splitting a
//! payload into fragments, and messages encoded once for many connections.

use crate::config::Config;
use crate::frame::{self, FrameHeader, MAX_HEADER_LEN, Opcode};
use crate::message::{Message, MessageKind};
use alloc::collections::VecDeque;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes waiting for the transport: frozen chunks first (payloads queued by reference,
/// prepared broadcast frames), then the tail that frames are encoded into. Nothing is lost on
/// a partial write: `advance` consumes exactly what the transport took.
#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    queued: u64,
    sent: u64,
}

impl TxQueue {
    /// Bytes waiting.
    pub(crate) const fn len(&self) -> u64 {
        self.queued - self.sent
    }

    /// The first chunk waiting (empty when nothing is).
    pub(crate) fn front(&self) -> &[u8] {
        self.chunks
            .front()
            .map_or(&self.tail[..], |chunk| &chunk[..])
    }

    /// Every non-empty chunk waiting, in order.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .map(|c| &c[..])
            .chain(core::iter::once(&self.tail[..]))
            .filter(|c| !c.is_empty())
    }

    /// The room the tail's allocation holds.
    pub(crate) fn capacity(&self) -> usize {
        self.tail.capacity()
    }

    /// Gives back the tail's allocation when it is larger than `keep` (grown by a large
    /// message) and nothing is waiting.
    pub(crate) fn shrink(&mut self, keep: usize) {
        if self.len() == 0 && self.tail.capacity() > keep {
            self.chunks = VecDeque::new();
            self.tail = BytesMut::new();
        }
    }

    /// Drops the first `n` bytes (clamped to what is queued).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        if self.chunks.is_empty() && n >= self.tail.len() {
            // Written out whole, and all of it in the tail (the usual case for small frames):
            // emptied where it stands (see `advance_slow`).
            self.sent += self.tail.len() as u64;
            self.tail.clear();
            return;
        }
        self.advance_slow(n);
    }

    fn advance_slow(&mut self, n: usize) {
        let n = n.min(usize::try_from(self.len()).unwrap_or(usize::MAX));
        self.sent += n as u64;
        let mut left = n;
        while left > 0 {
            match self.chunks.front_mut() {
                Some(front) if left >= front.len() => {
                    left -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(left);
                    left = 0;
                }
                None if left >= self.tail.len() => {
                    // Written out whole (the usual case): emptied where it stands, so the
                    // room ahead stays put. Advancing moved the buffer's start up, and
                    // every few small frames the next write had to move it back
                    // (`reserve_inner`; see benches/README.md, "Constants and the numbers
                    // behind them").
                    self.tail.clear();
                    left = 0;
                }
                None => {
                    self.tail.advance(left);
                    left = 0;
                }
            }
        }
    }

    /// Copies raw bytes in (the handshake's 101 response).
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.queued += bytes.len() as u64;
    }

    /// Queues a chunk by reference, without copying it.
    pub(crate) fn push_chunk(&mut self, chunk: Bytes) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.queued += chunk.len() as u64;
        self.chunks.push_back(chunk);
    }

    /// Encodes one frame into the tail, masking the payload copy when `mask` is given.
    pub(crate) fn push_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) {
        let before = self.tail.len();
        write_frame(&mut self.tail, header, payload, mask);
        self.queued += (self.tail.len() - before) as u64;
    }

    /// Encodes a whole message of at most 64 KiB as one frame into the tail: the header
    /// written in place, the payload copied after it (masked on the way when `mask` is
    /// given: one pass). What most messages take, kept free of the general header encoder.
    #[inline]
    pub(crate) fn push_small_frame(&mut self, first: u8, payload: &[u8], mask: Option<[u8; 4]>) {
        let len = payload.len();
        debug_assert!(len <= 0xFFFF);
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        let head_len = if len < 126 { 2 } else { 4 } + if mask.is_some() { 4 } else { 0 };
        self.tail.reserve(head_len + len);
        // Fixed-size pieces, stored directly rather than copied by length.
        // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
        if len < 126 {
            self.tail.put_slice(&[first, mask_bit | len as u8]);
        } else {
            let [hi, lo] = (len as u16).to_be_bytes();
            self.tail.put_slice(&[first, mask_bit | 126, hi, lo]);
        }
        match mask {
            None => self.tail.extend_from_slice(payload),
            Some(key) => {
                self.tail.put_slice(&key);
                frame::extend_masked(&mut self.tail, payload, key, 0);
            }
        }
        self.queued += (head_len + len) as u64;
    }

    /// Queues an unmasked frame whose payload is shared, not copied.
    pub(crate) fn push_shared_frame(&mut self, header: FrameHeader, payload: Bytes) {
        let header = FrameHeader {
            mask: None,
            payload_len: payload.len() as u64,
            ..header
        };
        let mut head = [0; MAX_HEADER_LEN];
        let n = frame::encode_header(&mut head, &header);
        self.push_bytes(&head[..n]);
        self.push_chunk(payload);
    }
}

/// A message encoded once as server frames, to be queued on many server connections without
/// re-encoding or copying (a chat broadcast). Clients mask per frame, so they cannot use it.
///
/// With permessage-deflate: a connection that compresses with context takeover (the
/// default) compresses the message itself, since its compressor's window is its own. When
/// the server's config negotiates `server_no_context_takeover`, the message is also
/// compressed once, here, from an empty window, and every connection without context
/// takeover whose window is at least as large sends those bytes as they are.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    pub(crate) frames: Bytes,
    pub(crate) message: Message,
    /// Compressed once (window bits, frames with RSV1), for connections without context
    /// takeover.
    #[cfg(feature = "deflate")]
    pub(crate) compressed: Option<(u8, Bytes)>,
}

impl PreparedMessage {
    /// Encodes `message` as unmasked frames split at `config.max_send_frame_size`.
    #[must_use]
    pub fn new(message: &Message, config: &Config) -> Self {
        let mut out = BytesMut::new();
        let payload = message.as_bytes();
        for_each_fragment(
            payload.len(),
            config.max_send_frame_size,
            |range, first, fin| {
                let opcode = if first {
                    data_opcode(message.kind())
                } else {
                    Opcode::Continuation
                };
                let header = FrameHeader {
                    fin,
                    rsv: 0,
                    opcode,
                    mask: None,
                    payload_len: 0,
                };
                write_frame(&mut out, header, &payload[range], None);
            },
        );
        #[cfg(feature = "deflate")]
        let compressed = Self::compress_once(message, config);
        Self {
            frames: out.freeze(),
            message: message.clone(),
            #[cfg(feature = "deflate")]
            compressed,
        }
    }

    /// The message compressed from an empty window, when the server negotiates no context
    /// takeover for its messages (RFC 7692 §7.1.1.1) and the message is worth compressing.
    #[cfg(feature = "deflate")]
    fn compress_once(message: &Message, config: &Config) -> Option<(u8, Bytes)> {
        let deflate = &config.deflate;
        let payload = message.as_bytes();
        if !deflate.enabled
            || !deflate.server_no_context_takeover
            || payload.len() < deflate.compression_threshold
        {
            return None;
        }
        let bits = deflate
            .server_max_window_bits
            .unwrap_or(crate::deflate::DEFAULT_SERVER_WINDOW_BITS)
            .clamp(
                crate::deflate::MIN_WINDOW_BITS,
                crate::deflate::MAX_WINDOW_BITS,
            );
        let mut body = alloc::vec::Vec::new();
        crate::deflate::Deflater::without_context(bits, deflate.compression_level)
            .compress(payload, &mut body);
        let mut out = BytesMut::new();
        for_each_fragment(
            body.len(),
            config.max_send_frame_size,
            |range, first, fin| {
                let header = FrameHeader {
                    fin,
                    // RFC 7692 §6: RSV1 on the first frame of a compressed message only.
                    rsv: if first { crate::frame::RSV1 } else { 0 },
                    opcode: if first {
                        data_opcode(message.kind())
                    } else {
                        Opcode::Continuation
                    },
                    mask: None,
                    payload_len: 0,
                };
                write_frame(&mut out, header, &body[range], None);
            },
        );
        Some((bits, out.freeze()))
    }

    /// The encoded frames.
    #[must_use]
    pub fn as_bytes(&self) -> &Bytes {
        &self.frames
    }
}

/// The opcode that starts a message of `kind`.
pub(crate) const fn data_opcode(kind: MessageKind) -> Opcode {
    match kind {
        MessageKind::Text => Opcode::Text,
        MessageKind::Binary => Opcode::Binary,
    }
}

/// Calls `f(range, first, last)` for each fragment of a `len`-byte payload split at
/// `max_frame` bytes; an empty payload is one empty fragment.
pub(crate) fn for_each_fragment(
    len: usize,
    max_frame: u64,
    mut f: impl FnMut(core::ops::Range<usize>, bool, bool),
) {
    let step = usize::try_from(max_frame.max(1)).unwrap_or(usize::MAX);
    let mut start = 0;
    loop {
        let end = start + (len - start).min(step);
        f(start..end, start == 0, end == len);
        if end == len {
            break;
        }
        start = end;
    }
}

/// Appends one frame, masking the payload copy when `mask` is given.
fn write_frame(out: &mut BytesMut, header: FrameHeader, payload: &[u8], mask: Option<[u8; 4]>) {
    let header = FrameHeader {
        mask,
        payload_len: payload.len() as u64,
        ..header
    };
    let mut head = [0; MAX_HEADER_LEN];
    let n = frame::encode_header(&mut head, &header);
    out.reserve(n + payload.len());
    out.extend_from_slice(&head[..n]);
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            // Copied and masked a piece at a time, so the masking pass reads what the copy has
            // just left in the L1 cache instead of making a second trip through L2 or memory.
            let mut at = 0;
            for piece in payload.chunks(MASK_PIECE) {
                let start = out.len();
                out.extend_from_slice(piece);
                frame::apply_mask(&mut out[start..], key, at);
                at += piece.len();
            }
        }
    }
}

/// How much of a payload is copied before it is masked: well inside a 32 KiB L1 data cache.
const MASK_PIECE: usize = 8 << 10;
