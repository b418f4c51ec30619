//! The body of a rejection: what a server sent after a non-101 response head (a 401's
//! explanation, a 503's maintenance page), read up to [`MAX_REJECTION_BODY`] bytes.
//!
//! The client never needs this body to speak WebSocket; it keeps it so that the application
//! can tell the user why the server refused. So reading it is best effort and bounded three
//! ways: at most [`MAX_REJECTION_BODY`] bytes are kept, at most [`MAX_CHUNKED_FRAMING`] bytes
//! of chunked framing are scanned, and the handshake timeout still runs. The declared length
//! (`Content-Length`, a chunk size) only ever bounds how much more to read; nothing is
//! allocated from it.

use super::http::{Head, trim_ows};
use alloc::vec::Vec;

/// The most body bytes a rejected handshake keeps: 4 KiB, enough for an error page or a
/// JSON error object, small enough that a hostile server cannot make a failed connect
/// expensive. Reading stops there; [`Response::body_complete`](super::Response::body_complete)
/// then says the body was cut.
pub const MAX_REJECTION_BODY: usize = 4096;

/// The most bytes of a chunked body scanned (chunk-size lines, extensions and data together)
/// before reading stops: a server sending endless chunk extensions or one-byte chunks is cut
/// off early instead of holding the handshake until its timeout.
pub(crate) const MAX_CHUNKED_FRAMING: usize = 16 * MAX_REJECTION_BODY;

/// How the body's end is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// Where a chunked decoder stands (RFC 9112 §7.1:
/// `chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF`, ended by `last-chunk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex digits of a chunk size (`digits` read so far).
    Size {
        size: u64,
        digits: u8,
    },
    /// Skipping a chunk extension, up to the CR.
    Extension {
        size: u64,
    },
    /// After the CR of the size line.
    SizeLf {
        size: u64,
    },
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// After chunk data: the CR, then the LF.
    DataCr,
    DataLf,
}

/// Reads a rejection's body as it arrives; finishes when the body ended, the cap was
/// reached, the framing broke, or the caller stops it (end-of-file, a transport error, the
/// handshake timeout).
#[derive(Debug)]
pub(crate) struct BodyReader {
    framing: Framing,
    body: Vec<u8>,
    /// Bytes of a chunked body scanned so far (framing included).
    scanned: usize,
    /// `Some(complete)` once finished: whether `body` holds the whole body.
    finished: Option<bool>,
}

impl BodyReader {
    /// Picks the framing from the response's status and headers (RFC 9112 §6.3).
    pub(crate) fn new(status: u16, head: &Head) -> Self {
        let mut reader = Self {
            framing: Framing::Close,
            body: Vec::new(),
            scanned: 0,
            finished: None,
        };
        // RFC 9112 §6.3: "Any response to a HEAD request and any response with a 1xx
        // (Informational), 204 (No Content), or 304 (Not Modified) status code is always
        // terminated by the first empty line after the header fields ... and thus cannot
        // contain a message body".
        if matches!(status, 100..=199 | 204 | 304) {
            reader.finished = Some(true);
            return reader;
        }
        let mut codings = head
            .values("transfer-encoding")
            .flat_map(super::http::list_elements)
            .peekable();
        if codings.peek().is_some() {
            // RFC 9112 §6.3: "If a Transfer-Encoding header field is present and the chunked
            // transfer coding is the final encoding, the message body length is determined
            // by reading and decoding the chunked data until the transfer coding indicates
            // the data is complete." ... "If a Transfer-Encoding header field is present in a
            // response and the chunked transfer coding is not the final encoding, the message
            // body length is determined by reading the connection until it is closed".
            // Transfer-Encoding overrides Content-Length.
            if codings
                .last()
                .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
            {
                reader.framing = Framing::Chunked(Chunk::Size { size: 0, digits: 0 });
            }
            return reader;
        }
        let mut lengths = head.values("content-length");
        if let Some(first) = lengths.next() {
            // RFC 9112 §6.3: "If a message is received without Transfer-Encoding and with an
            // invalid Content-Length header field, then the message framing is invalid and
            // the recipient MUST treat it as an unrecoverable error ... the user agent MUST
            // close the connection to the server and discard the received response." The
            // status and headers are still reported; the body is not read.
            let first = trim_ows(first);
            match parse_length(first) {
                Some(n) if lengths.all(|v| trim_ows(v) == first) => {
                    reader.framing = Framing::Length(n);
                    if n == 0 {
                        reader.finished = Some(true);
                    }
                }
                _ => reader.finished = Some(false),
            }
        }
        reader
    }

