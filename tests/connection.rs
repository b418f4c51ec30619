//! The connection's frame-phase behaviour (RFC 6455 §5, §6): masking direction, Ping/Pong
//! obligations, keepalive, prepared messages, both input paths, and the output queue.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    Clock, Rng, client, drain_events, drain_frames, drain_transmit, feed, op, parse_frames,
    peek_transmit, server, text, to_client, to_server,
};
use rfc6455::frame::Opcode;
use rfc6455::{
    CloseCode, Config, Connection, Event, Extension, Message, PreparedMessage, ProtocolError, Role,
    State, UsageError,
};

// ------------------------------------------------------------------------------ RFC vectors

#[test]
fn rfc6455_5_7_single_frame_masked_text_hello_from_client() {
    let mut s = server(Config::default());
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!((r, events, frames), (Ok(()), vec![text("Hello")], vec![]));

    let mut c = client(Config::default());
    c.send_text("Hello").unwrap();
    assert_eq!(
        drain_transmit(&mut c),
        wire,
        "fixed entropy reproduces §5.7 byte for byte"
    );
}

#[test]
fn rfc6455_5_7_single_frame_unmasked_text_hello_from_server() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut s = server(Config::default());
    s.send_text("Hello").unwrap();
    assert_eq!(drain_transmit(&mut s), wire);
    let mut c = client(Config::default());
    let (r, events, _) = feed(&mut c, &wire);
    assert_eq!((r, events), (Ok(()), vec![text("Hello")]));
}

#[test]
fn rfc6455_5_7_fragmented_unmasked_hello() {
    let mut c = client(Config::default());
    let (r, events, _) = feed(
        &mut c,
        &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
    );
    assert_eq!((r, events), (Ok(()), vec![text("Hello")]));
}

