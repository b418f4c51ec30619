//! The closing handshake (RFC 6455 §5.5.1, §7): echoes, payload checks, EOF, timeouts, and
//! what may not be sent or delivered after Close.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    Clock, client, close_event, close_payload, drain_events, drain_frames, drain_transmit, feed,
    op, server, to_client, to_server,
};
use rfc6455::frame::Opcode;
use rfc6455::{
    CloseCode, Config, Connection, Event, Message, MessageKind, PreparedMessage, ProtocolError,
    State, UsageError,
};

/// Feeds a Close frame with `payload` to a server; returns the result, events and output.
fn server_gets_close(
    payload: &[u8],
) -> (
    Connection,
    Result<(), ProtocolError>,
    Vec<Event>,
    Vec<common::WireFrame>,
) {
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &to_server(true, op::CLOSE, payload));
    (s, r, events, frames)
}

#[test]
fn rfc6455_5_5_1_close_is_echoed_with_its_code() {
    let (s, r, events, frames) = server_gets_close(&close_payload(1000, b"bye"));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [close_event(1000, "bye")]);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close(), Some((1000, &b""[..])));
    assert_eq!(frames[0].mask, None);
    assert_eq!(s.state(), State::Closed);
    assert!(s.close_received() && s.close_sent());
    assert!(
        s.wants_shutdown(),
        "RFC 6455 §7.1.1: the server closes TCP first"
    );
}

#[test]
fn rfc6455_5_5_1_client_echo_is_masked_and_client_waits_for_tcp_close() {
    let mut c = client(Config::default());
    let (r, events, frames) = feed(
        &mut c,
        &to_client(true, op::CLOSE, &close_payload(4321, b"")),
    );
    assert_eq!(r, Ok(()));
    assert_eq!(events, [close_event(4321, "")]);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].mask, Some(common::RFC_KEY));
    assert_eq!(frames[0].close(), Some((4321, &b""[..])));
    assert_eq!(c.state(), State::Closed);
    assert!(!c.wants_shutdown() && !c.is_terminated());
    assert_eq!(c.receive_eof(), Ok(()));
    assert!(c.is_terminated() && c.wants_shutdown());
    assert_eq!(c.error(), None);
}

#[test]
fn rfc6455_7_1_5_empty_close_reports_1005_and_is_echoed_empty() {
    let (_, r, events, frames) = server_gets_close(b"");
    assert_eq!(r, Ok(()));
    assert_eq!(events, [close_event(1005, "")]);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].payload, b"", "1005 must not appear on the wire");
}

#[test]
fn rfc6455_5_5_1_one_byte_close_payload_fails_1002() {
    let (s, r, events, frames) = server_gets_close(&[0x03]);
    assert_eq!(r, Err(ProtocolError::CloseFrameTooShort));
    assert_eq!(events, []);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1002));
    assert_eq!(s.state(), State::Closed);
    assert!(!s.close_received());
}

#[test]
fn rfc6455_7_4_invalid_received_close_codes_fail_1002() {
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let (_, r, events, frames) = server_gets_close(&close_payload(code, b"why"));
        assert_eq!(r, Err(ProtocolError::InvalidCloseCode(code)), "code {code}");
        assert_eq!(events, [], "code {code}");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close_code(), Some(1002), "code {code}");
    }
}

#[test]
fn rfc6455_7_4_valid_received_close_codes_are_reported_and_echoed() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        let (_, r, events, frames) = server_gets_close(&close_payload(code, b""));
        assert_eq!(r, Ok(()), "code {code}");
        assert_eq!(events, [close_event(code, "")]);
        assert_eq!(frames[0].close_code(), Some(code));
    }
}

#[test]
fn rfc6455_5_5_1_close_reason_of_123_bytes_accepted() {
    let reason = "é".repeat(61) + "x"; // 123 bytes, multi-byte code points
    assert_eq!(reason.len(), 123);
    let (_, r, events, _) = server_gets_close(&close_payload(1000, reason.as_bytes()));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [close_event(1000, &reason)]);
}

