//! Fragmentation (RFC 6455 §5.4): reassembly, the continuation rules, control frames between
//! fragments, UTF-8 across fragments, and outgoing fragments.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{
    binary, client, drain_events, drain_frames, drain_transmit, feed, op, parse_frames, server,
    text, to_client, to_server,
};
use rfc6455::frame::Opcode;
use rfc6455::{Config, Event, Message, MessageKind, PreparedMessage, ProtocolError, UsageError};

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

#[test]
fn rfc6455_5_4_fragmented_text_is_reassembled_across_a_split_code_point() {
    // "✓" is E2 9C 93; the fragments split it 1 + 2.
    let wire = concat(&[
        to_server(false, op::TEXT, b"ok \xe2"),
        to_server(false, op::CONT, b""),
        to_server(true, op::CONT, b"\x9c\x93!"),
    ]);
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [text("ok ✓!")]);
    assert_eq!(frames, []);
}

#[test]
fn rfc6455_5_4_fragmented_binary_is_reassembled_in_client_role() {
    let wire = concat(&[
        to_client(false, op::BINARY, &[1, 2]),
        to_client(false, op::CONT, &[3]),
        to_client(true, op::CONT, &[4, 5, 6]),
    ]);
    let mut c = client(Config::default());
    let (r, events, _) = feed(&mut c, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [binary(&[1, 2, 3, 4, 5, 6])]);
}

#[test]
fn rfc6455_5_4_control_frames_between_fragments_are_handled_at_once() {
    let wire = concat(&[
        to_server(false, op::TEXT, b"frag"),
        to_server(true, op::PING, b"mid"),
        to_server(false, op::CONT, b"ment"),
        to_server(true, op::PONG, b"unsolicited"),
        to_server(true, op::CONT, b"ed"),
    ]);
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(
        events,
        [
            Event::Ping(Bytes::from_static(b"mid")),
            Event::Pong(Bytes::from_static(b"unsolicited")),
            text("fragmented"),
        ]
    );
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (Opcode::Pong, &b"mid"[..])
    );
}

#[test]
fn rfc6455_5_4_close_between_fragments_drops_the_unfinished_message() {
    let wire = concat(&[
        to_server(false, op::BINARY, b"part"),
        to_server(true, op::CLOSE, &common::close_payload(1000, b"")),
        to_server(true, op::CONT, b"rest"),
    ]);
    let mut s = server(Config::default());
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [common::close_event(1000, "")]);
}