#[test]
fn rfc6455_5_7_unmasked_ping_and_masked_pong() {
    // The server receives a masked Ping "Hello" and answers with the unmasked Pong of §5.7.
    let mut s = server(Config::default());
    let ping = [
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    s.receive(&ping).unwrap();
    assert_eq!(
        drain_events(&mut s),
        [Event::Ping(Bytes::from_static(b"Hello"))]
    );
    assert_eq!(
        drain_transmit(&mut s),
        [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    // A client answers the unmasked Ping "Hello" with §5.7's masked Pong.
    let mut c = client(Config::default());
    c.receive(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
        .unwrap();
    assert_eq!(
        drain_transmit(&mut c),
        [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
}

#[test]
fn rfc6455_5_7_binary_lengths_256_and_65536_use_extended_forms() {
    let mut s = server(Config::default());
    s.send_binary(&[0; 256]).unwrap();
    let wire = drain_transmit(&mut s);
    assert_eq!(&wire[..4], [0x82, 0x7E, 0x01, 0x00]);
    s.send_binary(&vec![0; 65536]).unwrap();
    let wire = drain_transmit(&mut s);
    assert_eq!(&wire[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
}

// ------------------------------------------------------------------------------ frame rules

#[test]
fn rfc6455_5_1_server_fails_unmasked_frame_1002() {
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &to_client(true, op::TEXT, b"hi"));
    assert_eq!(r, Err(ProtocolError::UnmaskedFrame));
    assert_eq!(events, []);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1002));
    assert_eq!(frames[0].mask, None);
}

#[test]
fn rfc6455_5_1_client_fails_masked_frame_1002() {
    let mut c = client(Config::default());
    let (r, _, frames) = feed(&mut c, &to_server(true, op::TEXT, b"hi"));
    assert_eq!(r, Err(ProtocolError::MaskedFrame));
    assert_eq!(frames[0].close_code(), Some(1002));
    assert_eq!(frames[0].mask, Some(common::RFC_KEY));
}

#[test]
fn rfc6455_5_2_reserved_bits_without_extension_fail_1002() {
    for (bits, reported) in [(0x40, 0b100), (0x20, 0b010), (0x10, 0b001), (0x70, 0b111)] {
        let mut s = server(Config::default());
        let wire = common::frame_raw(true, bits, op::TEXT, b"x", Some(common::RFC_KEY));
        let (r, _, frames) = feed(&mut s, &wire);
        assert_eq!(r, Err(ProtocolError::ReservedBits(reported)));
        assert_eq!(frames[0].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_5_2_reserved_opcodes_fail_1002() {
    for opcode in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let mut s = server(Config::default());
        let (r, _, frames) = feed(&mut s, &to_server(true, opcode, b""));
        assert_eq!(r, Err(ProtocolError::ReservedOpcode(opcode)));
        assert_eq!(frames[0].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_7_1_7_errors_are_sticky_and_input_after_them_is_ignored() {
    let mut s = server(Config::default());
    let (r, _, _) = feed(&mut s, &to_server(true, 3, b""));
    assert_eq!(r, Err(ProtocolError::ReservedOpcode(3)));
    let (r, events, frames) = feed(&mut s, &to_server(true, op::PING, b"ignored"));
    assert_eq!(
        (r, events, frames),
        (Err(ProtocolError::ReservedOpcode(3)), vec![], vec![])
    );
    assert_eq!(s.commit_read(0), Err(ProtocolError::ReservedOpcode(3)));
    assert_eq!(s.receive_eof(), Err(ProtocolError::ReservedOpcode(3)));
    assert_eq!(s.state(), State::Closed);
    assert!(s.wants_shutdown(), "either side shuts down after a failure");
}

#[test]
fn rfc6455_7_1_7_error_behind_many_events_is_reported_after_they_are_drained() {
    // 40 pings then a bad frame, in one read: events already parsed still come out, then the
    // error is reported and the Close (1002) follows the Pong.
    let mut wire = Vec::new();
    for i in 0..40u8 {
        wire.extend(to_server(true, op::PING, &[i]));
    }
    wire.extend(to_server(true, 0xB, b""));
    let mut s = server(Config::default());
    let _ = s.receive(&wire);
    let events = drain_events(&mut s);
    assert_eq!(events.len(), 40);
    assert_eq!(events[39], Event::Ping(Bytes::from_static(&[39])));
    assert_eq!(s.error(), Some(ProtocolError::ReservedOpcode(0xB)));
    assert_eq!(s.receive(b""), Err(ProtocolError::ReservedOpcode(0xB)));
    let frames = drain_frames(&mut s);
    assert_eq!(frames.last().unwrap().close_code(), Some(1002));
    assert_eq!(
        frames.iter().filter(|f| f.opcode == Opcode::Close).count(),
        1
    );
}

// ------------------------------------------------------------------------------ ping / pong

#[test]
fn rfc6455_5_5_2_ping_is_answered_with_identical_pong() {
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &to_server(true, op::PING, b"are you there"));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"are you there"))]);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (Opcode::Pong, &b"are you there"[..])
    );

    let mut c = client(Config::default());
    let (_, _, frames) = feed(&mut c, &to_client(true, op::PING, &[0xAB; 125]));
    assert_eq!(
        (frames[0].opcode, frames[0].payload.clone()),
        (Opcode::Pong, vec![0xAB; 125])
    );
    assert!(frames[0].mask.is_some());
}

#[test]
fn rfc6455_5_5_2_auto_pong_off_leaves_the_answer_to_the_application() {
    let mut s = server(Config::default().auto_pong(false));
    let (r, events, frames) = feed(&mut s, &to_server(true, op::PING, b"manual"));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"manual"))]);
    assert_eq!(frames, []);
    s.send_pong(b"manual").unwrap();
    assert_eq!(
        drain_transmit(&mut s),
        [0x8a, 6, b'm', b'a', b'n', b'u', b'a', b'l']
    );
}

#[test]
fn rfc6455_5_5_3_received_pong_is_reported_and_not_answered() {
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &to_server(true, op::PONG, b"beat"));
    assert_eq!(
        (r, events, frames),
        (
            Ok(()),
            vec![Event::Pong(Bytes::from_static(b"beat"))],
            vec![]
        )
    );
}

#[test]
fn rfc6455_5_5_3_ping_flood_keeps_the_pong_backlog_bounded() {
    const N: u32 = 10_000;
    // Pongs coalesce once 8 KiB of output waits (PONG_BACKLOG in the core).
    const BOUND: u64 = (8 << 10) + 2 + 4;
    let mut wire = Vec::new();
    for i in 0..N {
        wire.extend(to_server(true, op::PING, &i.to_be_bytes()));
    }
    let mut s = server(Config::default());
    // The application writes nothing.
    assert_eq!(s.receive(&wire), Ok(()));
    let mut seen = 0u32;
    while let Some(event) = s.poll_event() {
        assert_eq!(
            event,
            Event::Ping(Bytes::copy_from_slice(&seen.to_be_bytes()))
        );
        seen += 1;
        assert!(
            s.transmit_len() <= BOUND,
            "after {seen} pings: {}",
            s.transmit_len()
        );
    }
    assert_eq!(seen, N);
    // Early Pings are answered one by one; once output backs up, the latest Ping's answer
    // replaces every Pong in between, and goes out when the backlog drains.
    let frames = drain_frames(&mut s);
    assert!(frames.iter().all(|f| f.opcode == Opcode::Pong));
    assert!(frames.len() < N as usize, "{} pongs", frames.len());
    assert_eq!(frames[0].payload, 0u32.to_be_bytes());
    assert_eq!(frames[1].payload, 1u32.to_be_bytes());
    assert_eq!(frames.last().unwrap().payload, (N - 1).to_be_bytes());
}