#[test]
fn rfc6455_5_5_close_payload_of_126_bytes_fails_1002() {
    let (_, r, _, frames) = server_gets_close(&close_payload(1000, &[b'a'; 124]));
    assert_eq!(r, Err(ProtocolError::ControlFrameTooLong(126)));
    assert_eq!(frames[0].close_code(), Some(1002));
}

#[test]
fn rfc6455_5_5_1_non_utf8_close_reason_fails_1007() {
    for reason in [&b"\xff"[..], b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf"] {
        let (_, r, events, frames) = server_gets_close(&close_payload(1000, reason));
        assert_eq!(r, Err(ProtocolError::InvalidCloseReason), "{reason:02x?}");
        assert_eq!(events, []);
        assert_eq!(frames[0].close_code(), Some(1007));
    }
}

#[test]
fn rfc6455_7_1_5_eof_mid_frame_fails_1006_and_sends_nothing() {
    let whole = to_server(true, op::TEXT, b"Hello, world");
    for cut in [1, 2, 5, 6, whole.len() - 1] {
        let mut s = server(Config::default());
        assert_eq!(s.receive(&whole[..cut]), Ok(()));
        assert_eq!(
            s.receive_eof(),
            Err(ProtocolError::UnexpectedEof),
            "cut {cut}"
        );
        assert_eq!(s.error(), Some(ProtocolError::UnexpectedEof));
        assert_eq!(s.error().unwrap().close_code(), CloseCode::ABNORMAL);
        assert_eq!(drain_events(&mut s), []);
        assert_eq!(s.transmit_len(), 0, "1006 never goes on the wire");
        assert_eq!(s.state(), State::Closed);
        assert!(s.is_terminated());
        // Sticky: later input changes nothing.
        assert_eq!(s.receive(&whole), Err(ProtocolError::UnexpectedEof));
        assert_eq!(drain_events(&mut s), []);
    }
}

#[test]
fn rfc6455_7_1_5_eof_between_frames_without_close_fails_1006() {
    let mut s = server(Config::default());
    let (r, events, _) = feed(&mut s, &to_server(true, op::TEXT, b"hi"));
    assert_eq!((r, events), (Ok(()), vec![common::text("hi")]));
    assert_eq!(s.receive_eof(), Err(ProtocolError::UnexpectedEof));
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_7_1_5_after_eof_failure_nothing_can_be_sent() {
    let mut s = server(Config::default());
    s.receive(&to_server(true, op::TEXT, b"hi")[..3]).unwrap();
    assert_eq!(s.receive_eof(), Err(ProtocolError::UnexpectedEof));
    assert_eq!(s.state(), State::Closed);
    // The transport is gone: a queued frame could never be written, and State::Closed
    // documents that nothing more is sent. Each refusal carries the sticky reason.
    let failed = Err(UsageError::Failed(ProtocolError::UnexpectedEof));
    assert_eq!(s.send_text("too late"), failed);
    assert_eq!(s.send_ping(b""), failed);
    assert_eq!(s.send_close(CloseCode::NORMAL, ""), failed);
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_7_1_5_eof_delivers_close_that_was_buffered_behind_many_events() {
    // 40 messages and a Close arrive in one read, then EOF before the application polled.
    // receive_eof documents that complete frames already buffered still count.
    let mut wire = Vec::new();
    for i in 0..40 {
        wire.extend(to_server(true, op::TEXT, format!("m{i}").as_bytes()));
    }
    wire.extend(to_server(true, op::CLOSE, &close_payload(1000, b"")));
    let mut s = server(Config::default());
    assert_eq!(s.receive(&wire), Ok(()));
    assert_eq!(s.receive_eof(), Ok(()), "the Close was in the buffer");
    let events = drain_events(&mut s);
    assert_eq!(events.len(), 41);
    assert_eq!(events[40], close_event(1000, ""));
}

#[test]
fn rfc6455_7_1_1_eof_after_closing_handshake_is_clean() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut s);
    let (r, events, frames) = feed(
        &mut s,
        &to_server(true, op::CLOSE, &close_payload(1000, b"")),
    );
    assert_eq!(
        (r, events.len(), frames.len()),
        (Ok(()), 1, 0),
        "no second Close"
    );
    assert_eq!(s.receive_eof(), Ok(()));
    assert!(s.is_terminated());
    assert_eq!(s.error(), None);
}

