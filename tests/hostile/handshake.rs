//! Hostile opening handshakes, server side (RFC 6455 §4.2.1) and client side (§4.1).

use super::harness::*;
use rfc6455::{Config, Event, HandshakeError, Message};

fn default() -> Config {
    Config::default()
}

#[test]
fn rfc7230_too_many_headers_10000_fails_431() {
    let extra: String = (0..10_000).map(|i| format!("X-{i}: y\r\n")).collect();
    let got = run_server("too_many_headers", &default(), &request_with(&extra));
    got.assert_rejected(431, &["Connection: close"]);
    assert_eq!(got.error, Some(HandshakeError::TooManyHeaders(64)));
}

#[test]
fn rfc7230_20mb_header_line_in_1kib_chunks_fails_431_buffering_at_most_the_cap() {
    // The head cap is 16 KiB: the handshake may hold at most that much of the request (a Vec
    // growing by doubling may reserve up to twice it while copying), whatever is streamed.
    let config = default();
    let mut input = b"GET /chat HTTP/1.1\r\nX-Long: ".to_vec();
    input.resize(20 << 20, b'a');
    let got = run_server("20mb_header_line", &config, &input);
    got.assert_rejected(431, &[]);
    assert_eq!(got.error, Some(HandshakeError::HeadTooLarge(16 << 10)));
    let (got, peak) = measure(|| server_handshake(&config, chunks("", &input, Cut::Every(KIB))));
    assert_eq!(got.error, Some(HandshakeError::HeadTooLarge(16 << 10)));
    assert_peak(
        "20 MB header line, 1 KiB reads",
        peak,
        2 * config.max_handshake_size + 4 * KIB,
    );
}

#[test]
fn rfc6455_4_2_1_bad_missing_or_duplicate_key_fails_400() {
    let base = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Version: 13\r\n";
    let cases = [
        ("key_missing", String::new()),
        (
            "key_short",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n".into(),
        ),
        (
            "key_17_bytes",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==QQ==\r\n".into(),
        ),
        (
            "key_bad_char",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==\r\n".into(),
        ),
        ("key_empty", "Sec-WebSocket-Key: \r\n".into()),
        (
            "key_duplicate",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                .into(),
        ),
    ];
    for (name, key) in cases {
        let input = format!("{base}{key}\r\n");
        run_server(name, &default(), input.as_bytes()).assert_rejected(400, &[]);
    }
}

#[test]
fn rfc6455_4_2_2_versions_other_than_13_fail_426_naming_13() {
    let base = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    for version in [
        Some("0"),
        Some("7"),
        Some("8"),
        Some("12"),
        Some("14"),
        Some("013"),
        Some("13, 8"),
        Some(""),
        None,
    ] {
        let line = version.map_or(String::new(), |v| format!("Sec-WebSocket-Version: {v}\r\n"));
        let input = format!("{base}{line}\r\n");
        let got = run_server(
            &format!("version_{version:?}"),
            &default(),
            input.as_bytes(),
        );
        got.assert_rejected(426, &["Sec-WebSocket-Version: 13", "Upgrade: websocket"]);
        assert_eq!(got.error, Some(HandshakeError::UnsupportedVersion));
    }
}

#[test]
fn rfc6455_4_2_1_post_fails_405_allowing_get() {
    let input = String::from_utf8(request_with(""))
        .unwrap()
        .replacen("GET", "POST", 1);
    let got = run_server("post", &default(), input.as_bytes());
    got.assert_rejected(405, &["Allow: GET"]);
    assert_eq!(got.error, Some(HandshakeError::MethodNotAllowed));
}

#[test]
fn rfc6455_4_2_1_http_1_0_fails_400() {
    let input = String::from_utf8(request_with(""))
        .unwrap()
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    run_server("http10", &default(), input.as_bytes()).assert_rejected(400, &[]);
}

#[test]
fn rfc7230_5_4_missing_or_duplicate_host_fails_400() {
    let no_host = String::from_utf8(request_with(""))
        .unwrap()
        .replace("Host: server.example.com\r\n", "");
    run_server("no_host", &default(), no_host.as_bytes()).assert_rejected(400, &[]);
    let two = request_with("Host: evil.example\r\n");
    run_server("two_hosts", &default(), &two).assert_rejected(400, &[]);
    let same_twice = request_with("Host: server.example.com\r\n");
    run_server("same_host_twice", &default(), &same_twice).assert_rejected(400, &[]);
}

