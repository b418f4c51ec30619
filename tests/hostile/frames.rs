//! Hostile frame headers (RFC 6455 §5.2, §5.1, §5.5).

use super::harness::*;
use rfc6455::{Config, Connection, Event, Message, ProtocolError, Role};

fn with(config: Config) -> impl Fn() -> Connection {
    move || Connection::server(config.clone())
}

#[test]
fn rfc6455_5_2_length_top_bit_fails_1002_with_limits_on_and_off() {
    let limits_off = Config::default()
        .max_frame_size(u64::MAX)
        .max_message_size(u64::MAX);
    for (name, config) in [("limits_on", Config::default()), ("limits_off", limits_off)] {
        for len in [1u64 << 63, u64::MAX, (1 << 63) | 0x10000] {
            let mut input = vec![0x82, 0xff];
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(&KEY);
            input.extend_from_slice(&[0; 64]);
            let got = run(
                &format!("top_bit_{name}_{len}"),
                with(config.clone()),
                &input,
                false,
            );
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::LengthOverflow));
            assert!(got.events.is_empty());
        }
    }
}

#[test]
fn rfc6455_5_2_declared_2gib_payload_fails_1009_before_any_payload() {
    // Only the header arrives: the limit is checked on it.
    let input = header(0x82, 2 << 30, Some(KEY));
    let got = run("declared_2gib", server, &input, false);
    got.assert_failed(1009);
    assert_eq!(
        got.error,
        Some(ProtocolError::FrameTooLarge {
            size: 2 << 30,
            limit: 16 << 20
        })
    );
}

#[test]
fn rfc6455_5_2_non_minimal_lengths_fail_1002() {
    // Our documented choice (tag `house` in spec-vectors): the RFC says the minimal form
    // "MUST be used"; we hold the peer to it.
    let cases: [(&str, Vec<u8>); 4] = [
        ("16bit_for_0", vec![0x82, 0xfe, 0, 0]),
        ("16bit_for_125", vec![0x82, 0xfe, 0, 125]),
        (
            "64bit_for_126",
            [&[0x82, 0xff][..], &126u64.to_be_bytes()].concat(),
        ),
        (
            "64bit_for_65535",
            [&[0x82, 0xff][..], &65535u64.to_be_bytes()].concat(),
        ),
    ];
    for (name, mut input) in cases {
        input.extend_from_slice(&KEY);
        input.extend(std::iter::repeat_n(0, 200));
        let got = run(name, server, &input, false);
        got.assert_failed(1002);
        assert!(
            matches!(got.error, Some(ProtocolError::NonMinimalLength(_))),
            "{name}"
        );
    }
}

#[test]
fn rfc6455_5_2_rsv_bits_without_extension_fail_1002() {
    for rsv in 1..8u8 {
        for opcode in [TEXT, BINARY, CONT, PING, PONG, CLOSE] {
            let mut input = Vec::new();
            if opcode == CONT {
                input.extend(c2s(false, BINARY, b"a"));
            }
            input.extend(frame_b0(0x80 | (rsv << 4) | opcode, b"", Some(KEY)));
            let got = run(&format!("rsv_{rsv}_{opcode}"), server, &input, false);
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::ReservedBits(rsv)));
            assert!(got.events.is_empty());
        }
    }
}

#[test]
fn rfc6455_5_2_every_reserved_opcode_fails_1002() {
    for opcode in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        for fin in [0x80, 0] {
            let input = frame_b0(fin | opcode, b"abc", Some(KEY));
            let got = run(&format!("opcode_{opcode}_{fin}"), server, &input, false);
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::ReservedOpcode(opcode)));
        }
    }
}

