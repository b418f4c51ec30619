//! The per-message DEFLATE codec (RFC 7692 §7.2): an [`Inflater`] that decompresses a message
//! frame by frame under a size limit, and a [`Deflater`] that compresses whole messages.
//!
//! Both sit on zlib-rs' raw DEFLATE streams. Between messages a direction either keeps its
//! stream ([`MemoryPolicy::Retain`]) or frees it and keeps only its LZ77 window
//! ([`MemoryPolicy::PerMessage`]), priming the next message's stream with it as a preset
//! dictionary: the peer cannot tell the difference, since DEFLATE history is just the last
//! `2^window_bits` bytes of data.

use super::negotiate::{DeflateConfig, DeflateParams, Direction, MemoryPolicy};
use crate::Role;
use crate::error::ProtocolError;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use zlib_rs::{DeflateFlush, InflateFlush, Status};

/// RFC 7692 §7.2.1 / §7.2.2: the four octets a sync flush ends with, removed by the sender and
/// appended again by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Most room the inflater offers zlib-rs at once, and the largest step by which it grows an
/// output buffer ahead of what was actually produced.
const MAX_STEP: usize = 32 << 10;
/// The first room offered for a call, before any output shows how much a message makes.
const MIN_STEP: usize = 1 << 10;

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The message inflates to more than the limit (close with 1009, Message Too Big).
    /// Detected before any byte past the limit is written.
    #[error("inflated message exceeds limit of {limit} bytes")]
    LimitExceeded {
        /// The limit on the output's length.
        limit: usize,
    },
    /// The payload is not valid DEFLATE data, or refers back past the data the window holds
    /// (close with 1007, Invalid Frame Payload Data).
    #[error("invalid deflate data: {0}")]
    InvalidData(&'static str),
}

impl From<InflateError> for ProtocolError {
    fn from(e: InflateError) -> Self {
        match e {
            InflateError::LimitExceeded { limit } => {
                let limit = limit as u64;
                Self::MessageTooLarge {
                    size: limit.saturating_add(1),
                    limit,
                }
            }
            InflateError::InvalidData(_) => Self::Extension("invalid deflate data"),
        }
    }
}

/// The zlib-rs window for a negotiated one. zlib-family raw deflaters refuse a 256-byte
/// window, so 8 runs as 9: a 512-byte window whose matches reach back at most
/// `512 - 262 = 250` bytes (zlib keeps `MIN_LOOKAHEAD` = 262 bytes clear), inside the 256
/// bytes the peer reserves. `tests/deflate_codec.rs` walks the emitted streams and checks
/// every distance against the negotiated window, level by level.
const fn zlib_window_bits(bits: u8) -> u8 {
    if bits < 9 { 9 } else { bits }
}

/// The last `2^window_bits` bytes of a direction's history, kept between messages when the
/// stream itself is not.
#[derive(Debug, Default)]
struct History {
    bytes: VecDeque<u8>,
}

impl History {
    fn push(&mut self, data: &[u8], window: usize) {
        let data = &data[data.len().saturating_sub(window)..];
        let excess = (self.bytes.len() + data.len()).saturating_sub(window);
        self.bytes.drain(..excess);
        let needed = self.bytes.len() + data.len();
        if needed > self.bytes.capacity() {
            // Doubling, but never past the window: the history is the idle cost.
            let target = needed.max(self.bytes.capacity() * 2).min(window);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend(data);
    }

    fn clear(&mut self) {
        self.bytes = VecDeque::new();
    }
}

/// Decompresses one direction's messages (the receive path).
///
/// Feed each frame's payload to [`inflate`](Self::inflate) as it arrives, then call
/// [`finish_message`](Self::finish_message) after the frame with FIN. The output never
/// depends on how the compressed bytes were split, and never grows past `limit`.
pub struct Inflater {
    dir: Direction,
    policy: MemoryPolicy,
    stream: Option<zlib_rs::Inflate>,
    /// The last window of output: the previous messages' (context takeover only) and this
    /// message's so far, kept as it is produced, so the caller may hand each piece of a
    /// message's output on (a streamed message) before the message ends.
    history: History,
    /// Compressed bytes fed for this message.
    fed: usize,
    /// The stream reached a block with BFINAL set: what follows needs a fresh stream.
    ended: bool,
    /// The stream must be reset and primed before its next input.
    stale: bool,
}

impl core::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inflater")
            .field("window_bits", &self.dir.window_bits)
            .field("no_context_takeover", &self.dir.no_context_takeover)
            .field("policy", &self.policy)
            .field("allocated", &self.stream.is_some())
            .field("history", &self.history.bytes.len())
            .finish()
    }
}