#[test]
fn rfc6455_5_5_3_ping_flood_with_a_slow_writer_stays_bounded() {
    // The application drains events but writes one byte at a time.
    let mut wire = Vec::new();
    for i in 0..10_000u32 {
        wire.extend(to_server(true, op::PING, &i.to_be_bytes()));
    }
    let mut s = server(Config::default());
    s.receive(&wire).unwrap();
    let mut written = Vec::new();
    let mut max_queued = 0;
    loop {
        let polled = s.poll_event().is_some();
        max_queued = max_queued.max(s.transmit_len());
        let chunk = s.pending_transmit();
        if !chunk.is_empty() {
            written.push(chunk[0]);
            s.advance_transmit(1);
        } else if !polled {
            break;
        }
    }
    assert!(max_queued <= (8 << 10) + 6, "queued {max_queued} bytes");
    let frames = parse_frames(&written);
    assert!(frames.len() < 10_000);
    assert_eq!(frames.last().unwrap().payload, 9_999u32.to_be_bytes());
}

#[test]
fn rfc6455_5_5_2_pong_does_not_jump_ahead_of_data_already_queued() {
    let mut s = server(Config::default());
    s.send_text("first").unwrap();
    s.receive(&to_server(true, op::PING, b"p")).unwrap();
    let frames = drain_frames(&mut s);
    assert_eq!(
        frames.iter().map(|f| f.opcode).collect::<Vec<_>>(),
        [Opcode::Text, Opcode::Pong]
    );
}

// ------------------------------------------------------------------------------ prepared

#[test]
fn rfc6455_5_1_send_prepared_works_on_server() {
    let config = Config::default();
    let message = Message::from("broadcast to everyone");
    let prepared = PreparedMessage::new(&message, &config);
    let mut a = server(config.clone());
    let mut b = server(config.clone());
    a.send_prepared(&prepared).unwrap();
    b.send_prepared(&prepared).unwrap();
    let mut reference = server(config);
    reference.send_text("broadcast to everyone").unwrap();
    let expected = drain_transmit(&mut reference);
    assert_eq!(drain_transmit(&mut a), expected);
    assert_eq!(drain_transmit(&mut b), expected);
    let mut c = client(Config::default());
    let (r, events, _) = feed(&mut c, &expected);
    assert_eq!((r, events), (Ok(()), vec![Event::Message(message)]));
}

#[test]
fn rfc6455_5_3_send_prepared_on_client_is_usage_error() {
    let mut c = client(Config::default());
    c.send_text("queued").unwrap();
    let before = peek_transmit(&c);
    let prepared = PreparedMessage::new(&Message::from("x"), &Config::default());
    assert_eq!(
        c.send_prepared(&prepared),
        Err(UsageError::PreparedForServerOnly)
    );
    assert_eq!(peek_transmit(&c), before);
}

// ------------------------------------------------------------------------------ keepalive

fn keepalive_server() -> (Connection, Clock) {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(30)))
        .keepalive_timeout(Duration::from_secs(20));
    let mut s = server(config);
    let clock = Clock::new();
    clock.attach(&mut s);
    (s, clock)
}

#[test]
fn rfc6455_5_5_2_keepalive_ping_after_interval_without_input() {
    let (mut s, mut clock) = keepalive_server();
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(30)));
    clock.set(&mut s, Duration::from_secs(29));
    assert_eq!(s.transmit_len(), 0);
    assert_eq!(clock.fire_next(&mut s), Some(Duration::from_secs(30)));
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, &frames[0].payload[..]),
        (Opcode::Ping, &b"keepalive"[..])
    );
    // Now the Pong deadline is what counts.
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(50)));
    // A timely Pong clears it; the next Ping is due an interval after the Pong arrived.
    clock.set(&mut s, Duration::from_secs(35));
    let (r, events, _) = feed(&mut s, &to_server(true, op::PONG, b"keepalive"));
    assert_eq!((r, events.len()), (Ok(()), 1));
    // The idle timer restarts from the next clock reading, which the adapter takes at once.
    assert_eq!(s.poll_timeout(), Some(Duration::ZERO));
    clock.tick(&mut s);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(65)));
    clock.set(&mut s, Duration::from_secs(64));
    assert_eq!(s.transmit_len(), 0);
    clock.set(&mut s, Duration::from_secs(65));
    assert_eq!(drain_frames(&mut s)[0].opcode, Opcode::Ping);
    assert_eq!(s.error(), None);
}