#[test]
fn rfc6455_5_1_masking_by_role() {
    // A server fails on an unmasked frame; a client fails on a masked one.
    let got = run("server_unmasked", server, &s2c(true, TEXT, b"hi"), false);
    got.assert_failed(1002);
    assert_eq!(got.error, Some(ProtocolError::UnmaskedFrame));
    let got = run("client_masked", client, &c2s(true, TEXT, b"hi"), false);
    got.assert_failed(1002);
    assert_eq!(got.error, Some(ProtocolError::MaskedFrame));
    // The right way round works; a client masks its Pong (`parse_output` checks the role).
    let got = run("server_masked", server, &c2s(true, TEXT, b"hi"), false);
    assert_eq!(got.events, [Event::Message(Message::Text("hi".into()))]);
    let got = run("client_unmasked", client, &s2c(true, PING, b"x"), false);
    assert_eq!(got.frames, [(PONG, b"x".to_vec())]);
    // Control frames are held to the same rule.
    let got = run("server_unmasked_ping", server, &s2c(true, PING, b""), false);
    assert_eq!(got.error, Some(ProtocolError::UnmaskedFrame));
}

#[test]
fn rfc6455_5_5_control_frames_of_126_bytes_or_fragmented_fail_1002() {
    for role in [Role::Server, Role::Client] {
        for opcode in [PING, PONG, CLOSE] {
            let mut payload = vec![b'a'; 126];
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            let long = from_peer(role, true, opcode, &payload);
            let got = run(
                &format!("long_{role:?}_{opcode}"),
                || new_conn(role, Config::default()),
                &long,
                false,
            );
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::ControlFrameTooLong(126)));

            let fragmented = from_peer(role, false, opcode, b"");
            let got = run(
                &format!("frag_{role:?}_{opcode}"),
                || new_conn(role, Config::default()),
                &fragmented,
                false,
            );
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::FragmentedControlFrame));
        }
    }
}

#[test]
fn rfc6455_5_5_2_ten_thousand_pings_in_one_read_backlog_at_most_8kib_plus_one_pong() {
    // The application writes nothing while 10 000 Pings arrive in one read; Pongs stop being
    // queued once 8 KiB is pending and the newest one waits in a single slot (§5.5.3: "only
    // the most recent").
    const PINGS: usize = 10_000;
    let payload = |i: usize| format!("{i:0>125}").into_bytes();
    let input: Vec<u8> = (0..PINGS)
        .flat_map(|i| c2s(true, PING, &payload(i)))
        .collect();
    for (name, cut) in [
        ("whole", Cut::Whole),
        ("bytewise", Cut::Bytewise),
        ("random", Cut::Random(7)),
    ] {
        let cuts = chunks("ping_flood", &input, cut);
        let mut conn = server();
        let mut pings = 0;
        let mut max_pending = 0;
        for chunk in cuts {
            let _ = conn.receive(chunk);
            while let Some(event) = conn.poll_event() {
                assert!(matches!(event, Event::Ping(_)));
                pings += 1;
                max_pending = max_pending.max(conn.transmit_len());
            }
            max_pending = max_pending.max(conn.transmit_len());
        }
        assert_eq!(pings, PINGS, "{name}");
        let pong = 2 + 125;
        println!("ping flood ({name}): {max_pending} bytes pending at most");
        assert!(
            max_pending <= (8 << 10) + pong,
            "{name}: {max_pending} bytes pending"
        );
        // Once the application writes, the newest Ping gets its Pong.
        let mut out = Vec::new();
        while !conn.pending_transmit().is_empty() {
            let chunk = conn.pending_transmit();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            conn.advance_transmit(n);
        }
        let frames = parse_output(Role::Server, &out);
        assert!(frames.iter().all(|(op, _)| *op == PONG));
        assert_eq!(
            frames.last().unwrap().1,
            payload(PINGS - 1),
            "{name}: newest Ping answered"
        );
        assert!(frames.len() < 100, "{name}: {} pongs", frames.len());
    }
}

#[test]
fn rfc6455_5_2_frame_limit_counts_declared_length_not_received_bytes() {
    // A 16 MiB + 1 frame is refused on its header (1009) even though no payload came.
    let input = header(0x82, (16 << 20) + 1, Some(KEY));
    run("limit_plus_one", server, &input, false).assert_failed(1009);
    // Exactly at the limit, the header is accepted and the payload awaited.
    let input = header(0x82, 16 << 20, Some(KEY));
    let got = run("limit_exact", server, &input, false);
    assert_eq!((got.error, got.events.len()), (None, 0));
}