impl Inflater {
    /// The decompressor for the messages an endpoint of `role` receives.
    #[must_use]
    pub fn new(params: &DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self {
            dir: params.receive(role),
            policy: config.memory_policy,
            stream: None,
            history: History::default(),
            fed: 0,
            ended: false,
            stale: false,
        }
    }

    fn window(&self) -> usize {
        1 << self.dir.window_bits
    }

    /// Inflates the next piece of the current message's compressed payload (one frame's
    /// payload, or any part of it), appending to `out`.
    ///
    /// `out` may be a different buffer each call (a streamed message hands each piece on):
    /// the inflater keeps the window it needs itself. `out.len()` never exceeds `limit`, and
    /// `out` grows by at most 32 KiB or half of what it already holds at a time, never past
    /// `limit`.
    ///
    /// # Errors
    ///
    /// [`InflateError::LimitExceeded`] as soon as the output would pass `limit`;
    /// [`InflateError::InvalidData`] for bad DEFLATE data. After an error the inflater must be
    /// dropped (the connection is failing).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        if input.is_empty() {
            return Ok(());
        }
        self.fed = self.fed.saturating_add(input.len());
        self.run(input, out, limit)
    }

    /// Ends the current message: inflates the `00 00 ff ff` tail the sender removed and,
    /// without context takeover for this direction, forgets the history (freeing the stream
    /// under [`MemoryPolicy::PerMessage`]).
    ///
    /// # Errors
    ///
    /// As [`inflate`](Self::inflate).
    pub fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        // An empty payload with RSV1 set carries no DEFLATE block at all: it is an empty
        // message, and the stream, left at a byte boundary by the previous message's tail,
        // stays as it is. A stream that ended with BFINAL and nothing after it needs no tail.
        if self.fed > 0 && !self.ended {
            // RFC 7692 §7.2.2: "1. Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of
            // the payload of the message. 2. Decompress the resulting data using DEFLATE."
            self.run(&TAIL, out, limit)?;
        }
        if self.dir.no_context_takeover {
            // RFC 7692 §7.1.1.1: "If the "agreed parameters" contain the
            // "server_no_context_takeover" extension parameter, the server MUST start
            // compressing each new message with an empty LZ77 sliding window" (§7.1.1.2 says
            // the same of the client); so the receiving side starts each one empty too.
            self.history.clear();
            self.release(true);
        } else if self.policy == MemoryPolicy::PerMessage {
            // The window (kept as output was produced) primes the next message's fresh
            // stream.
            self.release(false);
        } else if self.ended {
            // The stream that follows a block with BFINAL set is primed the same way (the
            // stream's own window is lost with it).
            self.stale = true;
        }
        self.fed = 0;
        self.ended = false;
        Ok(())
    }

    /// Drops the stream (per message) or marks it for a reset (retained).
    fn release(&mut self, reset: bool) {
        match self.policy {
            MemoryPolicy::PerMessage => self.stream = None,
            MemoryPolicy::Retain => self.stale |= reset,
        }
    }

    /// A stream ready for this message's next input: created and primed with the history
    /// when there is none, reset and primed after a BFINAL or a message without takeover.
    fn ready_stream(&mut self) -> Result<&mut zlib_rs::Inflate, InflateError> {
        let restart = self.ended || self.stale;
        if self.stream.is_none() || restart {
            // zlib-rs' raw inflater takes any window from 8 to 15 bits.
            let bits = self.dir.window_bits;
            let stream = match self.stream.as_mut() {
                Some(s) => {
                    s.reset(false);
                    s
                }
                None => self.stream.insert(zlib_rs::Inflate::new(false, bits)),
            };
            // The history holds the previous messages' window (with context takeover) and,
            // after a BFINAL inside this message, the message so far.
            let (a, b) = self.history.bytes.as_slices();
            for part in [a, b] {
                if !part.is_empty() {
                    stream
                        .set_dictionary(part)
                        .map_err(|_| InflateError::InvalidData("cannot restore the window"))?;
                }
            }
            self.ended = false;
            self.stale = false;
        }
        // Just ensured above.
        self.stream
            .as_mut()
            .ok_or(InflateError::InvalidData("no stream"))
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let mut step = MIN_STEP.max(input.len().saturating_mul(4)).min(MAX_STEP);
        loop {
            // RFC 7692 §7.2.1: "When any DEFLATE block with the "BFINAL" bit set to 1 doesn't
            // end at a byte boundary, an endpoint MUST add minimal padding bits of 0 to make
            // it end at a byte boundary. The next DEFLATE block follows the padded data if
            // any." zlib stops at such a block, so `ready_stream` starts a new raw stream,
            // primed with the history, for whatever follows.
            if self.ended && input.is_empty() {
                return Ok(());
            }
            let len = out.len();
            let stream = self.ready_stream()?;
            let (in0, out0) = (stream.total_in(), stream.total_out());
            let (result, room) = if len >= limit {
                // At the limit: one byte of room tells whether the data holds more output.
                let mut probe = [0u8; 1];
                (
                    stream.decompress(input, &mut probe, InflateFlush::NoFlush),
                    1,
                )
            } else {
                let room = step.min(limit - len);
                if out.capacity() - len < room {
                    // Grow with what was produced (at most by half of it), never past limit.
                    let grow = room.max((len / 2).min(limit - len));
                    out.reserve_exact(grow);
                }
                out.resize(len + room, 0);
                (
                    stream.decompress(input, &mut out[len..], InflateFlush::NoFlush),
                    room,
                )
            };
            let consumed = (stream.total_in() - in0) as usize;
            let produced = (stream.total_out() - out0) as usize;
            if len >= limit {
                if produced > 0 {
                    return Err(InflateError::LimitExceeded { limit });
                }
            } else {
                out.truncate(len + produced);
                let window = self.window();
                self.history.push(&out[len..], window);
            }
            input = &input[consumed..];
            match result {
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(Status::Ok | Status::BufError) => {}
                Err(zlib_rs::InflateError::DataError) => {
                    return Err(InflateError::InvalidData(
                        stream_message(self.stream.as_ref()).unwrap_or("corrupt stream"),
                    ));
                }
                Err(_) => return Err(InflateError::InvalidData("inflater failed")),
            }
            if !self.ended && produced < room {
                // zlib stops short of the room only when it has used all its input.
                return Ok(());
            }
            if consumed == 0 && produced == 0 && !self.ended {
                return Ok(()); // no progress possible: waits for more input
            }
            step = (step * 2).min(MAX_STEP);
        }
    }
}

