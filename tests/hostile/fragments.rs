//! Hostile fragmentation and UTF-8 (RFC 6455 §5.4, §8.1).

use super::harness::*;
use rfc6455::{Config, Connection, Event, Message, ProtocolError};

#[test]
fn rfc6455_5_4_continuation_with_nothing_to_continue_fails_1002() {
    for fin in [true, false] {
        let got = run(
            &format!("lone_cont_{fin}"),
            server,
            &c2s(fin, CONT, b"x"),
            false,
        );
        got.assert_failed(1002);
        assert_eq!(got.error, Some(ProtocolError::UnexpectedContinuation));
    }
    // Also right after a complete message.
    let mut input = c2s(true, TEXT, b"done");
    input.extend(c2s(true, CONT, b"x"));
    let got = run("cont_after_message", server, &input, false);
    got.assert_failed(1002);
    assert_eq!(got.events, [Event::Message(Message::Text("done".into()))]);
}

#[test]
fn rfc6455_5_4_new_message_inside_a_fragmented_one_fails_1002() {
    for opcode in [TEXT, BINARY] {
        for fin in [true, false] {
            let mut input = c2s(false, BINARY, b"first");
            input.extend(c2s(true, PING, b"")); // control frames may interleave
            input.extend(c2s(fin, opcode, b"second"));
            let got = run(&format!("nested_{opcode}_{fin}"), server, &input, false);
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::ExpectedContinuation));
            assert_eq!(got.events, [Event::Ping(bytes::Bytes::new())]);
            assert_eq!(got.frames[0], (PONG, vec![]));
        }
    }
}

#[test]
fn rfc8_1_invalid_utf8_in_second_fragment_fails_1007_before_fin() {
    // The input stops after the bad fragment (FIN clear): failing only at FIN would be late.
    let mut input = c2s(false, TEXT, "héllo ".as_bytes());
    input.extend(c2s(false, CONT, b"ok \xff more"));
    let got = run("bad_second_fragment", server, &input, false);
    got.assert_failed(1007);
    assert_eq!(got.error, Some(ProtocolError::InvalidUtf8));
    assert!(got.events.is_empty());
    // Even when only the bad byte of that fragment has arrived.
    let mut input = c2s(false, TEXT, b"abc");
    let second = c2s(false, CONT, &[b'x', 0xc0, b'y', b'z']);
    input.extend_from_slice(&second[..2 + 4 + 2]);
    run("bad_byte_before_frame_end", server, &input, false).assert_failed(1007);
}

#[test]
fn rfc8_1_code_point_split_across_three_fragments_is_accepted() {
    let smile = "😀".as_bytes(); // F0 9F 98 80
    let mut input = c2s(false, TEXT, &smile[..1]);
    input.extend(c2s(false, CONT, &smile[1..2]));
    input.extend(c2s(true, CONT, &smile[2..]));
    let got = run("split_code_point", server, &input, false);
    assert_eq!(got.error, None);
    assert_eq!(got.events, [Event::Message(Message::Text("😀".into()))]);
    // With empty fragments in between, and a trailing empty FIN fragment.
    let mut input = c2s(false, TEXT, b"");
    input.extend(c2s(false, CONT, &smile[..3]));
    input.extend(c2s(false, CONT, b""));
    input.extend(c2s(false, CONT, &smile[3..]));
    input.extend(c2s(true, CONT, b""));
    let got = run("split_code_point_empty", server, &input, false);
    assert_eq!(got.events, [Event::Message(Message::Text("😀".into()))]);
}

#[test]
fn rfc8_1_surrogates_overlongs_and_f5_to_ff_fail_1007() {
    let mut bad: Vec<(String, Vec<u8>)> = vec![
        ("surrogate_d800".into(), vec![0xed, 0xa0, 0x80]),
        ("surrogate_dfff".into(), vec![0xed, 0xbf, 0xbf]),
        (
            "surrogate_pair".into(),
            vec![0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9],
        ),
        ("overlong_slash_2".into(), vec![0xc0, 0xaf]),
        ("overlong_slash_3".into(), vec![0xe0, 0x80, 0xaf]),
        ("overlong_slash_4".into(), vec![0xf0, 0x80, 0x80, 0xaf]),
        ("overlong_nul".into(), vec![0xc0, 0x80]),
        ("overlong_c1".into(), vec![0xc1, 0xbf]),
        ("above_10ffff".into(), vec![0xf4, 0x90, 0x80, 0x80]),
        ("lone_continuation".into(), vec![0x80]),
        ("truncated_at_fin".into(), vec![0xe2, 0x82]),
    ];
    for b in 0xf5..=0xffu8 {
        bad.push((format!("byte_{b:02x}"), vec![b'a', b]));
    }
    for (name, text) in bad {
        // Whole message, and the same bytes as the first fragment of an unfinished message
        // (except "truncated", which is only wrong once FIN says nothing follows).
        let got = run(&name, server, &c2s(true, TEXT, &text), false);
        got.assert_failed(1007);
        assert!(got.events.is_empty(), "{name}");
        if name != "truncated_at_fin" {
            run(
                &format!("{name}_fragment"),
                server,
                &c2s(false, TEXT, &text),
                false,
            )
            .assert_failed(1007);
        }
    }
    // Binary messages are not checked.
    let got = run(
        "binary_ff",
        server,
        &c2s(true, BINARY, &[0xff, 0xed, 0xa0, 0x80]),
        false,
    );
    assert_eq!(got.error, None);
}

#[test]
fn rfc6455_5_4_message_crossing_max_message_size_by_one_byte_fails_1009_at_that_fragment() {
    let config = Config::default().max_message_size(1000);
    let make = || Connection::server(config.clone());
    // 600 + 400 = 1000 is fine.
    let mut input = c2s(false, BINARY, &[1; 600]);
    input.extend(c2s(true, CONT, &[2; 400]));
    let got = run("at_limit", make, &input, false);
    assert_eq!(got.error, None);
    assert!(matches!(&got.events[..], [Event::Message(Message::Binary(b))] if b.len() == 1000));
    // 600 + 401: refused on the second fragment's header, before its payload arrives.
    let mut input = c2s(false, BINARY, &[1; 600]);
    input.extend(header(0x00, 401, Some(KEY)));
    let got = run("over_by_one", make, &input, false);
    got.assert_failed(1009);
    assert_eq!(
        got.error,
        Some(ProtocolError::MessageTooLarge {
            size: 1001,
            limit: 1000
        })
    );
    // Same with a text message.
    let mut input = c2s(false, TEXT, &[b'a'; 1000]);
    input.extend(header(0x80, 1, Some(KEY)));
    run("text_over_by_one", make, &input, false).assert_failed(1009);
}
