//! The frames bench's adapter rows: the same workloads driven through the public adapters,
//! where an application meets the library, instead of through the sans-IO `Connection`.
//!
//! * `sync/...`: our `rfc6455::sync::WebSocket` over the in-memory [`Replay`] (wrapped in
//!   `sync::NoTimeouts`, since it has no read timeout), `recv()` and `send_binary()` / `send()`,
//!   against tungstenite's `WebSocket::read` and `send` (its `write` + `flush`).
//! * `tokio/...`: our `rfc6455::tokio::WebSocket` over the same [`Replay`] as an
//!   `AsyncRead + AsyncWrite`, polled on a current-thread runtime (one `block_on` per
//!   iteration, `count_for(size)` messages in it), against fastwebsockets'
//!   `WebSocket::read_frame` / `write_frame` on the same runtime.
//!
//! Workloads: `decode/{server,client}/SIZE` and `encode/{server,client}/SIZE` as in the core
//! rows; `text/{ascii,mixed}/1x1MiB`, one 1 MiB text message per frame sent to a server, which
//! the application reads as `&str` (`Utf8Bytes::as_str` for us and tungstenite; fastwebsockets
//! hands out bytes, through its `FragmentCollector` whole messages whose UTF-8 it has checked,
//! so its application calls `std::str::from_utf8`). The 1 MiB decode and text rows also carry
//! `memcpy`: one `copy_from_slice` of the same wire bytes into a buffer that is kept, the floor
//! for any reader that copies the payload in once.

use crate::common::{self, Replay};
use crate::{Run, SIZES, Workload, count_for};
use bytes::Bytes;
use rfc6455::{Config, Connection, Message, OsEntropy, sync};
use std::hint::black_box;
use std::rc::Rc;
use tokio::runtime::Runtime;

fn connection(server: bool) -> Connection {
    if server {
        Connection::server(Config::default())
    } else {
        Connection::client(Config::default(), Box::new(OsEntropy::new()))
    }
}

fn tungstenite_role(server: bool) -> tungstenite::protocol::Role {
    if server {
        tungstenite::protocol::Role::Server
    } else {
        tungstenite::protocol::Role::Client
    }
}

fn fws_role(server: bool) -> fastwebsockets::Role {
    if server {
        fastwebsockets::Role::Server
    } else {
        fastwebsockets::Role::Client
    }
}

type OurSync = sync::WebSocket<sync::NoTimeouts<Replay>>;
type OurTokio = rfc6455::tokio::WebSocket<Replay>;

fn our_sync(server: bool, wire: Vec<u8>) -> OurSync {
    sync::WebSocket::from_connection(sync::NoTimeouts(Replay::new(wire)), connection(server))
}

fn our_tokio(server: bool, wire: Vec<u8>) -> OurTokio {
    rfc6455::tokio::WebSocket::from_connection(Replay::new(wire), connection(server))
}

fn tungstenite(server: bool, wire: Vec<u8>) -> tungstenite::WebSocket<Replay> {
    tungstenite::WebSocket::from_raw_socket(Replay::new(wire), tungstenite_role(server), None)
}

fn fws(server: bool, wire: Vec<u8>) -> fastwebsockets::WebSocket<Replay> {
    fastwebsockets::WebSocket::after_handshake(Replay::new(wire), fws_role(server))
}

/// The one-copy floor: the wire bytes copied once into a buffer that lives on.
pub fn memcpy(wire: Vec<u8>) -> Run {
    let mut dst = vec![0u8; wire.len()];
    Box::new(move || {
        dst.copy_from_slice(black_box(&wire));
        black_box(&mut dst);
    })
}

/// Every adapter workload.
pub fn workloads() -> Vec<Workload> {
    // One current-thread runtime for every tokio row; the time driver is on because the
    // adapter sleeps until the core's next timer when one is armed.
    let rt = Rc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime"),
    );
    // Built in pairs (sync, tokio), listed sync rows first.
    let mut pairs = Vec::new();
    for (server, side) in [(true, "server"), (false, "client")] {
        for &(size, name) in SIZES {
            pairs.push(decode(&rt, server, side, size, name));
        }
    }
    for (server, side) in [(true, "server"), (false, "client")] {
        for &(size, name) in SIZES {
            pairs.push(encode(&rt, server, side, size, name));
        }
    }
    pairs.extend(text(&rt));
    let (sync, tokio): (Vec<_>, Vec<_>) = pairs.into_iter().map(|[s, t]| (s, t)).unzip();
    sync.into_iter().chain(tokio).collect()
}

fn decode(
    rt: &Rc<Runtime>,
    server: bool,
    side: &str,
    size: usize,
    name: &'static str,
) -> [Workload; 2] {
    let count = count_for(size);
    let wire = common::binary_stream(size, count, server);
    let bytes = (size * count) as u64;
    let floor = size >= 1 << 20;

    let mut ours = our_sync(server, wire.clone());
    let mut theirs = tungstenite(server, wire.clone());
    let mut libs: Vec<(&'static str, Run)> = vec![
        (
            "rfc6455",
            Box::new(move || {
                for _ in 0..count {
                    let m = ours.recv().unwrap().expect("a message");
                    black_box(m);
                }
            }),
        ),
        (
            "tungstenite",
            Box::new(move || {
                for _ in 0..count {
                    black_box(theirs.read().unwrap());
                }
            }),
        ),
    ];
    if floor {
        libs.push(("memcpy", memcpy(wire.clone())));
    }
    let sync = Workload {
        group: format!("sync/decode/{side}"),
        name,
        bytes,
        libs,
    };

    let mut ours = our_tokio(server, wire.clone());
    let mut theirs = fws(server, wire.clone());
    let (rt1, rt2) = (Rc::clone(rt), Rc::clone(rt));
    let mut libs: Vec<(&'static str, Run)> = vec![
        (
            "rfc6455",
            Box::new(move || {
                rt1.block_on(async {
                    for _ in 0..count {
                        let m = ours.recv().await.unwrap().expect("a message");
                        black_box(m);
                    }
                });
            }),
        ),
        (
            "fastwebsockets",
            Box::new(move || {
                rt2.block_on(async {
                    for _ in 0..count {
                        let frame = theirs.read_frame().await.unwrap();
                        assert!(frame.fin);
                        black_box(frame);
                    }
                });
            }),
        ),
    ];
    if floor {
        libs.push(("memcpy", memcpy(wire)));
    }
    let tokio = Workload {
        group: format!("tokio/decode/{side}"),
        name,
        bytes,
        libs,
    };
    [sync, tokio]
}

