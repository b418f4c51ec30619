//! A client and a server talking over the chaos pipe (random chunk sizes, short writes,
//! `receive` and `read_buf`/`commit_read` mixed): messages of every length form, fragments,
//! pings, and the three ways a closing handshake can start.

mod common;

use bytes::Bytes;
use common::{Clock, Pair, Side, close_event, parse_frames};
use rfc6455::frame::Opcode;
use rfc6455::{
    CloseCode, Config, Connection, Event, Message, MessageKind, PreparedMessage, State, UsageError,
};

const SEEDS: [u64; 3] = [1, 0xDEAD_BEEF, 20_240_601];

/// Sizes around every length-encoding boundary (RFC 6455 §5.2), up to 1 MiB.
const SIZES: [usize; 11] = [
    0,
    1,
    2,
    125,
    126,
    127,
    65_535,
    65_536,
    65_537,
    300_000,
    1 << 20,
];

/// `len` bytes of UTF-8 with 1-, 2-, 3- and 4-byte code points; `len` is met exactly by
/// padding with ASCII.
fn utf8_text(len: usize, salt: usize) -> String {
    let pieces = ["a", "é", "✓", "🚀", " ", "Ω", "z"];
    let mut s = String::with_capacity(len);
    let mut i = salt;
    while s.len() < len {
        let p = pieces[i % pieces.len()];
        if s.len() + p.len() <= len {
            s.push_str(p);
        } else {
            s.push('x');
        }
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    s
}

fn bin(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(salt))
        .collect()
}

/// What one side sends: messages, with pings between them.
#[derive(Debug, Clone)]
enum Sent {
    Msg(Message),
    Ping(Vec<u8>),
}

/// Splits `events` into data-and-ping events (exact sequence) and pong payloads.
fn split_pongs(events: &[Event]) -> (Vec<Event>, Vec<Bytes>) {
    let mut rest = Vec::new();
    let mut pongs = Vec::new();
    for e in events {
        match e {
            Event::Pong(p) => pongs.push(p.clone()),
            other => rest.push(other.clone()),
        }
    }
    (rest, pongs)
}

fn expected_events(sent: &[Sent]) -> Vec<Event> {
    sent.iter()
        .map(|s| match s {
            Sent::Msg(m) => Event::Message(m.clone()),
            Sent::Ping(p) => Event::Ping(Bytes::from(p.clone())),
        })
        .collect()
}

/// Pongs must answer our pings in order, possibly skipping some (RFC 6455 §5.5.3 allows
/// answering only the latest), and the last ping must be answered.
fn assert_pongs_answer(pings: &[Vec<u8>], pongs: &[Bytes]) {
    let mut it = pings.iter();
    for pong in pongs {
        assert!(
            it.any(|p| p[..] == pong[..]),
            "pong {pong:?} is not an answer to a later ping, in order"
        );
    }
    if let Some(last) = pings.last() {
        assert_eq!(
            pongs.last().map(|p| &p[..]),
            Some(&last[..]),
            "the last ping went unanswered"
        );
    }
}

/// Queues `sent` on `conn`, using `send_text`/`send_binary` or `send(Message)` by turns.
fn queue_whole(conn: &mut Connection, sent: &[Sent]) {
    for (i, s) in sent.iter().enumerate() {
        match s {
            Sent::Msg(m) if i % 2 == 0 => conn.send(m.clone()).unwrap(),
            Sent::Msg(Message::Text(t)) => conn.send_text(t).unwrap(),
            Sent::Msg(Message::Binary(b)) => conn.send_binary(b).unwrap(),
            Sent::Ping(p) => conn.send_ping(p).unwrap(),
        }
    }
}

fn traffic(salt: usize) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        sent.push(Sent::Msg(Message::Text(utf8_text(len, salt + i).into())));
        sent.push(Sent::Ping(format!("p{salt}-{i}").into_bytes()));
        sent.push(Sent::Msg(Message::Binary(
            bin(len, (salt + i) as u8).into(),
        )));
    }
    sent
}

