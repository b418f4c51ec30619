//! One test per Autobahn|Testsuite case that found a bug (or that pins a default), named after
//! the case, so the fix stays fixed without wstest. Each drives a server `Connection` the way
//! wstest does: the whole case arrives in one read, and an echo application answers every
//! message before asking for the next event.

mod common;

use bytes::Bytes;
use common::{close_payload, op, parse_frames, server, to_server};
use rfc6455::frame::Opcode;
use rfc6455::{Config, Connection, Event, ProtocolError};

/// Runs an echo application over `wire` (one read) and returns the frames it writes.
fn echo_all(conn: &mut Connection, wire: &[u8]) -> Vec<common::WireFrame> {
    let _ = conn.receive(wire);
    while let Some(event) = conn.poll_event() {
        if let Event::Message(message) = event {
            // An echo refused because the connection already failed would be the bug.
            conn.send(message)
                .expect("messages before the failure can still be answered");
        }
    }
    let mut out = Vec::new();
    while conn.transmit_len() > 0 {
        let chunk = conn.pending_transmit().to_vec();
        conn.advance_transmit(chunk.len());
        out.extend(chunk);
    }
    parse_frames(&out)
}

fn opcodes(frames: &[common::WireFrame]) -> Vec<Opcode> {
    frames.iter().map(|f| f.opcode).collect()
}

#[test]
fn autobahn_2_10_every_ping_gets_its_own_pong() {
    let mut wire = Vec::new();
    for i in 0..10 {
        wire.extend(to_server(true, op::PING, format!("payload-{i}").as_bytes()));
    }
    let frames = echo_all(&mut server(Config::default()), &wire);
    let payloads: Vec<String> = frames
        .iter()
        .map(|f| String::from_utf8(f.payload.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("payload-{i}")).collect();
    assert_eq!(payloads, expected);
    assert!(frames.iter().all(|f| f.opcode == Opcode::Pong));
}

/// 3.2: text, then a frame with RSV2 set, then a Ping — all in one read.
#[test]
fn autobahn_3_2_message_before_a_bad_rsv_frame_is_still_echoed() {
    let mut bad = to_server(true, op::TEXT, b"Hello, world!");
    bad[0] |= 0x20;
    let mut wire = to_server(true, op::TEXT, b"Hello, world!");
    wire.extend(bad);
    wire.extend(to_server(true, op::PING, b""));
    let mut conn = server(Config::default());
    let frames = echo_all(&mut conn, &wire);
    assert_eq!(opcodes(&frames), [Opcode::Text, Opcode::Close]);
    assert_eq!(frames[0].payload, b"Hello, world!");
    assert_eq!(frames[1].close_code(), Some(1002));
    assert_eq!(conn.error(), Some(ProtocolError::ReservedBits(2)));
}

/// 4.1.3: text, then a reserved non-control opcode 5, then a Ping.
#[test]
fn autobahn_4_1_3_message_before_a_reserved_opcode_is_still_echoed() {
    let mut wire = to_server(true, op::TEXT, b"Hello, world!");
    wire.extend(to_server(true, 5, b""));
    wire.extend(to_server(true, op::PING, b""));
    let mut conn = server(Config::default());
    let frames = echo_all(&mut conn, &wire);
    assert_eq!(opcodes(&frames), [Opcode::Text, Opcode::Close]);
    assert_eq!(frames[1].close_code(), Some(1002));
    assert_eq!(conn.error(), Some(ProtocolError::ReservedOpcode(5)));
}

/// 5.15: a two-fragment message, then a continuation with nothing to continue.
#[test]
fn autobahn_5_15_message_before_an_orphan_continuation_is_still_echoed() {
    let mut wire = to_server(false, op::TEXT, b"fragment1");
    wire.extend(to_server(true, op::CONT, b"fragment2"));
    wire.extend(to_server(false, op::CONT, b"fragment3"));
    wire.extend(to_server(true, op::TEXT, b"fragment4"));
    let mut conn = server(Config::default());
    let frames = echo_all(&mut conn, &wire);
    assert_eq!(opcodes(&frames), [Opcode::Text, Opcode::Close]);
    assert_eq!(frames[0].payload, b"fragment1fragment2");
    assert_eq!(conn.error(), Some(ProtocolError::UnexpectedContinuation));
}

/// 6.4.3: one text frame whose payload arrives in chops; the invalid sequence is in the
/// second chop and must fail the connection before the frame is complete.
#[test]
fn autobahn_6_4_3_invalid_utf8_fails_mid_frame() {
    let payload: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
    let wire = to_server(true, op::TEXT, payload);
    let header_len = wire.len() - payload.len();
    let mut conn = server(Config::default());
    // Header and the valid part: nothing wrong yet.
    assert_eq!(conn.receive(&wire[..header_len + 11]), Ok(()));
    // F4 90: above U+10FFFF, detectable now, long before the frame ends.
    assert_eq!(
        conn.receive(&wire[header_len + 11..header_len + 13]),
        Err(ProtocolError::InvalidUtf8)
    );
    let frames = echo_all(&mut conn, &[]);
    assert_eq!(frames.last().unwrap().close_code(), Some(1007));
}

/// 7.1.1: a message followed by a Close in one read — the echo goes out before the Close.
#[test]
fn autobahn_7_1_1_message_then_close_are_answered_in_order() {
    let mut wire = to_server(true, op::TEXT, b"Hello World!");
    wire.extend(to_server(true, op::CLOSE, &close_payload(1000, b"")));
    let mut conn = server(Config::default());
    let frames = echo_all(&mut conn, &wire);
    assert_eq!(opcodes(&frames), [Opcode::Text, Opcode::Close]);
    assert_eq!(frames[1].close_code(), Some(1000));
    assert!(conn.is_closed());
    assert_eq!(conn.error(), None);
}

/// 9.3.1: a 4 MiB message in 65,536 fragments of 64 bytes passes with the default limits.
#[test]
fn autobahn_9_3_1_65536_fragments_pass_with_default_config() {
    let chunk = [b'*'; 64];
    let mut wire = Vec::with_capacity(65_536 * 70);
    for i in 0..65_536u32 {
        let opcode = if i == 0 { op::TEXT } else { op::CONT };
        wire.extend(to_server(i == 65_535, opcode, &chunk));
    }
    let mut conn = server(Config::default());
    conn.receive(&wire).unwrap();
    match conn.poll_event() {
        Some(Event::Message(message)) => assert_eq!(message.len(), 4 << 20),
        other => panic!("expected the message, got {other:?}"),
    }
}

/// 9.1.6: a 16 MiB text message in one frame passes with the default limits.
#[test]
fn autobahn_9_1_6_16_mib_frame_passes_with_default_config() {
    let payload = vec![b'x'; 16 << 20];
    let mut conn = server(Config::default());
    conn.receive(&to_server(true, op::BINARY, &payload))
        .unwrap();
    assert_eq!(
        conn.poll_event(),
        Some(Event::Message(rfc6455::Message::Binary(Bytes::from(
            payload
        ))))
    );
}
