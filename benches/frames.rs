//! Frame headers, frame streams and message assembly: rfc6455 against tungstenite 0.30 and
//! fastwebsockets 0.10, on the same in-memory transport (see `common`).
//!
//! Benchmark ids are `GROUP/WORKLOAD/LIBRARY`, so `scripts/bench-ratios.sh` can pair each
//! peer with `rfc6455`. Throughput is payload bytes (frame headers are not counted).
//!
//! * `header/decode`, `header/encode`: one header of each length form; peer: tungstenite's
//!   public `FrameHeader` (fastwebsockets has no public header codec).
//! * `decode/{server,client}/SIZE`: a connection reads a stream of one-frame binary messages
//!   (masked towards a server, unmasked towards a client) and hands each message to the
//!   application, which drops it. rfc6455 through `Connection::read_space`, `commit_space`
//!   and `poll_event` (the tokio adapter's path: reads append to spare capacity, unzeroed);
//!   tungstenite through `WebSocket::read`; fastwebsockets through `WebSocket::read_frame`
//!   (its cheapest path: frames, no assembly).
//! * `receive/{server,client}/SIZE`: the same, with rfc6455 fed through
//!   `Connection::receive(&[u8])` (borrowed slices of up to 256 KiB) instead of `read_space`;
//!   the peers' columns repeat their decode runs.
//! * `encode/{server,client}/SIZE`: the application sends one binary message from bytes it
//!   holds and the connection writes it out (one write or writev per message). rfc6455
//!   through `Connection::send_binary` (borrowed, copied into the frame), or `send` with a
//!   `Bytes` handle where a server queues the payload by reference (16 KiB and up), then
//!   `transmit_chunks` / `advance_transmit`; tungstenite through `WebSocket::send` (owned
//!   messages only: a `Bytes` clone each); fastwebsockets through `WebSocket::write_frame`
//!   with a borrowed payload.
//! * `assemble/{ascii,mixed}/{1x1MiB,1024x1KiB}`: a server receives one 1 MiB text message,
//!   whole or in 1024 fragments, and checks its UTF-8; fastwebsockets through its
//!   `FragmentCollector`.
//! * `{decode,receive}/{server,client}/1MiB/memcpy`: one copy of the same wire bytes, the floor
//!   for a reader that copies each payload in once.
//! * `sync/...`, `tokio/...`: the same workloads through the public adapters (see `adapters`).

mod adapters;
mod common;

use bytes::Bytes;
use common::CpuTime;
use common::{Replay, Sink};
use criterion::{Criterion, Throughput, criterion_group};
use rfc6455::frame::{FrameHeader, MAX_HEADER_LEN, Opcode, decode_header, encode_header};
use rfc6455::{Config, Connection, Event, Message, OsEntropy};
use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

type Crit = Criterion<CpuTime>;

const SIZES: &[(usize, &str)] = &[
    (16, "16B"),
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];

/// Messages per iteration: enough that per-iteration overhead vanishes.
fn count_for(size: usize) -> usize {
    ((256 << 10) / size).clamp(1, 4096)
}

// ------------------------------------------------------------------------- headers

fn headers(c: &mut Crit) {
    let forms: [(&str, u64, Option<[u8; 4]>); 4] = [
        ("2B", 100, None),
        ("6B-masked", 100, Some(common::KEY)),
        ("4B", 1000, None),
        ("14B-masked", 1 << 20, Some(common::KEY)),
    ];
    let mut g = c.benchmark_group("header/decode");
    for (name, len, mask) in forms {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Binary,
            mask,
            payload_len: len,
        };
        let mut wire = [0; MAX_HEADER_LEN];
        let n = encode_header(&mut wire, &header);
        let wire = &wire[..n];
        g.bench_function(format!("{name}/rfc6455"), |b| {
            b.iter(|| decode_header(black_box(wire)).unwrap().unwrap());
        });
        g.bench_function(format!("{name}/tungstenite"), |b| {
            b.iter(|| {
                let mut cur = Cursor::new(black_box(wire));
                tungstenite::protocol::frame::FrameHeader::parse(&mut cur)
                    .unwrap()
                    .unwrap()
            });
        });
    }
    g.finish();
    let mut g = c.benchmark_group("header/encode");
    for (name, len, mask) in forms {
        let ours = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: Opcode::Binary,
            mask,
            payload_len: len,
        };
        let theirs = tungstenite::protocol::frame::FrameHeader {
            opcode: tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Binary,
            ),
            mask,
            ..Default::default()
        };
        g.bench_function(format!("{name}/rfc6455"), |b| {
            let mut out = [0; MAX_HEADER_LEN];
            b.iter(|| encode_header(&mut out, black_box(&ours)));
        });
        g.bench_function(format!("{name}/tungstenite"), |b| {
            let mut out = Vec::with_capacity(MAX_HEADER_LEN);
            b.iter(|| {
                out.clear();
                black_box(&theirs).format(black_box(len), &mut out).unwrap();
            });
        });
    }
    g.finish();
}

