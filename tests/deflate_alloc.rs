//! Decompression bombs against the inflater's size limit, observed through a counting global
//! allocator (its own test binary, counters per thread), and what the codec holds when idle.
#![cfg(feature = "deflate")]

use rfc6455::Role;
use rfc6455::deflate::{
    DeflateConfig, Deflater, InflateError, Inflater, MemoryPolicy, accept_offer,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Bytes this thread has allocated and not freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` reached since the last `reset_peak`.
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
        // Counted as the change in size (as tests/assembly_alloc.rs does): what the program
        // holds. A realloc that moves the block holds both for the copy; glibc grows large
        // blocks with mremap instead, in place.
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn reset_peak() -> isize {
    let now = live();
    PEAK.with(|p| p.set(now));
    now
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

/// About 1 MiB of DEFLATE that inflates to about 1 GiB: one sync-flushed segment of 1 MiB
/// of zeros (byte-aligned, refers only to itself), repeated 1024 times.
fn bomb() -> Vec<u8> {
    let mut s = zlib_rs::Deflate::new(9, false, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut seg = vec![0u8; 8 << 10];
    s.compress(&zeros, &mut seg, zlib_rs::DeflateFlush::SyncFlush)
        .unwrap();
    seg.truncate(s.total_out() as usize);
    assert!(seg.ends_with(&[0, 0, 0xff, 0xff]));
    seg.repeat(1024)
}

#[test]
fn rfc7692_7_2_2_bomb_stops_at_the_limit_with_memory_bounded_by_it() {
    let bomb = bomb();
    assert!(bomb.len() < 2 << 20, "compressed {} bytes", bomb.len());
    let wide = DeflateConfig::default();
    let (params, _) = accept_offer(&wide, ["permessage-deflate"]).unwrap();
    const LIMIT: usize = 16 << 20;
    for policy in [MemoryPolicy::PerMessage, MemoryPolicy::Retain] {
        for piece in [bomb.len(), 4096, 125, 1] {
            let base = reset_peak();
            let config = DeflateConfig::default().memory_policy(policy);
            let mut inflater = Inflater::new(&params, Role::Server, &config);
            let mut out = Vec::new();
            let mut result = Ok(());
            for chunk in bomb.chunks(piece) {
                result = inflater.inflate(chunk, &mut out, LIMIT);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(
                result,
                Err(InflateError::LimitExceeded { limit: LIMIT }),
                "{piece}"
            );
            assert!(out.len() <= LIMIT);
            assert!(out.iter().all(|&b| b == 0));
            let held = peak() - base;
            // The output buffer (never past the limit), the inflater's ~43 KiB of state and
            // its window (here 32 KiB), which it keeps as output is produced so that a
            // streamed message's pieces can be handed on before the message ends.
            assert!(
                held <= (LIMIT + (96 << 10)) as isize,
                "{policy:?} pieces of {piece}: peak {held} bytes over a {LIMIT}-byte limit"
            );
            drop(inflater);
            drop(out);
        }
    }
}

#[test]
fn rfc7692_7_2_2_small_input_does_not_reserve_from_a_guess() {
    // 20 bytes of input that would inflate to 1 MiB: the buffer grows with output actually
    // produced, so a limit of 1000 costs about 1000 bytes, not a guessed size.
    let wide = DeflateConfig::default();
    let (params, _) = accept_offer(&wide, ["permessage-deflate"]).unwrap();
    let mut s = zlib_rs::Deflate::new(9, false, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut payload = vec![0u8; 4096];
    s.compress(&zeros, &mut payload, zlib_rs::DeflateFlush::SyncFlush)
        .unwrap();
    payload.truncate(s.total_out() as usize);
    let mut inflater = Inflater::new(&params, Role::Server, &wide);
    let mut out = Vec::new();
    let got = inflater.inflate(&payload, &mut out, 1000);
    assert_eq!(got, Err(InflateError::LimitExceeded { limit: 1000 }));
    assert_eq!(out.len(), 1000);
    assert!(out.capacity() <= 1000, "capacity {}", out.capacity());
}

/// Heap held by one direction's codec after `messages` chat-like messages went through it.
fn idle_bytes(policy: MemoryPolicy, offer: &str, server: bool) -> (isize, isize) {
    let config = DeflateConfig::default()
        .memory_policy(policy)
        .compression_threshold(0);
    let wide = DeflateConfig::default()
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    let (params, _) = accept_offer(&wide, [offer]).unwrap();
    let msg = br#"{"type":"message","room":"general","user":{"id":7,"nick":"ada"},"text":"deploy is green again, thanks all"}"#;
    let role = if server { Role::Server } else { Role::Client };
    let peer = if server { Role::Client } else { Role::Server };
    let mut payloads = Vec::new();
    let mut tx = Deflater::new(&params, peer, &config);
    for _ in 0..200 {
        let mut p = Vec::new();
        tx.compress(msg, &mut p);
        payloads.push(p);
    }
    let base = live();
    let mut deflater = Deflater::new(&params, role, &config);
    let mut inflater = Inflater::new(&params, role, &config);
    for p in &payloads {
        let mut sink = Vec::new();
        deflater.compress(msg, &mut sink);
        let mut out = Vec::new();
        inflater.inflate(p, &mut out, 1 << 20).unwrap();
        inflater.finish_message(&mut out, 1 << 20).unwrap();
    }
    let deflater_bytes = {
        let before = live();
        drop(deflater);
        before - live()
    };
    let inflater_bytes = live() - base;
    drop(inflater);
    (deflater_bytes, inflater_bytes)
}

#[test]
fn idle_server_with_default_settings_holds_at_most_16_kib() {
    // What a browser offers, answered with our defaults (12-bit windows both ways).
    let config = DeflateConfig::default();
    let (params, response) =
        accept_offer(&config, ["permessage-deflate; client_max_window_bits"]).unwrap();
    assert_eq!(
        response,
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    );
    let msg = br#"{"type":"message","room":"general","user":{"id":7,"nick":"ada"},"text":"deploy is green again, thanks all"}"#;
    let mut client = Deflater::new(&params, Role::Client, &config);
    let base = live();
    let mut deflater = Deflater::new(&params, Role::Server, &config);
    let mut inflater = Inflater::new(&params, Role::Server, &config);
    for _ in 0..500 {
        let mut p = Vec::new();
        client.compress(msg, &mut p);
        let mut out = Vec::new();
        inflater.inflate(&p, &mut out, 1 << 20).unwrap();
        inflater.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(&out[..], &msg[..]);
        let mut sink = Vec::new();
        deflater.compress(msg, &mut sink);
    }
    let held = live() - base;
    assert!(held <= 16 << 10, "idle deflate state {held} bytes");
    // And Retain, for contrast, holds whole streams.
    let (d, i) = idle_bytes(MemoryPolicy::Retain, "permessage-deflate", true);
    assert!(
        d > 64 << 10 && i > 32 << 10,
        "retained: deflater {d}, inflater {i}"
    );
}

/// Prints the memory table for benches/README.md (`cargo test --release --test deflate_alloc
/// -- --nocapture memory_table`).
#[test]
fn memory_table() {
    println!(
        "policy      offer                                                   deflater  inflater"
    );
    for policy in [MemoryPolicy::PerMessage, MemoryPolicy::Retain] {
        for offer in [
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ] {
            let (d, i) = idle_bytes(policy, offer, true);
            println!("{:<11} {offer:<72} {d:>8} {i:>9}", format!("{policy:?}"));
        }
    }
}
