//! The opening handshake (RFC 6455 §4), both roles, through the public sans-IO API.

use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, OriginPolicy, Reject, ServerHandshake, accept_key,
};
use rfc6455::{Config, Connection, Entropy, Event, HandshakeError, Message, UsageError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------- helpers

/// RFC 6455 §1.2, the sample client handshake.
const SAMPLE_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// RFC 6455 §5.7: a single-frame masked text message "Hello".
const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// RFC 6455 §5.7: a single-frame unmasked text message "Hello".
const UNMASKED_HELLO: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];

/// A minimal valid request with `edit` applied to its header lines.
fn request_with(edit: impl Fn(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = [
        "GET /chat HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    edit(&mut lines);
    let mut out = lines.join("\r\n");
    out.push_str("\r\n\r\n");
    out
}

fn remove(lines: &mut Vec<String>, prefix: &str) {
    lines.retain(|l| {
        !l.to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
    });
}

fn replace(lines: &mut Vec<String>, prefix: &str, with: &str) {
    remove(lines, prefix);
    lines.push(with.to_owned());
}

fn server() -> ServerHandshake {
    // The RFC 6455 §1.2 sample is a cross-origin request (a page of example.com opening
    // server.example.com), which the default origin policy refuses; these tests are about
    // the handshake's mechanics, the policy has its own.
    ServerHandshake::new(Config::default().origin_policy(OriginPolicy::Any))
}

/// Feeds a request and returns the result plus whatever the server queued.
fn serve(request: &str) -> (Result<(), HandshakeError>, ServerHandshake) {
    let mut hs = server();
    let result = hs.receive(request.as_bytes());
    (result, hs)
}

fn drain_server(hs: &mut ServerHandshake) -> Vec<u8> {
    let out = hs.pending_transmit().to_vec();
    hs.advance_transmit(out.len());
    assert!(hs.pending_transmit().is_empty());
    out
}

fn drain_connection(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while !conn.pending_transmit().is_empty() {
        let chunk = conn.pending_transmit();
        out.extend_from_slice(chunk);
        let n = chunk.len();
        conn.advance_transmit(n);
    }
    out
}

/// A parsed HTTP response: status, headers (lowercased names), body. Checks that the head is
/// well-formed HTTP/1.1 and that Content-Length, when present, matches the body exactly.
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn parse(bytes: &[u8]) -> Self {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut slots);
        let httparse::Status::Complete(n) = r.parse(bytes).expect("valid http response") else {
            panic!("incomplete response: {:?}", String::from_utf8_lossy(bytes));
        };
        assert_eq!(r.version, Some(1), "HTTP/1.1");
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        let body = bytes[n..].to_vec();
        let http = Self {
            status: r.code.unwrap(),
            headers,
            body,
        };
        if let Some(len) = http.header("content-length") {
            assert_eq!(
                len.parse::<usize>().unwrap(),
                http.body.len(),
                "content-length matches body"
            );
        }
        http
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Checks a rejection: the status, `Connection: close`, a Content-Length that matches the
/// body, and that the error reports the same status.
fn assert_rejected(request: &str, status: u16) -> Http {
    let (result, mut hs) = serve(request);
    let error = result.expect_err("request must be rejected");
    assert_eq!(error.http_status(), status, "{error}");
    assert_eq!(hs.error(), Some(error));
    assert!(hs.request().is_none());
    let http = Http::parse(&drain_server(&mut hs));
    assert_eq!(http.status, status);
    assert!(http.has_token("connection", "close"));
    assert!(http.header("content-length").is_some());
    assert!(!http.body.is_empty());
    // Sticky: more input changes nothing and queues nothing more.
    assert_eq!(hs.receive(b"GET / HTTP/1.1\r\n\r\n"), Err(error));
    assert!(hs.pending_transmit().is_empty());
    http
}

/// Entropy that hands out 1, 2, 3, ... and counts the bytes drawn.
fn counting_entropy(drawn: Arc<AtomicUsize>) -> Box<dyn Entropy> {
    let mut next = 0u8;
    Box::new(move |dest: &mut [u8]| {
        for b in dest.iter_mut() {
            next = next.wrapping_add(1);
            *b = next;
        }
        drawn.fetch_add(dest.len(), Ordering::SeqCst);
    })
}

fn fixed_entropy() -> Box<dyn Entropy> {
    counting_entropy(Arc::new(AtomicUsize::new(0)))
}

fn client(uri: &str) -> ClientHandshake {
    ClientHandshake::new(
        ClientRequest::new(uri).unwrap(),
        Config::default(),
        fixed_entropy(),
    )
    .unwrap()
}

fn client_with(request: ClientRequest) -> ClientHandshake {
    ClientHandshake::new(request, Config::default(), fixed_entropy()).unwrap()
}

fn sent_request(hs: &mut ClientHandshake) -> String {
    let out = hs.pending_transmit().to_vec();
    hs.advance_transmit(out.len());
    assert!(hs.pending_transmit().is_empty());
    String::from_utf8(out).unwrap()
}

fn sent_key(request: &str) -> String {
    request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key header")
        .to_owned()
}

/// A valid 101 for `hs` (whose request is read from its transmit queue), plus `extra` lines.
fn response_for(hs: &mut ClientHandshake, extra: &str) -> String {
    let key = sent_key(&sent_request(hs));
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_key(key.as_bytes())
    )
}

fn text_event(conn: &mut Connection) -> String {
    match conn.poll_event() {
        Some(Event::Message(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

// ------------------------------------------------------------------------- RFC examples

#[test]
fn rfc6455_1_3_accept_key_example() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn rfc6455_1_2_sample_request_is_accepted() {
    let (result, mut hs) = serve(SAMPLE_REQUEST);
    result.unwrap();
    let request = hs.request().unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.host(), "server.example.com");
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(
        request.protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    assert_eq!(request.header("sec-websocket-version"), Some("13"));
    assert_eq!(request.headers().count(), 7);
    assert_eq!(
        hs.poll_timeout(),
        None,
        "the deadline stops once the request is in"
    );

    let mut conn = hs.accept(Accept::new().protocol("chat")).unwrap();
    // RFC 6455 §1.2, the sample server handshake.
    assert_eq!(
        String::from_utf8(drain_connection(&mut conn)).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    assert!(hs.pending_transmit().is_empty());
    assert_eq!(
        hs.accept(Accept::new()).err(),
        Some(UsageError::HandshakeState),
        "spent"
    );
    assert_eq!(
        hs.reject(Reject::new(403)),
        Err(UsageError::HandshakeState),
        "spent"
    );
}

#[test]
fn rfc6455_4_1_client_and_server_complete_a_handshake() {
    let mut c = ClientHandshake::new(
        ClientRequest::new("ws://localhost:9001/echo?x=1")
            .unwrap()
            .protocol("a")
            .protocol("b"),
        Config::default(),
        fixed_entropy(),
    )
    .unwrap();
    let mut s = server();
    s.receive(&sent_request(&mut c).into_bytes()).unwrap();
    let request = s.request().unwrap();
    assert_eq!(
        (request.path(), request.host()),
        ("/echo?x=1", "localhost:9001")
    );
    let mut server_conn = s.accept(Accept::new().protocol("b")).unwrap();
    server_conn.send_text("from server").unwrap();
    c.receive(&drain_connection(&mut server_conn)).unwrap();
    assert!(c.is_complete());
    let (mut client_conn, response) = c.into_connection().unwrap();
    assert_eq!(response.protocol(), Some("b"));
    assert_eq!(text_event(&mut client_conn), "from server");
    client_conn.send_text("from client").unwrap();
    server_conn
        .receive(&drain_connection(&mut client_conn))
        .unwrap();
    assert_eq!(text_event(&mut server_conn), "from client");
}

// ------------------------------------------------------------------------- server: rejections

#[test]
fn rfc6455_4_2_1_post_is_405_with_allow_get() {
    let http = assert_rejected(&request_with(|l| l[0] = "POST /chat HTTP/1.1".into()), 405);
    assert_eq!(http.header("allow"), Some("GET"));
}

#[test]
fn rfc6455_4_2_1_lowercase_get_is_405() {
    // Methods are case-sensitive (RFC 7231 §4.1).
    assert_rejected(&request_with(|l| l[0] = "get /chat HTTP/1.1".into()), 405);
}

#[test]
fn rfc6455_4_2_1_http_1_0_is_400() {
    assert_rejected(&request_with(|l| l[0] = "GET /chat HTTP/1.0".into()), 400);
}

#[test]
fn rfc6455_4_2_1_malformed_request_line_is_400() {
    assert_rejected(&request_with(|l| l[0] = "GET /chat".into()), 400);
    assert_rejected(&request_with(|l| l[0] = "GET  /chat HTTP/1.1".into()), 400);
    assert_rejected(&request_with(|l| l[0] = "GET /chat HTTP/2.0".into()), 400);
}

#[test]
fn rfc6455_4_2_1_missing_host_is_400() {
    assert_rejected(&request_with(|l| remove(l, "host:")), 400);
}

#[test]
fn rfc6455_4_2_1_duplicate_host_is_400() {
    assert_rejected(
        &request_with(|l| l.push("Host: other.example.com".into())),
        400,
    );
}

#[test]
fn rfc6455_4_2_1_invalid_host_is_400() {
    assert_rejected(&request_with(|l| replace(l, "host:", "Host:")), 400);
    assert_rejected(&request_with(|l| replace(l, "host:", "Host: a b")), 400);
    assert_rejected(&request_with(|l| replace(l, "host:", "Host: a:x")), 400);
}

#[test]
fn rfc6455_4_2_1_missing_or_wrong_upgrade_is_400() {
    assert_rejected(&request_with(|l| remove(l, "upgrade:")), 400);
    assert_rejected(
        &request_with(|l| replace(l, "upgrade:", "Upgrade: h2c")),
        400,
    );
    assert_rejected(
        &request_with(|l| replace(l, "upgrade:", "Upgrade: websockets")),
        400,
    );
}

#[test]
fn rfc6455_4_2_1_upgrade_is_a_case_insensitive_token_list() {
    for value in ["WebSocket", "WEBSOCKET", "h2c, websocket", " websocket ,"] {
        let (result, _) = serve(&request_with(|l| {
            replace(l, "upgrade:", &format!("Upgrade: {value}"))
        }));
        assert_eq!(result, Ok(()), "{value}");
    }
    // Split over two header lines.
    let (result, _) = serve(&request_with(|l| {
        replace(l, "upgrade:", "Upgrade: h2c");
        l.push("Upgrade: websocket".into());
    }));
    assert_eq!(result, Ok(()));
}

#[test]
fn rfc6455_4_2_1_connection_is_a_case_insensitive_token_list() {
    for value in [
        "upgrade",
        "UPGRADE",
        "keep-alive, Upgrade",
        "Upgrade,keep-alive",
        ",,Upgrade",
    ] {
        let (result, _) = serve(&request_with(|l| {
            replace(l, "connection:", &format!("Connection: {value}"))
        }));
        assert_eq!(result, Ok(()), "{value}");
    }
    for value in ["keep-alive", "upgraded", "up grade", "close"] {
        assert_rejected(
            &request_with(|l| replace(l, "connection:", &format!("Connection: {value}"))),
            400,
        );
    }
    assert_rejected(&request_with(|l| remove(l, "connection:")), 400);
}

#[test]
fn rfc6455_4_2_1_key_must_decode_to_16_bytes() {
    assert_rejected(&request_with(|l| remove(l, "sec-websocket-key:")), 400);
    for key in [
        "",
        "dGhlIHNhbXBsZQ==",                 // 10 bytes
        "dGhlIHNhbXBsZSBub25jZSBsb25nZXI=", // 23 bytes
        "dGhlIHNhbXBsZSBub25jZQ",           // no padding
        "dGhlIHNhbXBsZSBub25j*Q==",         // not base64
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    ] {
        assert_rejected(
            &request_with(|l| {
                replace(
                    l,
                    "sec-websocket-key:",
                    &format!("Sec-WebSocket-Key: {key}"),
                )
            }),
            400,
        );
    }
    assert_rejected(
        &request_with(|l| l.push("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".into())),
        400,
    );
}

#[test]
fn rfc6455_4_1_example_key_with_nonzero_pad_bits_is_accepted() {
    // RFC 6455 §4.1's example nonce encodes as "AQIDBAUGBwgJCgsMDQ4PEC==" in the RFC.
    let (result, _) = serve(&request_with(|l| {
        replace(
            l,
            "sec-websocket-key:",
            "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEC==",
        );
    }));
    assert_eq!(result, Ok(()));
}

#[test]
fn rfc6455_4_2_1_missing_version_is_426_with_version_13() {
    let http = assert_rejected(&request_with(|l| remove(l, "sec-websocket-version:")), 426);
    assert_eq!(http.header("sec-websocket-version"), Some("13"));
    // RFC 7231 §6.5.15: a 426 names the protocol to upgrade to.
    assert_eq!(http.header("upgrade"), Some("websocket"));
    assert!(http.has_token("connection", "upgrade"));
}

#[test]
fn rfc6455_4_2_1_other_or_duplicate_version_is_426() {
    for value in ["8", "12", "14", "13, 8", "013", ""] {
        let http = assert_rejected(
            &request_with(|l| {
                replace(
                    l,
                    "sec-websocket-version:",
                    &format!("Sec-WebSocket-Version: {value}"),
                )
            }),
            426,
        );
        assert_eq!(http.header("sec-websocket-version"), Some("13"));
    }
    assert_rejected(
        &request_with(|l| l.push("Sec-WebSocket-Version: 13".into())),
        426,
    );
}

#[test]
fn rfc6455_4_2_1_malformed_protocol_or_extensions_is_400() {
    for value in ["", "a b", "chat, \"x\"", "a/b", " , "] {
        assert_rejected(
            &request_with(|l| l.push(format!("Sec-WebSocket-Protocol: {value}"))),
            400,
        );
    }
    for value in ["", ";x", "a; b=", "a; b=\"c d\"", "a; b=\"c,d\"", "a b"] {
        assert_rejected(
            &request_with(|l| l.push(format!("Sec-WebSocket-Extensions: {value}"))),
            400,
        );
    }
}

#[test]
fn rfc6455_4_2_1_request_with_a_body_is_400() {
    assert_rejected(&request_with(|l| l.push("Content-Length: 5".into())), 400);
    assert_rejected(
        &request_with(|l| l.push("Transfer-Encoding: chunked".into())),
        400,
    );
    let (result, _) = serve(&request_with(|l| l.push("Content-Length: 0".into())));
    assert_eq!(result, Ok(()));
}

#[test]
fn rfc6455_4_2_1_duplicate_origin_is_400() {
    assert_rejected(
        &request_with(|l| {
            l.push("Origin: https://a.example".into());
            l.push("Origin: https://b.example".into());
        }),
        400,
    );
}

#[test]
fn rfc6455_4_2_1_protocols_and_extensions_across_repeated_headers() {
    let (result, hs) = serve(&request_with(|l| {
        l.push("Sec-WebSocket-Protocol: a, b".into());
        l.push(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo".into(),
        );
        l.push("Sec-WebSocket-Protocol: c".into());
        // RFC 6455 §9.1: a quoted parameter value must unescape to a token.
        l.push("Sec-WebSocket-Extensions: x-bar; q=\"a\\b\"".into());
    }));
    result.unwrap();
    let request = hs.request().unwrap();
    assert_eq!(request.protocols().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        request.extensions().collect::<Vec<_>>(),
        [
            "permessage-deflate; client_max_window_bits",
            "x-foo",
            "x-bar; q=\"a\\b\""
        ]
    );
}

#[test]
fn rfc7230_5_3_origin_form_and_absolute_form_targets() {
    let (result, hs) = serve(&request_with(|l| l[0] = "GET /a/b?c=d&e HTTP/1.1".into()));
    result.unwrap();
    assert_eq!(hs.request().unwrap().path(), "/a/b?c=d&e");
    // RFC 6455 §4.2.1 item 1 allows "an absolute HTTP/HTTPS URI containing the /resource name/".
    let (result, hs) = serve(&request_with(|l| {
        l[0] = "GET http://Server.Example.com/chat?x HTTP/1.1".into()
    }));
    result.unwrap();
    assert_eq!(hs.request().unwrap().path(), "/chat?x");
    assert_rejected(
        &request_with(|l| l[0] = "GET http://evil.example.com/chat HTTP/1.1".into()),
        400,
    );
    assert_rejected(&request_with(|l| l[0] = "GET * HTTP/1.1".into()), 400);
    assert_rejected(&request_with(|l| l[0] = "GET chat HTTP/1.1".into()), 400);
    assert_rejected(
        &request_with(|l| l[0] = "GET server.example.com:80 HTTP/1.1".into()),
        400,
    );
    assert_rejected(
        &request_with(|l| l[0] = "GET /chat#frag HTTP/1.1".into()),
        400,
    );
}

#[test]
fn rfc7230_3_5_bare_lf_is_400_however_split() {
    let request = request_with(|_| ()).replace("\r\n", "\n");
    assert_rejected(&request, 400);
    let mut hs = server();
    for b in request.as_bytes() {
        if hs.receive(std::slice::from_ref(b)).is_err() {
            break;
        }
    }
    assert_eq!(hs.error().map(|e| e.http_status()), Some(400));
    // A bare CR is refused too.
    assert_rejected(&request_with(|l| l.push("X: a\rb".into())), 400);
}

#[test]
fn rfc7230_3_5_leading_empty_lines_are_skipped() {
    let (result, _) = serve(&format!("\r\n\r\n{}", request_with(|_| ())));
    assert_eq!(result, Ok(()));
}

#[test]
fn rfc6455_4_2_1_obsolete_line_folding_is_400() {
    assert_rejected(&request_with(|l| l.push("X-Folded: a\r\n b".into())), 400);
}

// ------------------------------------------------------------------------- server: limits

#[test]
fn limits_10000_headers_is_431() {
    let request = request_with(|l| {
        for i in 0..10_000 {
            l.push(format!("X-H{i}: v"));
        }
    });
    let http = assert_rejected(&request, 431);
    assert_eq!(http.status, 431);
    // Also with a head size limit big enough to hold them all: the header count decides.
    let mut hs = ServerHandshake::new(Config::default().max_handshake_size(1 << 20));
    assert_eq!(
        hs.receive(request.as_bytes()),
        Err(HandshakeError::TooManyHeaders(64))
    );
}

#[test]
fn limits_max_headers_is_exact() {
    let with = |n: usize| request_with(|l| (0..n).for_each(|i| l.push(format!("X-{i}: v"))));
    // The minimal request has 5 headers.
    let config = Config::default().max_headers(10);
    assert_eq!(
        ServerHandshake::new(config.clone()).receive(with(5).as_bytes()),
        Ok(())
    );
    assert_eq!(
        ServerHandshake::new(config).receive(with(6).as_bytes()),
        Err(HandshakeError::TooManyHeaders(10))
    );
}

#[test]
fn limits_20mb_header_line_in_1k_chunks_is_431_with_bounded_work() {
    let limit = Config::default().max_handshake_size;
    let mut hs = server();
    hs.receive(b"GET /chat HTTP/1.1\r\nX-Big: ").unwrap();
    let chunk = [b'a'; 1024];
    let started = Instant::now();
    let mut fed = 0usize;
    let mut first_error_at = None;
    for _ in 0..(20 << 10) {
        let result = hs.receive(&chunk);
        fed += chunk.len();
        if let Err(e) = result {
            assert_eq!(e, HandshakeError::HeadTooLarge(limit));
            first_error_at.get_or_insert(fed);
        }
    }
    let first_error_at = first_error_at.expect("431");
    assert!(
        first_error_at <= limit + chunk.len(),
        "failed after {first_error_at} bytes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "feeding after the error must be cheap"
    );
    let http = Http::parse(&drain_server(&mut hs));
    assert_eq!(http.status, 431);
}

#[test]
fn limits_head_of_exactly_max_size_is_accepted() {
    let request = request_with(|_| ());
    let exact = Config::default().max_handshake_size(request.len());
    assert_eq!(
        ServerHandshake::new(exact).receive(request.as_bytes()),
        Ok(())
    );
    let short = Config::default().max_handshake_size(request.len() - 1);
    assert_eq!(
        ServerHandshake::new(short).receive(request.as_bytes()),
        Err(HandshakeError::HeadTooLarge(request.len() - 1))
    );
}

#[test]
fn limits_pathological_list_values_parse_in_linear_time() {
    let config = Config::default().max_handshake_size(4 << 20);
    let commas = ",".repeat(1 << 20);
    let mut params = String::from("x");
    for _ in 0..100_000 {
        params.push_str("; p=\"v\"");
    }
    let many = "a,".repeat(500_000);
    let started = Instant::now();
    for (header, ok) in [
        (format!("Sec-WebSocket-Protocol: {commas}"), false),
        (format!("Sec-WebSocket-Protocol: {many}"), true),
        (format!("Sec-WebSocket-Extensions: {commas}"), false),
        (format!("Sec-WebSocket-Extensions: {params}"), true),
        (
            format!("Sec-WebSocket-Extensions: x; q=\"{}", "\\a".repeat(500_000)),
            false,
        ),
        (format!("Connection: {commas}Upgrade"), true),
    ] {
        let request = request_with(|l| l.push(header.clone()));
        let mut hs = ServerHandshake::new(config.clone());
        // Streamed in small chunks: the scan must not restart per chunk.
        let mut result = Ok(());
        for chunk in request.as_bytes().chunks(512) {
            result = hs.receive(chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.is_ok(), ok, "{}", &header[..40]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------------- server: splitting

/// Everything observable about a server handshake after `chunks` were fed, then accepted.
/// A 1 KiB head limit keeps the every-split loops quick while still crossing it.
fn server_outcome(
    chunks: &[&[u8]],
) -> (Option<HandshakeError>, Vec<u8>, Option<String>, Vec<String>) {
    let config = Config::default().max_handshake_size(1024);
    let mut hs = ServerHandshake::new(config.origin_policy(OriginPolicy::Any)); // see `server`
    for chunk in chunks {
        let _ = hs.receive(chunk);
    }
    let error = hs.error();
    let request = hs.request().map(|r| format!("{r:?}"));
    let mut events = Vec::new();
    let out = if error.is_none() {
        let mut conn = hs.accept(Accept::new()).unwrap();
        while let Some(event) = conn.poll_event() {
            events.push(format!("{event:?}"));
        }
        drain_connection(&mut conn)
    } else {
        drain_server(&mut hs)
    };
    (error, out, request, events)
}

#[test]
fn every_split_point_gives_the_same_result() {
    let mut valid = SAMPLE_REQUEST.as_bytes().to_vec();
    valid.extend_from_slice(&MASKED_HELLO);
    let bad_version =
        request_with(|l| replace(l, "sec-websocket-version:", "Sec-WebSocket-Version: 8"));
    let bare_lf = request_with(|l| l.push("X: y".into())).replacen("X: y\r\n", "X: y\n", 1);
    let too_big = request_with(|l| l.push(format!("X: {}", "a".repeat(2_000))));
    let cases = [
        (&valid[..], None),
        (bad_version.as_bytes(), Some(426)),
        (bare_lf.as_bytes(), Some(400)),
        (too_big.as_bytes(), Some(431)),
    ];
    for (input, status) in cases {
        let whole = server_outcome(&[input]);
        assert_eq!(whole.0.map(|e| e.http_status()), status);
        for i in 0..=input.len() {
            assert_eq!(
                server_outcome(&[&input[..i], &input[i..]]),
                whole,
                "split at {i}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(server_outcome(&bytes), whole, "byte by byte");
    }
    assert!(
        server_outcome(&[&valid]).3.len() == 1,
        "the frame after the head is delivered"
    );
}

#[test]
fn every_three_way_split_gives_the_same_result() {
    let input = SAMPLE_REQUEST.as_bytes();
    let whole = server_outcome(&[input]);
    for i in (0..=input.len()).step_by(7) {
        for j in i..=input.len() {
            assert_eq!(
                server_outcome(&[&input[..i], &input[i..j], &input[j..]]),
                whole,
                "{i}/{j}"
            );
        }
    }
}

// ------------------------------------------------------------------------- server: handover

#[test]
fn rfc6455_4_2_2_request_and_frame_in_one_read_reach_the_connection() {
    let mut hs = server();
    let mut data = SAMPLE_REQUEST.as_bytes().to_vec();
    data.extend_from_slice(&MASKED_HELLO);
    hs.receive(&data).unwrap();
    let mut conn = hs.accept(Accept::new()).unwrap();
    assert_eq!(text_event(&mut conn), "Hello");
    let out = drain_connection(&mut conn);
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
}

#[test]
fn rfc6455_4_2_2_bytes_fed_before_accept_reach_the_connection() {
    let mut hs = server();
    hs.receive(SAMPLE_REQUEST.as_bytes()).unwrap();
    hs.receive(&MASKED_HELLO[..4]).unwrap();
    hs.receive(&MASKED_HELLO[4..]).unwrap();
    let mut conn = hs.accept(Accept::new()).unwrap();
    assert_eq!(text_event(&mut conn), "Hello");
}

#[test]
fn rfc6455_4_2_2_101_comes_before_any_frame() {
    let mut hs = server();
    // An unmasked frame from the client: the connection fails with 1002, after the 101.
    let mut data = SAMPLE_REQUEST.as_bytes().to_vec();
    data.extend_from_slice(&UNMASKED_HELLO);
    hs.receive(&data).unwrap();
    let mut conn = hs.accept(Accept::new()).unwrap();
    let out = drain_connection(&mut conn);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(out[head_end], 0x88, "a close frame follows the 101");
    assert_eq!(
        &out[head_end + 2..head_end + 4],
        &[0x03, 0xea],
        "with code 1002"
    );
}

#[test]
fn rfc6455_4_2_2_accept_checks_protocol_and_headers() {
    let (_, mut hs) = serve(SAMPLE_REQUEST);
    assert_eq!(
        hs.accept(Accept::new().protocol("superchat2")).err(),
        Some(UsageError::ProtocolNotOffered)
    );
    assert_eq!(
        hs.accept(Accept::new().protocol("")).err(),
        Some(UsageError::ProtocolNotOffered)
    );
    for (name, value) in [
        ("Sec-WebSocket-Accept", "x"),
        ("connection", "close"),
        ("Upgrade", "h2c"),
        ("Sec-WebSocket-Protocol", "chat"),
        ("Content-Length", "0"),
        ("X-Ok", "a\r\nInjected: yes"),
        ("X-Ok", "a\nb"),
        ("X-Ok", "nul\0"),
        ("Bad Name", "v"),
        ("Sec-WebSocket-Extensions", "permessage-deflate"),
    ] {
        let result = hs.accept(Accept::new().header(name, value));
        assert!(
            matches!(result, Err(UsageError::InvalidHeader(_))),
            "{name}: {value:?}"
        );
    }
    // Nothing was queued by the failed attempts; the handshake is still usable.
    assert!(hs.pending_transmit().is_empty());
    let mut conn = hs
        .accept(Accept::new().header("Set-Cookie", "a=b\tc"))
        .unwrap();
    let http = Http::parse(&drain_connection(&mut conn));
    assert_eq!(http.status, 101);
    assert_eq!(http.header("set-cookie"), Some("a=b\tc"));
    assert_eq!(http.header("sec-websocket-protocol"), None);
}

#[test]
fn rfc6455_4_2_2_accept_may_only_list_offered_extensions() {
    let request = request_with(|l| {
        l.push("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits".into())
    });
    let (_, mut hs) = serve(&request);
    let bad = Accept::new().header("Sec-WebSocket-Extensions", "x-other");
    assert!(matches!(hs.accept(bad), Err(UsageError::InvalidHeader(_))));
    let good = Accept::new().header(
        "Sec-WebSocket-Extensions",
        "permessage-deflate; server_no_context_takeover",
    );
    let mut conn = hs.accept(good).unwrap();
    let http = Http::parse(&drain_connection(&mut conn));
    assert_eq!(
        http.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_no_context_takeover")
    );
}

#[test]
fn rfc6455_4_2_2_reject_is_a_complete_http_response() {
    let (_, mut hs) = serve(SAMPLE_REQUEST);
    hs.reject(
        Reject::new(403)
            .header("X-Reason", "origin")
            .body("origin not allowed"),
    )
    .unwrap();
    assert_eq!(hs.error(), Some(HandshakeError::Rejected(403)));
    assert_eq!(hs.receive(b"more"), Err(HandshakeError::Rejected(403)));
    let http = Http::parse(&drain_server(&mut hs));
    assert_eq!(http.status, 403);
    assert_eq!(http.body, b"origin not allowed");
    assert_eq!(http.header("x-reason"), Some("origin"));
    assert_eq!(http.header("content-length"), Some("18"));
    assert!(http.has_token("connection", "close"));
    assert_eq!(
        hs.accept(Accept::new()).err(),
        Some(UsageError::HandshakeState)
    );
}

#[test]
fn rfc6455_4_2_2_redirect_and_empty_body() {
    let (_, mut hs) = serve(SAMPLE_REQUEST);
    hs.reject(Reject::new(302).header("Location", "ws://elsewhere.example/"))
        .unwrap();
    let http = Http::parse(&drain_server(&mut hs));
    assert_eq!(
        (http.status, http.header("location")),
        (302, Some("ws://elsewhere.example/"))
    );
    assert_eq!(http.header("content-length"), Some("0"));
}

#[test]
fn reject_checks_status_and_headers_before_queueing() {
    let (_, mut hs) = serve(SAMPLE_REQUEST);
    // 200 is allowed: it answers a plain HTTP request on the same port (see plain_http_path).
    for status in [0, 101, 204, 299, 600, 1000] {
        assert_eq!(
            hs.reject(Reject::new(status)),
            Err(UsageError::InvalidStatus(status))
        );
    }
    assert!(matches!(
        hs.reject(Reject::new(403).header("X", "a\r\nb")),
        Err(UsageError::InvalidHeader(_))
    ));
    assert!(matches!(
        hs.reject(Reject::new(403).header("Content-Length", "5")),
        Err(UsageError::InvalidHeader(_))
    ));
    assert!(hs.pending_transmit().is_empty());
    assert!(hs.error().is_none());
    hs.accept(Accept::new()).unwrap();
}

#[test]
fn reject_before_the_request_is_complete() {
    let mut hs = server();
    hs.receive(b"GET /chat HTTP/1.1\r\nHost: a\r\n").unwrap();
    hs.reject(Reject::new(503).body("busy")).unwrap();
    assert_eq!(Http::parse(&drain_server(&mut hs)).status, 503);
    assert_eq!(
        hs.accept(Accept::new()).err(),
        Some(UsageError::HandshakeState)
    );
}

#[test]
fn accept_before_a_request_is_a_state_error() {
    let mut hs = server();
    assert_eq!(
        hs.accept(Accept::new()).err(),
        Some(UsageError::HandshakeState)
    );
    hs.receive(b"GET /chat HTTP/1.1\r\n").unwrap();
    assert_eq!(
        hs.accept(Accept::new()).err(),
        Some(UsageError::HandshakeState)
    );
}

// ------------------------------------------------------------------------- server: time, eof

#[test]
fn slowloris_times_out_with_408() {
    let mut hs = ServerHandshake::new(Config::default().handshake_timeout(Duration::from_secs(3)));
    assert_eq!(
        hs.poll_timeout(),
        Some(Duration::ZERO),
        "asks for the time first"
    );
    hs.handle_timeout(Duration::from_secs(100));
    assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(103)));
    hs.receive(b"GET /chat HTTP/1.1\r\nHo").unwrap();
    hs.handle_timeout(Duration::from_secs(102));
    assert_eq!(hs.error(), None);
    hs.handle_timeout(Duration::from_secs(103));
    assert_eq!(hs.error(), Some(HandshakeError::Timeout));
    assert_eq!(hs.receive(b"st: a\r\n"), Err(HandshakeError::Timeout));
    // Writing the 408 is bounded too (a peer that does not read): by the close timeout,
    // counted from the next clock reading.
    assert_eq!(hs.poll_timeout(), Some(Duration::ZERO));
    hs.handle_timeout(Duration::from_secs(103));
    assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(113)));
    assert!(!hs.is_terminated(), "the 408 is still to be written");
    let http = Http::parse(&drain_server(&mut hs));
    assert_eq!(http.status, 408);
    assert!(http.has_token("connection", "close"));
    assert!(hs.wants_shutdown() && hs.is_terminated());
    assert_eq!(hs.poll_timeout(), None);
}

#[test]
fn a_rejection_the_peer_never_reads_is_given_up_after_the_close_timeout() {
    let config = Config::default().close_timeout(Duration::from_secs(5));
    let mut hs = ServerHandshake::new(config);
    hs.handle_timeout(Duration::from_secs(1));
    assert!(hs.receive(b"POST / HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
    hs.handle_timeout(Duration::from_secs(2));
    assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(7)));
    hs.advance_transmit(3);
    hs.handle_timeout(Duration::from_secs(7));
    // Given up with the 405 half written: drop the transport, no orderly shutdown.
    assert!(hs.is_terminated() && !hs.wants_shutdown());
    assert_eq!(hs.poll_timeout(), None);
}

#[test]
fn eof_during_the_request_queues_nothing() {
    let mut hs = server();
    hs.receive(b"GET /chat HTTP/1.1\r\n").unwrap();
    assert_eq!(hs.receive_eof(), Err(HandshakeError::UnexpectedEof));
    assert_eq!(hs.receive(b"x"), Err(HandshakeError::UnexpectedEof));
    assert!(hs.pending_transmit().is_empty());
    let (_, mut complete) = serve(SAMPLE_REQUEST);
    assert_eq!(complete.receive_eof(), Ok(()));
}

// ------------------------------------------------------------------------- client: request

#[test]
fn rfc6455_4_1_client_request_bytes() {
    let drawn = Arc::new(AtomicUsize::new(0));
    let request = ClientRequest::new("ws://example.com/chat")
        .unwrap()
        .protocol("chat")
        .protocol("superchat")
        .extension("permessage-deflate; client_max_window_bits")
        .header("Origin", "http://example.com");
    let mut hs =
        ClientHandshake::new(request, Config::default(), counting_entropy(drawn.clone())).unwrap();
    assert_eq!(drawn.load(Ordering::SeqCst), 16, "a 16-byte nonce");
    assert_eq!(
        sent_request(&mut hs),
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Origin: http://example.com\r\n\r\n"
    );
}

#[test]
fn rfc6455_4_1_fresh_key_per_handshake() {
    let drawn = Arc::new(AtomicUsize::new(0));
    let shared = {
        let drawn = drawn.clone();
        let mut next = 0u8;
        move |dest: &mut [u8]| {
            for b in dest.iter_mut() {
                next = next.wrapping_add(1);
                *b = next;
            }
            drawn.fetch_add(dest.len(), Ordering::SeqCst);
        }
    };
    let shared = Arc::new(std::sync::Mutex::new(shared));
    let entropy = || -> Box<dyn Entropy> {
        let shared = shared.clone();
        Box::new(move |dest: &mut [u8]| (shared.lock().unwrap())(dest))
    };
    let request = ClientRequest::new("ws://example.com/").unwrap();
    let mut a = ClientHandshake::new(request.clone(), Config::default(), entropy()).unwrap();
    let mut b = ClientHandshake::new(request, Config::default(), entropy()).unwrap();
    assert_eq!(
        drawn.load(Ordering::SeqCst),
        32,
        "16 bytes drawn per handshake"
    );
    let (ka, kb) = (
        sent_key(&sent_request(&mut a)),
        sent_key(&sent_request(&mut b)),
    );
    assert_ne!(ka, kb);
    assert_eq!((ka.len(), kb.len()), (24, 24));
}

#[test]
fn rfc6455_4_1_caller_values_with_cr_lf_are_rejected_before_anything_is_queued() {
    let base = || ClientRequest::new("ws://example.com/").unwrap();
    let cases = [
        base().header("X-Evil", "a\r\nHost: other"),
        base().header("X-Evil", "a\nb"),
        base().header("X-Evil", "a\rb"),
        base().header("X-Evil", "nul\0"),
        base().header("X Evil", "v"),
        base().header("X-Evil\r\n", "v"),
        base().header("", "v"),
        base().protocol("chat\r\nX: y"),
        base().protocol("a b"),
        base().protocol(""),
        base().protocol("chat").protocol("chat"),
        base().extension("permessage-deflate\r\nX: y"),
        base().extension("permessage-deflate; a=\"b c\""),
        base().extension(""),
        base().header("Host", "other.example"),
        base().header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        base().header("Sec-WebSocket-Version", "8"),
        base().header("Upgrade", "websocket"),
        base().header("Connection", "close"),
        base().header("Sec-WebSocket-Protocol", "chat"),
    ];
    for request in cases {
        let drawn = Arc::new(AtomicUsize::new(0));
        let result = ClientHandshake::new(
            request.clone(),
            Config::default(),
            counting_entropy(drawn.clone()),
        );
        assert!(
            matches!(result, Err(UsageError::InvalidHeader(_))),
            "{request:?}"
        );
        assert_eq!(
            drawn.load(Ordering::SeqCst),
            0,
            "no key drawn for {request:?}"
        );
    }
}

#[test]
fn rfc6455_3_uri_forms() {
    let r = ClientRequest::new("ws://[::1]:9001/chat").unwrap();
    assert_eq!(
        (r.host(), r.port(), r.is_tls(), r.path()),
        ("::1", 9001, false, "/chat")
    );
    let mut hs = client_with(r);
    assert!(sent_request(&mut hs).contains("\r\nHost: [::1]:9001\r\n"));

    let r = ClientRequest::new("ws://example.com").unwrap();
    assert_eq!((r.port(), r.path()), (80, "/"));
    let r = ClientRequest::new("WSS://example.com?q=1").unwrap();
    assert_eq!((r.port(), r.is_tls(), r.path()), (443, true, "/?q=1"));
    let r = ClientRequest::new("ws://example.com/a/b?c=d&e=%20f").unwrap();
    assert_eq!(r.path(), "/a/b?c=d&e=%20f");
    let mut hs = client_with(r);
    assert!(sent_request(&mut hs).starts_with("GET /a/b?c=d&e=%20f HTTP/1.1\r\n"));

    // RFC 6455 §4.1: Host carries the port only "when not using the default port".
    for (uri, host) in [
        ("ws://example.com:80/", "example.com"),
        ("wss://example.com:443/", "example.com"),
        ("ws://example.com:443/", "example.com:443"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://127.0.0.1:8080/", "127.0.0.1:8080"),
        ("wss://[2001:db8::1]/", "[2001:db8::1]"),
    ] {
        let mut hs = client(uri);
        assert!(
            sent_request(&mut hs).contains(&format!("\r\nHost: {host}\r\n")),
            "{uri}"
        );
    }
}

#[test]
fn rfc6455_3_invalid_uris_are_rejected() {
    for uri in [
        "http://example.com/",
        "example.com/",
        "ws:/example.com/",
        "ws://",
        "ws:///chat",
        "ws://example.com/chat#frag",
        "ws://user@example.com/",
        "ws://user:pass@example.com/",
        "ws://example.com:99999/",
        "ws://example.com:0/",
        "ws://example.com:8o/",
        "ws://exa mple.com/",
        "ws://example.com/a b",
        " ws://example.com/",
        "ws://example.com/\t",
        "ws://example.com/\r\nX: y",
        "ws://[::1/",
        "ws://[nope]/",
        "ws://example.com/ü",
    ] {
        assert!(
            matches!(ClientRequest::new(uri), Err(UsageError::InvalidUri(_))),
            "{uri:?}"
        );
    }
}

// ------------------------------------------------------------------------- client: response

#[test]
fn rfc6455_4_1_valid_101_completes() {
    let mut hs = client("ws://example.com/");
    assert_eq!(hs.response().map(|r| r.status()), None);
    let response = response_for(&mut hs, "X-Extra: 1\r\n");
    hs.receive(response.as_bytes()).unwrap();
    assert!(hs.is_complete());
    assert_eq!(hs.poll_timeout(), None);
    assert_eq!(hs.receive_eof(), Ok(()));
    let (_, response) = hs.into_connection().unwrap();
    assert_eq!(
        (response.status(), response.reason()),
        (101, "Switching Protocols")
    );
    assert_eq!(response.header("x-EXTRA"), Some("1"));
    assert_eq!(response.headers().count(), 4);
    assert_eq!((response.protocol(), response.extensions()), (None, None));
}

#[test]
fn rfc6455_4_1_token_lists_in_the_response() {
    for extra in [
        "Connection: keep-alive, Upgrade\r\n",
        "Upgrade: WebSocket\r\n",
        "Connection: UPGRADE\r\n",
    ] {
        let mut hs = client("ws://example.com/");
        let response = response_for(&mut hs, "");
        let (name, _) = extra.split_once(':').unwrap();
        let response: String = response
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with(&format!("{name}:")))
            .collect::<String>()
            .replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1);
        assert_eq!(hs.receive(response.as_bytes()), Ok(()), "{extra}");
    }
}

#[test]
fn rfc6455_4_1_wrong_or_missing_accept_fails() {
    let mut hs = client("ws://example.com/");
    let response =
        response_for(&mut hs, "").replace("Sec-WebSocket-Accept: ", "Sec-WebSocket-Accept: x");
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));
    assert!(!hs.is_complete());
    assert!(matches!(
        hs.error(),
        Some(HandshakeError::InvalidResponse(_))
    ));
    assert_eq!(hs.into_connection().err(), Some(UsageError::HandshakeState));

    let mut hs = client("ws://example.com/");
    let _ = sent_request(&mut hs);
    // The accept for the RFC's sample key, not ours.
    let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));

    let mut hs = client("ws://example.com/");
    let response: String = response_for(&mut hs, "")
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("Sec-WebSocket-Accept"))
        .collect();
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));

    let mut hs = client("ws://example.com/");
    let good = response_for(&mut hs, "");
    let accept_line = good
        .lines()
        .find(|l| l.starts_with("Sec-WebSocket-Accept"))
        .unwrap()
        .to_owned();
    let doubled = good.replacen("\r\n\r\n", &format!("\r\n{accept_line}\r\n\r\n"), 1);
    assert!(matches!(
        hs.receive(doubled.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));
}

#[test]
fn rfc6455_4_1_missing_upgrade_or_connection_fails() {
    for line in ["Upgrade: websocket\r\n", "Connection: Upgrade\r\n"] {
        let mut hs = client("ws://example.com/");
        let response = response_for(&mut hs, "").replacen(line, "", 1);
        assert!(
            matches!(
                hs.receive(response.as_bytes()),
                Err(HandshakeError::InvalidResponse(_))
            ),
            "{line}"
        );
    }
    let mut hs = client("ws://example.com/");
    let response =
        response_for(&mut hs, "").replacen("Connection: Upgrade", "Connection: keep-alive", 1);
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));
}

