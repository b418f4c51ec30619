#![no_main]
//! permessage-deflate's receive path through a server `Connection` (the public sans-IO API,
//! `PerMessageDeflate` installed as the handshake installs it):
//!
//! * split invariance: the same bytes fed whole, cut at input-derived points and (when short)
//!   one byte at a time give the same events, error and output;
//! * the memory policy is invisible: on input whose compressed messages are well formed,
//!   freeing the streams after every message (`ReleaseWhenIdle(0)` with the clock moving
//!   between reads, and `PerMessage`) gives the same outcome as keeping them;
//! * bounded memory: while the bytes are fed (events taken and dropped as they come) the heap
//!   never holds more than the input, the messages the connection may queue (at most
//!   `EVENT_BATCH` + 1 of `max_message_size`) and a constant, however much the data
//!   inflates to (decompression bombs stop at the limit, with 1009).
//!
//! Input: a control byte (bits 0-2: the client's window bits - 8; bit 3: no context takeover;
//! bits 4-5: the message limit, 1, 4, 16 or 64 KiB; bit 6: build mode; bit 7: EOF at the end),
//! a cut seed, then either the wire bytes themselves (raw mode) or items that build them
//! (build mode), each `flags len data[len]`, with `flags & 3`:
//!
//! * 0: `data` (×64 if bit 5) compressed by a client's `Deflater` as one message, text if bit
//!   2, in 1 + `(flags >> 3) & 3` frames;
//! * 1: `data` as an uncompressed message, same bits;
//! * 2: a Ping carrying `data` (at most 125 bytes);
//! * 3: one raw frame: FIN bit 2, RSV1 bit 3, opcode `flags >> 4`, payload `data`.
//!
//! Every frame is masked with a fixed key. Input that has a raw frame, or is raw, may carry
//! corrupt DEFLATE data, after which a kept stream and a fresh one may decode garbage
//! differently (both are wrong), so the policy comparison is made only without them.
use libfuzzer_sys::fuzz_target;
use rfc6455::deflate::{DeflateConfig, DeflateParams, Deflater, MemoryPolicy, PerMessageDeflate};
use rfc6455::{Config, Connection, Role};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

#[path = "common.rs"]
mod common;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments; the counters are
// const-initialised thread-locals, which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A moving realloc holds both blocks for the copy.
        add(new_size as isize);
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// What the connection may keep besides the input and the messages: the decompressor (zlib-rs
/// allocates a 32 KiB window whatever was negotiated, ~47 KiB in all), our 4 KiB scratch and
/// a window of history (32 KiB at most), the read buffer's room for a frame like the last
/// (up to 64 KiB), Pongs queued (8 KiB), with slack for allocator rounding and small state.
const OVERHEAD: usize = 256 << 10;
/// The most whole messages the connection parses ahead of the application, plus the one in
/// progress (`connection/assemble.rs`, `EVENT_BATCH` = 4).
const QUEUED: usize = 5;

struct Setup {
    params: DeflateParams,
    limit: u64,
}

impl Setup {
    fn new(ctrl: u8) -> Self {
        let bits = 8 + (ctrl & 7);
        let mut offer = format!("permessage-deflate; client_max_window_bits={bits}");
        if ctrl & 0x08 != 0 {
            offer.push_str("; client_no_context_takeover");
        }
        let wide = DeflateConfig::default()
            .server_max_window_bits(15)
            .client_max_window_bits(15);
        let (params, _) = rfc6455::deflate::accept_offer(&wide, [&offer]).expect("our offer");
        Self {
            params,
            limit: 1 << (10 + 2 * ((ctrl >> 4) & 3)),
        }
    }

    fn conn(&self, policy: MemoryPolicy) -> Connection {
        let config = Config::default()
            .max_message_size(self.limit)
            .max_frame_size(self.limit)
            // The clock moves 1 ms per read in the release run: no other timer may fire.
            .close_timeout(Duration::from_secs(1 << 20))
            .keepalive_interval(None);
        let deflate = DeflateConfig::default().memory_policy(policy);
        Connection::server(config).with_extension(Box::new(PerMessageDeflate::new(
            &self.params,
            Role::Server,
            &deflate,
        )))
    }
}

fn push_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) {
    out.push(u8::from(fin) << 7 | u8::from(rsv1) << 6 | (opcode & 0x0f));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
}

/// A message as `pieces` frames (the first with `opcode` and `rsv1`, the rest continuations).
fn push_message(out: &mut Vec<u8>, opcode: u8, rsv1: bool, payload: &[u8], pieces: usize) {
    let step = payload.len().div_ceil(pieces).max(1);
    let mut chunks: Vec<&[u8]> = payload.chunks(step).collect();
    chunks.resize(pieces.max(chunks.len()), &[]);
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        let (op, rsv) = if i == 0 { (opcode, rsv1) } else { (0, false) };
        push_frame(out, i == last, rsv, op, chunk);
    }
}