fn stream_message(stream: Option<&zlib_rs::Inflate>) -> Option<&'static str> {
    stream.and_then(zlib_rs::Inflate::error_message)
}

/// Compresses one direction's messages (the send path).
pub struct Deflater {
    dir: Direction,
    policy: MemoryPolicy,
    level: i32,
    threshold: usize,
    stream: Option<zlib_rs::Deflate>,
    history: History,
}

impl core::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.dir.window_bits)
            .field("no_context_takeover", &self.dir.no_context_takeover)
            .field("policy", &self.policy)
            .field("level", &self.level)
            .field("allocated", &self.stream.is_some())
            .field("history", &self.history.bytes.len())
            .finish()
    }
}

impl Deflater {
    /// The compressor for the messages an endpoint of `role` sends.
    #[must_use]
    pub fn new(params: &DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self {
            dir: params.send(role),
            policy: config.memory_policy,
            level: i32::from(config.compression_level.min(9)),
            threshold: config.compression_threshold,
            stream: None,
            history: History::default(),
        }
    }

    /// Whether a message of `len` bytes should be compressed (RSV1 set) or sent as it is:
    /// the config's `compression_threshold`. Sending one uncompressed leaves both ends'
    /// history untouched (RFC 7692 §6: only messages with RSV1 set go through DEFLATE).
    #[must_use]
    pub const fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    fn window(&self) -> usize {
        1 << self.dir.window_bits
    }