fn pings(sent: &[Sent]) -> Vec<Vec<u8>> {
    sent.iter()
        .filter_map(|s| {
            if let Sent::Ping(p) = s {
                Some(p.clone())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn rfc6455_5_6_messages_0b_to_1mib_both_ways_over_chaos_pipe() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        let from_client = traffic(1);
        let from_server = traffic(2);
        queue_whole(pair.client(), &from_client);
        queue_whole(pair.server(), &from_server);
        pair.pump();

        let (server_got, server_pongs) = split_pongs(&pair.server_end().events);
        let (client_got, client_pongs) = split_pongs(&pair.client_end().events);
        assert_eq!(server_got, expected_events(&from_client), "seed {seed}");
        assert_eq!(client_got, expected_events(&from_server), "seed {seed}");
        assert_pongs_answer(&pings(&from_client), &client_pongs);
        assert_pongs_answer(&pings(&from_server), &server_pongs);
        for side in [Side::Client, Side::Server] {
            let conn = &pair.end(side).conn;
            assert_eq!(
                (conn.state(), conn.error(), conn.transmit_len()),
                (State::Open, None, 0)
            );
        }
        let stats = pair.stats;
        assert!(
            stats.short_writes > 10 && stats.zero_copy_reads > 10,
            "not chaotic: {stats:?}"
        );
    }
}

#[test]
fn rfc6455_5_7_fixed_entropy_pair_reproduces_the_rfc_bytes() {
    let client = Connection::client(Config::default(), common::fixed_entropy(common::RFC_KEY));
    let mut pair = Pair::from_connections(5, client, Connection::server(Config::default()));
    pair.client().send_text("Hello").unwrap();
    pair.pump();
    assert_eq!(
        pair.client_end().wrote,
        [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    assert_eq!(pair.server_end().events, [common::text("Hello")]);
}

#[test]
fn rfc6455_5_3_client_frames_masked_server_frames_not_over_chaos_pipe() {
    let mut pair = Pair::new(7);
    pair.client().send_text("to server").unwrap();
    pair.server().send_text("to client").unwrap();
    pair.client().send_ping(b"x").unwrap();
    pair.pump();
    let client_wire = parse_frames(&pair.client_end().wrote);
    let server_wire = parse_frames(&pair.server_end().wrote);
    assert_eq!(client_wire.len(), 2);
    assert_eq!(server_wire.len(), 2); // the message and the Pong
    assert!(client_wire.iter().all(|f| f.mask.is_some()));
    assert!(server_wire.iter().all(|f| f.mask.is_none()));
    // Seeded entropy: each client frame gets its own key.
    assert_ne!(client_wire[0].mask, client_wire[1].mask);
    assert_eq!(server_wire[1].opcode, Opcode::Pong);
    assert_eq!(server_wire[1].payload, b"x");
}

/// Sends `payload` as fragments cut at `cuts`, with a ping after every other fragment.
fn send_in_fragments(
    conn: &mut Connection,
    kind: MessageKind,
    payload: &[u8],
    cuts: &[usize],
) -> Vec<Vec<u8>> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c < payload.len())
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(payload.len());
    let mut pings = Vec::new();
    let mut at = 0;
    for (i, &end) in bounds.iter().enumerate() {
        let fin = i + 1 == bounds.len();
        conn.send_fragment(kind, &payload[at..end], fin).unwrap();
        if !fin && i % 2 == 1 {
            let ping = format!("between {i}").into_bytes();
            conn.send_ping(&ping).unwrap();
            pings.push(ping);
        }
        at = end;
    }
    pings
}

#[test]
fn rfc6455_5_4_fragmented_messages_with_pings_between_over_chaos_pipe() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        let mut expect_server = Vec::new();
        let mut expect_client = Vec::new();
        for (i, &len) in SIZES.iter().enumerate() {
            let t = utf8_text(len, i);
            // Cuts fall mid code point often: the pieces are bytes, only the whole is UTF-8.
            let cuts = [len / 3, len / 3 + 1, len / 2, len.saturating_sub(1), 1];
            let pings = send_in_fragments(pair.client(), MessageKind::Text, t.as_bytes(), &cuts);
            expect_server.extend(pings.into_iter().map(|p| Event::Ping(p.into())));
            expect_server.push(Event::Message(Message::Text(t.clone().into())));

            let b = bin(len, i as u8);
            let pings = send_in_fragments(pair.server(), MessageKind::Binary, &b, &cuts);
            expect_client.extend(pings.into_iter().map(|p| Event::Ping(p.into())));
            expect_client.push(Event::Message(Message::Binary(b.into())));
        }
        pair.pump();
        let (server_got, _) = split_pongs(&pair.server_end().events);
        let (client_got, _) = split_pongs(&pair.client_end().events);
        assert_eq!(server_got, expect_server, "seed {seed}");
        assert_eq!(client_got, expect_client, "seed {seed}");
    }
}

