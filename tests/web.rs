//! The `http` feature: the server's checks over a request another HTTP server parsed give
//! the byte parser's answers (RFC 6455 §4.2.1, RFC 8441 §4-§5, the origin policy), the
//! responses they build, and the conversions both ways.
#![cfg(feature = "http")]

use proptest::prelude::*;
use rfc6455::handshake::{
    Accept, ClientRequest, IntoClientRequest, OriginPolicy, Refusal, Reject, ServerHandshake,
};
use rfc6455::web::Upgrade;
use rfc6455::{Config, HandshakeError, UsageError};

/// The byte parser's verdict on `raw`: the status it answers, and the accept key on 101.
fn bytes_verdict(raw: &[u8], config: &Config) -> (u16, Option<String>) {
    let mut hs = ServerHandshake::new(config.clone());
    match hs.receive(raw) {
        Err(e) => (e.http_status(), None),
        Ok(()) if hs.request().is_none() => panic!("incomplete request {raw:?}"),
        Ok(()) => {
            let key = rfc6455::handshake::accept_key(hs.request().unwrap().key().as_bytes());
            (101, Some(key))
        }
    }
}

/// The same request as an HTTP server hands it over: parsed by httparse into an
/// `http::Request`, as hyper does (httparse is hyper's parser too).
fn to_http(raw: &[u8]) -> Option<http::Request<()>> {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    if !matches!(parsed.parse(raw), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut builder = http::Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(match parsed.version? {
            0 => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        });
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    builder.body(()).ok()
}

/// The `http` path's verdict on the same request.
fn http_verdict(request: &http::Request<()>, config: &Config) -> (u16, Option<String>) {
    match Upgrade::from_request(request, config.clone()) {
        Err(refused) => {
            let response: http::Response<String> = refused.into_response();
            assert_eq!(response.status().as_u16(), refused.status());
            (refused.status(), None)
        }
        Ok(upgrade) => {
            let (response, _) = upgrade.accept(Accept::new()).unwrap();
            assert_eq!(response.status(), 101);
            let key = response.headers()["sec-websocket-accept"].to_str().unwrap();
            (101, Some(key.to_owned()))
        }
    }
}

const BASE: [&str; 6] = [
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
];

fn raw(lines: &[&str]) -> Vec<u8> {
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// Requests the byte parser answers with each of its statuses.
fn corpus() -> Vec<Vec<String>> {
    let base: Vec<String> = BASE.iter().map(|s| (*s).to_owned()).collect();
    let edit = |f: &dyn Fn(&mut Vec<String>)| {
        let mut lines = base.clone();
        f(&mut lines);
        lines
    };
    let set = |i: usize, to: &'static str| edit(&move |l| l[i] = to.to_owned());
    let push = |extra: &'static str| edit(&move |l| l.push(extra.to_owned()));
    let drop = |i: usize| edit(&move |l| drop_line(l, i));
    vec![
        base.clone(),
        set(0, "POST /chat HTTP/1.1"),
        set(0, "get /chat HTTP/1.1"),
        set(0, "GET /chat HTTP/1.0"),
        set(0, "GET http://server.example.com/chat?x=1 HTTP/1.1"),
        set(0, "GET http://other.example/chat HTTP/1.1"),
        set(0, "GET https://server.example.com:443/ HTTP/1.1"),
        set(0, "GET * HTTP/1.1"),
        set(0, "GET /a%zz HTTP/1.1"),
        drop(1),
        push("Host: again.example"),
        set(1, "Host: bad host"),
        set(1, "Host: [::1]:9001"),
        drop(2),
        set(2, "Upgrade: h2c"),
        set(2, "Upgrade: h2c, WebSocket"),
        drop(3),
        set(3, "Connection: keep-alive, upgrade"),
        set(3, "Connection: close"),
        drop(4),
        set(4, "Sec-WebSocket-Key: short=="),
        set(4, "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEC=="),
        push("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
        drop(5),
        set(5, "Sec-WebSocket-Version: 8"),
        set(5, "Sec-WebSocket-Version:  13 "),
        push("Sec-WebSocket-Version: 13"),
        push("Content-Length: 0"),
        push("Content-Length: 5"),
        push("Transfer-Encoding: chunked"),
        push("Sec-WebSocket-Protocol: chat, superchat"),
        push("Sec-WebSocket-Protocol: chat/1"),
        push("Sec-WebSocket-Protocol: ,"),
        push("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
        push("Sec-WebSocket-Extensions: permessage-deflate; x=\"a b\""),
        push("Sec-WebSocket-Extensions: ;"),
        push("Origin: http://server.example.com"),
        push("Origin: https://server.example.com"),
        push("Origin: http://example.com"),
        push("Origin: null"),
        push("Origin: http://server.example.com:8080"),
        edit(&|l| {
            l.push("Origin: http://server.example.com".into());
            l.push("Origin: http://server.example.com".into());
        }),
        edit(&|l| {
            l.push("Origin: http://evil.example".into());
            l[5] = "Sec-WebSocket-Version: 7".into();
        }),
        edit(&|l| l.extend((0..70).map(|i| format!("X-Filler-{i}: {i}")))),
        edit(&|l| l.push(format!("X-Big: {}", "a".repeat(20_000)))),
    ]
}

fn drop_line(lines: &mut Vec<String>, i: usize) {
    lines.remove(i);
}

#[test]
fn rfc6455_4_2_1_http_path_answers_every_request_as_the_byte_parser_does() {
    let configs = [
        Config::default(),
        Config::default().origin_policy(OriginPolicy::Any),
        Config::default().origin_policy(OriginPolicy::allow_list(["http://example.com"])),
    ];
    let mut statuses = std::collections::BTreeSet::new();
    for lines in corpus() {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let bytes = raw(&lines);
        let Some(request) = to_http(&bytes) else {
            // Not HTTP at all (e.g. a space in a header value position httparse refuses):
            // no HTTP server would hand it over.
            continue;
        };
        for config in &configs {
            let expected = bytes_verdict(&bytes, config);
            statuses.insert(expected.0);
            assert_eq!(
                http_verdict(&request, config),
                expected,
                "{lines:#?} under {:?}",
                config.origin_policy
            );
        }
    }
    // The corpus reaches every status the byte parser gives.
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        [101, 400, 403, 405, 426, 431]
    );
}

proptest! {
    /// Random subsets and orders of valid and faulty header lines: both paths agree.
    #[test]
    fn both_paths_agree_on_random_requests(
        picks in proptest::collection::vec(0usize..POOL.len(), 0..12),
        start in 0usize..4,
    ) {
        let start_line = ["GET /chat HTTP/1.1", "GET /chat HTTP/1.0", "PUT /chat HTTP/1.1",
                          "GET http://server.example.com/chat HTTP/1.1"][start];
        let mut lines = vec![start_line];
        lines.extend(picks.iter().map(|&i| POOL[i]));
        let bytes = raw(&lines);
        if let Some(request) = to_http(&bytes) {
            let config = Config::default();
            prop_assert_eq!(http_verdict(&request, &config), bytes_verdict(&bytes, &config));
        }
    }
}

const POOL: [&str; 20] = [
    "Host: server.example.com",
    "Host: server.example.com",
    "Host: other.example:80",
    "Upgrade: websocket",
    "Upgrade: WebSocket, h2c",
    "Connection: Upgrade",
    "Connection: keep-alive",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Key: nope",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Version: 12",
    "Origin: http://server.example.com",
    "Origin: http://evil.example",
    "Sec-WebSocket-Protocol: a, b",
    "Sec-WebSocket-Protocol: a b",
    "Sec-WebSocket-Extensions: x; y=1",
    "Sec-WebSocket-Extensions: x; =",
    "Content-Length: 0",
    "Content-Length: 1",
    "X-Any: thing",
];

fn valid() -> http::request::Builder {
    http::Request::get("/chat")
        .header("host", "server.example.com")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
}

#[test]
fn rfc6455_4_2_2_accept_builds_the_101() {
    let request = valid()
        .header("sec-websocket-protocol", "chat, superchat")
        .header("sec-websocket-extensions", "x-test; a=1")
        .body(())
        .unwrap();
    let upgrade = Upgrade::from_request(&request, Config::default()).unwrap();
    assert!(!upgrade.request().is_extended_connect());
    assert_eq!(
        upgrade.request().protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    let (response, accepted) = upgrade
        .accept(
            Accept::new()
                .protocol("superchat")
                .header("Set-Cookie", "a=1")
                .header("Sec-WebSocket-Extensions", "x-test"),
        )
        .unwrap();
    assert_eq!(response.status(), 101);
    let h = response.headers();
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "Upgrade");
    assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(h["sec-websocket-protocol"], "superchat");
    assert_eq!(h["set-cookie"], "a=1");
    assert_eq!(h["sec-websocket-extensions"], "x-test");
    assert_eq!(accepted.protocol(), Some("superchat"));
    assert!(!accepted.is_http2());
    let connection = accepted.into_connection();
    assert_eq!(connection.role(), rfc6455::Role::Server);
    assert!(
        connection.pending_transmit().is_empty(),
        "the server sent the 101"
    );

    // The byte path's usage errors, nothing built.
    for (accept, error) in [
        (
            Accept::new().protocol("nope"),
            UsageError::ProtocolNotOffered,
        ),
        (
            Accept::new().header("Upgrade", "x"),
            UsageError::InvalidHeader("header is set by the handshake itself"),
        ),
        (
            Accept::new().header("X", "a\nb"),
            UsageError::InvalidHeader("header value contains a control character"),
        ),
        (
            Accept::new().header("Sec-WebSocket-Extensions", "other"),
            UsageError::InvalidHeader("extension was not offered by the client"),
        ),
    ] {
        assert_eq!(upgrade.accept(accept).err(), Some(error));
    }
    // `respond`: an impossible decision is answered 500, a rejection as given.
    let (response, outcome) = upgrade.respond(Ok(Accept::new().protocol("nope")));
    assert_eq!(
        (response.status().as_u16(), outcome.err()),
        (500, Some(Refusal::Invalid(UsageError::ProtocolNotOffered)))
    );
    let (response, outcome) = upgrade.respond(Ok(Accept::new().protocol("chat")));
    assert_eq!(response.status(), 101);
    assert_eq!(outcome.unwrap().protocol(), Some("chat"));
    let (response, outcome) = upgrade.respond(Err(Reject::new(401)
        .header("WWW-Authenticate", "Bearer")
        .body("log in first")));
    assert_eq!(outcome.err(), Some(Refusal::Rejected(401)));
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.body(), "log in first");
    assert_eq!(
        upgrade.reject(Reject::new(101)).err(),
        Some(UsageError::InvalidStatus(101))
    );
    assert_eq!(
        upgrade
            .reject(Reject::new(403).header("Content-Length", "1"))
            .err(),
        Some(UsageError::InvalidHeader(
            "header is set by the handshake itself"
        ))
    );
}

#[test]
fn refusals_carry_the_headers_the_rfcs_ask_for() {
    let request = http::Request::post("/")
        .header("host", "a")
        .body(())
        .unwrap();
    let response: http::Response<String> = Upgrade::from_request(&request, Config::default())
        .unwrap_err()
        .into_response();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    assert_eq!(
        response.body(),
        "method not allowed: websocket handshakes use GET\n"
    );

    let request = valid()
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    let refused = Upgrade::from_request(&request, Config::default()).unwrap_err();
    assert_eq!(refused.error(), HandshakeError::UnsupportedVersion);
    let response: http::Response<String> = refused.into_response();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    assert_eq!(response.headers()["upgrade"], "websocket");

    let request = valid()
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    let refused = Upgrade::from_request(&request, Config::default()).unwrap_err();
    assert_eq!(refused.error(), HandshakeError::OriginNotAllowed);
    assert_eq!(refused.status(), 403);
    let config = Config::default().origin_policy(OriginPolicy::Any);
    let upgrade = Upgrade::from_request(&request, config).unwrap();
    assert_eq!(upgrade.request().origin(), Some("https://evil.example"));
}

/// An HTTP/2 extended CONNECT as hyper hands it over: `:protocol` in the extensions (here
/// given explicitly), `:authority` in the URI.
fn connect(authority: &str) -> http::request::Builder {
    http::Request::builder()
        .method("CONNECT")
        .version(http::Version::HTTP_2)
        .uri(format!("https://{authority}/chat?room=1"))
        .header("sec-websocket-version", "13")
}

fn h2_check(
    request: &http::Request<()>,
    protocol: Option<&str>,
    config: Config,
) -> Result<Upgrade, rfc6455::web::Refused> {
    let (parts, ()) = request.clone().into_parts();
    Upgrade::with_protocol(&parts, protocol, config)
}

#[test]
fn rfc8441_5_extended_connect_is_checked_and_answered_200() {
    let request = connect("server.example.com")
        .header("sec-websocket-protocol", "chat")
        .header("origin", "https://server.example.com")
        .body(())
        .unwrap();
    let upgrade = h2_check(&request, Some("websocket"), Config::default()).unwrap();
    let seen = upgrade.request();
    assert!(seen.is_extended_connect());
    assert_eq!(
        (seen.method(), seen.path(), seen.host(), seen.key()),
        ("CONNECT", "/chat?room=1", "server.example.com", "")
    );
    let (response, accepted) = upgrade.accept(Accept::new().protocol("chat")).unwrap();
    // RFC 8441 §5: a 200, and no Upgrade, Connection or Sec-WebSocket-Accept.
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    for absent in ["upgrade", "connection", "sec-websocket-accept"] {
        assert!(!response.headers().contains_key(absent), "{absent}");
    }
    assert!(accepted.is_http2());
    assert_eq!(seen.to_http().version(), http::Version::HTTP_2);

    let status = |request: &http::Request<()>, protocol| {
        h2_check(request, protocol, Config::default())
            .map(|_| 200)
            .unwrap_or_else(|r| r.status())
    };
    let plain = connect("server.example.com").body(()).unwrap();
    assert_eq!(status(&plain, Some("websocket")), 200);
    assert_eq!(status(&plain, None), 400, "a CONNECT without :protocol");
    assert_eq!(status(&plain, Some("webtransport")), 400);
    let get = http::Request::get("https://server.example.com/")
        .version(http::Version::HTTP_2)
        .body(())
        .unwrap();
    assert_eq!(status(&get, Some("websocket")), 400, "GET over http/2");
    let post = http::Request::post("https://server.example.com/")
        .version(http::Version::HTTP_2)
        .body(())
        .unwrap();
    let refused = h2_check(&post, None, Config::default()).unwrap_err();
    let response: http::Response<String> = refused.into_response();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "CONNECT");
    let old = connect("server.example.com")
        .header("sec-websocket-version", "8")
        .body(())
        .unwrap();
    let response: http::Response<String> = h2_check(&old, Some("websocket"), Config::default())
        .unwrap_err()
        .into_response();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    assert!(
        !response.headers().contains_key("upgrade"),
        "no upgrade over http/2"
    );
    let two_hosts = connect("server.example.com")
        .header("host", "other.example")
        .body(())
        .unwrap();
    assert_eq!(status(&two_hosts, Some("websocket")), 400);
    let same_host = connect("server.example.com")
        .header("host", "Server.Example.com")
        .body(())
        .unwrap();
    assert_eq!(status(&same_host, Some("websocket")), 200);
    let foreign = connect("server.example.com")
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    assert_eq!(status(&foreign, Some("websocket")), 403);
    let no_authority = http::Request::builder()
        .method("CONNECT")
        .version(http::Version::HTTP_2)
        .uri("/chat")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    assert_eq!(status(&no_authority, Some("websocket")), 400);
}

#[test]
fn limits_apply_to_the_http_path_as_to_bytes() {
    let config = Config::default().max_headers(8).max_handshake_size(512);
    let many = (0..4)
        .fold(valid(), |b, i| b.header(format!("x-{i}"), "1"))
        .body(())
        .unwrap();
    assert_eq!(
        Upgrade::from_request(&many, config.clone())
            .unwrap_err()
            .error(),
        HandshakeError::TooManyHeaders(8)
    );
    let big = valid().header("x-big", "a".repeat(400)).body(()).unwrap();
    let refused = Upgrade::from_request(&big, config).unwrap_err();
    assert_eq!(refused.error(), HandshakeError::HeadTooLarge(512));
    assert_eq!(refused.status(), 431);
}

#[test]
fn http_requests_and_uris_become_client_requests() {
    let request = http::Request::get("ws://example.com:8080/chat?x=1")
        .header("Host", "EXAMPLE.com:8080")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Protocol", "a, b")
        .header("Sec-WebSocket-Protocol", "c")
        .header("Sec-WebSocket-Extensions", "permessage-deflate")
        .header("Authorization", "Basic eDp5")
        .body(())
        .unwrap();
    let client = request.into_client_request().unwrap();
    assert_eq!(
        (client.host(), client.port(), client.path()),
        ("example.com", 8080, "/chat?x=1")
    );
    assert_eq!(client.protocols().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(
        client.extensions().collect::<Vec<_>>(),
        ["permessage-deflate"]
    );
    assert_eq!(
        client.headers().collect::<Vec<_>>(),
        [("authorization", "Basic eDp5")]
    );
    // And back: what the client will send, minus the nonce.
    let back = client.to_http().unwrap();
    assert_eq!(back.uri(), "ws://example.com:8080/chat?x=1");
    assert_eq!(back.headers()["host"], "example.com:8080");
    assert_eq!(back.headers()["sec-websocket-protocol"], "a, b, c");
    assert_eq!(back.headers()["authorization"], "Basic eDp5");
    assert!(!back.headers().contains_key("sec-websocket-key"));

    let uri: http::Uri = "wss://[::1]/feed".parse().unwrap();
    let from_uri = (&uri).into_client_request().unwrap();
    assert_eq!(from_uri, ClientRequest::new("wss://[::1]/feed").unwrap());
    assert_eq!(uri.into_client_request().unwrap(), from_uri);

    let refused = |request: http::request::Builder| {
        request.body(()).unwrap().into_client_request().unwrap_err()
    };
    assert!(matches!(
        refused(http::Request::post("ws://a/")),
        UsageError::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(http::Request::get("ws://a/").header("host", "b")),
        UsageError::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(http::Request::get("ws://a/").header("upgrade", "h2c")),
        UsageError::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(http::Request::get("ws://a/").header("sec-websocket-version", "8")),
        UsageError::InvalidRequest(_)
    ));
    assert!(matches!(
        refused(http::Request::get("http://a/")),
        UsageError::InvalidUri(_)
    ));
    assert!(matches!(
        refused(http::Request::get("/relative")),
        UsageError::InvalidUri(_)
    ));
    assert!(matches!(
        refused(http::Request::get("ws://a/").header("sec-websocket-protocol", "a/b")),
        UsageError::InvalidHeader(_)
    ));
}

#[test]
fn server_request_and_client_response_read_as_http_types() {
    let mut server = ServerHandshake::new(Config::default());
    server
        .receive(&raw(&[
            "GET /chat?x HTTP/1.1",
            "Host: example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            "X-Two: 1",
            "X-Two: 2",
        ]))
        .unwrap();
    let request = server.request().unwrap().to_http();
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri(), "/chat?x");
    assert_eq!(request.version(), http::Version::HTTP_11);
    let twos: Vec<_> = request.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["1", "2"]);
    assert_eq!(request.headers().len(), 7);

    // A client's view of a response, from the byte parser, as an http::Response.
    let entropy = Box::new(|dest: &mut [u8]| dest.fill(7));
    let mut client = rfc6455::ClientHandshake::new(
        ClientRequest::new("ws://example.com/").unwrap(),
        Config::default(),
        entropy,
    )
    .unwrap();
    let accept = rfc6455::handshake::accept_key(b"BwcHBwcHBwcHBwcHBwcHBw==");
    client
        .receive(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nX-Seen: yes\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let (_, response) = client.into_connection().unwrap();
    let response = response.to_http();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["x-seen"], "yes");
    assert_eq!(response.headers()["sec-websocket-accept"], accept.as_str());
}

/// `sync::connect` takes an `http::Request<()>`; the server sees its headers.
#[test]
fn sync_connect_takes_an_http_request() {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut seen = None;
        let mut ws = rfc6455::sync::accept_with(stream, Config::default(), |request| {
            seen = request.header("x-token").map(str::to_owned);
            Ok(Accept::new().protocol("v2"))
        })
        .unwrap();
        let message = ws.recv().unwrap();
        (seen, message)
    });
    let request = http::Request::get(format!("ws://127.0.0.1:{port}/"))
        .header("x-token", "t1")
        .header("sec-websocket-protocol", "v1, v2")
        .body(())
        .unwrap();
    let (mut ws, response) = rfc6455::sync::connect(request).unwrap();
    assert_eq!(response.protocol(), Some("v2"));
    ws.send_text("hi").unwrap();
    let (seen, message) = server.join().unwrap();
    assert_eq!(seen.as_deref(), Some("t1"));
    assert_eq!(message, Some("hi".into()));
}