#[test]
fn rfc6455_4_1_non_101_surfaces_status_and_headers() {
    let mut hs = client("ws://example.com/");
    let _ = sent_request(&mut hs);
    let response = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\n\
                    Content-Length: 0\r\n\r\n";
    assert_eq!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::UnexpectedStatus(401))
    );
    let r = hs.response().unwrap();
    assert_eq!((r.status(), r.reason()), (401, "Unauthorized"));
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"ws\""));
    assert_eq!(hs.error(), Some(HandshakeError::UnexpectedStatus(401)));
    assert_eq!(
        hs.receive(b"more"),
        Err(HandshakeError::UnexpectedStatus(401))
    );

    let mut hs = client("ws://example.com/");
    let _ = sent_request(&mut hs);
    // No Content-Length: the body ends when the server closes (RFC 9112 §6.3).
    let response = "HTTP/1.1 302 Found\r\nLocation: ws://other.example/\r\n\r\nmoved";
    assert_eq!(hs.receive(response.as_bytes()), Ok(()));
    assert_eq!(hs.receive_eof(), Err(HandshakeError::UnexpectedStatus(302)));
    assert_eq!(hs.response().unwrap().body(), b"moved");
    assert!(hs.response().unwrap().body_complete());
    assert_eq!(
        hs.response().unwrap().header("location"),
        Some("ws://other.example/")
    );
}

