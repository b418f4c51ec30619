//! Helpers shared by the targets (each target includes this file with `#[path]`).
//!
//! The connection targets read their input as a script: each step is an opcode byte, a length
//! byte and that many argument bytes. `drive` runs the script against one connection and
//! checks the core's promises after every step; `feed` replays only the received bytes, cut
//! differently, so the targets can check that the cut changes nothing.
#![allow(dead_code)]

use bytes::BufMut;
use rfc6455::frame::{apply_mask, decode_header};
use rfc6455::{CloseCode, Connection, Event, MessageKind, ProtocolError, Role};
use std::ops::Range;
use std::time::Duration;

/// The largest control frame we write: 2 header bytes, a 4-byte key (client), 125 payload.
const MAX_CONTROL_FRAME: u64 = 2 + 4 + 125;
/// Queued output above which the core stops queueing Pongs and keeps one in a slot.
const PONG_BACKLOG: u64 = 8 << 10;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xA;

/// Chunk boundaries for `len` bytes, drawn from `seed` (splitmix64): chunks of 1 to 64 bytes.
/// `seed == 0` gives one chunk.
pub fn cuts(seed: u64, len: usize) -> Vec<Range<usize>> {
    if seed == 0 {
        return vec![0..len];
    }
    let mut state = seed;
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let end = (at + 1 + (z % 64) as usize).min(len);
        out.push(at..end);
        at = end;
    }
    out
}

/// One-byte chunks.
pub fn bytewise(len: usize) -> Vec<Range<usize>> {
    (0..len).map(|i| i..i + 1).collect()
}

/// What a connection made of some input.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub error: Option<ProtocolError>,
    /// Everything the connection queued, in order (nothing is taken out while feeding).
    pub output: Vec<u8>,
}

/// Feeds `input` to `conn` in `chunks`, draining events (not output) after each, then reports
/// EOF if asked. Output is only collected at the end, so Pong coalescing (which depends on
/// how much output is queued) sees the same backlog whatever the cut.
pub fn feed(mut conn: Connection, input: &[u8], chunks: Vec<Range<usize>>, eof: bool) -> Outcome {
    let mut events = Vec::new();
    for range in chunks {
        let _ = conn.receive(&input[range]);
        events.extend(core::iter::from_fn(|| conn.poll_event()));
    }
    if eof {
        let _ = conn.receive_eof();
        events.extend(core::iter::from_fn(|| conn.poll_event()));
    }
    Outcome {
        events,
        error: conn.error(),
        output: conn.transmit_chunks().flatten().copied().collect(),
    }
}

/// Our output, parsed incrementally: the opcodes and payloads of the frames so far.
struct Wire {
    role: Role,
    taken: Vec<u8>,
    parsed: usize,
    frames: Vec<(u8, Vec<u8>)>,
}

impl Wire {
    /// Everything queued so far: what was taken out, then what is still pending.
    fn full(&self, conn: &Connection) -> Vec<u8> {
        let mut s = self.taken.clone();
        conn.transmit_chunks().for_each(|c| s.extend_from_slice(c));
        s
    }

    /// Parses the frames in `stream[self.parsed..upto]`; they must be whole and masked iff we
    /// are the client (RFC 6455 §5.1).
    fn parse(&mut self, stream: &[u8], upto: usize) {
        while self.parsed < upto {
            let (header, n) = match decode_header(&stream[self.parsed..upto]) {
                Ok(Some(h)) => h,
                other => panic!("we queued an invalid or partial frame header: {other:?}"),
            };
            assert_eq!(
                header.mask.is_some(),
                self.role == Role::Client,
                "masking by role"
            );
            let start = self.parsed + n;
            let end = start + header.payload_len as usize;
            assert!(end <= upto, "we queued a partial frame");
            let mut payload = stream[start..end].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            if header.opcode.as_u8() == CLOSE {
                // RFC 6455 §5.5.1: empty, or a code that may be on the wire and a UTF-8 reason.
                assert!(payload.len() != 1 && payload.len() <= 125);
                if payload.len() >= 2 {
                    let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                    assert!(code.is_valid_on_wire(), "we sent close code {code}");
                    assert!(core::str::from_utf8(&payload[2..]).is_ok());
                }
            }
            // RFC 6455 §5.5.1: after a Close "the endpoint MUST NOT send any further data
            // frames"; we send nothing at all after it.
            assert!(
                !self.frames.iter().any(|(op, _)| *op == CLOSE),
                "a frame follows our Close"
            );
            self.frames.push((header.opcode.as_u8(), payload));
            self.parsed = end;
        }
    }
}