#[test]
fn rfc6455_5_5_2_keepalive_late_pong_fails_1011() {
    let (mut s, mut clock) = keepalive_server();
    clock.fire_next(&mut s);
    drain_transmit(&mut s);
    clock.set(&mut s, Duration::from_millis(49_999));
    assert_eq!(s.error(), None);
    assert_eq!(clock.fire_next(&mut s), Some(Duration::from_secs(50)));
    assert_eq!(s.error(), Some(ProtocolError::KeepaliveTimeout));
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1011));
    assert_eq!(s.state(), State::Closed);
    // The Pong that arrives afterwards changes nothing.
    let (r, _, frames) = feed(&mut s, &to_server(true, op::PONG, b"keepalive"));
    assert_eq!((r, frames.len()), (Err(ProtocolError::KeepaliveTimeout), 0));
}

#[test]
fn rfc6455_5_5_2_keepalive_any_input_postpones_the_ping() {
    let (mut s, mut clock) = keepalive_server();
    clock.set(&mut s, Duration::from_secs(20));
    s.receive(&to_server(true, op::TEXT, b"busy")).unwrap();
    assert_eq!(s.poll_timeout(), Some(Duration::ZERO));
    clock.tick(&mut s);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(50)));
    clock.set(&mut s, Duration::from_secs(49));
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_5_5_2_keepalive_off_by_default_means_no_timer() {
    let mut s = server(Config::default());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(Duration::from_secs(1_000_000));
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_5_5_2_keepalive_stops_once_closing() {
    let (mut s, mut clock) = keepalive_server();
    s.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut s);
    // Only the close timeout remains (10 s default), from the next clock reading.
    clock.tick(&mut s);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(10)));
    clock.set(&mut s, Duration::from_secs(9));
    assert_eq!(s.transmit_len(), 0, "no keepalive Ping after our Close");
}

// ------------------------------------------------------------------------------ input paths

/// A stream exercising every receive path: all length forms, fragments, control frames, a
/// Close, and bytes after the Close.
fn varied_client_stream(rng: &mut Rng) -> Vec<u8> {
    let mut c = Connection::client(
        Config::default().max_send_frame_size(50_000),
        common::seeded_entropy(5),
    );
    for len in [0usize, 1, 125, 126, 65_535, 65_536, 200_000] {
        c.send_binary(&rng.bytes(len)).unwrap();
        c.send_ping(&rng.bytes(len.min(125))).unwrap();
        c.send_text(&"✓".repeat(len / 3)).unwrap();
    }
    c.send_fragment(rfc6455::MessageKind::Text, "a✓".as_bytes(), false)
        .unwrap();
    c.send_pong(b"between").unwrap();
    c.send_fragment(rfc6455::MessageKind::Text, "b".as_bytes(), true)
        .unwrap();
    c.send_close(CloseCode(4001), "done").unwrap();
    let mut wire = drain_transmit(&mut c);
    wire.extend(to_server(true, op::TEXT, b"after close"));
    wire
}

#[test]
fn rfc6455_5_2_zero_copy_read_path_matches_receive() {
    let mut rng = Rng::new(42);
    let wire = varied_client_stream(&mut rng);

    let mut whole = server(Config::default());
    whole.receive(&wire).unwrap();
    let expect_events = drain_events(&mut whole);
    let expect_out = drain_transmit(&mut whole);
    assert_eq!(expect_events.len(), 7 * 3 + 2 + 1);
    assert_eq!(
        expect_events.last(),
        Some(&common::close_event(4001, "done"))
    );

    for seed in 0..4 {
        let mut rng = Rng::new(seed);
        let mut s = server(Config::default());
        let mut at = 0;
        let mut events = Vec::new();
        while at < wire.len() {
            let buf = s.read_buf();
            assert!(!buf.is_empty());
            let n = rng.size(buf.len().min(wire.len() - at));
            buf[..n].copy_from_slice(&wire[at..at + n]);
            s.commit_read(n).unwrap();
            at += n;
            if rng.chance(1, 2) {
                events.extend(drain_events(&mut s));
            }
        }
        events.extend(drain_events(&mut s));
        assert_eq!(events, expect_events, "seed {seed}");
        assert_eq!(drain_transmit(&mut s), expect_out, "seed {seed}");
        assert_eq!(s.state(), State::Closed);
    }
}