#[test]
fn rfc6455_4_1_unoffered_protocol_fails() {
    let mut hs = client("ws://example.com/");
    let response = response_for(&mut hs, "Sec-WebSocket-Protocol: chat\r\n");
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));

    let offered = || {
        ClientRequest::new("ws://example.com/")
            .unwrap()
            .protocol("chat")
            .protocol("superchat")
    };
    for bad in [
        "Chat",
        "other",
        "chat, superchat",
        "",
        "chat\r\nSec-WebSocket-Protocol: superchat",
    ] {
        let mut hs = client_with(offered());
        let response = response_for(&mut hs, &format!("Sec-WebSocket-Protocol: {bad}\r\n"));
        assert!(
            matches!(
                hs.receive(response.as_bytes()),
                Err(HandshakeError::InvalidResponse(_))
            ),
            "{bad:?}"
        );
    }
    let mut hs = client_with(offered());
    let response = response_for(&mut hs, "Sec-WebSocket-Protocol: superchat\r\n");
    hs.receive(response.as_bytes()).unwrap();
    assert_eq!(hs.response().unwrap().protocol(), Some("superchat"));
}

#[test]
fn rfc6455_4_1_unoffered_extension_fails() {
    let mut hs = client("ws://example.com/");
    let response = response_for(
        &mut hs,
        "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n",
    );
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));
    // permessage-deflate answered to a client configured not to offer it.
    let no_deflate =
        Config::default().deflate(rfc6455::deflate::DeflateConfig::default().enabled(false));
    let mut hs = ClientHandshake::new(
        ClientRequest::new("ws://example.com/").unwrap(),
        no_deflate,
        fixed_entropy(),
    )
    .unwrap();
    let response = response_for(&mut hs, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert!(matches!(
        hs.receive(response.as_bytes()),
        Err(HandshakeError::InvalidResponse(_))
    ));

    let offered = || {
        ClientRequest::new("ws://example.com/")
            .unwrap()
            .extension("permessage-deflate; client_max_window_bits")
            .extension("x-foo")
    };
    for bad in [
        "x-bar",
        "permessage-deflate, x-bar",
        "permessage-deflate;",
        "permessage-deflate x",
    ] {
        let mut hs = client_with(offered());
        let response = response_for(&mut hs, &format!("Sec-WebSocket-Extensions: {bad}\r\n"));
        assert!(
            matches!(
                hs.receive(response.as_bytes()),
                Err(HandshakeError::InvalidResponse(_))
            ),
            "{bad:?}"
        );
    }
    let mut hs = client_with(offered());
    let response = response_for(
        &mut hs,
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
         Sec-WebSocket-Extensions: x-foo\r\n",
    );
    hs.receive(response.as_bytes()).unwrap();
    assert_eq!(
        hs.response().unwrap().extensions(),
        Some("permessage-deflate; server_no_context_takeover, x-foo")
    );
}

