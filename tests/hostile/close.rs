//! Hostile closing handshakes (RFC 6455 §5.5.1, §7).

use super::harness::*;
use rfc6455::{
    CloseCode, CloseFrame, Event, Message, MessageKind, ProtocolError, State, UsageError,
};

fn close_event(code: u16, reason: &str) -> Event {
    Event::Close(CloseFrame::new(CloseCode(code), reason))
}

#[test]
fn rfc6455_5_5_1_one_byte_close_payload_fails_1002() {
    let got = run("close_1_byte", server, &c2s(true, CLOSE, &[0x03]), false);
    got.assert_failed(1002);
    assert_eq!(got.error, Some(ProtocolError::CloseFrameTooShort));
    assert!(got.events.is_empty());
}

/// Every one of the 65 536 codes: 1000-1003, 1007-1014 and 3000-4999 are echoed; every other
/// code (0-999, 1004-1006, 1015-2999, 5000-65535) fails with 1002. Whole and byte by byte
/// for all; the seeded random cuts for a sample (every 97th code and the range ends).
#[test]
fn rfc6455_7_4_every_close_code_echoed_or_failed_1002() {
    let mut echoed = 0;
    for code in 0..=u16::MAX {
        let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
        let input = c2s(true, CLOSE, &close_payload(code, b"why"));
        let edge = [
            0, 999, 1000, 1003, 1004, 1006, 1007, 1014, 1015, 2999, 3000, 4999, 5000,
        ];
        let cuts: &[Cut] = if code % 97 == 0 || edge.contains(&code) {
            &CUTS
        } else {
            &CUTS[..2]
        };
        let got = run_cuts(&format!("close_{code}"), server, &input, false, cuts);
        if valid {
            assert_eq!(got.events, [close_event(code, "why")], "{code}");
            assert_eq!(got.error, None);
            // Echoed with the same code (and no reason).
            assert_eq!(got.frames, [(CLOSE, code.to_be_bytes().to_vec())], "{code}");
            echoed += 1;
        } else {
            got.assert_failed(1002);
            assert_eq!(got.error, Some(ProtocolError::InvalidCloseCode(code)));
            assert!(got.events.is_empty(), "{code}");
        }
    }
    assert_eq!(echoed, 4 + 8 + 2000);
}

#[test]
fn rfc6455_5_5_1_empty_close_is_1005_and_echoed_empty() {
    let got = run("close_empty", server, &c2s(true, CLOSE, b""), false);
    assert_eq!(got.events, [close_event(1005, "")]);
    assert_eq!(got.frames, [(CLOSE, vec![])]);
}

#[test]
fn rfc6455_5_5_close_reason_123_bytes_ok_124_fails_1002() {
    let reason = "r".repeat(123);
    let got = run(
        "reason_123",
        server,
        &c2s(true, CLOSE, &close_payload(1000, reason.as_bytes())),
        false,
    );
    assert_eq!(got.events, [close_event(1000, &reason)]);
    let got = run(
        "reason_124",
        server,
        &c2s(true, CLOSE, &close_payload(1000, &[b'r'; 124])),
        false,
    );
    got.assert_failed(1002);
    assert_eq!(got.error, Some(ProtocolError::ControlFrameTooLong(126)));
}

#[test]
fn rfc6455_5_5_1_non_utf8_close_reason_fails_1007() {
    for reason in [&b"\xff"[..], b"ok\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82"] {
        let got = run(
            "reason_not_utf8",
            server,
            &c2s(true, CLOSE, &close_payload(1000, reason)),
            false,
        );
        got.assert_failed(1007);
        assert_eq!(got.error, Some(ProtocolError::InvalidCloseReason));
        assert!(got.events.is_empty());
    }
}

