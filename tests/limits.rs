//! Size limits (RFC 6455 §5.2, §5.5, §10.4): checked on the header, before payload is read,
//! against the remaining message budget; and the caller's limits on what it may send.

mod common;

use common::{
    client, close_payload, drain_events, drain_frames, feed, header_only, op, server, to_server,
};
use rfc6455::{CloseCode, Config, Event, Message, ProtocolError, UsageError};

const GIB_2: u64 = 2 << 30;

#[test]
fn rfc6455_10_4_declared_2gib_frame_fails_1009_before_payload() {
    let mut s = server(Config::default());
    let head = header_only(true, op::BINARY, GIB_2, Some(common::RFC_KEY));
    // Only the 14-byte header arrives: the verdict must not wait for the payload.
    let (r, events, frames) = feed(&mut s, &head);
    let err = ProtocolError::FrameTooLarge {
        size: GIB_2,
        limit: 16 << 20,
    };
    assert_eq!(r, Err(err));
    assert_eq!(events, []);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1009));
    assert_eq!(s.error(), Some(err));
}

#[test]
fn rfc6455_10_4_declared_2gib_frame_fails_on_message_budget_when_frame_limit_is_off() {
    let mut s = server(Config::default().max_frame_size(u64::MAX));
    let head = header_only(false, op::TEXT, GIB_2, Some(common::RFC_KEY));
    let (r, _, frames) = feed(&mut s, &head);
    assert_eq!(
        r,
        Err(ProtocolError::MessageTooLarge {
            size: GIB_2,
            limit: 64 << 20
        })
    );
    assert_eq!(frames[0].close_code(), Some(1009));
}

#[test]
fn rfc6455_10_4_read_buf_never_sized_from_declared_length() {
    // With every limit off, a 2 GiB declaration is accepted, but the zero-copy buffer grows
    // only in steps of at most 1 MiB: memory follows bytes received, not bytes promised.
    let mut c = client(
        Config::default()
            .max_frame_size(u64::MAX)
            .max_message_size(u64::MAX),
    );
    let head = header_only(true, op::BINARY, GIB_2, None);
    let buf = c.read_buf();
    buf[..head.len()].copy_from_slice(&head);
    c.commit_read(head.len()).unwrap();
    let mut total = 0usize;
    for _ in 0..3 {
        let room = c.read_buf().len();
        assert!(
            (1..=(1 << 20) + 14).contains(&room),
            "read_buf offered {room} bytes"
        );
        let room = c.read_buf().len();
        c.commit_read(room).unwrap();
        total += room;
    }
    assert!(total <= 3 * ((1 << 20) + 14));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.error(), None);
}

#[test]
fn rfc6455_5_2_frame_exactly_at_max_frame_size_is_accepted() {
    let mut s = server(Config::default().max_frame_size(100));
    let (r, events, _) = feed(&mut s, &to_server(true, op::BINARY, &[7; 100]));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [common::binary(&[7; 100])]);
    let (r, _, frames) = feed(
        &mut s,
        &header_only(true, op::BINARY, 101, Some(common::RFC_KEY)),
    );
    assert_eq!(
        r,
        Err(ProtocolError::FrameTooLarge {
            size: 101,
            limit: 100
        })
    );
    assert_eq!(frames[0].close_code(), Some(1009));
}

#[test]
fn rfc6455_10_4_fragmented_message_crossing_budget_by_one_byte_fails_1009_at_that_fragment() {
    let limit = 1000u64;
    let mut s = server(Config::default().max_message_size(limit));
    let mut wire = to_server(false, op::BINARY, &[1; 400]);
    wire.extend(to_server(true, op::PING, b"still fine"));
    wire.extend(to_server(false, op::CONT, &[2; 400]));
    wire.extend(to_server(false, op::CONT, &[3; 199])); // 999 so far
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [Event::Ping("still fine".into())]);
    assert_eq!(frames.len(), 1); // the Pong
    // The next fragment declares 2 bytes: 1001 > 1000. Its header alone must fail it.
    let (r, events, frames) = feed(
        &mut s,
        &header_only(true, op::CONT, 2, Some(common::RFC_KEY)),
    );
    assert_eq!(
        r,
        Err(ProtocolError::MessageTooLarge {
            size: limit + 1,
            limit
        })
    );
    assert_eq!(events, []);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1009));
}

#[test]
fn rfc6455_10_4_fragmented_message_exactly_at_budget_is_accepted() {
    let limit = 1000u64;
    let mut s = server(Config::default().max_message_size(limit));
    let mut wire = to_server(false, op::TEXT, &[b'a'; 500]);
    wire.extend(to_server(false, op::CONT, &[]));
    wire.extend(to_server(true, op::CONT, &[b'b'; 500]));
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    let Event::Message(Message::Text(t)) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(t.len(), 1000);
    // The budget is per message: the next one starts from zero.
    let (r, events, _) = feed(&mut s, &to_server(true, op::BINARY, &[0; 1000]));
    assert_eq!((r, events.len()), (Ok(()), 1));
}

#[test]
fn rfc6455_10_4_single_frame_over_message_budget_fails_1009() {
    let mut s = server(Config::default().max_message_size(10));
    let (r, _, frames) = feed(&mut s, &to_server(true, op::TEXT, b"eleven byte"));
    assert_eq!(
        r,
        Err(ProtocolError::MessageTooLarge {
            size: 11,
            limit: 10
        })
    );
    assert_eq!(frames[0].close_code(), Some(1009));
}