/// The wire bytes of build mode; and whether every compressed message in them is well formed.
fn build(setup: &Setup, seed: u8, mut items: &[u8]) -> (Vec<u8>, bool) {
    let mut client = Deflater::new(
        &setup.params,
        Role::Client,
        &DeflateConfig::default()
            .compression_level(seed % 10)
            .compression_threshold(0),
    );
    let mut wire = Vec::new();
    let mut clean = true;
    while let [flags, len, rest @ ..] = items {
        let n = usize::from(*len).min(rest.len());
        let (data, tail) = rest.split_at(n);
        items = tail;
        let opcode = if flags & 4 != 0 { 1 } else { 2 };
        let pieces = 1 + usize::from((flags >> 3) & 3);
        match flags & 3 {
            0 => {
                let message = if flags & 0x20 != 0 {
                    data.repeat(64)
                } else {
                    data.to_vec()
                };
                let mut payload = Vec::new();
                client.compress(&message, &mut payload);
                push_message(&mut wire, opcode, true, &payload, pieces);
            }
            1 => push_message(&mut wire, opcode, false, data, pieces),
            2 => push_frame(&mut wire, true, false, 0x9, &data[..n.min(125)]),
            _ => {
                push_frame(&mut wire, flags & 4 != 0, flags & 8 != 0, flags >> 4, data);
                clean = false;
            }
        }
    }
    (wire, clean)
}

/// Feeds `input` in `chunks` with the clock moving 1 ms after each (firing the release timer
/// of a connection that asks for it), taking events as they come.
fn feed_with_clock(
    mut conn: Connection,
    input: &[u8],
    chunks: Vec<std::ops::Range<usize>>,
    eof: bool,
) -> common::Outcome {
    let mut events = Vec::new();
    let mut now = Duration::from_secs(1);
    for range in chunks {
        let _ = conn.receive(&input[range]);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
        now += Duration::from_millis(1);
        // Twice: the first reading pins a timer armed since the last one, the second fires it.
        conn.handle_timeout(now);
        conn.handle_timeout(now);
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    if eof {
        let _ = conn.receive_eof();
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    common::Outcome {
        events,
        error: conn.error(),
        output: conn.transmit_chunks().flatten().copied().collect(),
    }
}

/// The heap's peak above where it stood, while `input` is fed in `chunks` and every event is
/// dropped as soon as it is taken.
fn peak_while_fed(setup: &Setup, input: &[u8], chunks: Vec<std::ops::Range<usize>>) -> isize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let mut conn = setup.conn(MemoryPolicy::default());
    for range in chunks {
        let _ = conn.receive(&input[range]);
        while conn.poll_event().is_some() {}
    }
    drop(conn);
    PEAK.with(Cell::get) - base
}

fuzz_target!(|data: &[u8]| {
    let [ctrl, seed, rest @ ..] = data else {
        return;
    };
    let setup = Setup::new(*ctrl);
    let eof = ctrl & 0x80 != 0;
    let (wire, clean) = if ctrl & 0x40 != 0 {
        build(&setup, *seed, rest)
    } else {
        (rest.to_vec(), false)
    };
    let cut_seed = u64::from(*seed) << 8 | u64::from(*ctrl) | 1;
    let kept = MemoryPolicy::default();

    let whole = common::feed(setup.conn(kept), &wire, common::cuts(0, wire.len()), eof);
    let cut = common::feed(
        setup.conn(kept),
        &wire,
        common::cuts(cut_seed, wire.len()),
        eof,
    );
    assert_eq!(whole, cut, "whole vs cut");
    if wire.len() <= 4096 {
        let bytes = common::feed(setup.conn(kept), &wire, common::bytewise(wire.len()), eof);
        assert_eq!(whole, bytes, "whole vs one byte at a time");
    }

    if clean {
        let released = feed_with_clock(
            setup.conn(MemoryPolicy::ReleaseWhenIdle(Duration::ZERO)),
            &wire,
            common::cuts(cut_seed, wire.len()),
            eof,
        );
        assert_eq!(whole, released, "kept vs released after every message");
        let per_message = common::feed(
            setup.conn(MemoryPolicy::PerMessage),
            &wire,
            common::cuts(cut_seed, wire.len()),
            eof,
        );
        assert_eq!(whole, per_message, "kept vs per message");
    }

    let peak = peak_while_fed(&setup, &wire, common::cuts(cut_seed, wire.len()));
    let bound = wire.len() + QUEUED * setup.limit as usize + OVERHEAD;
    assert!(
        peak <= bound as isize,
        "peak {peak} bytes over the bound {bound} ({} input bytes, limit {})",
        wire.len(),
        setup.limit
    );
});