    /// `Some(complete)` once the body is read as far as it will be.
    pub(crate) const fn finished(&self) -> Option<bool> {
        self.finished
    }

    /// The body read so far.
    pub(crate) fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Stops reading: the stream ended (`eof`), failed, or the time ran out. Only a
    /// close-delimited body ends cleanly at end-of-file.
    pub(crate) fn stop(&mut self, eof: bool) {
        if self.finished.is_none() {
            self.finished = Some(eof && self.framing == Framing::Close);
        }
    }

    /// Takes bytes from the server; returns once finished or `data` is used up. Bytes after
    /// the body's end are ignored: the connection is given up after a rejection.
    pub(crate) fn receive(&mut self, mut data: &[u8]) {
        while self.finished.is_none() && !data.is_empty() {
            let used = match self.framing {
                Framing::Close => self.keep(data, u64::MAX),
                Framing::Length(left) => {
                    let used = self.keep(data, left);
                    let left = left - used as u64;
                    self.framing = Framing::Length(left);
                    if left == 0 {
                        self.finished = Some(true);
                    }
                    used
                }
                Framing::Chunked(state) => self.chunked(state, data),
            };
            if used == 0 && self.finished.is_none() {
                // Nothing could be taken (a budget ran out): stop rather than spin.
                self.finished = Some(false);
            }
            data = &data[used..];
        }
    }

    /// Keeps up to `left` bytes of `data` (declared-length bodies), stopping at the cap;
    /// returns how many bytes of `data` were consumed.
    fn keep(&mut self, data: &[u8], left: u64) -> usize {
        let room = MAX_REJECTION_BODY - self.body.len();
        let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let kept = take.min(room);
        self.body.extend_from_slice(&data[..kept]);
        if self.body.len() == MAX_REJECTION_BODY && (kept < take || left > kept as u64) {
            // More was announced (or, close-delimited, may follow) than we keep.
            self.finished = Some(false);
        }
        kept
    }

    /// One step of the chunked decoder over the front of `data`; returns bytes consumed.
    fn chunked(&mut self, state: Chunk, data: &[u8]) -> usize {
        if let Chunk::Data(left) = state {
            let budget = MAX_CHUNKED_FRAMING.saturating_sub(self.scanned);
            let used = self.keep(&data[..data.len().min(budget)], left);
            self.scanned += used;
            let left = left - used as u64;
            self.framing = Framing::Chunked(if left == 0 {
                Chunk::DataCr
            } else {
                Chunk::Data(left)
            });
            self.check_budget();
            return used;
        }
        let byte = data[0];
        self.scanned += 1;
        let next = match (state, byte) {
            (Chunk::Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
                // 16 hex digits fill a u64; a 17th would overflow: no honest body is that
                // large, and we would never read it anyway.
                if digits == 16 {
                    None
                } else {
                    let digit = u64::from(hex_value(byte));
                    Some(Chunk::Size {
                        size: size << 4 | digit,
                        digits: digits + 1,
                    })
                }
            }
            (Chunk::Size { size, digits }, b';' | b' ' | b'\t') if digits > 0 => {
                Some(Chunk::Extension { size })
            }
            (Chunk::Size { size, digits }, b'\r') if digits > 0 => Some(Chunk::SizeLf { size }),
            (Chunk::Extension { size }, b'\r') => Some(Chunk::SizeLf { size }),
            (Chunk::Extension { .. }, b'\n') => None,
            (Chunk::Extension { size }, _) => Some(Chunk::Extension { size }),
            (Chunk::SizeLf { size: 0 }, b'\n') => {
                // The last chunk: the body is complete (trailers, if any, are not needed).
                self.finished = Some(true);
                return 1;
            }
            (Chunk::SizeLf { size }, b'\n') => Some(Chunk::Data(size)),
            (Chunk::DataCr, b'\r') => Some(Chunk::DataLf),
            (Chunk::DataLf, b'\n') => Some(Chunk::Size { size: 0, digits: 0 }),
            _ => None,
        };
        match next {
            Some(next) => self.framing = Framing::Chunked(next),
            // Broken framing: what was read so far is kept, marked incomplete.
            None => self.finished = Some(false),
        }
        self.check_budget();
        1
    }

    fn check_budget(&mut self) {
        if self.finished.is_none() && self.scanned >= MAX_CHUNKED_FRAMING {
            self.finished = Some(false);
        }
    }
}

/// A `Content-Length` value: 1*DIGIT (RFC 9110 §8.6), fitting a `u64`.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

const fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}
