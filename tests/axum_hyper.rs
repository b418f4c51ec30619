//! `examples/axum_echo.rs` and the hyper helpers over HTTP/1.1, on 127.0.0.1:0 (features
//! `axum08`, with `hyper`):
//!
//! | server | client |
//! |---|---|
//! | the example's app (in process) | python-websockets (`py_echo_client.py`) on `/` and `/ws` |
//! | the example's app | our tokio client (URI, `http::Request`), our blocking client |
//! | the example's app | raw HTTP: the byte parser's refusals, the origin policy |
//! | the example's app | headless Chromium loading `/echo.html` from the same server |
//! | the example's binary | our blocking client (the README's command line, its ready line) |
//! | a hyper 1.x `service_fn` with `rfc6455::hyper` | our tokio client |
//!
//! Peers missing on this machine skip their test (see `interop_support`).
#![cfg(feature = "axum08")]

extern crate axum08 as axum;

#[allow(dead_code)]
#[path = "../examples/axum_echo.rs"]
mod axum_echo;
#[allow(dead_code)]
mod interop_support;

use interop_support::Peer;
use rfc6455::handshake::{Accept, ClientRequest, OriginPolicy, Reject};
use rfc6455::{CloseCode, Config, Error, Event, MessageKind};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(30);

/// A tokio runtime serving `app` on 127.0.0.1:0; dropping it stops the server.
struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl Server {
    fn start(app: axum::Router) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self { runtime, addr }
    }

    fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

