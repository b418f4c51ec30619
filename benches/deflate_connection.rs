//! permessage-deflate through our `Connection` against the bare backend (zlib-rs) on the same
//! bytes: the JSON chat corpus (10,000 messages, fixed seed, `tests/deflate_support/chat.rs`),
//! at the parameters a browser's offer gets from our server (12-bit windows both ways,
//! context takeover, level 6).
//!
//! * `compress/{server,client}`: `send_text` of every message on a fresh connection, its
//!   output taken as a socket write would (`pending_transmit` / `advance_transmit`), against
//!   one zlib-rs raw stream with the same level, window and memory level, sync-flushed per
//!   message into a reused buffer.
//! * `decompress/{server,client}`: the same messages, compressed and framed by a peer
//!   connection, fed to a fresh connection in 64 KiB reads (`receive`) and taken as events,
//!   against one zlib-rs raw stream inflating the same payloads (with the `00 00 ff ff` tail)
//!   into a reused buffer. The server side also unmasks.
//!
//! ```text
//! cargo bench -p rfc6455-benches --bench deflate_connection             # criterion
//! cargo bench -p rfc6455-benches --bench deflate_connection -- --interleaved
//! ```
//!
//! `--interleaved` runs each workload's two contenders in turn, ROUNDS (default 21) times,
//! and prints the median ratio bare time / our time (1.0: as fast as the bare backend) with
//! its interquartile range; it also prints the corpus's compression ratio. Steadier than
//! criterion's one-after-the-other groups on a shared machine.
#![allow(clippy::cast_precision_loss)]

#[path = "../tests/deflate_support/chat.rs"]
mod chat;
mod common;

use criterion::{BenchmarkId, Throughput};
use rfc6455::deflate::{DeflateConfig, DeflateParams, Inflater, PerMessageDeflate, accept_offer};
use rfc6455::{Config, Connection, Event, Role};
use std::hint::black_box;

const MESSAGES: usize = 10_000;
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// What one socket read hands the connection.
const READ: usize = 64 << 10;

/// What our server agrees to a browser's offer, with our default config.
fn params() -> (DeflateConfig, DeflateParams) {
    let config = DeflateConfig::default();
    let (params, response) =
        accept_offer(&config, ["permessage-deflate; client_max_window_bits"]).unwrap();
    assert_eq!(
        response,
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    );
    (config, params)
}

/// A connection of `role` with the extension installed, as the handshakes install it.
fn connection(role: Role) -> Connection {
    let (config, params) = params();
    let ext = Box::new(PerMessageDeflate::new(&params, role, &config));
    let conn = match role {
        Role::Server => Connection::server(Config::default()),
        Role::Client => Connection::client(
            Config::default(),
            Box::new(|dest: &mut [u8]| dest.fill(0x5a)),
        ),
    };
    conn.with_extension(ext)
}

/// zlib-rs configured exactly as our codec configures it for a 12-bit window at level 6.
fn bare_deflate() -> zlib_rs::Deflate {
    zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
        level: 6,
        method: zlib_rs::Method::Deflated,
        window_bits: -12,
        mem_level: 5,
        strategy: zlib_rs::Strategy::Default,
    })
}

/// Every message compressed in turn on one stream; returns the total payload bytes.
fn bare_compress(msgs: &[String], buf: &mut Vec<u8>) -> usize {
    let mut s = bare_deflate();
    let mut total = 0;
    for m in msgs {
        let mut input = m.as_bytes();
        buf.clear();
        loop {
            let len = buf.len();
            let room = input.len() / 2 + 64;
            buf.resize(len + room, 0);
            let (in0, out0) = (s.total_in(), s.total_out());
            s.compress(input, &mut buf[len..], zlib_rs::DeflateFlush::SyncFlush)
                .unwrap();
            let produced = (s.total_out() - out0) as usize;
            input = &input[(s.total_in() - in0) as usize..];
            buf.truncate(len + produced);
            // A sync flush is complete once the input is used up with room to spare.
            if input.is_empty() && produced < room {
                break;
            }
        }
        total += buf.len() - TAIL.len();
    }
    total
}