#[test]
fn rfc6455_5_5_1_sends_after_close_are_usage_errors_and_write_nothing() {
    let check = |conn: &mut rfc6455::Connection, refused: UsageError| {
        let before = conn.transmit_len();
        assert_eq!(conn.send_text("x"), Err(refused));
        assert_eq!(conn.send_binary(b"x"), Err(refused));
        assert_eq!(conn.send_ping(b"x"), Err(refused));
        assert_eq!(conn.send_pong(b"x"), Err(refused));
        assert_eq!(conn.send_close(CloseCode::NORMAL, ""), Err(refused));
        assert_eq!(
            conn.send_fragment(MessageKind::Binary, b"x", true),
            Err(refused)
        );
        assert_eq!(conn.transmit_len(), before, "nothing queued");
    };
    // After our own Close.
    let mut conn = server();
    conn.send_close(CloseCode::NORMAL, "bye").unwrap();
    check(&mut conn, UsageError::Closed);
    // After echoing the peer's.
    let mut conn = server();
    conn.receive(&c2s(true, CLOSE, &close_payload(1001, b"")))
        .unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Close(_))));
    check(&mut conn, UsageError::Closed);
    // After a protocol error.
    let mut conn = server();
    let _ = conn.receive(&s2c(true, TEXT, b"unmasked"));
    // Refused with the sticky reason.
    let error = conn.error().expect("failed");
    check(&mut conn, UsageError::Failed(error));
    // After EOF.
    let mut conn = server();
    let _ = conn.receive_eof();
    check(&mut conn, UsageError::Failed(ProtocolError::UnexpectedEof));
}

#[test]
fn rfc6455_5_5_1_data_after_the_peers_close_is_not_delivered() {
    let mut input = c2s(true, TEXT, b"before");
    input.extend(c2s(true, CLOSE, &close_payload(1000, b"")));
    input.extend(c2s(true, TEXT, b"after"));
    input.extend(c2s(true, PING, b"after"));
    input.extend(s2c(true, TEXT, b"even invalid frames are ignored"));
    let got = run("after_close", server, &input, true);
    assert_eq!(
        got.events,
        [
            Event::Message(Message::Text("before".into())),
            close_event(1000, "")
        ]
    );
    assert_eq!(got.error, None, "EOF after the closing handshake is clean");
    assert_eq!(got.frames, [(CLOSE, 1000u16.to_be_bytes().to_vec())]);
}

#[test]
fn rfc6455_7_1_3_both_sides_closing_at_once() {
    // Each side sends its Close before reading the other's: neither echoes, both end Closed
    // having written exactly one Close.
    let mut server = server();
    let mut client = client();
    server.send_close(CloseCode(4001), "server").unwrap();
    client.send_close(CloseCode(4002), "client").unwrap();
    let take = |conn: &mut rfc6455::Connection| {
        let mut out = Vec::new();
        while !conn.pending_transmit().is_empty() {
            let chunk = conn.pending_transmit();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            conn.advance_transmit(n);
        }
        out
    };
    let to_client = take(&mut server);
    let to_server = take(&mut client);
    for (name, conn, input, code, reason) in [
        ("server", &mut server, &to_server, 4002, "client"),
        ("client", &mut client, &to_client, 4001, "server"),
    ] {
        for chunk in input.chunks(1) {
            conn.receive(chunk).unwrap();
        }
        let events: Vec<_> = std::iter::from_fn(|| conn.poll_event()).collect();
        assert_eq!(events, [close_event(code, reason)], "{name}");
        assert_eq!(conn.state(), State::Closed, "{name}");
        assert_eq!(conn.transmit_len(), 0, "{name} wrote a second Close");
        assert_eq!(conn.error(), None);
    }
    assert!(
        server.wants_shutdown(),
        "the server closes TCP first (§7.1.1)"
    );
}

#[test]
fn rfc6455_7_1_5_eof_mid_frame_reports_1006_and_sends_nothing() {
    let whole = c2s(true, TEXT, b"hello");
    for cut in 0..whole.len() {
        let got = run(&format!("eof_at_{cut}"), server, &whole[..cut], true);
        got.assert_failed(1006);
        assert_eq!(got.error, Some(ProtocolError::UnexpectedEof));
        assert!(got.frames.is_empty() && got.events.is_empty());
    }
    // Mid-fragmented message: the complete fragment is not delivered either.
    let mut input = c2s(false, TEXT, b"part");
    input.extend(c2s(true, PING, b""));
    let got = run("eof_mid_message", server, &input, true);
    got.assert_failed(1006);
    assert_eq!(got.events, [Event::Ping(bytes::Bytes::new())]);
    assert_eq!(got.frames, [(PONG, vec![])]);
    // The client side too.
    let got = run("client_eof", client, &s2c(true, BINARY, b"abc")[..3], true);
    got.assert_failed(1006);
}