#[test]
fn rfc6455_7_1_5_eof_after_our_close_but_before_peers_fails_1006() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut s);
    assert_eq!(s.receive_eof(), Err(ProtocolError::UnexpectedEof));
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_5_5_1_data_after_peers_close_is_not_delivered() {
    let mut wire = to_server(true, op::TEXT, b"before");
    wire.extend(to_server(true, op::CLOSE, &close_payload(1000, b"")));
    wire.extend(to_server(true, op::TEXT, b"after"));
    wire.extend(to_server(true, op::PING, b"after"));
    wire.extend([0xff; 10]); // even garbage is ignored
    let mut s = server(Config::default());
    let (r, events, frames) = feed(&mut s, &wire);
    assert_eq!(r, Ok(()));
    assert_eq!(events, [common::text("before"), close_event(1000, "")]);
    assert_eq!(
        frames.len(),
        1,
        "only the echo; no Pong after Close: {frames:?}"
    );
    assert_eq!(frames[0].opcode, Opcode::Close);
    // Later reads are ignored too.
    let (r, events, frames) = feed(&mut s, &to_server(true, op::TEXT, b"later"));
    assert_eq!((r, events.len(), frames.len()), (Ok(()), 0, 0));
}

#[test]
fn rfc6455_7_1_2_messages_still_delivered_after_we_sent_close() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut s);
    assert_eq!(s.state(), State::CloseSent);
    let (r, events, frames) = feed(&mut s, &to_server(true, op::BINARY, b"late data"));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [common::binary(b"late data")]);
    assert_eq!(frames, []);
}

#[test]
fn rfc6455_5_5_1_no_pong_after_we_sent_close() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut s);
    let (r, events, frames) = feed(&mut s, &to_server(true, op::PING, b"p"));
    assert_eq!(r, Ok(()));
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"p"))]);
    assert_eq!(frames, []);
}

#[test]
fn rfc6455_5_5_1_send_after_close_is_usage_error_and_writes_nothing() {
    for mut conn in [server(Config::default()), client(Config::default())] {
        conn.send_close(CloseCode::NORMAL, "bye").unwrap();
        let before = conn.transmit_len();
        assert_eq!(
            before,
            if conn.role() == rfc6455::Role::Server {
                7
            } else {
                11
            }
        );
        assert_eq!(conn.send_text("x"), Err(UsageError::Closed));
        assert_eq!(conn.send_binary(b"x"), Err(UsageError::Closed));
        assert_eq!(conn.send(Message::from("x")), Err(UsageError::Closed));
        assert_eq!(
            conn.send_fragment(MessageKind::Binary, b"x", true),
            Err(UsageError::Closed)
        );
        assert_eq!(conn.send_ping(b"x"), Err(UsageError::Closed));
        assert_eq!(conn.send_pong(b"x"), Err(UsageError::Closed));
        assert_eq!(
            conn.send_close(CloseCode::NORMAL, ""),
            Err(UsageError::Closed)
        );
        let prepared = PreparedMessage::new(&Message::from("x"), &Config::default());
        assert!(conn.send_prepared(&prepared).is_err());
        assert_eq!(conn.transmit_len(), before);
        let frames = drain_frames(&mut conn);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close(), Some((1000, &b"bye"[..])));
    }
}

#[test]
fn rfc6455_7_1_7_after_protocol_error_nothing_can_be_sent() {
    let mut s = server(Config::default());
    let (r, _, frames) = feed(&mut s, &to_client(true, op::TEXT, b"unmasked"));
    assert_eq!(r, Err(ProtocolError::UnmaskedFrame));
    assert_eq!(frames[0].close_code(), Some(1002));
    // Refused with the reason the connection failed, not a bare "closed".
    let failed = Err(UsageError::Failed(ProtocolError::UnmaskedFrame));
    assert_eq!(s.send_text("x"), failed);
    assert_eq!(s.send_ping(b"x"), failed);
    assert_eq!(s.transmit_len(), 0);
}

