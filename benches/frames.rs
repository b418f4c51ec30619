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
//! * `encode/{server,client}/SIZE`: the application sends one binary message and the
//!   connection writes it out (one write or writev per message). rfc6455 through
//!   `Connection::send` + `transmit_chunks` / `advance_transmit`; tungstenite through
//!   `WebSocket::send`; fastwebsockets through `WebSocket::write_frame`.
//! * `assemble/{ascii,mixed}/{1x1MiB,1024x1KiB}`: a server receives one 1 MiB text message,
//!   whole or in 1024 fragments, and checks its UTF-8; fastwebsockets through its
//!   `FragmentCollector`.

mod common;

use bytes::Bytes;
use common::CpuTime;
use common::{Replay, Sink};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rfc6455::frame::{FrameHeader, MAX_HEADER_LEN, Opcode, decode_header, encode_header};
use rfc6455::{Config, Connection, Event, Message, OsEntropy};
use std::hint::black_box;
use std::io::Cursor;

type Group<'a> = BenchmarkGroup<'a, CpuTime>;
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
        }
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
            self.src.fill_buf_mut(&mut self.conn.read_space());
            self.conn.commit_space().unwrap();
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

fn bench_reader(g: &mut Group<'_>, id: &str, count: usize, mut reader: impl Reader) {
    g.bench_function(id, |b| {
        b.iter(|| {
            for _ in 0..count {
                reader.next();
            }
        });
    });
}

fn decode(c: &mut Crit) {
    for (server, side) in [(true, "server"), (false, "client")] {
        let mut g = c.benchmark_group(format!("decode/{side}"));
        for &(size, name) in SIZES {
            let count = count_for(size);
            let wire = common::binary_stream(size, count, server);
            g.throughput(Throughput::Bytes((size * count) as u64));
            let id = |lib: &str| format!("{name}/{lib}");
            bench_reader(
                &mut g,
                &id("rfc6455"),
                count,
                Ours::new(server, wire.clone()),
            );
            bench_reader(
                &mut g,
                &id("tungstenite"),
                count,
                Tungstenite::new(server, wire.clone()),
            );
            bench_reader(&mut g, &id("fastwebsockets"), count, Fws::new(server, wire));
        }
        g.finish();
    }
}

fn assemble(c: &mut Crit) {
    const LEN: usize = 1 << 20;
    let mut g = c.benchmark_group("assemble");
    g.throughput(Throughput::Bytes(LEN as u64));
    for (text_name, text) in [
        ("ascii", common::ascii_text(LEN)),
        ("mixed", common::mixed_text(LEN)),
    ] {
        for (fragments, shape) in [(1, "1x1MiB"), (1024, "1024x1KiB")] {
            let wire = common::fragmented_text(&text, fragments, true);
            let id = |lib: &str| format!("{text_name}/{shape}/{lib}");
            bench_reader(&mut g, &id("rfc6455"), 1, Ours::new(true, wire.clone()));
            bench_reader(
                &mut g,
                &id("tungstenite"),
                1,
                Tungstenite::new(true, wire.clone()),
            );
            let collector = fastwebsockets::FragmentCollector::new(
                fastwebsockets::WebSocket::after_handshake(Replay::new(wire), fws_role(true)),
            );
            bench_reader(&mut g, &id("fastwebsockets"), 1, FwsCollector(collector));
        }
    }
    g.finish();
}

// ------------------------------------------------------------------------- writers

fn encode(c: &mut Crit) {
    for (server, side) in [(true, "server"), (false, "client")] {
        let mut g = c.benchmark_group(format!("encode/{side}"));
        for &(size, name) in SIZES {
            let count = count_for(size);
            g.throughput(Throughput::Bytes((size * count) as u64));
            let payload: Bytes = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            let id = |lib: &str| format!("{name}/{lib}");

            let mut conn = if server {
                Connection::server(Config::default())
            } else {
                Connection::client(Config::default(), Box::new(OsEntropy::new()))
            };
            let mut sink = Sink::new();
            g.bench_function(id("rfc6455"), |b| {
                b.iter(|| {
                    for _ in 0..count {
                        conn.send(Message::Binary(payload.clone())).unwrap();
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
            });

            let role = if server {
                tungstenite::protocol::Role::Server
            } else {
                tungstenite::protocol::Role::Client
            };
            let mut ws = tungstenite::WebSocket::from_raw_socket(Replay::new(vec![0]), role, None);
            g.bench_function(id("tungstenite"), |b| {
                b.iter(|| {
                    for _ in 0..count {
                        ws.send(tungstenite::Message::Binary(payload.clone()))
                            .unwrap();
                    }
                });
            });

            let mut ws =
                fastwebsockets::WebSocket::after_handshake(Replay::new(vec![0]), fws_role(server));
            g.bench_function(id("fastwebsockets"), |b| {
                b.iter(|| {
                    for _ in 0..count {
                        let frame = fastwebsockets::Frame::binary(
                            fastwebsockets::Payload::Borrowed(&payload),
                        );
                        common::ready(ws.write_frame(frame)).unwrap();
                    }
                });
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = headers, decode, assemble, encode
}
criterion_main!(benches);