/// One HTTP/1.1 request on a fresh connection; the response head, up to the blank line.
fn raw_request(addr: SocketAddr, head: &str) -> String {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WATCHDOG)).expect("timeout");
    tcp.write_all(head.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn upgrade_head(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[test]
fn axum_echo_with_python_websockets_on_root_and_ws() {
    const TEST: &str = "axum_echo py_echo_client";
    let Some(python) = interop_support::python(TEST) else {
        return;
    };
    let server = Server::start(axum_echo::app());
    for path in ["/", "/ws"] {
        let url = server.ws(path);
        let mut peer = Peer::spawn(TEST, &python, &["py_echo_client.py", &url]);
        let status = peer.finish(WATCHDOG);
        assert!(
            status.success() && peer.lines().len() == 6,
            "{TEST} {path}: {status}\n{}",
            peer.transcript()
        );
    }
}

#[test]
fn axum_echo_with_our_clients() {
    let server = Server::start(axum_echo::app());
    let root = server.ws("/");
    let ws_path = server.ws("/ws");
    server.runtime.block_on(async move {
        tokio::time::timeout(WATCHDOG, async {
            // A ClientRequest with two subprotocols: the first is chosen.
            let request = ClientRequest::new(&root)
                .unwrap()
                .protocol("echo.v1")
                .protocol("echo.v0");
            let (mut socket, response) = rfc6455::tokio::connect_with(request, Config::default())
                .await
                .expect("connect");
            assert_eq!(
                (response.status(), response.protocol()),
                (101, Some("echo.v1"))
            );
            socket.send_text("hello").await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some("hello".into()));
            let blob = interop_support::blob();
            socket.send_binary(&blob).await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some(blob.into()));
            for (part, fin) in [("frag-", false), ("ment-", false), ("ed", true)] {
                socket
                    .send_fragment(MessageKind::Text, part.as_bytes(), fin)
                    .await
                    .unwrap();
            }
            assert_eq!(socket.recv().await.unwrap(), Some("frag-ment-ed".into()));
            socket.send_ping(b"p").await.unwrap();
            assert_eq!(
                socket.recv_event().await.unwrap(),
                Some(Event::Pong(b"p".as_slice().into()))
            );
            socket.close(CloseCode::NORMAL, "bye").await.unwrap();

            // An http::Request, no subprotocol: none chosen.
            let request = http::Request::get(ws_path.as_str())
                .header("x-trace", "1")
                .body(())
                .unwrap();
            let (mut socket, response) = rfc6455::tokio::connect(request).await.expect("connect");
            assert_eq!(response.protocol(), None);
            socket.send(vec![1u8, 2, 3]).await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some(vec![1u8, 2, 3].into()));
            socket.close(CloseCode::NORMAL, "").await.unwrap();
        })
        .await
        .expect("within the watchdog");
    });
    // The blocking client too, with a same-host Origin as a browser page of the server sends.
    let origin = format!("http://{}", server.addr);
    let request = ClientRequest::new(&server.ws("/ws"))
        .unwrap()
        .header("Origin", &origin);
    let (mut ws, _) = rfc6455::sync::connect_with(request, Config::default()).expect("connect");
    ws.send_text("sync").unwrap();
    assert_eq!(ws.recv_timeout(WATCHDOG).unwrap(), Some("sync".into()));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn rfc6455_4_2_1_axum_extractor_refuses_as_the_byte_parser_does() {
    let server = Server::start(axum_echo::app());
    let addr = server.addr;
    let status_line = |head: &str| {
        raw_request(addr, head)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };

    let ok = raw_request(addr, &upgrade_head(addr, "/ws", ""));
    assert!(
        ok.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{ok}"
    );
    assert!(
        ok.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n")
    );

    let post = raw_request(
        addr,
        &upgrade_head(addr, "/ws", "").replacen("GET", "POST", 1),
    );
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("\r\nallow: get\r\n"),
        "{post}"
    );

    let old = raw_request(
        addr,
        &upgrade_head(addr, "/ws", "").replace("Version: 13", "Version: 8"),
    );
    assert!(old.starts_with("HTTP/1.1 426 "), "{old}");
    assert!(
        old.to_ascii_lowercase()
            .contains("\r\nsec-websocket-version: 13\r\n"),
        "{old}"
    );

    let no_key = upgrade_head(addr, "/ws", "")
        .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert!(status_line(&no_key).starts_with("HTTP/1.1 400 "));
    let plain = format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert!(status_line(&plain).starts_with("HTTP/1.1 400 "));

    // RFC 6455 §10.2: the default policy refuses another site's page, admits its own.
    let foreign = upgrade_head(addr, "/ws", "Origin: https://evil.example\r\n");
    assert!(status_line(&foreign).starts_with("HTTP/1.1 403 "));
    let own = upgrade_head(addr, "/ws", &format!("Origin: http://{addr}\r\n"));
    assert!(status_line(&own).starts_with("HTTP/1.1 101 "));
    // The page itself is plain HTTP.
    let page = raw_request(
        addr,
        &format!("GET /echo.html HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");

    // A Config in the router's extensions sets the policy (and the limits).
    let open = Server::start(axum_echo::app().layer(axum::Extension(
        Config::default().origin_policy(OriginPolicy::Any),
    )));
    let foreign = upgrade_head(open.addr, "/ws", "Origin: https://evil.example\r\n");
    assert!(raw_request(open.addr, &foreign).starts_with("HTTP/1.1 101 "));
    let small =
        Server::start(axum_echo::app().layer(axum::Extension(Config::default().max_headers(4))));
    let many = upgrade_head(small.addr, "/ws", "");
    assert!(raw_request(small.addr, &many).starts_with("HTTP/1.1 431 "));
}

#[test]
fn axum_echo_page_in_chromium() {
    const TEST: &str = "axum_echo browser_echo";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let server = Server::start(axum_echo::app());
    let url = format!("http://{}/echo.html", server.addr);
    let mut peer = Peer::spawn(TEST, &node, &["browser_echo.mjs", &url]);
    let status = peer.finish(Duration::from_secs(90));
    assert!(
        status.success()
            && peer.lines()
                == [
                    "PAGE http/1.1".to_owned(),
                    "OK echo ok protocol=echo.v1 close=1000".to_owned()
                ],
        "{TEST}: {status}\n{}",
        peer.transcript()
    );
}