#[test]
fn rfc6455_5_4_auto_fragmented_messages_over_chaos_pipe() {
    let small = Config::default().max_send_frame_size(1000);
    let mut pair = Pair::with_configs(3, small.clone(), small);
    let from_client = traffic(5);
    let from_server = traffic(6);
    queue_whole(pair.client(), &from_client);
    queue_whole(pair.server(), &from_server);
    pair.pump();
    let (server_got, _) = split_pongs(&pair.server_end().events);
    let (client_got, _) = split_pongs(&pair.client_end().events);
    assert_eq!(server_got, expected_events(&from_client));
    assert_eq!(client_got, expected_events(&from_server));
    // Every frame on the wire respected the limit.
    for side in [Side::Client, Side::Server] {
        let frames = parse_frames(&pair.end(side).wrote);
        assert!(frames.iter().all(|f| f.payload.len() <= 1000));
        assert!(
            frames.len() > (1 << 20) / 1000,
            "1 MiB messages were not split"
        );
    }
}

/// Every send method, after our Close: `UsageError::Closed` and not one byte queued.
fn assert_nothing_sendable(conn: &mut Connection) {
    let before = conn.transmit_len();
    assert_eq!(conn.send_text("late"), Err(UsageError::Closed));
    assert_eq!(conn.send_binary(b"late"), Err(UsageError::Closed));
    assert_eq!(
        conn.send(Message::Binary(Bytes::from_static(b"late"))),
        Err(UsageError::Closed)
    );
    assert_eq!(
        conn.send_fragment(MessageKind::Text, b"la", false),
        Err(UsageError::Closed)
    );
    assert_eq!(conn.send_ping(b"late"), Err(UsageError::Closed));
    assert_eq!(conn.send_pong(b"late"), Err(UsageError::Closed));
    assert_eq!(
        conn.send_close(CloseCode::NORMAL, "again"),
        Err(UsageError::Closed)
    );
    if conn.role() == rfc6455::Role::Server {
        let prepared = PreparedMessage::new(&Message::from("late"), conn.config());
        assert_eq!(conn.send_prepared(&prepared), Err(UsageError::Closed));
    }
    assert_eq!(conn.transmit_len(), before);
}

/// Exchanges a few messages so the close happens on a used connection.
fn warm_up(pair: &mut Pair) {
    pair.client().send_text("hello").unwrap();
    pair.server().send_binary(&[1, 2, 3]).unwrap();
    pair.pump();
    pair.client_end().take_events();
    pair.server_end().take_events();
    pair.client_end().wrote.clear();
    pair.server_end().wrote.clear();
}