#[test]
fn rfc6455_5_5_fragmented_ping_fails_1002() {
    for opcode in [op::PING, op::PONG, op::CLOSE] {
        let mut s = server(Config::default());
        let (r, events, frames) = feed(&mut s, &to_server(false, opcode, b"x"));
        assert_eq!(
            r,
            Err(ProtocolError::FragmentedControlFrame),
            "opcode {opcode}"
        );
        assert_eq!(events, []);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_5_4_continuation_without_a_message_fails_1002() {
    for fin in [false, true] {
        let mut s = server(Config::default());
        let (r, _, frames) = feed(&mut s, &to_server(fin, op::CONT, b"orphan"));
        assert_eq!(r, Err(ProtocolError::UnexpectedContinuation));
        assert_eq!(frames[0].close_code(), Some(1002));
    }
    // Also after a complete message: the FIN ended it.
    let mut s = server(Config::default());
    let wire = concat(&[
        to_server(true, op::TEXT, b"done"),
        to_server(true, op::CONT, b"more"),
    ]);
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Err(ProtocolError::UnexpectedContinuation));
    assert_eq!(events, [text("done")]);
    assert_eq!(frames[0].close_code(), Some(1002));
}

#[test]
fn rfc6455_5_4_new_message_inside_a_fragmented_one_fails_1002() {
    for second in [op::TEXT, op::BINARY] {
        let mut s = server(Config::default());
        let wire = concat(&[
            to_server(false, op::BINARY, b"a"),
            to_server(true, second, b"b"),
        ]);
        let (r, events, frames) = feed(&mut s, &wire);
        assert_eq!(r, Err(ProtocolError::ExpectedContinuation));
        assert_eq!(events, []);
        assert_eq!(frames[0].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_1007_before_the_message_ends() {
    // The first fragment is already invalid: the server must not wait for FIN.
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &to_server(false, op::TEXT, b"ok\xc0\xafmore"));
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
    assert_eq!(events, []);
    assert_eq!(frames[0].close_code(), Some(1007));

    // Within one frame, as soon as the bad bytes arrive (the frame is still incomplete).
    let mut s = server(Config::default());
    let whole = to_server(true, op::TEXT, b"hello \xf4\x90 world");
    let cut = whole.len() - 6; // the payload up to and including F4 90
    assert_eq!(s.receive(&whole[..cut]), Err(ProtocolError::InvalidUtf8));

    // A surrogate split across fragments.
    let mut s = server(Config::default());
    let wire = concat(&[
        to_server(false, op::TEXT, b"\xed"),
        to_server(true, op::CONT, b"\xa0\x80"),
    ]);
    let (r, _, _) = feed(&mut s, &wire);
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
}

#[test]
fn rfc6455_8_1_text_ending_inside_a_code_point_fails_1007() {
    let mut s = server(Config::default());
    let wire = concat(&[
        to_server(false, op::TEXT, b"abc"),
        to_server(true, op::CONT, b"\xe2\x9c"),
    ]);
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
    assert_eq!(events, []);
    assert_eq!(frames[0].close_code(), Some(1007));
}

#[test]
fn rfc6455_5_6_invalid_utf8_in_binary_is_fine() {
    let mut s = server(Config::default());
    let wire = concat(&[
        to_server(false, op::BINARY, b"\xff"),
        to_server(true, op::CONT, b"\xc0"),
    ]);
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [binary(b"\xff\xc0")]);
}

#[test]
fn rfc6455_8_1_utf8_state_does_not_leak_between_messages() {
    // A text message that fails at FIN must not be "completed" by the next; and a binary
    // message between two text messages does not disturb validation.
    let mut s = server(Config::default());
    let wire = concat(&[
        to_server(true, op::TEXT, b"a"),
        to_server(true, op::BINARY, b"\xe2"),
        to_server(true, op::TEXT, b"\x9c\x93"),
    ]);
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
    assert_eq!(events, [text("a"), binary(b"\xe2")]);
}

#[test]
fn rfc6455_5_4_send_fragment_emits_first_opcode_then_continuations() {
    let mut s = server(Config::default());
    s.send_fragment(MessageKind::Text, b"h\xc3", false).unwrap();
    s.send_ping(b"between").unwrap();
    s.send_fragment(MessageKind::Text, b"\xa9llo", false)
        .unwrap();
    s.send_fragment(MessageKind::Text, b"", true).unwrap();
    let frames = drain_frames(&mut s);
    let shape: Vec<_> = frames
        .iter()
        .map(|f| (f.fin, f.opcode, f.payload.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            (false, Opcode::Text, b"h\xc3".to_vec()),
            (true, Opcode::Ping, b"between".to_vec()),
            (false, Opcode::Continuation, b"\xa9llo".to_vec()),
            (true, Opcode::Continuation, b"".to_vec()),
        ]
    );
    // A new message can start once FIN was sent.
    s.send_binary(b"next").unwrap();
    assert_eq!(drain_frames(&mut s)[0].opcode, Opcode::Binary);
}

#[test]
fn rfc6455_5_4_single_fragment_with_fin_is_a_whole_message() {
    let mut s = server(Config::default());
    s.send_fragment(MessageKind::Binary, b"all", true).unwrap();
    assert_eq!(drain_transmit(&mut s), [0x82, 3, b'a', b'l', b'l']);
}

#[test]
fn rfc6455_5_4_whole_message_during_fragmented_send_is_usage_error() {
    let mut s = server(Config::default());
    s.send_fragment(MessageKind::Binary, b"a", false).unwrap();
    let before = s.transmit_len();
    assert_eq!(s.send_text("x"), Err(UsageError::FragmentInProgress));
    assert_eq!(s.send_binary(b"x"), Err(UsageError::FragmentInProgress));
    assert_eq!(
        s.send(Message::from("x")),
        Err(UsageError::FragmentInProgress)
    );
    let prepared = PreparedMessage::new(&Message::from("x"), &Config::default());
    assert_eq!(
        s.send_prepared(&prepared),
        Err(UsageError::FragmentInProgress)
    );
    assert_eq!(
        s.send_fragment(MessageKind::Text, b"x", true),
        Err(UsageError::FragmentInProgress)
    );
    assert_eq!(s.transmit_len(), before);
    // Control frames are allowed (RFC 6455 §5.4).
    s.send_ping(b"").unwrap();
    s.send_pong(b"").unwrap();
    s.send_fragment(MessageKind::Binary, b"b", true).unwrap();
    s.send_text("now fine").unwrap();
}

#[test]
fn rfc6455_8_1_send_fragment_refuses_invalid_utf8_and_queues_nothing() {
    let mut s = server(Config::default());
    assert_eq!(
        s.send_fragment(MessageKind::Text, b"\xff", false),
        Err(UsageError::InvalidUtf8)
    );
    assert_eq!(s.transmit_len(), 0);
    s.send_fragment(MessageKind::Text, b"\xe2\x9c", false)
        .unwrap();
    let before = s.transmit_len();
    // Ending the message inside the code point is refused, and nothing is queued...
    assert_eq!(
        s.send_fragment(MessageKind::Text, b"", true),
        Err(UsageError::InvalidUtf8)
    );
    // ...as is a continuation that cannot complete it.
    assert_eq!(
        s.send_fragment(MessageKind::Text, b"a", false),
        Err(UsageError::InvalidUtf8)
    );
    assert_eq!(s.transmit_len(), before);
    // The message can still be completed correctly afterwards.
    s.send_fragment(MessageKind::Text, b"\x93", true).unwrap();
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 2);
    assert_eq!(
        [&frames[0].payload[..], &frames[1].payload[..]].concat(),
        "✓".as_bytes()
    );
}

fn frame_shape(bytes: &[u8]) -> Vec<(bool, Opcode, usize)> {
    parse_frames(bytes)
        .iter()
        .map(|f| (f.fin, f.opcode, f.payload.len()))
        .collect()
}

#[test]
fn rfc6455_5_4_outgoing_messages_are_split_at_max_send_frame_size() {
    let config = Config::default().max_send_frame_size(3);
    let mut s = server(config.clone());
    s.send_binary(b"0123456789").unwrap();
    assert_eq!(
        frame_shape(&drain_transmit(&mut s)),
        [
            (false, Opcode::Binary, 3),
            (false, Opcode::Continuation, 3),
            (false, Opcode::Continuation, 3),
            (true, Opcode::Continuation, 1),
        ]
    );
    // An exact multiple ends on a full frame, not an empty one.
    s.send_text("abcdef").unwrap();
    assert_eq!(
        frame_shape(&drain_transmit(&mut s)),
        [(false, Opcode::Text, 3), (true, Opcode::Continuation, 3)]
    );
    // An empty message is one empty frame.
    s.send_binary(b"").unwrap();
    assert_eq!(
        frame_shape(&drain_transmit(&mut s)),
        [(true, Opcode::Binary, 0)]
    );
    // A client splits the same way, each frame masked.
    let mut c = client(config);
    c.send_text("abcdefg").unwrap();
    let frames = parse_frames(&drain_transmit(&mut c));
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f.mask.is_some()));
    assert_eq!(
        frames
            .iter()
            .flat_map(|f| f.payload.clone())
            .collect::<Vec<_>>(),
        b"abcdefg"
    );
}