#[test]
fn rfc6455_7_1_7_error_after_our_close_queues_no_second_close() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::GOING_AWAY, "").unwrap();
    let ours = drain_frames(&mut s);
    assert_eq!(ours[0].close_code(), Some(1001));
    let (r, events, frames) = feed(&mut s, &to_server(true, op::TEXT, b"\xff"));
    assert_eq!(r, Err(ProtocolError::InvalidUtf8));
    assert_eq!(events, []);
    assert_eq!(frames, [], "a Close was already sent");
    assert_eq!(s.state(), State::Closed);
    assert!(s.wants_shutdown());
}

#[test]
fn rfc6455_7_4_invalid_close_code_to_send_is_usage_error() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut s = server(Config::default());
        assert_eq!(
            s.send_close(CloseCode(code), "r"),
            Err(UsageError::InvalidCloseCode(code))
        );
        assert_eq!(s.transmit_len(), 0);
        assert_eq!(
            s.state(),
            State::Open,
            "nothing was queued, so nothing changed"
        );
        s.send_text("still open").unwrap();
    }
}

#[test]
fn rfc6455_5_5_close_reason_over_123_bytes_is_usage_error() {
    let mut s = server(Config::default());
    assert_eq!(
        s.send_close(CloseCode::NORMAL, &"r".repeat(124)),
        Err(UsageError::CloseReasonTooLong(124))
    );
    assert_eq!(s.transmit_len(), 0);
    assert_eq!(s.state(), State::Open);
    s.send_close(CloseCode::NORMAL, &"r".repeat(123)).unwrap();
    let frames = drain_frames(&mut s);
    assert_eq!(frames[0].payload.len(), 125);
}

#[test]
fn rfc6455_7_1_5_close_without_status_sends_empty_body() {
    let mut s = server(Config::default());
    s.send_close(CloseCode::NO_STATUS, "").unwrap();
    assert_eq!(drain_transmit(&mut s), [0x88, 0x00]);
}

#[test]
fn rfc6455_7_1_7_close_after_failure_carries_the_code_and_a_reason() {
    let mut s = server(Config::default());
    let (_, _, frames) = feed(&mut s, &to_server(true, op::TEXT, b"\xff"));
    assert_eq!(s.error(), Some(ProtocolError::InvalidUtf8));
    let (code, reason) = frames[0].close().unwrap();
    assert_eq!(code, 1007);
    assert!(reason.len() <= 123 && std::str::from_utf8(reason).is_ok());
}

#[test]
fn rfc6455_7_1_1_close_timeout_when_peer_never_answers() {
    let config = Config::default().close_timeout(Duration::from_secs(5));
    let mut c = Connection::client(config, common::fixed_entropy(common::RFC_KEY));
    let mut clock = Clock::new();
    clock.set(&mut c, Duration::from_secs(1));
    assert_eq!(
        c.poll_timeout(),
        None,
        "no timers while open without keepalive"
    );
    c.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut c);
    // The close timer waits for a clock reading and counts from it (see `Connection`'s
    // rustdoc, "Time"): the adapter reads the clock at once.
    assert_eq!(c.poll_timeout(), Some(Duration::ZERO));
    clock.tick(&mut c);
    assert_eq!(c.poll_timeout(), Some(Duration::from_secs(6)));
    clock.set(&mut c, Duration::from_millis(5_999));
    assert!(!c.is_terminated());
    assert_eq!(clock.fire_next(&mut c), Some(Duration::from_secs(6)));
    assert!(
        c.is_terminated(),
        "the close timeout lets the adapter drop the transport"
    );
    assert_eq!(c.poll_timeout(), None);
    // RFC 6455 §7.1.5: no Close was received, so the close code is 1006, and the caller can
    // tell this from a clean close.
    assert_eq!(c.error(), Some(ProtocolError::CloseTimeout));
    assert_eq!(
        c.error().map(|e| e.close_code().as_u16()),
        Some(1006),
        "1006, never sent"
    );
    assert_eq!(c.transmit_len(), 0, "nothing more goes out after our Close");
    assert!(c.poll_event().is_none());
}

/// A client on a test clock that has sent (and written) its Close, 1000.
fn client_after_its_close() -> (Connection, Clock) {
    let mut c = client(Config::default());
    let clock = Clock::new();
    clock.attach(&mut c);
    c.send_close(CloseCode::NORMAL, "").unwrap();
    drain_transmit(&mut c);
    (c, clock)
}