    fn new_stream(&self) -> zlib_rs::Deflate {
        let bits = zlib_window_bits(self.dir.window_bits);
        zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
            level: self.level,
            method: zlib_rs::Method::Deflated,
            // Negative: a raw DEFLATE stream, no zlib header or checksum.
            window_bits: -i32::from(bits),
            // The hash chains and block buffer scale with the window: 8 for 15 bits (zlib's
            // default), 5 for 12, 2 for 9 (benches/README.md, "deflate", memory table).
            mem_level: i32::from(bits).saturating_sub(7).clamp(1, 8),
            strategy: zlib_rs::Strategy::Default,
        })
    }

    /// A compressor that starts every message from an empty window of `window_bits`: what a
    /// message prepared once for many connections without context takeover is compressed
    /// with.
    pub(crate) fn without_context(window_bits: u8, level: u8) -> Self {
        Self {
            dir: Direction {
                window_bits,
                no_context_takeover: true,
            },
            policy: MemoryPolicy::PerMessage,
            level: i32::from(level.min(9)),
            threshold: 0,
            stream: None,
            history: History::default(),
        }
    }

    /// Compresses one whole message, appending its payload (to be sent with RSV1 set on the
    /// first frame) to `out`.
    pub fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) {
        if message.is_empty() {
            // An empty stored block minus its removed tail (RFC 7692 §7.2.3.6 uses the same
            // octet): decodes to nothing at any stream state, since every message we send
            // ends byte-aligned. zlib would emit nothing at all for an empty sync flush that
            // follows another.
            out.push(0x00);
            return;
        }
        if self.stream.is_none() {
            let mut stream = self.new_stream();
            let (a, b) = self.history.bytes.as_slices();
            for part in [a, b] {
                if !part.is_empty() {
                    // Fails only on a stream that has seen input, and this one is new.
                    let _ = stream.set_dictionary(part);
                }
            }
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return; // just set
        };
        let start = out.len();
        let mut input = message;
        // RFC 7692 §7.2.1: "1. Compress all the octets of the payload of the message using
        // DEFLATE. 2. If the resulting data does not end with an empty DEFLATE block with no
        // compression (the "BTYPE" bits are set to 00), append an empty DEFLATE block with
        // no compression to the tail end." A sync flush does both.
        loop {
            let len = out.len();
            let room = (input.len() / 2 + 64).max(256);
            out.resize(len + room, 0);
            let (in0, out0) = (stream.total_in(), stream.total_out());
            let result = stream.compress(input, &mut out[len..], DeflateFlush::SyncFlush);
            let consumed = (stream.total_in() - in0) as usize;
            let produced = (stream.total_out() - out0) as usize;
            out.truncate(len + produced);
            input = &input[consumed..];
            // Only a misuse of the stream can fail here; none is possible with these calls.
            debug_assert!(result.is_ok(), "{result:?}");
            // A sync flush is complete when input is used up and room was left over.
            if input.is_empty() && produced < room {
                break;
            }
            if result.is_err() {
                break;
            }
        }
        // RFC 7692 §7.2.1: "3. Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail
        // end. After this step, the last octet of the compressed data contains (possibly part
        // of) the DEFLATE header bits with the "BTYPE" bits set to 00."
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.dir.no_context_takeover {
            match self.policy {
                MemoryPolicy::PerMessage => self.stream = None,
                MemoryPolicy::Retain => stream.reset(),
            }
        } else if self.policy == MemoryPolicy::PerMessage {
            let window = self.window();
            self.history.push(message, window);
            self.stream = None;
        }
    }
}