#[test]
fn rfc6455_5_4_oversized_send_fragment_is_split_into_continuations() {
    // A fragment longer than max_send_frame_size is split; only the very first frame of the
    // message may carry the data opcode, and only the last piece of the last fragment FIN.
    let config = Config::default().max_send_frame_size(3);
    let mut c = client(config);
    c.send_fragment(MessageKind::Binary, b"abcde", false)
        .unwrap();
    c.send_fragment(MessageKind::Binary, b"fgh", true).unwrap();
    let wire = drain_transmit(&mut c);
    assert_eq!(
        frame_shape(&wire),
        [
            (false, Opcode::Binary, 3),
            (false, Opcode::Continuation, 2),
            (true, Opcode::Continuation, 3),
        ]
    );
    // And a peer accepts the result as one message.
    let mut s = server(Config::default());
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [binary(b"abcdefgh")]);
}

#[test]
fn rfc6455_5_4_auto_fragments_are_reassembled_by_the_peer() {
    let config = Config::default().max_send_frame_size(7);
    let mut c = client(config);
    let message = "fragmented text with ✓ and 🚀 code points split across frames";
    c.send_text(message).unwrap();
    c.send(Message::Binary(Bytes::from(vec![9u8; 50]))).unwrap();
    let wire = drain_transmit(&mut c);
    let mut s = server(Config::default());
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [text(message), binary(&[9; 50])]);
}