#[test]
fn rfc6455_5_2_zero_copy_read_path_reports_errors_like_receive() {
    let mut wire = to_server(true, op::TEXT, b"ok");
    wire.extend(to_server(true, op::TEXT, b"bad \xff utf-8"));
    let mut a = server(Config::default());
    let ra = a.receive(&wire);
    let mut b = server(Config::default());
    let buf = b.read_buf();
    buf[..wire.len()].copy_from_slice(&wire);
    let rb = b.commit_read(wire.len());
    // The error takes effect after the message before it has been taken.
    assert_eq!(ra, Ok(()));
    assert_eq!(rb, ra);
    assert_eq!(drain_events(&mut a), drain_events(&mut b));
    assert_eq!(a.error(), Some(ProtocolError::InvalidUtf8));
    assert_eq!(b.error(), a.error());
    assert_eq!(drain_transmit(&mut a), drain_transmit(&mut b));
}

#[test]
fn rfc6455_5_2_read_buf_is_never_empty() {
    let mut s = server(Config::default());
    assert!(s.read_buf().len() >= 2048);
    // A header announcing 1 MiB, then fill every byte of room offered, twice: room is always
    // offered again, and a full frame eventually completes.
    let head = common::header_only(true, op::BINARY, 1 << 20, Some(common::RFC_KEY));
    let buf = s.read_buf();
    buf[..head.len()].copy_from_slice(&head);
    s.commit_read(head.len()).unwrap();
    let mut payload = 0usize;
    while payload < 1 << 20 {
        let room = s.read_buf().len();
        assert!(room > 0);
        let n = room.min((1 << 20) - payload);
        s.commit_read(n).unwrap();
        payload += n;
    }
    assert!(!s.read_buf().is_empty());
    let events = drain_events(&mut s);
    assert_eq!(events.len(), 1);
    let Event::Message(Message::Binary(data)) = &events[0] else {
        panic!("not binary")
    };
    assert_eq!(data.len(), 1 << 20);
}

/// Small whole messages are copied out of the read buffer, so a message the application keeps
/// does not keep that buffer alive; large ones are cut off it without a copy. `is_unique`
/// tells the two apart: a handle into the read buffer shares it with the connection.
#[test]
fn small_messages_are_copied_out_large_ones_share_the_read_buffer() {
    let mut wire = to_server(true, op::BINARY, &[7; 16]);
    wire.extend(to_server(true, op::TEXT, "ü".repeat(200).as_bytes()));
    wire.extend(to_server(true, op::BINARY, &[9; 4096]));
    let mut s = server(Config::default());
    s.receive(&wire).unwrap();
    let events = drain_events(&mut s);
    let [
        Event::Message(Message::Binary(small)),
        Event::Message(Message::Text(text)),
        Event::Message(Message::Binary(large)),
    ] = &events[..]
    else {
        panic!("unexpected events {events:?}")
    };
    assert_eq!(&small[..], &[7; 16]);
    assert!(small.is_unique(), "a 16-byte message pins the read buffer");
    assert_eq!(text.as_str(), "ü".repeat(200));
    assert_eq!(&large[..], &[9; 4096]);
    assert!(!large.is_unique(), "a 4 KiB message was copied");
}

// ------------------------------------------------------------------------------ output queue

/// A server's large `send` goes out by reference: the queued payload chunk is the message's
/// own memory, and the connection's handle to it is dropped once it is written. Small
/// payloads, and every client payload (masked), are copied.
#[test]
fn a_large_server_send_queues_the_message_itself() {
    let payload = Bytes::from(vec![5u8; 64 << 10]);
    let mut s = server(Config::default());
    s.send(Message::Binary(payload.clone())).unwrap();
    let chunks: Vec<&[u8]> = s.transmit_chunks().collect();
    assert_eq!(chunks.len(), 2, "header, then the payload by reference");
    assert_eq!(chunks[1].as_ptr(), payload.as_ptr());
    drop(chunks);
    let mut held = payload.clone();
    assert!(
        !held.is_unique(),
        "the connection holds a handle while it is queued"
    );
    drop(held);
    let written = drain_transmit(&mut s);
    assert_eq!(
        written.len(),
        10 + payload.len(),
        "a 10-byte header, then the payload"
    );
    assert!(written[10..] == payload[..]);
    held = payload;
    assert!(held.is_unique(), "a handle was kept after the write");

    let small = Bytes::from(vec![5u8; 100]);
    s.send(Message::Binary(small.clone())).unwrap();
    assert!(
        small.is_unique(),
        "a 100-byte payload was queued by reference"
    );
    let mut c = client(Config::default());
    let large = Bytes::from(vec![5u8; 64 << 10]);
    c.send(Message::Binary(large.clone())).unwrap();
    assert!(
        large.is_unique(),
        "a client's payload must be copied to be masked"
    );
}