#[test]
fn rfc6455_7_1_2_close_started_by_client() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        warm_up(&mut pair);
        pair.auto_shutdown = false;
        // A message sent just before Close still arrives, in order.
        pair.client().send_text("last words").unwrap();
        pair.client().send_close(CloseCode::NORMAL, "done").unwrap();
        assert_eq!(pair.client().state(), State::CloseSent);
        assert_nothing_sendable(pair.client());
        pair.pump();

        assert_eq!(
            pair.server_end().take_events(),
            [common::text("last words"), close_event(1000, "done")]
        );
        // The echo repeats the code, without the reason.
        assert_eq!(pair.client_end().take_events(), [close_event(1000, "")]);
        for side in [Side::Client, Side::Server] {
            let conn = &mut pair.end(side).conn;
            assert_eq!(
                (conn.state(), conn.error()),
                (State::Closed, None),
                "{side:?}"
            );
            assert!(conn.close_sent() && conn.close_received());
            assert_nothing_sendable(conn);
        }
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits for it.
        assert!(pair.server().wants_shutdown());
        assert!(!pair.server().is_terminated());
        assert!(!pair.client().wants_shutdown());
        assert!(!pair.client().is_terminated());

        pair.auto_shutdown = true;
        pair.pump();
        assert_eq!(
            pair.shutdown_order,
            [Side::Server, Side::Client],
            "seed {seed}"
        );
        for side in [Side::Client, Side::Server] {
            let conn = &pair.end(side).conn;
            assert!(conn.is_terminated() && conn.wants_shutdown(), "{side:?}");
            assert_eq!(
                conn.error(),
                None,
                "a clean close is not an error ({side:?})"
            );
            assert_eq!(conn.poll_timeout(), None);
        }
        // Exactly one Close frame each way, nothing after it.
        for side in [Side::Client, Side::Server] {
            let frames = parse_frames(&pair.end(side).wrote);
            let last = frames.last().unwrap();
            assert_eq!(last.opcode, Opcode::Close);
            assert_eq!(
                frames.iter().filter(|f| f.opcode == Opcode::Close).count(),
                1
            );
        }
    }
}

#[test]
fn rfc6455_7_1_2_close_started_by_server() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        warm_up(&mut pair);
        pair.auto_shutdown = false;
        pair.server()
            .send_close(CloseCode::GOING_AWAY, "restarting")
            .unwrap();
        // Until the echo arrives, the server still delivers what the client sends.
        pair.client().send_text("in flight").unwrap();
        assert_nothing_sendable(pair.server());
        pair.pump();

        assert_eq!(
            pair.client_end().take_events(),
            [close_event(1001, "restarting")]
        );
        assert_eq!(
            pair.server_end().take_events(),
            [common::text("in flight"), close_event(1001, "")]
        );
        assert!(pair.server().wants_shutdown());
        assert!(!pair.client().wants_shutdown());
        assert_nothing_sendable(pair.client());

        pair.auto_shutdown = true;
        pair.pump();
        assert_eq!(pair.shutdown_order, [Side::Server, Side::Client]);
        assert!(pair.client().is_terminated() && pair.server().is_terminated());
        assert_eq!((pair.client().error(), pair.server().error()), (None, None));
    }
}

#[test]
fn rfc6455_7_1_2_both_sides_close_at_once() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        warm_up(&mut pair);
        pair.client()
            .send_close(CloseCode(4000), "client bye")
            .unwrap();
        pair.server()
            .send_close(CloseCode::GOING_AWAY, "server bye")
            .unwrap();
        pair.pump();

        // Each side sees the other's Close and echoes nothing: its own Close already went.
        assert_eq!(
            pair.client_end().take_events(),
            [close_event(1001, "server bye")]
        );
        assert_eq!(
            pair.server_end().take_events(),
            [close_event(4000, "client bye")]
        );
        let client_wire = parse_frames(&pair.client_end().wrote);
        let server_wire = parse_frames(&pair.server_end().wrote);
        assert_eq!(client_wire.len(), 1, "{client_wire:?}");
        assert_eq!(client_wire[0].close(), Some((4000, &b"client bye"[..])));
        assert_eq!(server_wire.len(), 1, "{server_wire:?}");
        assert_eq!(server_wire[0].close(), Some((1001, &b"server bye"[..])));
        assert_eq!(
            pair.shutdown_order,
            [Side::Server, Side::Client],
            "seed {seed}"
        );
        for side in [Side::Client, Side::Server] {
            let conn = &mut pair.end(side).conn;
            assert_eq!((conn.state(), conn.error()), (State::Closed, None));
            assert!(conn.is_terminated());
            assert_nothing_sendable(conn);
        }
    }
}