#[test]
fn rfc6455_4_1_101_and_frame_in_one_read_reach_the_connection() {
    let mut hs = client("ws://example.com/");
    let mut data = response_for(&mut hs, "").into_bytes();
    data.extend_from_slice(&UNMASKED_HELLO);
    data.extend_from_slice(&UNMASKED_HELLO[..3]);
    hs.receive(&data).unwrap();
    hs.receive(&UNMASKED_HELLO[3..]).unwrap();
    let (mut conn, _) = hs.into_connection().unwrap();
    assert_eq!(text_event(&mut conn), "Hello");
    assert_eq!(text_event(&mut conn), "Hello");
}

#[test]
fn client_every_split_point_gives_the_same_result() {
    fn outcome(chunks: &[&[u8]]) -> (Option<HandshakeError>, Option<String>, Vec<String>) {
        let mut hs = client("ws://example.com/");
        let _ = sent_request(&mut hs);
        for chunk in chunks {
            let _ = hs.receive(chunk);
        }
        let response = hs.response().map(|r| format!("{r:?}"));
        let error = hs.error();
        let mut events = Vec::new();
        if let Ok((mut conn, _)) = hs.into_connection() {
            while let Some(e) = conn.poll_event() {
                events.push(format!("{e:?}"));
            }
        }
        (error, response, events)
    }
    let mut template = client("ws://example.com/");
    let mut valid = response_for(&mut template, "").into_bytes();
    valid.extend_from_slice(&UNMASKED_HELLO);
    let non_101 = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec();
    for input in [valid, non_101] {
        let whole = outcome(&[&input]);
        assert!(whole.1.is_some());
        for i in 0..=input.len() {
            assert_eq!(outcome(&[&input[..i], &input[i..]]), whole, "split at {i}");
        }
    }
}