#[test]
fn rfc6455_5_2_transmit_chunks_and_pending_transmit_agree() {
    let mut s = server(Config::default());
    s.send_text("small").unwrap();
    // Large `send` payloads are queued by reference: several chunks.
    s.send(Message::Binary(Bytes::from(vec![3u8; 40_000])))
        .unwrap();
    s.send_ping(b"p").unwrap();
    let gathered = peek_transmit(&s);
    assert!(s.transmit_chunks().count() >= 2);
    let mut written = Vec::new();
    let mut rng = Rng::new(1);
    while s.transmit_len() > 0 {
        let chunk = s.pending_transmit();
        let n = rng.range(1, chunk.len());
        written.extend_from_slice(&chunk[..n]);
        let before = s.transmit_len();
        s.advance_transmit(n);
        assert_eq!(s.transmit_len(), before - n as u64);
    }
    assert_eq!(written, gathered);
    let frames = parse_frames(&written);
    assert_eq!(
        frames.iter().map(|f| f.opcode).collect::<Vec<_>>(),
        [Opcode::Text, Opcode::Binary, Opcode::Ping]
    );
    // Over-advancing is clamped, not a panic.
    s.advance_transmit(100);
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_5_1_roles_and_initial_state() {
    let s = server(Config::default());
    let c = client(Config::default());
    assert_eq!((s.role(), c.role()), (Role::Server, Role::Client));
    for conn in [&s, &c] {
        assert_eq!(conn.state(), State::Open);
        assert!(!conn.close_sent() && !conn.close_received() && !conn.is_closed());
        assert!(!conn.wants_shutdown() && !conn.is_terminated());
        assert_eq!((conn.error(), conn.transmit_len()), (None, 0));
    }
}

// ------------------------------------------------------------------------------ extensions

/// An extension that claims RSV1 and rejects every message with a long non-ASCII reason.
struct Rejecting;

impl Extension for Rejecting {
    fn reserved_bits(&self) -> u8 {
        rfc6455::frame::RSV1
    }
    fn decode(
        &mut self,
        _rsv: u8,
        _input: &[u8],
        _end: bool,
        _out: &mut Vec<u8>,
        _limit: usize,
    ) -> Result<(), ProtocolError> {
        // "extension failed: " is 18 bytes; 104 ASCII bytes put byte 123 inside "é".
        const REASON: &str = concat!(
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "ééé"
        );
        Err(ProtocolError::Extension(REASON))
    }
    fn encode(&mut self, _payload: &[u8], _out: &mut Vec<u8>) -> u8 {
        0
    }
}

#[test]
fn rfc6455_7_1_7_extension_error_with_long_non_ascii_reason_fails_1007_without_panic() {
    let mut s = server(Config::default()).with_extension(Box::new(Rejecting));
    let wire = common::frame_raw(
        true,
        0x40,
        op::BINARY,
        b"compressed?",
        Some(common::RFC_KEY),
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.receive(&wire)));
    let r = r.expect("the core panicked while truncating the close reason");
    assert!(matches!(r, Err(ProtocolError::Extension(_))));
    let frames = drain_frames(&mut s);
    let (code, reason) = frames[0].close().unwrap();
    assert_eq!(code, 1007);
    assert!(reason.len() <= 123);
    assert!(
        std::str::from_utf8(reason).is_ok(),
        "close reason must stay UTF-8"
    );
}

