//! permessage-deflate: the backend candidates and the codec's modes, on a JSON chat corpus
//! (10,000 messages from a fixed seed, `tests/deflate_support/chat.rs`).
//!
//! * `cargo bench -p rfc6455-benches --bench deflate` — criterion: every message compressed
//!   (then inflated) in turn on one stream with a sync flush per message, as
//!   permessage-deflate with context takeover does, at level 6 and a 32 KiB window: zlib-rs
//!   and miniz_oxide called directly, and our `Deflater` / `Inflater` under both memory
//!   policies. Prints each backend's ratio.
//! * `cargo bench -p rfc6455-benches --bench deflate -- --modes` — the table that chose the
//!   defaults: ratio, CPU per MB and idle memory for context takeover on/off, window bits
//!   15/12/9, levels 1/6/9.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/deflate_support/chat.rs"]
mod chat;
mod common;

use criterion::{BenchmarkId, Criterion, Throughput};
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush};
use rfc6455::Role;
use rfc6455::deflate::{DeflateConfig, Deflater, Inflater, MemoryPolicy, accept_offer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live heap bytes, for the idle-memory column (single-threaded use).
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; the counter is a plain atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
const MESSAGES: usize = 10_000;

fn corpus() -> Vec<Vec<u8>> {
    chat::corpus(MESSAGES)
        .into_iter()
        .map(String::into_bytes)
        .collect()
}

fn total(msgs: &[Vec<u8>]) -> usize {
    msgs.iter().map(Vec::len).sum()
}

/// zlib-rs, raw stream, one sync flush per message; returns the payloads (tail removed).
fn zlib_compress(msgs: &[Vec<u8>], level: i32, bits: u8, out: &mut Vec<Vec<u8>>) {
    let mut s = zlib_rs::Deflate::new(level, false, bits);
    out.clear();
    let mut buf = vec![0u8; 64 << 10];
    for m in msgs {
        let before = s.total_out();
        let mut input = &m[..];
        let mut payload = Vec::new();
        loop {
            let in0 = s.total_in();
            let o0 = s.total_out();
            s.compress(input, &mut buf, zlib_rs::DeflateFlush::SyncFlush)
                .unwrap();
            let produced = (s.total_out() - o0) as usize;
            payload.extend_from_slice(&buf[..produced]);
            input = &input[(s.total_in() - in0) as usize..];
            if input.is_empty() && produced < buf.len() {
                break;
            }
        }
        debug_assert_eq!(payload.len() as u64, s.total_out() - before);
        payload.truncate(payload.len() - 4);
        out.push(payload);
    }
}

fn miniz_compress(msgs: &[Vec<u8>], level: u8, out: &mut Vec<Vec<u8>>) {
    // Negative window bits: raw DEFLATE. miniz_oxide's window is always 32 KiB.
    let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
    let mut c = Box::new(CompressorOxide::new(flags));
    out.clear();
    let mut buf = vec![0u8; 64 << 10];
    for m in msgs {
        let mut input = &m[..];
        let mut payload = Vec::new();
        loop {
            let r = miniz_oxide::deflate::stream::deflate(&mut c, input, &mut buf, MZFlush::Sync);
            r.status.unwrap();
            payload.extend_from_slice(&buf[..r.bytes_written]);
            input = &input[r.bytes_consumed..];
            if input.is_empty() && r.bytes_written < buf.len() {
                break;
            }
        }
        payload.truncate(payload.len() - 4);
        out.push(payload);
    }
}

fn zlib_inflate(payloads: &[Vec<u8>], bits: u8) -> usize {
    let mut s = zlib_rs::Inflate::new(false, bits);
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0;
    for p in payloads {
        for part in [&p[..], &TAIL[..]] {
            let mut input = part;
            loop {
                let in0 = s.total_in();
                let o0 = s.total_out();
                s.decompress(input, &mut buf, zlib_rs::InflateFlush::NoFlush)
                    .unwrap();
                let produced = (s.total_out() - o0) as usize;
                n += produced;
                input = &input[(s.total_in() - in0) as usize..];
                if produced < buf.len() {
                    break;
                }
            }
        }
    }
    n
}

fn miniz_inflate(payloads: &[Vec<u8>]) -> usize {
    let mut s = InflateState::new_boxed(DataFormat::Raw);
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0;
    for p in payloads {
        for part in [&p[..], &TAIL[..]] {
            let mut input = part;
            loop {
                let r =
                    miniz_oxide::inflate::stream::inflate(&mut s, input, &mut buf, MZFlush::Sync);
                r.status.unwrap();
                n += r.bytes_written;
                input = &input[r.bytes_consumed..];
                if r.bytes_written < buf.len() {
                    break;
                }
            }
        }
    }
    n
}

fn codec_config(policy: MemoryPolicy, level: u8) -> DeflateConfig {
    DeflateConfig::default()
        .memory_policy(policy)
        .compression_level(level)
        .compression_threshold(0)
}

fn codec_compress(msgs: &[Vec<u8>], offer: &str, config: &DeflateConfig, out: &mut Vec<Vec<u8>>) {
    let wide = DeflateConfig::default()
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    let (params, _) = accept_offer(&wide, [offer]).unwrap();
    let mut d = Deflater::new(&params, Role::Server, config);
    out.clear();
    for m in msgs {
        let mut p = Vec::new();
        d.compress(m, &mut p);
        out.push(p);
    }
}

fn codec_inflate(payloads: &[Vec<u8>], offer: &str, config: &DeflateConfig) -> usize {
    let wide = DeflateConfig::default()
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    let (params, _) = accept_offer(&wide, [offer]).unwrap();
    let mut i = Inflater::new(&params, Role::Client, config);
    let mut n = 0;
    for p in payloads {
        let mut out = Vec::new();
        i.inflate(p, &mut out, 1 << 24).unwrap();
        i.finish_message(&mut out, 1 << 24).unwrap();
        n += out.len();
    }
    n
}

fn backends(c: &mut Criterion<common::CpuTime>) {
    let msgs = corpus();
    let bytes = total(&msgs);
    let mut zlib = Vec::new();
    let mut miniz = Vec::new();
    for level in [1u8, 6] {
        zlib_compress(&msgs, i32::from(level), 15, &mut zlib);
        miniz_compress(&msgs, level, &mut miniz);
        println!(
            "level {level}: corpus {bytes} bytes in {MESSAGES} messages; compressed to {:.3} (zlib-rs), {:.3} (miniz_oxide)",
            total(&zlib) as f64 / bytes as f64,
            total(&miniz) as f64 / bytes as f64
        );
    }
    zlib_compress(&msgs, 6, 15, &mut zlib);
    assert_eq!(miniz_inflate(&zlib), bytes);
    assert_eq!(zlib_inflate(&zlib, 15), bytes);

    let mut g = c.benchmark_group("deflate/compress");
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut out = Vec::new();
    for level in [1u8, 6] {
        g.bench_function(BenchmarkId::new("zlib-rs", level), |b| {
            b.iter(|| zlib_compress(black_box(&msgs), i32::from(level), 15, &mut out));
        });
        g.bench_function(BenchmarkId::new("miniz_oxide", level), |b| {
            b.iter(|| miniz_compress(black_box(&msgs), level, &mut out));
        });
    }
    for policy in [MemoryPolicy::Retain, MemoryPolicy::PerMessage] {
        let config = codec_config(policy, 6);
        g.bench_function(BenchmarkId::new(format!("codec-{policy:?}"), 6), |b| {
            b.iter(|| codec_compress(black_box(&msgs), "permessage-deflate", &config, &mut out));
        });
    }
    g.finish();

    let mut g = c.benchmark_group("deflate/inflate");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("zlib-rs", |b| b.iter(|| zlib_inflate(black_box(&zlib), 15)));
    g.bench_function("miniz_oxide", |b| {
        b.iter(|| miniz_inflate(black_box(&zlib)))
    });
    for policy in [MemoryPolicy::Retain, MemoryPolicy::PerMessage] {
        let config = codec_config(policy, 6);
        g.bench_function(format!("codec-{policy:?}"), |b| {
            b.iter(|| codec_inflate(black_box(&zlib), "permessage-deflate", &config));
        });
    }
    g.finish();
}

/// Best of `reps` CPU times for `f`, in nanoseconds.
fn cpu_ns(reps: usize, mut f: impl FnMut()) -> f64 {
    let clock = common::CpuTime::from_env();
    (0..reps)
        .map(|_| {
            let t = clock.now();
            f();
            (clock.now() - t).as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn modes() {
    let msgs = corpus();
    let bytes = total(&msgs);
    let mb = bytes as f64 / f64::from(1 << 20);
    println!(
        "corpus: {MESSAGES} messages, {bytes} bytes (mean {} B)",
        bytes / MESSAGES
    );
    println!(
        "{:<10} {:<8} {:>4} {:>5} {:>7} {:>11} {:>11} {:>10} {:>10}",
        "policy",
        "takeover",
        "bits",
        "level",
        "ratio",
        "deflate ms/MB",
        "inflate ms/MB",
        "idle tx B",
        "idle rx B"
    );
    for policy in [MemoryPolicy::PerMessage, MemoryPolicy::Retain] {
        for takeover in [true, false] {
            for bits in [15u8, 12, 9] {
                for level in [1u8, 6, 9] {
                    let mut offer = format!(
                        "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
                    );
                    if !takeover {
                        offer.push_str("; server_no_context_takeover; client_no_context_takeover");
                    }
                    let config = codec_config(policy, level);
                    let mut payloads = Vec::new();
                    let c_ns = cpu_ns(3, || codec_compress(&msgs, &offer, &config, &mut payloads));
                    let ratio = total(&payloads) as f64 / bytes as f64;
                    let d_ns = cpu_ns(3, || {
                        assert_eq!(codec_inflate(&payloads, &offer, &config), bytes);
                    });
                    // Idle memory: the codec's heap after the whole corpus went through.
                    let wide = DeflateConfig::default()
                        .server_max_window_bits(15)
                        .client_max_window_bits(15);
                    let (params, _) = accept_offer(&wide, [&offer]).unwrap();
                    let base = LIVE.load(Ordering::Relaxed);
                    let mut d = Deflater::new(&params, Role::Server, &config);
                    for m in &msgs[..500] {
                        let mut p = Vec::new();
                        d.compress(m, &mut p);
                    }
                    let tx = LIVE.load(Ordering::Relaxed) - base;
                    let base = LIVE.load(Ordering::Relaxed);
                    let mut i = Inflater::new(&params, Role::Client, &config);
                    for p in &payloads[..500] {
                        let mut out = Vec::new();
                        i.inflate(p, &mut out, 1 << 24).unwrap();
                        i.finish_message(&mut out, 1 << 24).unwrap();
                    }
                    let rx = LIVE.load(Ordering::Relaxed) - base;
                    drop((d, i));
                    println!(
                        "{:<10} {:<8} {:>4} {:>5} {:>7.3} {:>11.1} {:>11.1} {:>10} {:>10}",
                        format!("{policy:?}"),
                        if takeover { "on" } else { "off" },
                        bits,
                        level,
                        ratio,
                        c_ns / mb / 1e6,
                        d_ns / mb / 1e6,
                        tx,
                        rx
                    );
                }
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--modes") {
        modes();
        return;
    }
    let mut c = common::criterion().configure_from_args();
    backends(&mut c);
    c.final_summary();
}