/// Every payload inflated in turn on one stream; returns the total message bytes.
fn bare_decompress(payloads: &[Vec<u8>], buf: &mut [u8]) -> usize {
    let mut s = zlib_rs::Inflate::new(false, 12);
    let mut n = 0;
    for p in payloads {
        for part in [&p[..], &TAIL[..]] {
            let mut input = part;
            loop {
                let (in0, out0) = (s.total_in(), s.total_out());
                s.decompress(input, buf, zlib_rs::InflateFlush::NoFlush)
                    .unwrap();
                let produced = (s.total_out() - out0) as usize;
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

/// Every message sent on a fresh connection of `role`; returns the wire bytes.
fn ours_compress(role: Role, msgs: &[String]) -> usize {
    let mut conn = connection(role);
    let mut wire = 0;
    for m in msgs {
        conn.send_text(m).unwrap();
        while conn.transmit_len() > 0 {
            let n = conn.pending_transmit().len();
            wire += n;
            conn.advance_transmit(n);
        }
    }
    wire
}

/// The wire bytes of every message sent by a connection of `role`.
fn wire_from(role: Role, msgs: &[String], text: bool) -> Vec<u8> {
    let mut conn = connection(role);
    let mut wire = Vec::new();
    for m in msgs {
        if text {
            conn.send_text(m).unwrap();
        } else {
            conn.send_binary(m.as_bytes()).unwrap();
        }
        while conn.transmit_len() > 0 {
            let chunk = conn.pending_transmit();
            wire.extend_from_slice(chunk);
            let n = chunk.len();
            conn.advance_transmit(n);
        }
    }
    wire
}

/// The frames in `wire` received by a fresh connection of `role`; returns the message bytes.
fn ours_decompress(role: Role, wire: &[u8]) -> usize {
    let mut conn = connection(role);
    let mut n = 0;
    for read in wire.chunks(READ) {
        conn.receive(read).unwrap();
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => n += m.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    n
}

/// The payloads inflated by our codec alone (no connection), each message into a fresh
/// buffer as the connection's are: what the codec adds to the bare backend.
fn codec_decompress(payloads: &[Vec<u8>]) -> usize {
    let (config, params) = params();
    let mut inflater = Inflater::new(&params, Role::Client, &config);
    let mut n = 0;
    for p in payloads {
        let mut out = Vec::new();
        inflater.inflate(p, &mut out, usize::MAX).unwrap();
        inflater.finish_message(&mut out, usize::MAX).unwrap();
        n += out.len();
    }
    n
}

/// The compressed payloads (unmasked, RSV1 set, one frame each) in a server's wire bytes.
fn payloads(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let (header, n) = rfc6455::frame::decode_header(&wire[at..]).unwrap().unwrap();
        assert!(header.fin && header.mask.is_none() && header.rsv == rfc6455::frame::RSV1);
        let len = header.payload_len as usize;
        out.push(wire[at + n..at + n + len].to_vec());
        at += n + len;
    }
    out
}

struct Corpus {
    msgs: Vec<String>,
    bytes: usize,
    /// What a server sends (unmasked) and a client sends (masked).
    from_server: Vec<u8>,
    from_client: Vec<u8>,
    /// The same messages sent as binary ones (no UTF-8 check on receipt).
    binary_from_server: Vec<u8>,
    payloads: Vec<Vec<u8>>,
}

fn corpus() -> Corpus {
    let msgs = chat::corpus(MESSAGES);
    let bytes = msgs.iter().map(String::len).sum();
    let from_server = wire_from(Role::Server, &msgs, true);
    let from_client = wire_from(Role::Client, &msgs, true);
    let binary_from_server = wire_from(Role::Server, &msgs, false);
    let payloads = payloads(&from_server);
    // Both sides agree on the bytes before anything is timed.
    let mut buf = vec![0u8; 64 << 10];
    assert_eq!(bare_decompress(&payloads, &mut buf), bytes);
    assert_eq!(ours_decompress(Role::Client, &from_server), bytes);
    assert_eq!(ours_decompress(Role::Server, &from_client), bytes);
    let mut out = Vec::new();
    assert_eq!(
        bare_compress(&msgs, &mut out),
        payloads.iter().map(Vec::len).sum::<usize>(),
        "the bare stream and our connection make the same payloads"
    );
    Corpus {
        msgs,
        bytes,
        from_server,
        from_client,
        binary_from_server,
        payloads,
    }
}

fn report_ratio(c: &Corpus) {
    let compressed: usize = c.payloads.iter().map(Vec::len).sum();
    println!(
        "corpus: {MESSAGES} JSON chat messages, {} bytes (mean {} B); permessage-deflate at \
         level 6, 12-bit windows, context takeover: {compressed} bytes of payload, ratio {:.3} \
         ({:.2}x smaller); on the wire with frame headers {} bytes from the server",
        c.bytes,
        c.bytes / MESSAGES,
        compressed as f64 / c.bytes as f64,
        c.bytes as f64 / compressed as f64,
        c.from_server.len()
    );
}

type Workload<'a> = (
    &'static str,
    Box<dyn FnMut() -> usize + 'a>,
    Box<dyn FnMut() -> usize + 'a>,
);

/// (name, bare, ours) for each workload.
fn workloads(c: &Corpus) -> Vec<Workload<'_>> {
    let mut out: Vec<Workload<'_>> = Vec::new();
    for (name, role) in [
        ("compress/server", Role::Server),
        ("compress/client", Role::Client),
    ] {
        let mut buf = Vec::with_capacity(64 << 10);
        out.push((
            name,
            Box::new(move || bare_compress(black_box(&c.msgs), &mut buf)),
            Box::new(move || ours_compress(role, black_box(&c.msgs))),
        ));
    }
    for (name, role, wire) in [
        ("decompress/server", Role::Server, &c.from_client),
        ("decompress/client", Role::Client, &c.from_server),
        (
            "decompress/client-binary",
            Role::Client,
            &c.binary_from_server,
        ),
    ] {
        let mut buf = vec![0u8; 64 << 10];
        out.push((
            name,
            Box::new(move || bare_decompress(black_box(&c.payloads), &mut buf)),
            Box::new(move || ours_decompress(role, black_box(wire))),
        ));
    }
    // Diagnostic: the codec without the connection around it.
    let mut buf = vec![0u8; 64 << 10];
    out.push((
        "decompress/codec",
        Box::new(move || bare_decompress(black_box(&c.payloads), &mut buf)),
        Box::new(move || codec_decompress(black_box(&c.payloads))),
    ));
    out
}

fn criterion_run(c: &Corpus) {
    let mut cr = common::criterion().configure_from_args();
    for (name, mut bare, mut ours) in workloads(c) {
        let mut g = cr.benchmark_group(format!("deflate-connection/{name}"));
        g.throughput(Throughput::Bytes(c.bytes as u64));
        g.bench_function(BenchmarkId::from_parameter("zlib-rs"), |b| {
            b.iter(&mut bare)
        });
        g.bench_function(BenchmarkId::from_parameter("rfc6455"), |b| {
            b.iter(&mut ours)
        });
        g.finish();
    }
    cr.final_summary();
}

/// Median and quartiles of `xs` (sorted in place).
fn quartiles(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn interleaved(c: &Corpus) {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let clock = common::CpuTime::from_env();
    let mb = c.bytes as f64 / 1e6;
    println!(
        "{:<20} {:>12} {:>12} {:>8} {:>15}",
        "workload", "bare MB/s", "ours MB/s", "ratio", "IQR"
    );
    for (name, mut bare, mut ours) in workloads(c) {
        // One untimed turn each: streams, buffers and caches warm.
        black_box(bare());
        black_box(ours());
        let (mut tb, mut to, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate who goes first, so neither always runs on a warmer machine.
            let time = |f: &mut dyn FnMut() -> usize| {
                let t = clock.now();
                black_box(f());
                (clock.now() - t).as_secs_f64()
            };
            let (b, o) = if round % 2 == 0 {
                let b = time(&mut bare);
                (b, time(&mut ours))
            } else {
                let o = time(&mut ours);
                (time(&mut bare), o)
            };
            tb.push(b);
            to.push(o);
            ratios.push(b / o);
        }
        let (r, lo, hi) = quartiles(&mut ratios);
        let (b, _, _) = quartiles(&mut tb);
        let (o, _, _) = quartiles(&mut to);
        println!(
            "{name:<20} {:>12.1} {:>12.1} {r:>8.3} {:>7.3}-{:<7.3}",
            mb / b,
            mb / o,
            lo,
            hi
        );
        println!("RATIO {name} {r:.3} {lo:.3} {hi:.3}");
    }
}

fn main() {
    let c = corpus();
    report_ratio(&c);
    if std::env::args().any(|a| a == "--interleaved") {
        interleaved(&c);
    } else {
        criterion_run(&c);
    }
}