/// The example as the README runs it: its own binary, ready line first.
#[test]
fn axum_echo_example_binary_serves_as_documented() {
    const TEST: &str = "axum_echo binary";
    let exe = example_binary("axum_echo");
    let mut server = Peer::spawn(TEST, &exe, &["127.0.0.1:0"]);
    let line = server.next_line(WATCHDOG).expect("a ready line");
    let addr = line
        .strip_prefix("axum echo server listening on ws://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .protocol("p1");
    let (mut ws, response) =
        rfc6455::sync::connect_with(request, Config::default()).expect("connect");
    assert_eq!(response.protocol(), Some("p1"));
    ws.send_text("from the binary test").unwrap();
    assert_eq!(
        ws.recv_timeout(WATCHDOG).unwrap(),
        Some("from the binary test".into())
    );
    ws.close(CloseCode::NORMAL, "").unwrap();
}

/// Builds `examples/NAME.rs` with this test's profile, target directory and features (a
/// no-op when `cargo test` built the examples already) and returns the binary's path.
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("TARGET/PROFILE");
    let target_dir = profile_dir.parent().expect("TARGET");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let features: Vec<&str> = [
        ("std", cfg!(feature = "std")),
        ("deflate", cfg!(feature = "deflate")),
        ("tokio", cfg!(feature = "tokio")),
        ("rustls", cfg!(feature = "rustls")),
        ("tokio-rustls", cfg!(feature = "tokio-rustls")),
        ("http", cfg!(feature = "http")),
        ("hyper", cfg!(feature = "hyper")),
        ("axum08", cfg!(feature = "axum08")),
        ("h2", cfg!(feature = "h2")),
        ("tracing", cfg!(feature = "tracing")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--no-default-features", "--features", &features.join(",")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo build --example {name}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    profile_dir.join("examples").join(name)
}

/// A hyper 1.x service without axum: `rfc6455::hyper::upgrade`, then `respond` with the
/// application's decision (a subprotocol, a 401, an impossible choice answered 500).
#[test]
fn hyper_service_upgrades_rejects_and_answers_500() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;

    async fn service(
        mut request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<String>, std::convert::Infallible> {
        let upgrade = match rfc6455::hyper::upgrade(&mut request, Config::default()) {
            Ok(upgrade) => upgrade,
            Err(refused) => return Ok(refused.into_response()),
        };
        let decision = match upgrade.request().path() {
            "/secret" => Err(Reject::new(401)
                .header("WWW-Authenticate", "Bearer")
                .body("no")),
            "/bad" => Ok(Accept::new().protocol("never-offered")),
            _ => Ok(Accept::new().protocol("v2").header("X-Served-By", "hyper")),
        };
        let (response, pending) = upgrade.respond(decision);
        if let Ok(pending) = pending {
            assert_eq!(pending.accepted().protocol(), Some("v2"));
            tokio::spawn(async move {
                let mut socket = pending.await.expect("upgraded");
                while let Ok(Some(message)) = socket.recv().await {
                    let reply = format!("hyper: {}", message.as_text().unwrap_or("?"));
                    if socket.send_text(&reply).await.is_err() {
                        break;
                    }
                }
            });
        }
        Ok(response)
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(service))
                        .with_upgrades(),
                );
            }
        });
        tokio::time::timeout(WATCHDOG, async {
            let request = ClientRequest::new(&format!("ws://{addr}/chat"))
                .unwrap()
                .protocol("v1")
                .protocol("v2");
            let (mut socket, response) = rfc6455::tokio::connect_with(request, Config::default())
                .await
                .unwrap();
            assert_eq!(response.protocol(), Some("v2"));
            assert_eq!(response.header("x-served-by"), Some("hyper"));
            socket.send_text("hi").await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some("hyper: hi".into()));
            socket.close(CloseCode::NORMAL, "").await.unwrap();

            let refused = |path: &'static str| async move {
                match rfc6455::tokio::connect(format!("ws://{addr}{path}")).await {
                    Err(Error::Rejected(response)) => response,
                    other => panic!("{path}: {:?}", other.map(|_| ())),
                }
            };
            // The application's rejection reaches the client whole: status, header, body.
            let secret = refused("/secret").await;
            assert_eq!(secret.status(), 401);
            assert_eq!(secret.header("www-authenticate"), Some("Bearer"));
            assert_eq!((secret.body(), secret.body_complete()), (&b"no"[..], true));
            assert_eq!(refused("/bad").await.status(), 500);
        })
        .await
        .expect("within the watchdog");
        let head = upgrade_head(addr, "/", "Origin: http://elsewhere.example\r\n");
        let answer = tokio::task::spawn_blocking(move || raw_request(addr, &head))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    });
}