// ------------------------------------------------------------------------- readers

/// A connection of one library reading messages from a [`Replay`].
trait Reader {
    /// Reads one message and hands it over (to be dropped).
    fn next(&mut self);
}

struct Ours {
    conn: Connection,
    src: Replay,
    /// Feed with `Connection::receive` (bytes the caller holds) instead of reading into the
    /// connection's buffer.
    slices: bool,
}

impl Ours {
    fn new(server: bool, wire: Vec<u8>) -> Self {
        let conn = if server {
            Connection::server(Config::default())
        } else {
            Connection::client(Config::default(), Box::new(OsEntropy::new()))
        };
        Self {
            conn,
            src: Replay::new(wire),
            slices: false,
        }
    }

    fn with_slices(mut self) -> Self {
        self.slices = true;
        self
    }
}

impl Reader for Ours {
    fn next(&mut self) {
        loop {
            match self.conn.poll_event() {
                Some(Event::Message(m)) => {
                    black_box(m);
                    return;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
            if self.slices {
                self.conn.receive(self.src.next_slice()).unwrap();
            } else {
                self.src.fill_buf_mut(&mut self.conn.read_space());
                self.conn.commit_space().unwrap();
            }
        }
    }
}

struct Tungstenite(tungstenite::WebSocket<Replay>);

impl Tungstenite {
    fn new(server: bool, wire: Vec<u8>) -> Self {
        let role = if server {
            tungstenite::protocol::Role::Server
        } else {
            tungstenite::protocol::Role::Client
        };
        Self(tungstenite::WebSocket::from_raw_socket(
            Replay::new(wire),
            role,
            None,
        ))
    }
}

impl Reader for Tungstenite {
    fn next(&mut self) {
        match self.0.read().unwrap() {
            m @ (tungstenite::Message::Binary(_) | tungstenite::Message::Text(_)) => {
                black_box(m);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn fws_role(server: bool) -> fastwebsockets::Role {
    if server {
        fastwebsockets::Role::Server
    } else {
        fastwebsockets::Role::Client
    }
}

struct Fws(fastwebsockets::WebSocket<Replay>);

impl Fws {
    fn new(server: bool, wire: Vec<u8>) -> Self {
        Self(fastwebsockets::WebSocket::after_handshake(
            Replay::new(wire),
            fws_role(server),
        ))
    }
}

impl Reader for Fws {
    fn next(&mut self) {
        let frame = common::ready(self.0.read_frame()).unwrap();
        assert!(frame.fin);
        black_box(frame);
    }
}

struct FwsCollector(fastwebsockets::FragmentCollector<Replay>);

impl Reader for FwsCollector {
    fn next(&mut self) {
        let frame = common::ready(self.0.read_frame()).unwrap();
        assert!(frame.fin);
        black_box(frame);
    }
}

/// One workload run by every library: `group/name/library` in criterion's ids.
struct Workload {
    group: String,
    name: &'static str,
    /// Payload bytes per iteration.
    bytes: u64,
    /// Each library's iteration, ours first.
    libs: Vec<(&'static str, Run)>,
}

/// One iteration of a workload by one library.
type Run = Box<dyn FnMut()>;

fn reader_iteration(count: usize, mut reader: impl Reader + 'static) -> Run {
    Box::new(move || {
        for _ in 0..count {
            reader.next();
        }
    })
}

fn decode() -> Vec<Workload> {
    let mut out = Vec::new();
    for (group, slices) in [("decode", false), ("receive", true)] {
        for (server, side) in [(true, "server"), (false, "client")] {
            for &(size, name) in SIZES {
                out.push(decode_workload(group, slices, server, side, size, name));
            }
        }
    }
    out
}

fn decode_workload(
    group: &str,
    slices: bool,
    server: bool,
    side: &str,
    size: usize,
    name: &'static str,
) -> Workload {
    let count = count_for(size);
    let wire = common::binary_stream(size, count, server);
    let ours = Ours::new(server, wire.clone());
    let ours = if slices { ours.with_slices() } else { ours };
    let mut libs: Vec<(&'static str, Run)> = vec![
        ("rfc6455", reader_iteration(count, ours)),
        (
            "tungstenite",
            reader_iteration(count, Tungstenite::new(server, wire.clone())),
        ),
        (
            "fastwebsockets",
            reader_iteration(count, Fws::new(server, wire.clone())),
        ),
    ];
    if size >= 1 << 20 {
        libs.push(("memcpy", adapters::memcpy(wire)));
    }
    Workload {
        group: format!("{group}/{side}"),
        name,
        bytes: (size * count) as u64,
        libs,
    }
}

fn assemble() -> Vec<Workload> {
    const LEN: usize = 1 << 20;
    let mut out = Vec::new();
    for (text_name, text) in [
        ("ascii", common::ascii_text(LEN)),
        ("mixed", common::mixed_text(LEN)),
    ] {
        for (fragments, shape) in [(1, "1x1MiB"), (1024, "1024x1KiB")] {
            let wire = common::fragmented_text(&text, fragments, true);
            let collector =
                fastwebsockets::FragmentCollector::new(fastwebsockets::WebSocket::after_handshake(
                    Replay::new(wire.clone()),
                    fws_role(true),
                ));
            out.push(Workload {
                group: format!("assemble/{text_name}"),
                name: shape,
                bytes: LEN as u64,
                libs: vec![
                    (
                        "rfc6455",
                        reader_iteration(1, Ours::new(true, wire.clone())),
                    ),
                    (
                        "tungstenite",
                        reader_iteration(1, Tungstenite::new(true, wire)),
                    ),
                    (
                        "fastwebsockets",
                        reader_iteration(1, FwsCollector(collector)),
                    ),
                ],
            });
        }
    }
    out
}

// ------------------------------------------------------------------------- writers

fn encode() -> Vec<Workload> {
    let mut out = Vec::new();
    for (server, side) in [(true, "server"), (false, "client")] {
        for &(size, name) in SIZES {
            let count = count_for(size);
            let payload: Bytes = (0..size).map(|i| (i * 7 + 3) as u8).collect();

            let mut conn = if server {
                Connection::server(Config::default())
            } else {
                Connection::client(Config::default(), Box::new(OsEntropy::new()))
            };
            let mut sink = Sink::new();
            let ours_payload = payload.clone();
            // Each library's cheapest way to send bytes the application holds: fastwebsockets
            // borrows them, and so does our `send_binary`, which copies them into the frame
            // as `send` would; a server payload of 16 KiB or more goes by reference through
            // `send`, for a reference count instead of a copy. (tungstenite takes only owned
            // messages: a `Bytes` clone.)
            let by_reference = server && size >= 16 << 10;
            let ours = Box::new(move || {
                for _ in 0..count {
                    if by_reference {
                        conn.send(Message::Binary(ours_payload.clone())).unwrap();
                    } else {
                        conn.send_binary(&ours_payload).unwrap();
                    }
                    while conn.transmit_len() > 0 {
                        let mut slices = [&[][..]; 16];
                        let mut k = 0;
                        for (slot, chunk) in slices.iter_mut().zip(conn.transmit_chunks()) {
                            *slot = chunk;
                            k += 1;
                        }
                        let n = sink.write_vectored_slices(&slices[..k]);
                        conn.advance_transmit(n);
                    }
                }
            });

            let role = if server {
                tungstenite::protocol::Role::Server
            } else {
                tungstenite::protocol::Role::Client
            };
            let mut ws = tungstenite::WebSocket::from_raw_socket(Replay::new(vec![0]), role, None);
            let tung_payload = payload.clone();
            let tung = Box::new(move || {
                for _ in 0..count {
                    ws.send(tungstenite::Message::Binary(tung_payload.clone()))
                        .unwrap();
                }
            });

            let mut ws =
                fastwebsockets::WebSocket::after_handshake(Replay::new(vec![0]), fws_role(server));
            let fws = Box::new(move || {
                for _ in 0..count {
                    let frame =
                        fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
                    common::ready(ws.write_frame(frame)).unwrap();
                }
            });
            out.push(Workload {
                group: format!("encode/{side}"),
                name,
                bytes: (size * count) as u64,
                libs: vec![
                    ("rfc6455", ours),
                    ("tungstenite", tung),
                    ("fastwebsockets", fws),
                ],
            });
        }
    }
    out
}

fn workloads() -> Vec<Workload> {
    let mut all = decode();
    all.extend(assemble());
    all.extend(encode());
    all.extend(adapters::workloads());
    all
}

/// Every workload under criterion, one library after another.
fn streams(c: &mut Crit) {
    let mut all = workloads();
    let mut at = 0;
    while at < all.len() {
        let group = all[at].group.clone();
        let mut g = c.benchmark_group(&group);
        while at < all.len() && all[at].group == group {
            let w = &mut all[at];
            g.throughput(Throughput::Bytes(w.bytes));
            for (lib, run) in &mut w.libs {
                g.bench_function(format!("{}/{lib}", w.name), |b| b.iter(&mut *run));
            }
            at += 1;
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = headers, streams
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--interleaved") {
        let filter = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str);
        interleaved(filter);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

// ------------------------------------------------------------------------- interleaved

/// `cargo bench -p rfc6455-benches --bench frames -- --interleaved [FILTER]`: the stream workloads again, but the
/// libraries take turns instead of running one after another, and each ratio is taken within
/// one round, so a host that slows down for a while slows every library alike.
///
/// For each workload: one warm-up sample per library, then `ROUNDS` rounds (default 21). A
/// sample is `k` iterations timed on this thread's CPU clock, `k` chosen so that our sample
/// takes about `SAMPLE_MS` (default 5) milliseconds; each round runs one sample per library,
/// the starting library rotating from round to round. Printed: our median time per
/// iteration, and for each peer the median of the per-round ratios (peer time / our time,
/// above 1: we are faster) with their interquartile range. `ONLY=LIBRARY` runs one library
/// alone (for a profiler).
fn interleaved(filter: Option<&str>) {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("ROUNDS", 21).max(1) as usize;
    let target = Duration::from_millis(env("SAMPLE_MS", 5).max(1));
    let clock = common::CpuTime::from_env();
    let sample = |run: &mut Run, k: u32| {
        let start = clock.now();
        for _ in 0..k {
            run();
        }
        clock.now().saturating_sub(start) / k
    };

    println!(
        "interleaved: {rounds} rounds, ~{} ms samples; ratio = peer time / rfc6455 time \
         (>1: rfc6455 faster), median of per-round ratios [interquartile range]",
        target.as_millis()
    );
    println!(
        "{:<30}{:>10}{:>11}  peer ratio [interquartile range] ...",
        "workload", "rfc6455", ""
    );
    for mut w in workloads() {
        let id = format!("{}/{}", w.group, w.name);
        if filter.is_some_and(|f| !id.contains(f)) {
            continue;
        }
        if let Ok(only) = std::env::var("ONLY") {
            // For profiling one library: `ONLY=rfc6455 perf record ...`.
            w.libs.retain(|(lib, _)| *lib == only);
            if w.libs.is_empty() {
                continue;
            }
        }
        // Warm up every library once, then size the samples on a second, warm iteration of
        // ours: the first pays for growing buffers and faulting pages in (641 us against 102
        // at 1 MiB), and samples sized on it came out at a seventh of `SAMPLE_MS`, so the
        // cold start of each sample, after the other libraries ran, weighed in every result.
        for (_, run) in &mut w.libs {
            sample(run, 1);
        }
        let ours_once = sample(&mut w.libs[0].1, 1);
        let k = (target.as_nanos() / ours_once.as_nanos().max(1)).clamp(1, 1 << 20) as u32;
        for (_, run) in &mut w.libs {
            sample(run, k);
        }
        let n = w.libs.len();
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
        for round in 0..rounds {
            for j in 0..n {
                let lib = (round + j) % n;
                let t = sample(&mut w.libs[lib].1, k);
                times[lib].push(t.as_nanos() as f64);
            }
        }
        let ours = median(&times[0]);
        let mut line = format!(
            "{id:<30}{:>10}{:>11}",
            fmt_ns(ours),
            format!("{:.2} GB/s", w.bytes as f64 / ours)
        );
        for ((lib, _), peer) in w.libs.iter().zip(&times).skip(1) {
            let mut ratios: Vec<f64> = peer.iter().zip(&times[0]).map(|(p, o)| p / o).collect();
            ratios.sort_by(f64::total_cmp);
            let q = |f: f64| ratios[((ratios.len() - 1) as f64 * f).round() as usize];
            line += &format!("  {lib} {:.2} [{:.2}-{:.2}]", q(0.5), q(0.25), q(0.75));
        }
        println!("{line}");
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn fmt_ns(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.3} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.3} us", ns / 1e3),
        ns => format!("{ns:.0} ns"),
    }
}