fn encode(
    rt: &Rc<Runtime>,
    server: bool,
    side: &str,
    size: usize,
    name: &'static str,
) -> [Workload; 2] {
    let count = count_for(size);
    let payload: Bytes = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let bytes = (size * count) as u64;
    // As in the core rows: a server payload of 16 KiB or more goes by reference (`send` with
    // a `Bytes` handle), anything else is borrowed and copied into the frame (`send_binary`).
    let by_reference = server && size >= 16 << 10;

    let mut ours = our_sync(server, vec![0]);
    let ours_payload = payload.clone();
    let mut theirs = tungstenite(server, vec![0]);
    let tung_payload = payload.clone();
    let sync = Workload {
        group: format!("sync/encode/{side}"),
        name,
        bytes,
        libs: vec![
            (
                "rfc6455",
                Box::new(move || {
                    for _ in 0..count {
                        if by_reference {
                            ours.send(Message::Binary(ours_payload.clone())).unwrap();
                        } else {
                            ours.send_binary(&ours_payload).unwrap();
                        }
                    }
                }),
            ),
            (
                "tungstenite",
                Box::new(move || {
                    for _ in 0..count {
                        // `send` is tungstenite's `write` + `flush`; it takes owned messages.
                        theirs
                            .send(tungstenite::Message::Binary(tung_payload.clone()))
                            .unwrap();
                    }
                }),
            ),
        ],
    };

    let mut ours = our_tokio(server, vec![0]);
    let ours_payload = payload.clone();
    let mut theirs = fws(server, vec![0]);
    let (rt1, rt2) = (Rc::clone(rt), Rc::clone(rt));
    let tokio = Workload {
        group: format!("tokio/encode/{side}"),
        name,
        bytes,
        libs: vec![
            (
                "rfc6455",
                Box::new(move || {
                    rt1.block_on(async {
                        for _ in 0..count {
                            if by_reference {
                                ours.send(Message::Binary(ours_payload.clone()))
                                    .await
                                    .unwrap();
                            } else {
                                ours.send_binary(&ours_payload).await.unwrap();
                            }
                        }
                    });
                }),
            ),
            (
                "fastwebsockets",
                Box::new(move || {
                    rt2.block_on(async {
                        for _ in 0..count {
                            let frame = fastwebsockets::Frame::binary(
                                fastwebsockets::Payload::Borrowed(&payload),
                            );
                            theirs.write_frame(frame).await.unwrap();
                        }
                    });
                }),
            ),
        ],
    };
    [sync, tokio]
}

fn text(rt: &Rc<Runtime>) -> Vec<[Workload; 2]> {
    const LEN: usize = 1 << 20;
    let mut out = Vec::new();
    for (text_name, text) in [
        ("ascii", common::ascii_text(LEN)),
        ("mixed", common::mixed_text(LEN)),
    ] {
        let wire = common::fragmented_text(&text, 1, true);

        let mut ours = our_sync(true, wire.clone());
        let mut theirs = tungstenite(true, wire.clone());
        let sync = Workload {
            group: format!("sync/text/{text_name}"),
            name: "1x1MiB",
            bytes: LEN as u64,
            libs: vec![
                (
                    "rfc6455",
                    Box::new(move || match ours.recv().unwrap() {
                        Some(Message::Text(t)) => {
                            black_box(t.as_str());
                        }
                        other => panic!("unexpected {other:?}"),
                    }),
                ),
                (
                    "tungstenite",
                    Box::new(move || match theirs.read().unwrap() {
                        tungstenite::Message::Text(t) => {
                            black_box(t.as_str());
                        }
                        other => panic!("unexpected {other:?}"),
                    }),
                ),
                ("memcpy", memcpy(wire.clone())),
            ],
        };

        let mut ours = our_tokio(true, wire.clone());
        let mut theirs = fastwebsockets::FragmentCollector::new(fws(true, wire.clone()));
        let (rt1, rt2) = (Rc::clone(rt), Rc::clone(rt));
        let tokio = Workload {
            group: format!("tokio/text/{text_name}"),
            name: "1x1MiB",
            bytes: LEN as u64,
            libs: vec![
                (
                    "rfc6455",
                    Box::new(move || {
                        rt1.block_on(async {
                            match ours.recv().await.unwrap() {
                                Some(Message::Text(t)) => {
                                    black_box(t.as_str());
                                }
                                other => panic!("unexpected {other:?}"),
                            }
                        });
                    }),
                ),
                (
                    "fastwebsockets",
                    Box::new(move || {
                        rt2.block_on(async {
                            let frame = theirs.read_frame().await.unwrap();
                            assert_eq!(frame.opcode, fastwebsockets::OpCode::Text);
                            // A `Frame` holds bytes: the application makes its own `&str`.
                            black_box(std::str::from_utf8(&frame.payload).unwrap());
                        });
                    }),
                ),
                ("memcpy", memcpy(wire)),
            ],
        };
        out.push([sync, tokio]);
    }
    out
}