#[test]
fn rfc6455_5_2_extension_rsv_bits_accepted_only_on_first_frame() {
    struct Identity;
    impl Extension for Identity {
        fn reserved_bits(&self) -> u8 {
            rfc6455::frame::RSV1
        }
        fn decode(
            &mut self,
            _: u8,
            input: &[u8],
            _: bool,
            out: &mut Vec<u8>,
            _: usize,
        ) -> Result<(), ProtocolError> {
            out.extend_from_slice(input);
            Ok(())
        }
        fn encode(&mut self, p: &[u8], out: &mut Vec<u8>) -> u8 {
            out.extend_from_slice(p);
            rfc6455::frame::RSV1
        }
    }
    let mut s = server(Config::default()).with_extension(Box::new(Identity));
    let mut wire = common::frame_raw(false, 0x40, op::TEXT, b"he", Some(common::RFC_KEY));
    wire.extend(to_server(true, op::CONT, b"llo"));
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!((r, events), (Ok(()), vec![text("hello")]));
    // RSV1 on a continuation frame is not claimed (RFC 7692 §6.1).
    let mut wire = common::frame_raw(false, 0x40, op::TEXT, b"he", Some(common::RFC_KEY));
    wire.extend(common::frame_raw(
        true,
        0x40,
        op::CONT,
        b"llo",
        Some(common::RFC_KEY),
    ));
    let (r, _, frames) = feed(&mut s, &wire);
    assert_eq!(r, Err(ProtocolError::ReservedBits(0b100)));
    assert_eq!(frames[0].close_code(), Some(1002));
    // Outgoing messages carry the bit the extension returns.
    let mut s = server(Config::default()).with_extension(Box::new(Identity));
    s.send_text("x").unwrap();
    assert_eq!(drain_transmit(&mut s), [0xC1, 1, b'x']);
}

#[test]
fn read_space_room_is_2kib_idle_grows_to_16kib_while_filled_and_shrinks_back() {
    use bytes::BufMut;
    let mut s = server(Config::default());
    // A long stream of 16-byte messages (22 bytes each on the wire).
    let frame = to_server(true, op::BINARY, &[7; 16]);
    let wire: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 4000)
        .collect();
    let mut at = 0;
    let mut read = |s: &mut Connection, max: usize| {
        let mut space = s.read_space();
        let room = space.remaining_mut();
        let n = room.min(max);
        space.put_slice(&wire[at..at + n]);
        at += n;
        s.commit_space().unwrap();
        drain_events(s);
        room
    };
    // Reads that fill the room double it, up to 16 KiB.
    let growing: Vec<usize> = (0..6).map(|_| read(&mut s, usize::MAX)).collect();
    assert_eq!(growing, [2048, 4096, 8192, 16384, 16384, 16384]);
    // Reads that use under a quarter of it halve it, down to 2 KiB.
    let shrinking: Vec<usize> = (0..6).map(|_| read(&mut s, 22)).collect();
    assert_eq!(shrinking, [16384, 8192, 4096, 2048, 2048, 2048]);
    assert_eq!(s.error(), None);
}

#[test]
fn read_space_between_frames_offers_room_for_a_frame_like_the_last_one() {
    use bytes::BufMut;
    let mut s = server(Config::default());
    // Feeds a whole frame through read_space, however many reads it takes; returns the room
    // the first of them offered.
    let deliver = |s: &mut Connection, wire: &[u8]| {
        let mut at = 0;
        let mut first = None;
        while at < wire.len() {
            let mut space = s.read_space();
            let room = space.remaining_mut();
            first.get_or_insert(room);
            let n = room.min(wire.len() - at);
            space.put_slice(&wire[at..at + n]);
            at += n;
            s.commit_space().unwrap();
        }
        assert_eq!(drain_events(s).len(), 1);
        first.unwrap()
    };
    let big = to_server(true, op::BINARY, &[7; 16 << 10]);
    // The first 16 KiB frame is met with the idle room, and takes more than one read.
    assert_eq!(deliver(&mut s, &big), 2048);
    // The next one gets room for exactly all of it, header included, in its first read.
    assert_eq!(deliver(&mut s, &big), big.len());
    // Frames far larger get no more than 64 KiB and a header.
    let huge = to_server(true, op::BINARY, &vec![7; 1 << 20]);
    deliver(&mut s, &huge);
    assert_eq!(deliver(&mut s, &huge), (64 << 10) + 14);
    // Small frames bring it back down to the adaptive room (2 to 16 KiB).
    let small = to_server(true, op::BINARY, &[7; 16]);
    deliver(&mut s, &small);
    assert!(deliver(&mut s, &small) <= 16 << 10);
    assert_eq!(s.error(), None);
}

/// Feeds `wire` through `read_space` / `commit_space`, as many reads as the room allows.
fn feed_space(s: &mut Connection, wire: &[u8]) {
    use bytes::BufMut;
    let mut at = 0;
    while at < wire.len() {
        let mut space = s.read_space();
        let n = space.remaining_mut().min(wire.len() - at);
        space.put_slice(&wire[at..at + n]);
        at += n;
        s.commit_space().unwrap();
    }
}