#[test]
fn limits_1mb_response_head_fails_fast_with_bounded_memory() {
    let mut hs = client("ws://example.com/");
    let _ = sent_request(&mut hs);
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\nX-Big: ".to_vec();
    response.resize(1 << 20, b'a');
    let started = Instant::now();
    let mut first_error_at = None;
    for (i, chunk) in response.chunks(1024).enumerate() {
        if let Err(e) = hs.receive(chunk) {
            assert_eq!(
                e,
                HandshakeError::HeadTooLarge(Config::default().max_handshake_size)
            );
            first_error_at.get_or_insert(i);
        }
    }
    assert!(
        first_error_at.unwrap() <= 16,
        "failed at chunk {first_error_at:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(hs.response().is_none());

    let mut hs = client("ws://example.com/");
    let mut headers = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for i in 0..10_000 {
        headers.push_str(&format!("X-{i}: v\r\n"));
    }
    assert_eq!(
        hs.receive(headers.as_bytes()),
        Err(HandshakeError::TooManyHeaders(64))
    );
}

#[test]
fn client_malformed_response_fails() {
    for response in [
        "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
        "HTTP/1.1 1O1 Switching\r\n\r\n",
        "HTTP/2 101\r\n\r\n",
        "HTTP/1.1 101 OK\r\nBad Header\r\n\r\n",
    ] {
        let mut hs = client("ws://example.com/");
        let _ = sent_request(&mut hs);
        assert!(
            matches!(
                hs.receive(response.as_bytes()),
                Err(HandshakeError::InvalidResponse(_))
            ),
            "{response:?}"
        );
    }
}

#[test]
fn rfc7230_3_3_101_with_a_body_fails() {
    for extra in ["Content-Length: 7\r\n", "Transfer-Encoding: chunked\r\n"] {
        let mut hs = client("ws://example.com/");
        let response = response_for(&mut hs, extra);
        assert!(
            matches!(
                hs.receive(response.as_bytes()),
                Err(HandshakeError::InvalidResponse(_))
            ),
            "{extra}"
        );
    }
    let mut hs = client("ws://example.com/");
    let response = response_for(&mut hs, "Content-Length: 0\r\n");
    assert_eq!(hs.receive(response.as_bytes()), Ok(()));
}

#[test]
fn client_timeout_and_eof() {
    let mut hs = ClientHandshake::new(
        ClientRequest::new("ws://example.com/").unwrap(),
        Config::default().handshake_timeout(Duration::from_secs(10)),
        fixed_entropy(),
    )
    .unwrap();
    assert_eq!(hs.poll_timeout(), Some(Duration::ZERO));
    hs.handle_timeout(Duration::from_secs(1));
    assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(11)));
    hs.receive(b"HTTP/1.1 101 ").unwrap();
    hs.handle_timeout(Duration::from_secs(11));
    assert_eq!(hs.error(), Some(HandshakeError::Timeout));
    assert_eq!(
        hs.receive(b"Switching Protocols\r\n\r\n"),
        Err(HandshakeError::Timeout)
    );
    assert_eq!(hs.receive_eof(), Err(HandshakeError::Timeout));

    let mut hs = client("ws://example.com/");
    hs.receive(b"HTTP/1.1 101 Switching").unwrap();
    assert_eq!(hs.receive_eof(), Err(HandshakeError::UnexpectedEof));
    assert_eq!(hs.error(), Some(HandshakeError::UnexpectedEof));
}