#[test]
fn rfc6455_7_1_1_client_drops_tcp_after_close_timeout_if_server_never_does() {
    let mut pair = Pair::new(11);
    warm_up(&mut pair);
    // A server that completes the closing handshake but never closes TCP.
    pair.auto_shutdown = false;
    let mut clock = Clock::new();
    clock.set(pair.client(), std::time::Duration::from_secs(100));
    pair.client().send_close(CloseCode::NORMAL, "").unwrap();
    pair.pump();
    assert_eq!(pair.client().state(), State::Closed);
    assert!(!pair.client().wants_shutdown());
    // The close timer counts from the clock reading after the Close (the adapter takes one
    // at once when `poll_timeout` says zero).
    clock.tick(pair.client());
    assert_eq!(
        pair.client().poll_timeout(),
        Some(std::time::Duration::from_secs(110))
    );

    clock.set(pair.client(), std::time::Duration::from_millis(109_999));
    assert!(!pair.client().is_terminated());
    assert_eq!(
        clock.fire_next(pair.client()),
        Some(std::time::Duration::from_secs(110))
    );
    assert!(pair.client().is_terminated());
    assert!(pair.client().wants_shutdown());
    assert_eq!(pair.client().error(), None);
    assert_eq!(pair.client().poll_timeout(), None);
}

#[test]
fn rfc6455_5_5_2_pings_from_both_sides_answered_over_chaos_pipe() {
    let mut pair = Pair::new(99);
    let mut client_pings = Vec::new();
    let mut server_pings = Vec::new();
    for i in 0..200u32 {
        let p = i.to_be_bytes().to_vec();
        pair.client().send_ping(&p).unwrap();
        client_pings.push(p.clone());
        pair.server().send_ping(&p).unwrap();
        server_pings.push(p);
        // Let some traffic through between pings so pongs interleave with pings.
        pair.pump_steps(3);
    }
    pair.pump();
    let (server_got, server_pongs) = split_pongs(&pair.server_end().events);
    let (client_got, client_pongs) = split_pongs(&pair.client_end().events);
    let as_events = |v: &[Vec<u8>]| {
        v.iter()
            .map(|p| Event::Ping(p.clone().into()))
            .collect::<Vec<_>>()
    };
    assert_eq!(server_got, as_events(&client_pings));
    assert_eq!(client_got, as_events(&server_pings));
    assert_pongs_answer(&client_pings, &client_pongs);
    assert_pongs_answer(&server_pings, &server_pongs);
}

#[test]
fn rfc6455_5_2_tiny_reads_and_writes_still_deliver_everything_then_close() {
    for seed in SEEDS {
        let mut pair = Pair::new(seed);
        pair.max_io = 3;
        let from_client: Vec<Sent> = (0..20)
            .flat_map(|i| {
                [
                    Sent::Msg(Message::Text(utf8_text(i * 17, i).into())),
                    Sent::Ping(vec![i as u8; i]),
                    Sent::Msg(Message::Binary(bin(i * 300, i as u8).into())),
                ]
            })
            .collect();
        queue_whole(pair.client(), &from_client);
        send_in_fragments(
            pair.server(),
            MessageKind::Text,
            "fragments ✓ 🚀".as_bytes(),
            &[1, 11, 12, 13, 16],
        );
        pair.client().send_close(CloseCode(3333), "bye").unwrap();
        pair.pump();
        let (server_got, _) = split_pongs(&pair.server_end().events);
        let mut expect = expected_events(&from_client);
        expect.push(close_event(3333, "bye"));
        assert_eq!(server_got, expect, "seed {seed}");
        let (client_got, _) = split_pongs(&pair.client_end().events);
        assert_eq!(client_got.last(), Some(&close_event(3333, "")));
        assert_eq!(
            client_got[client_got.len() - 2],
            Event::Message(Message::Text("fragments ✓ 🚀".into()))
        );
        assert_eq!(pair.shutdown_order, [Side::Server, Side::Client]);
        assert!(pair.client().is_terminated() && pair.server().is_terminated());
        assert_eq!((pair.client().error(), pair.server().error()), (None, None));
        assert!(pair.stats.reads > 10_000, "{:?}", pair.stats);
    }
}