#[test]
fn rfc6455_4_2_1_connection_list_and_upgrade_case_accepted() {
    let input = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n\
                 Connection: keep-alive, Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let got = run_server("keep_alive_upgrade", &default(), input.as_bytes());
    let run = got.assert_accepted();
    assert!(run.events.is_empty() && run.frames.is_empty());
    assert!(
        got.response_text()
            .contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
    );
}

/// 16 KB list values (the head cap is 16 KiB) parse in one linear pass: no timing assert,
/// the time is printed. Outcomes: a valid list is accepted whatever its length; an
/// all-empty list or an unterminated quoted-string is a 400.
#[test]
fn rfc6455_4_3_pathological_16kb_protocol_and_extension_values() {
    let n = 16_000;
    let cases: Vec<(&str, String, Option<u16>)> = vec![
        (
            "protocols_a_comma",
            "Sec-WebSocket-Protocol: ".to_owned() + &"a,".repeat(n / 2),
            None,
        ),
        (
            "protocols_commas_only",
            "Sec-WebSocket-Protocol: ".to_owned() + &",".repeat(n),
            Some(400),
        ),
        (
            "protocols_spaces_then_token",
            "Sec-WebSocket-Protocol: ".to_owned() + &" ,".repeat(n / 2) + "a",
            None,
        ),
        (
            "protocols_one_long_token",
            "Sec-WebSocket-Protocol: ".to_owned() + &"p".repeat(n),
            None,
        ),
        (
            "extensions_many_params",
            "Sec-WebSocket-Extensions: x".to_owned() + &"; a=1".repeat(n / 5),
            None,
        ),
        (
            "extensions_many_offers",
            "Sec-WebSocket-Extensions: ".to_owned() + &"x,".repeat(n / 2),
            None,
        ),
        (
            "extensions_escaped_quoted_value",
            "Sec-WebSocket-Extensions: x; a=\"".to_owned() + &"\\a".repeat(n / 2) + "\"",
            None,
        ),
        (
            "extensions_unterminated_quote",
            "Sec-WebSocket-Extensions: x; a=\"".to_owned() + &"\\a".repeat(n / 2),
            Some(400),
        ),
        (
            "extensions_semicolons",
            "Sec-WebSocket-Extensions: x".to_owned() + &";".repeat(n),
            Some(400),
        ),
    ];
    for (name, header, expected) in cases {
        let input = request_with(&format!("{header}\r\n"));
        assert!(input.len() < 16 << 10, "{name} fits under the head cap");
        let got = timed(&format!("16 KB value {name}"), || {
            run_server(name, &default(), &input)
        });
        match expected {
            None => {
                got.assert_accepted();
            }
            Some(status) => got.assert_rejected(status, &[]),
        }
    }
}

#[test]
fn rfc7230_3_5_bare_lf_line_endings_fail_400() {
    // Decided behaviour (src/handshake/mod.rs): only CRLF ends a line; a bare LF fails at once
    // with 400 rather than being read differently from a strict proxy in front of us.
    let bare = String::from_utf8(request_with(""))
        .unwrap()
        .replace("\r\n", "\n");
    run_server("bare_lf", &default(), bare.as_bytes()).assert_rejected(400, &[]);
    let one = String::from_utf8(request_with("")).unwrap().replacen(
        "Upgrade: websocket\r\n",
        "Upgrade: websocket\n",
        1,
    );
    run_server("one_bare_lf", &default(), one.as_bytes()).assert_rejected(400, &[]);
    let bare_cr = String::from_utf8(request_with(""))
        .unwrap()
        .replacen("\r\n", "\r", 1);
    run_server("bare_cr", &default(), bare_cr.as_bytes()).assert_rejected(400, &[]);
}

#[test]
fn rfc6455_4_2_2_request_and_first_frame_in_one_read_delivers_the_frame() {
    let mut input = request_with("");
    input.extend(c2s(true, TEXT, b"Hello"));
    input.extend(c2s(true, PING, b"p"));
    let got = run_server("request_plus_frame", &default(), &input);
    let run = got.assert_accepted();
    assert_eq!(
        run.events,
        [
            Event::Message(Message::Text("Hello".into())),
            Event::Ping(bytes::Bytes::from_static(b"p"))
        ]
    );
    assert_eq!(run.frames, [(PONG, b"p".to_vec())]);
}