#[test]
fn rfc6455_7_1_1_close_timeout_after_both_closes_is_still_a_clean_close() {
    // Our Close answered, but the server never closes TCP: the client gives up on waiting
    // (it "MAY close the connection at any time after sending and receiving a Close
    // message"), and the close stays clean.
    let (mut c, mut clock) = client_after_its_close();
    c.receive(&to_client(true, op::CLOSE, &close_payload(1000, b"")))
        .unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Close(_))));
    assert!(clock.fire_next(&mut c).is_some());
    assert!(c.is_terminated());
    assert_eq!(c.error(), None);
}

#[test]
fn rfc6455_7_1_1_close_timeout_keeps_an_earlier_error() {
    // A protocol error sends our Close (1002) and starts the close timeout; when the peer does
    // not answer that either, the error reported is still the one that failed the connection.
    let mut c = client(Config::default());
    let mut clock = Clock::new();
    clock.attach(&mut c);
    let err = c.receive(&[0x83, 0x00]).unwrap_err();
    assert_eq!(err.close_code().as_u16(), 1002);
    drain_transmit(&mut c);
    assert!(clock.fire_next(&mut c).is_some());
    assert!(c.is_terminated());
    assert_eq!(c.error(), Some(err));
}

#[test]
fn rfc6455_7_1_1_close_timeout_keeps_an_error_found_behind_undelivered_messages() {
    // After our Close the server sends a message and then a frame with a reserved opcode; the
    // error waits behind the message. The close timeout fires before the application polls:
    // the message is still delivered, and the error reported is the peer's, not the timeout.
    let (mut c, mut clock) = client_after_its_close();
    let mut input = to_client(true, op::TEXT, b"late");
    input.extend_from_slice(&[0x83, 0x00]);
    c.receive(&input).unwrap();
    assert!(clock.fire_next(&mut c).is_some());
    assert!(c.is_terminated());
    let events = drain_events(&mut c);
    assert!(
        matches!(&events[..], [Event::Message(Message::Text(t))] if *t == "late"),
        "{events:?}"
    );
    assert_eq!(c.error(), Some(ProtocolError::ReservedOpcode(3)));
}

#[test]
fn rfc6455_7_1_1_close_timeout_ends_in_a_shutdown_and_closed_state() {
    // `wants_shutdown` documents "the client once the close timeout has passed", and
    // `State::Closed` "the closing handshake is over, failed, or the transport ended". A
    // client whose Close was never answered has passed its close timeout.
    let (mut c, mut clock) = client_after_its_close();
    assert_eq!(clock.fire_next(&mut c), Some(Duration::from_secs(10)));
    assert!(c.is_terminated());
    assert!(c.wants_shutdown(), "client after the close timeout");
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn rfc6455_7_1_1_server_wants_shutdown_only_after_echo_is_written() {
    let mut s = server(Config::default());
    s.receive(&to_server(true, op::CLOSE, &close_payload(1000, b"")))
        .unwrap();
    // The echo is written when the application polls the Close event.
    assert_eq!(s.transmit_len(), 0);
    assert!(matches!(s.poll_event(), Some(Event::Close(_))));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.transmit_len(), 4);
    assert!(!s.wants_shutdown(), "the echo is not written yet");
    s.advance_transmit(3);
    assert!(!s.wants_shutdown());
    s.advance_transmit(1);
    assert!(s.wants_shutdown());
    assert!(!s.is_terminated());
    assert_eq!(s.receive_eof(), Ok(()));
    assert!(s.is_terminated());
}

#[test]
fn rfc6455_7_1_1_close_deadline_starts_when_peers_close_arrives() {
    let mut c = client(Config::default());
    let mut clock = Clock::new();
    clock.set(&mut c, Duration::from_secs(50));
    c.receive(&to_client(true, op::CLOSE, b"")).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Close(_))));
    assert_eq!(c.poll_timeout(), Some(Duration::ZERO));
    clock.tick(&mut c);
    assert_eq!(c.poll_timeout(), Some(Duration::from_secs(60)));
    clock.fire_next(&mut c);
    assert!(c.is_terminated());
    drain_transmit(&mut c);
    assert!(c.wants_shutdown());
}