#[test]
fn client_transmit_can_be_written_in_pieces() {
    let mut hs = client("ws://example.com/");
    let whole = hs.pending_transmit().to_vec();
    let mut written = Vec::new();
    while !hs.pending_transmit().is_empty() {
        let n = hs.pending_transmit().len().min(5);
        written.extend_from_slice(&hs.pending_transmit()[..n]);
        hs.advance_transmit(n);
    }
    hs.advance_transmit(100);
    assert_eq!(written, whole);
}

#[test]
fn rfc6455_5_5_2_ping_in_the_same_read_is_answered_after_the_101() {
    let mut hs = server();
    let mut data = SAMPLE_REQUEST.as_bytes().to_vec();
    // RFC 6455 §5.7's masked "Hello", as a Ping.
    data.extend_from_slice(&[
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    hs.receive(&data).unwrap();
    let mut conn = hs.accept(Accept::new()).unwrap();
    assert!(matches!(conn.poll_event(), Some(Event::Ping(_))));
    let out = drain_connection(&mut conn);
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.starts_with(b"HTTP/1.1 101 "));
    assert_eq!(
        &out[head_end..],
        &[0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_chunking_gives_the_same_result(cuts in proptest::collection::vec(0usize..300, 0..8)) {
            let mut input = SAMPLE_REQUEST.as_bytes().to_vec();
            input.extend_from_slice(&MASKED_HELLO);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for c in cuts {
                chunks.push(&input[last..c]);
                last = c;
            }
            chunks.push(&input[last..]);
            prop_assert_eq!(server_outcome(&chunks), server_outcome(&[&input]));
        }

        #[test]
        fn arbitrary_heads_never_panic(
            lines in proptest::collection::vec(
                proptest::string::string_regex("[ -~\t]{0,40}").unwrap(), 0..12),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut input = lines.join("\r\n").into_bytes();
            input.extend_from_slice(b"\r\n\r\n");
            input.extend_from_slice(&tail);
            let mut s = server();
            if s.receive(&input).is_ok() && s.request().is_some() {
                let _ = s.accept(Accept::new());
            }
            let mut c = client("ws://example.com/");
            let _ = c.receive(&input);
            let _ = c.receive_eof();
        }
    }
}
