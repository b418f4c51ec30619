//! permessage-deflate end to end through the sans-IO handshakes and connections: what is
//! negotiated by default, that messages round-trip compressed both ways, that small ones go
//! out uncompressed, and how a message prepared once for many connections is sent.

mod common;

use common::{fixed_entropy, parse_frames};
use rfc6455::deflate::DeflateConfig;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::{Config, Connection, Event, Message, PreparedMessage};

/// Runs both handshakes in memory; returns (client, server) with the 101 delivered.
fn pair(client: Config, server: Config) -> (Connection, Connection, Option<String>) {
    let request = ClientRequest::new("ws://example.com/chat").unwrap();
    let mut hs = ClientHandshake::new(request, client, fixed_entropy(common::RFC_KEY)).unwrap();
    let mut server_hs = ServerHandshake::new(server);
    server_hs.receive(hs.pending_transmit()).unwrap();
    let mut server_conn = server_hs.accept(Accept::new()).unwrap();
    let response = take(&mut server_conn);
    hs.receive(&response).unwrap();
    let (client_conn, response) = hs.into_connection().unwrap();
    let agreed = response.extensions().map(str::to_owned);
    (client_conn, server_conn, agreed)
}

fn take(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.transmit_len() > 0 {
        let chunk = conn.pending_transmit().to_vec();
        conn.advance_transmit(chunk.len());
        out.extend(chunk);
    }
    out
}

fn messages(conn: &mut Connection) -> Vec<Message> {
    std::iter::from_fn(|| conn.poll_event())
        .map(|e| match e {
            Event::Message(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

const CHAT: &str =
    r#"{"type":"message","room":"general","nick":"ada","text":"the deploy is green, merging now"}"#;

#[test]
fn rfc7692_browsers_offer_is_answered_and_messages_round_trip_compressed() {
    let (mut client, mut server, agreed) = pair(Config::default(), Config::default());
    assert_eq!(
        agreed.as_deref(),
        Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
    );
    for round in 0..3 {
        client.send_text(CHAT).unwrap();
        let wire = take(&mut client);
        let frames = parse_frames(&wire);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].rsv, 0x40, "RSV1: compressed (round {round})");
        assert!(
            frames[0].payload.len() < CHAT.len(),
            "{} bytes on the wire",
            frames[0].payload.len()
        );
        server.receive(&wire).unwrap();
        assert_eq!(messages(&mut server), [Message::from(CHAT)]);

        server.send_text(CHAT).unwrap();
        let wire = take(&mut server);
        assert_eq!(parse_frames(&wire)[0].rsv, 0x40);
        client.receive(&wire).unwrap();
        assert_eq!(messages(&mut client), [Message::from(CHAT)]);
    }
}

#[test]
fn rfc7692_6_messages_under_the_threshold_go_out_uncompressed() {
    let (mut client, mut server, _) = pair(Config::default(), Config::default());
    client.send_text("hi").unwrap();
    let wire = take(&mut client);
    assert_eq!(parse_frames(&wire)[0].rsv, 0, "RSV1 clear");
    server.receive(&wire).unwrap();
    assert_eq!(messages(&mut server), [Message::from("hi")]);
}

#[test]
fn deflate_can_be_turned_off_on_either_side() {
    let off = Config::default().deflate(DeflateConfig::default().enabled(false));
    for (client, server) in [
        (off.clone(), Config::default()),
        (Config::default(), off.clone()),
    ] {
        let (mut client, mut server, agreed) = pair(client, server);
        assert_eq!(agreed, None);
        client.send_text(CHAT).unwrap();
        let wire = take(&mut client);
        assert_eq!(parse_frames(&wire)[0].rsv, 0);
        server.receive(&wire).unwrap();
        assert_eq!(messages(&mut server), [Message::from(CHAT)]);
    }
}

#[test]
fn a_prepared_message_is_compressed_per_connection_with_context_takeover() {
    let (mut client_a, mut server_a, _) = pair(Config::default(), Config::default());
    let (mut client_b, mut server_b, _) = pair(Config::default(), Config::default());
    // Different histories: the same message compresses differently on each connection.
    server_a.send_text(CHAT).unwrap();
    client_a.receive(&take(&mut server_a)).unwrap();
    let _ = messages(&mut client_a);
    let prepared = PreparedMessage::new(&Message::from(CHAT), &Config::default());
    for (server, client) in [
        (&mut server_a, &mut client_a),
        (&mut server_b, &mut client_b),
    ] {
        server.send_prepared(&prepared).unwrap();
        let wire = take(server);
        assert_eq!(parse_frames(&wire)[0].rsv, 0x40);
        client.receive(&wire).unwrap();
        assert_eq!(messages(client), [Message::from(CHAT)]);
    }
}

#[test]
fn rfc7692_7_1_1_1_without_context_takeover_a_prepared_message_is_compressed_once() {
    let shared =
        Config::default().deflate(DeflateConfig::default().server_no_context_takeover(true));
    let prepared = PreparedMessage::new(&Message::from(CHAT), &shared);
    let mut sent = Vec::new();
    for _ in 0..2 {
        let (mut client, mut server, agreed) = pair(Config::default(), shared.clone());
        assert!(agreed.unwrap().contains("server_no_context_takeover"));
        // A message before it: without context takeover it changes nothing.
        server.send_text(CHAT).unwrap();
        client.receive(&take(&mut server)).unwrap();
        let _ = messages(&mut client);
        server.send_prepared(&prepared).unwrap();
        let wire = take(&mut server);
        assert_eq!(parse_frames(&wire)[0].rsv, 0x40);
        client.receive(&wire).unwrap();
        assert_eq!(messages(&mut client), [Message::from(CHAT)]);
        sent.push(wire);
    }
    assert_eq!(sent[0], sent[1], "the same bytes on both connections");
    // A connection whose window is smaller than the one it was compressed with compresses
    // it itself, within its window: a message that repeats itself 2 KiB back compresses
    // differently in 512 bytes, and the client, inflating with a 512-byte window, would
    // refuse a reference further back.
    let mut text = String::new();
    let mut x = 1u32;
    while text.len() < 2048 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        text.push(char::from(b'a' + (x >> 16) as u8 % 26));
    }
    let long = text.repeat(2);
    let prepared = PreparedMessage::new(&Message::from(long.as_str()), &shared);
    let (mut client, mut server, _) = pair(Config::default(), shared.clone());
    server.send_prepared(&prepared).unwrap();
    let wide = take(&mut server);
    client.receive(&wide).unwrap();
    assert_eq!(messages(&mut client), [Message::from(long.as_str())]);
    let narrow = Config::default().deflate(DeflateConfig::default().server_max_window_bits(9));
    let (mut client, mut server, agreed) = pair(narrow, shared);
    assert!(agreed.unwrap().contains("server_max_window_bits=9"));
    server.send_prepared(&prepared).unwrap();
    let wire = take(&mut server);
    assert_ne!(wire, wide, "compressed again within 9 bits");
    client.receive(&wire).unwrap();
    assert_eq!(messages(&mut client), [Message::from(long.as_str())]);
}