// ------------------------------------------------------------------------------ client side

#[test]
fn rfc6455_4_1_client_wrong_or_missing_accept_fails() {
    let wrong = response_with("").replace_accept("dGhlIHNhbXBsZSBub25jZQ==");
    let got = run_client("wrong_accept", chat_request, &default(), &wrong);
    assert_eq!(
        got.error,
        Some(HandshakeError::InvalidResponse(
            "sec-websocket-accept does not match the key"
        ))
    );
    let missing = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\n\r\n";
    let got = run_client("missing_accept", chat_request, &default(), missing);
    assert_eq!(
        got.error,
        Some(HandshakeError::InvalidResponse(
            "missing sec-websocket-accept"
        ))
    );
    let twice = response_with(&format!("Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n"));
    let got = run_client("accept_twice", chat_request, &default(), &twice);
    assert_eq!(
        got.error,
        Some(HandshakeError::InvalidResponse(
            "more than one sec-websocket-accept"
        ))
    );
}

#[test]
fn rfc6455_4_1_client_non_101_statuses_fail_with_the_status() {
    for status in [100, 200, 204, 301, 302, 400, 401, 403, 404, 426, 500, 503] {
        let input = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n");
        let got = run_client(
            &format!("status_{status}"),
            chat_request,
            &default(),
            input.as_bytes(),
        );
        assert_eq!(got.error, Some(HandshakeError::UnexpectedStatus(status)));
        assert_eq!(got.status, Some(status));
        assert!(got.run.is_none());
    }
}

#[test]
fn rfc6455_4_1_client_unoffered_subprotocol_or_extension_fails() {
    let offered = || chat_request().protocol("chat").extension("x-offered");
    let got = run_client(
        "ok",
        offered,
        &default(),
        &response_with("Sec-WebSocket-Protocol: chat\r\n"),
    );
    assert_eq!(got.error, None);
    assert!(got.run.is_some());
    for (name, extra, why) in [
        (
            "unoffered_protocol",
            "Sec-WebSocket-Protocol: superchat\r\n",
            "server chose a subprotocol that was not offered",
        ),
        (
            "protocol_list",
            "Sec-WebSocket-Protocol: chat, chat\r\n",
            "sec-websocket-protocol is not a single token",
        ),
        (
            "unoffered_extension",
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            "server chose an extension that was not offered",
        ),
    ] {
        let got = run_client(name, offered, &default(), &response_with(extra));
        assert_eq!(
            got.error,
            Some(HandshakeError::InvalidResponse(why)),
            "{name}"
        );
    }
    // Nothing offered: any subprotocol in the answer fails.
    let got = run_client(
        "none_offered",
        chat_request,
        &default(),
        &response_with("Sec-WebSocket-Protocol: chat\r\n"),
    );
    assert!(matches!(
        got.error,
        Some(HandshakeError::InvalidResponse(_))
    ));
}

#[test]
fn rfc6455_4_1_client_1mb_response_head_fails_buffering_at_most_the_cap() {
    let config = default();
    let mut input = b"HTTP/1.1 101 Switching Protocols\r\nX-Long: ".to_vec();
    input.resize(1 << 20, b'a');
    let got = run_client("1mb_head", chat_request, &config, &input);
    assert_eq!(got.error, Some(HandshakeError::HeadTooLarge(16 << 10)));
    let (got, peak) =
        measure(|| client_handshake(chat_request(), &config, chunks("", &input, Cut::Every(KIB))));
    assert_eq!(got.error, Some(HandshakeError::HeadTooLarge(16 << 10)));
    assert_peak(
        "1 MB response head, 1 KiB reads",
        peak,
        2 * config.max_handshake_size + 4 * KIB,
    );
}

#[test]
fn rfc6455_4_1_client_frame_in_the_same_read_as_the_101_is_delivered() {
    let mut input = response_with("");
    input.extend(s2c(true, TEXT, b"hi"));
    let got = run_client("101_plus_frame", chat_request, &default(), &input);
    let run = got.run.expect("complete");
    assert_eq!(run.events, [Event::Message(Message::Text("hi".into()))]);
}

trait ReplaceAccept {
    fn replace_accept(self, with: &str) -> Vec<u8>;
}

impl ReplaceAccept for Vec<u8> {
    fn replace_accept(self, with: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace(SAMPLE_ACCEPT, with)
            .into_bytes()
    }
}