/// Once a large frame's header is in, the read buffer has room for the whole payload ahead
/// of where it starts, in the allocation the previous frame used: what has arrived is never
/// moved up half-way through the frame. (At 1 MiB frames in 256 KiB pieces the room used to
/// come up 14 bytes short, and every frame paid a copy of three quarters of itself.)
#[test]
fn a_large_frame_finds_room_for_all_of_it_once_its_header_is_in() {
    const LEN: usize = 1 << 20;
    let wire = to_server(true, op::BINARY, &vec![7; LEN]);
    let by_receive = |s: &mut Connection, chunk: &[u8]| s.receive(chunk).unwrap();
    for (path, feed, piece) in [
        (
            "receive",
            &by_receive as &dyn Fn(&mut Connection, &[u8]),
            256 << 10,
        ),
        ("receive", &by_receive, 48 << 10),
        ("read_space", &feed_space, 256 << 10),
    ] {
        let mut s = server(Config::default());
        for round in 0..4 {
            for (i, chunk) in wire.chunks(piece).enumerate() {
                feed(&mut s, chunk);
                if i == 0 && round > 0 {
                    let room = s.read_space().get_ref().capacity();
                    assert!(room >= LEN, "{path} {piece}: frame {round}, room {room}");
                }
            }
            match drain_events(&mut s).as_slice() {
                [Event::Message(m)] => assert_eq!(m.as_bytes().len(), LEN),
                other => panic!("{path}: {other:?}"),
            }
        }
    }
}

/// A frame that a slice given to `receive` leaves unfinished is finished where it stands when
/// the next slice comes: room for the rest of a frame like the last one was kept after it, so
/// it is not copied to the front of the buffer or into a new one first. The messages are
/// kept, so each one's address shows where its frame was written: a frame that starts right
/// behind a whole frame of its slice and ends in the next slice is still right behind it.
#[test]
fn receive_finishes_a_frame_cut_by_the_end_of_a_slice_where_it_stands() {
    const COUNT: usize = 20;
    const LEN: usize = 60_000;
    const WIRE: usize = LEN + 4; // unmasked (client side), 16-bit length
    const SLICE: usize = 100_000;
    let mut wire = Vec::new();
    for i in 0..COUNT {
        wire.extend(to_client(true, op::BINARY, &vec![i as u8; LEN]));
    }
    let mut c = client(Config::default());
    let mut kept = Vec::new();
    for chunk in wire.chunks(SLICE) {
        c.receive(chunk).unwrap();
        kept.extend(drain_events(&mut c));
    }
    let messages: Vec<&[u8]> = kept
        .iter()
        .map(|e| match e {
            Event::Message(Message::Binary(b)) => &b[..],
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(messages.len(), COUNT);
    let slice_of = |at: usize| at / SLICE;
    let mut checked = 0;
    for (i, m) in messages.iter().enumerate() {
        assert!(m.iter().all(|&b| b == i as u8), "message {i}");
        let start = i * WIRE;
        let spans = slice_of(start) != slice_of(start + WIRE - 1);
        let behind_whole_frame = i > 0 && slice_of(start - WIRE) == slice_of(start);
        // From the second slice on: when the first came, no frame had been seen to size
        // the room by.
        if spans && behind_whole_frame && slice_of(start) > 0 {
            checked += 1;
            assert_eq!(
                m.as_ptr(),
                messages[i - 1].as_ptr_range().end.wrapping_add(4),
                "message {i}, cut by the end of a slice, was moved"
            );
        }
    }
    assert!(checked >= 5, "only {checked} messages were checked");
}

/// A text frame large enough to be unmasked as `receive` copies it in (over 512 bytes) is
/// still checked piece by piece: invalid UTF-8 in its second piece fails the connection with
/// 1007 before the frame ends (RFC 6455 §8.1), the message before it is still delivered,
/// and nothing after the failure is parsed.
#[test]
fn rfc6455_8_1_invalid_utf8_in_a_large_frame_fed_by_receive_fails_1007_mid_frame() {
    let mut payload = "é✓a".repeat(4000).into_bytes(); // 24,000 bytes
    payload[15_000] = 0xff;
    let mut wire = to_server(true, op::TEXT, b"before");
    let first = wire.len() + 10_000;
    wire.extend(to_server(true, op::TEXT, &payload));
    let mut s = server(Config::default());
    assert_eq!(s.receive(&wire[..first]), Ok(()));
    // The second piece holds the bad byte; the error waits behind the message before it.
    let _ = s.receive(&wire[first..first + 8_000]);
    match drain_events(&mut s).as_slice() {
        [Event::Message(Message::Text(t))] => assert_eq!(t.as_str(), "before"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.error(), Some(ProtocolError::InvalidUtf8));
    assert_eq!(
        s.receive(&wire[first + 8_000..]),
        Err(ProtocolError::InvalidUtf8)
    );
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1007));
}
