//! Masking (RFC 6455 §5.3) by payload length, and by the payload's alignment in memory.
//!
//! `mask/len/N/{rfc6455,fastwebsockets}`: XOR N bytes in place (fastwebsockets' public
//! `unmask` is the peer; tungstenite's masking is private).
//! `mask/align/N/A`: the same N bytes starting A bytes past a 64-byte boundary, and
//! `mask/offset/N/O`: starting at payload offset O (the key rotated), as a payload that
//! arrives in pieces is unmasked.

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rfc6455::frame::apply_mask;
use std::hint::black_box;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const LENGTHS: &[usize] = &[
    0,
    1,
    3,
    7,
    8,
    15,
    16,
    31,
    64,
    125,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    1 << 20,
];
const ALIGN_LENGTHS: &[usize] = &[16, 1 << 10, 64 << 10];

/// A buffer whose data starts `align` bytes past a 64-byte boundary.
struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize, align: usize) -> Self {
        let raw: Vec<u8> = (0..len + 128).map(|i| i as u8).collect();
        let base = raw.as_ptr() as usize;
        let start = (64 - base % 64) % 64 + align;
        Self { raw, start, len }
    }
    fn get(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

fn by_length(c: &mut Criterion<common::CpuTime>) {
    let mut g = c.benchmark_group("mask/len");
    for &len in LENGTHS {
        g.throughput(Throughput::Bytes(len as u64));
        let mut buf = Aligned::new(len, 0);
        g.bench_function(BenchmarkId::new(len.to_string(), "rfc6455"), |b| {
            b.iter(|| apply_mask(black_box(buf.get()), black_box(KEY), 0));
        });
        g.bench_function(BenchmarkId::new(len.to_string(), "fastwebsockets"), |b| {
            b.iter(|| fastwebsockets::unmask(black_box(buf.get()), black_box(KEY)));
        });
    }
    g.finish();
}

fn by_alignment(c: &mut Criterion<common::CpuTime>) {
    let mut g = c.benchmark_group("mask/align");
    for &len in ALIGN_LENGTHS {
        g.throughput(Throughput::Bytes(len as u64));
        for align in 0..8 {
            let mut buf = Aligned::new(len, align);
            g.bench_function(BenchmarkId::new(len.to_string(), align), |b| {
                b.iter(|| apply_mask(black_box(buf.get()), black_box(KEY), 0));
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("mask/offset");
    for &len in ALIGN_LENGTHS {
        g.throughput(Throughput::Bytes(len as u64));
        let mut buf = Aligned::new(len, 0);
        for offset in 0..4 {
            g.bench_function(BenchmarkId::new(len.to_string(), offset), |b| {
                b.iter(|| apply_mask(black_box(buf.get()), black_box(KEY), black_box(offset)));
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = by_length, by_alignment
}
criterion_main!(benches);