#[test]
fn rfc6455_5_4_zero_max_send_frame_size_counts_as_one() {
    let mut s = server(Config::default().max_send_frame_size(0));
    s.send_binary(b"abc").unwrap();
    assert_eq!(
        frame_shape(&drain_transmit(&mut s)),
        [
            (false, Opcode::Binary, 1),
            (false, Opcode::Continuation, 1),
            (true, Opcode::Continuation, 1)
        ]
    );
}

#[test]
fn rfc6455_5_4_large_zero_copy_send_splits_like_a_copying_send() {
    // `send` queues big server payloads by reference; the bytes must match `send_binary`.
    let config = Config::default().max_send_frame_size(40_000);
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut a = server(config.clone());
    a.send(Message::Binary(Bytes::from(payload.clone())))
        .unwrap();
    let mut b = server(config.clone());
    b.send_binary(&payload).unwrap();
    let prepared = PreparedMessage::new(&Message::Binary(payload.clone().into()), &config);
    let wa = drain_transmit(&mut a);
    assert_eq!(wa, drain_transmit(&mut b));
    assert_eq!(&wa[..], &prepared.as_bytes()[..]);
    assert_eq!(
        frame_shape(&wa),
        [
            (false, Opcode::Binary, 40_000),
            (false, Opcode::Continuation, 40_000),
            (true, Opcode::Continuation, 20_000)
        ]
    );
}

/// Builds a message of one 1-byte Binary frame, `ones` one-byte continuations and `empties`
/// empty continuations, then FIN; feeds it in 64 KiB reads and returns the elapsed time.
fn many_tiny_fragments(ones: usize, empties: usize) -> std::time::Duration {
    let key = common::RFC_KEY;
    let mut wire = Vec::with_capacity(ones * 7 + empties * 6 + 16);
    wire.extend(common::frame(false, op::BINARY, b"s", Some(key)));
    let one = common::frame(false, op::CONT, b"x", Some(key));
    let empty = common::frame(false, op::CONT, b"", Some(key));
    // Ten one-byte continuations, then an empty one, over and over.
    assert_eq!(ones, empties * 10);
    for _ in 0..empties {
        for _ in 0..10 {
            wire.extend_from_slice(&one);
        }
        wire.extend_from_slice(&empty);
    }
    wire.extend(common::frame(true, op::CONT, b"e", Some(key)));
    let config = Config::default();
    let mut s = server(config);
    let start = Instant::now();
    let chunks: Vec<&[u8]> = wire.chunks(64 << 10).collect();
    let mut events = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        s.receive(chunk).unwrap();
        events.extend(drain_events(&mut s));
        assert!(
            events.is_empty() || i + 1 == chunks.len(),
            "a message before FIN"
        );
    }
    let elapsed = start.elapsed();
    assert_eq!(events.len(), 1);
    let Event::Message(Message::Binary(data)) = &events[0] else {
        panic!("not a binary message")
    };
    assert_eq!(data.len(), ones + 2);
    assert_eq!(data[0], b's');
    assert_eq!(data[ones + 1], b'e');
    assert!(data[1..=ones].iter().all(|&b| b == b'x'));
    assert_eq!(s.transmit_len(), 0);
    elapsed
}

#[test]
fn rfc6455_5_4_million_one_byte_fragments_form_one_message() {
    let small = many_tiny_fragments(100_000, 10_000);
    let big = many_tiny_fragments(1_000_000, 100_000);
    // Reported, not asserted: linear means the ratio stays near 10.
    eprintln!(
        "1.1e5 fragments: {small:?}; 1.1e6 fragments: {big:?}; ratio {:.1}",
        big.as_secs_f64() / small.as_secs_f64()
    );
}