#[test]
fn rfc6455_5_5_control_frames_are_not_counted_against_message_budget() {
    let mut s = server(Config::default().max_message_size(4).max_frame_size(4));
    let mut wire = to_server(false, op::BINARY, b"ab");
    wire.extend(to_server(true, op::PING, &[b'p'; 125]));
    wire.extend(to_server(true, op::CONT, b"cd"));
    let (r, events, _) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], common::binary(b"abcd"));
}

#[test]
fn rfc6455_5_5_received_control_payload_over_125_fails_1002() {
    for opcode in [op::PING, op::PONG, op::CLOSE] {
        let mut s = server(Config::default());
        let (r, _, frames) = feed(
            &mut s,
            &header_only(true, opcode, 126, Some(common::RFC_KEY)),
        );
        assert_eq!(
            r,
            Err(ProtocolError::ControlFrameTooLong(126)),
            "opcode {opcode}"
        );
        assert_eq!(frames[0].close_code(), Some(1002));
    }
}

#[test]
fn rfc6455_5_2_length_with_top_bit_set_fails_1002() {
    let mut s = server(
        Config::default()
            .max_frame_size(u64::MAX)
            .max_message_size(u64::MAX),
    );
    let mut head = vec![0x82, 0xFF];
    head.extend(u64::MAX.to_be_bytes());
    head.extend(common::RFC_KEY);
    let (r, _, frames) = feed(&mut s, &head);
    assert_eq!(r, Err(ProtocolError::LengthOverflow));
    assert_eq!(frames[0].close_code(), Some(1002));
}

#[test]
fn rfc6455_5_2_non_minimal_length_fails_1002() {
    let mut s = server(Config::default());
    let (r, _, frames) = feed(&mut s, &[0x82, 0xFE, 0x00, 0x7D, 0, 0, 0, 0]);
    assert_eq!(r, Err(ProtocolError::NonMinimalLength(125)));
    assert_eq!(frames[0].close_code(), Some(1002));
}

#[test]
fn rfc6455_5_5_control_payload_over_125_to_send_is_usage_error() {
    for mut conn in [server(Config::default()), client(Config::default())] {
        assert_eq!(
            conn.send_ping(&[0; 126]),
            Err(UsageError::ControlPayloadTooLong(126))
        );
        assert_eq!(
            conn.send_pong(&[0; 126]),
            Err(UsageError::ControlPayloadTooLong(126))
        );
        assert_eq!(
            conn.send_ping(&[0; 100_000]),
            Err(UsageError::ControlPayloadTooLong(100_000))
        );
        assert_eq!(conn.transmit_len(), 0);
        conn.send_ping(&[0; 125]).unwrap();
        conn.send_pong(&[0; 125]).unwrap();
        let frames = drain_frames(&mut conn);
        assert_eq!(
            frames.iter().map(|f| f.payload.len()).collect::<Vec<_>>(),
            [125, 125]
        );
    }
}

#[test]
fn rfc6455_5_5_1_close_reason_budget_is_123_bytes() {
    let mut s = server(Config::default());
    // 124 bytes of reason would make a 126-byte control payload.
    assert_eq!(
        s.send_close(CloseCode(4000), &"x".repeat(124)),
        Err(UsageError::CloseReasonTooLong(124))
    );
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_10_4_sizes_are_checked_in_both_roles() {
    let mut c = client(Config::default().max_message_size(3));
    let (r, _, frames) = feed(&mut c, &common::to_client(true, op::BINARY, b"four"));
    assert_eq!(r, Err(ProtocolError::MessageTooLarge { size: 4, limit: 3 }));
    assert_eq!(frames[0].close_code(), Some(1009));
    assert!(frames[0].mask.is_some(), "a client's Close is masked too");
}

#[test]
fn rfc6455_10_4_extreme_configs_do_not_panic() {
    // "No combination of fields can panic": zeros and maxima everywhere.
    let configs = [
        Config::default()
            .max_frame_size(0)
            .max_message_size(0)
            .max_send_frame_size(0),
        Config::default()
            .max_frame_size(u64::MAX)
            .max_message_size(u64::MAX)
            .max_send_frame_size(u64::MAX),
        Config::default()
            .write_buffer_high_water(0)
            .close_timeout(std::time::Duration::MAX),
        Config::default()
            .keepalive_interval(Some(std::time::Duration::ZERO))
            .keepalive_timeout(std::time::Duration::MAX),
    ];
    for config in configs {
        let mut s = server(config.clone());
        s.send_text("x").unwrap();
        let _ = s.receive(&to_server(true, op::TEXT, b""));
        let _ = s.receive(&to_server(true, op::BINARY, b"abc"));
        let _ = s.receive(&to_server(true, op::CLOSE, &close_payload(1000, b"")));
        drain_events(&mut s);
        s.handle_timeout(std::time::Duration::MAX);
        let _ = s.poll_timeout();
        let _ = drain_frames(&mut s);
        let mut c = client(config);
        c.handle_timeout(std::time::Duration::from_secs(1));
        c.handle_timeout(std::time::Duration::MAX);
        let _ = drain_frames(&mut c);
    }
}

#[test]
fn rfc6455_10_4_zero_limits_accept_empty_messages_only() {
    let mut s = server(Config::default().max_frame_size(0).max_message_size(0));
    let (r, events, _) = feed(&mut s, &to_server(true, op::BINARY, b""));
    assert_eq!((r, events), (Ok(()), vec![common::binary(b"")]));
    let (r, _, frames) = feed(&mut s, &to_server(true, op::BINARY, b"x"));
    assert_eq!(r, Err(ProtocolError::FrameTooLarge { size: 1, limit: 0 }));
    assert_eq!(frames[0].close_code(), Some(1009));
}