/// Runs the script in `data` against `conn`, checking after every step:
///
/// * everything we queue is whole frames, masked iff we are the client; at most one Close,
///   with a valid payload, and nothing after it;
/// * after an error nothing more is queued, whatever is called; the step that failed queued
///   (besides the command's own frames) only Pongs owed to Pings received before the error,
///   then one Close carrying the error's code (none after our own Close, none for
///   end-of-file, whose 1006 is never on the wire);
/// * input-driven output is bounded: Pongs are queued only while at most 8 KiB is pending,
///   so a step can raise the queue to at most max(before, 8 KiB + one Pong), plus the Pong
///   slot flushed ahead of a Close, plus that Close;
/// * the error is sticky and no event follows the peer's Close.
///
/// Returns the bytes received before EOF, whether EOF was reported, the events and the error.
pub fn drive(
    mut conn: Connection,
    data: &[u8],
) -> (Vec<u8>, bool, Vec<Event>, Option<ProtocolError>) {
    let mut wire = Wire {
        role: conn.role(),
        taken: Vec::new(),
        parsed: 0,
        frames: Vec::new(),
    };
    let mut received = Vec::new();
    let mut eof = false;
    let mut events = Vec::new();
    let mut now = Duration::ZERO;
    let mut rest = data;
    while let [op, tail @ ..] = rest {
        let len = usize::from(tail.first().copied().unwrap_or(0)).min(tail.len().saturating_sub(1));
        let arg = tail.get(1..1 + len).unwrap_or(&[]);
        rest = tail.get(1 + len..).unwrap_or(&[]);
        let error_before = conn.error();
        let closed_before = conn.close_sent() || conn.error().is_some();
        let queued_before = wire.taken.len() + conn.transmit_len() as usize;

        // Commands: their frames are the caller's and are not bounded here.
        match op % 16 {
            7 => {
                let _ = conn.send_binary(arg);
            }
            8 => {
                let _ = conn.send_fragment(MessageKind::Text, arg, arg.len() % 2 == 0);
            }
            9 => {
                let _ = conn.send_ping(arg);
            }
            10 => {
                let code = arg.first().map_or(1000, |&b| 1000 + u16::from(b) * 13);
                let reason = core::str::from_utf8(arg.get(1..).unwrap_or(&[])).unwrap_or("");
                let _ = conn.send_close(CloseCode(code), reason);
            }
            15 => {
                let _ = conn.send_pong(arg);
            }
            _ => {}
        }
        let mark = wire.taken.len() + conn.transmit_len() as usize;
        if closed_before {
            assert_eq!(
                mark, queued_before,
                "a command queued output after our Close"
            );
        }
        let backlog = conn.transmit_len();
        let close_sent = conn.close_sent();

        // Input, output and time.
        match op % 16 {
            0..=4 => {
                if !eof {
                    received.extend_from_slice(arg);
                }
                let _ = conn.receive(arg);
            }
            5 => {
                let mut space = conn.read_space();
                assert!(space.has_remaining_mut(), "read_space is never empty");
                let n = space.remaining_mut().min(arg.len());
                space.put_slice(&arg[..n]);
                if !eof {
                    received.extend_from_slice(&arg[..n]);
                }
                let _ = conn.commit_space();
            }
            6 => {
                let buf = conn.read_buf();
                assert!(!buf.is_empty(), "read_buf is never empty");
                let n = buf.len().min(arg.len());
                buf[..n].copy_from_slice(&arg[..n]);
                if !eof {
                    received.extend_from_slice(&arg[..n]);
                }
                let _ = conn.commit_read(n);
            }
            11 => {
                let n = usize::from(arg.first().copied().unwrap_or(0)) * 7;
                let n = n.min(conn.pending_transmit().len());
                wire.taken.extend_from_slice(&conn.pending_transmit()[..n]);
                conn.advance_transmit(n);
            }
            12 => {
                while !conn.pending_transmit().is_empty() {
                    let chunk = conn.pending_transmit();
                    wire.taken.extend_from_slice(chunk);
                    let n = chunk.len();
                    conn.advance_transmit(n);
                }
            }
            13 => {
                now += Duration::from_millis(u64::from(arg.first().copied().unwrap_or(0)) * 100);
                conn.handle_timeout(now);
            }
            14 => {
                eof = true;
                let _ = conn.receive_eof();
            }
            _ => {}
        }
        while let Some(event) = conn.poll_event() {
            assert!(
                !matches!(events.last(), Some(Event::Close(_))),
                "event after the peer's Close: {event:?}"
            );
            events.push(event);
        }

        if let Some(e) = error_before {
            assert_eq!(conn.error(), Some(e), "the error changed");
            assert_eq!(
                conn.receive(b"\x89\x80\0\0\0\0"),
                Err(e),
                "the error is not sticky"
            );
        }

        let pending = conn.transmit_len();
        let limit = backlog.max(PONG_BACKLOG + MAX_CONTROL_FRAME) + 2 * MAX_CONTROL_FRAME;
        assert!(
            pending <= limit,
            "input grew the queue from {backlog} to {pending}"
        );

        let full = wire.full(&conn);
        wire.parse(&full, mark);
        let step_start = wire.frames.len();
        wire.parse(&full, full.len());
        let added = &wire.frames[step_start..];
        match (error_before, conn.error()) {
            (Some(_), _) => assert!(added.is_empty(), "output after the failure: {added:?}"),
            (None, Some(e)) => {
                let wants_close = !close_sent && e != ProtocolError::UnexpectedEof;
                let pongs = if wants_close {
                    let (opcode, payload) = added.last().expect("the failure queued no Close");
                    assert_eq!(*opcode, CLOSE, "the failure's last frame is not a Close");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    assert_eq!(code, e.close_code().as_u16(), "close code for {e:?}");
                    &added[..added.len() - 1]
                } else {
                    added
                };
                assert!(
                    pongs.iter().all(|(opcode, _)| *opcode == PONG),
                    "the failure queued more than Pongs and one Close: {added:?}"
                );
            }
            (None, None) => {}
        }
    }
    (received, eof, events, conn.error())
}

/// The split-invariance check shared by the connection targets: the received bytes fed whole,
/// one byte at a time and cut where `seed` says give the same events, error and output; the
/// scripted run (with commands in between) saw the same events, up to a timer's failure
/// (keepalive, or our Close unanswered) only it could have.
pub fn check_splits(new_conn: impl Fn() -> Connection, data: &[u8]) {
    let (input, eof, events, error) = drive(new_conn(), data);
    let whole = feed(new_conn(), &input, cuts(0, input.len()), eof);
    let bytes = feed(new_conn(), &input, bytewise(input.len()), eof);
    let seed = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let cut = feed(new_conn(), &input, cuts(seed | 1, input.len()), eof);
    assert_eq!(whole, bytes, "whole vs one byte at a time");
    assert_eq!(whole, cut, "whole vs cut");
    if matches!(
        error,
        Some(ProtocolError::KeepaliveTimeout | ProtocolError::CloseTimeout)
    ) {
        assert!(
            whole.events.starts_with(&events),
            "scripted events are not a prefix"
        );
    } else {
        assert_eq!(whole.events, events, "scripted run vs whole input");
        assert_eq!(whole.error, error, "scripted run vs whole input");
    }
}
