//! Interop with other WebSocket implementations over 127.0.0.1, following the scripts in
//! `tests/interop/README.md`:
//!
//! | ours | against |
//! |---|---|
//! | blocking server (scripted handler) | `py_client.py` (python-websockets), `node_client.mjs` (ws) |
//! | blocking client | `py_server.py`, `node_server.mjs` |
//! | tokio client (feature `tokio`) | `py_server.py`, `node_server.mjs` |
//! | blocking server over `wss://` (feature `rustls`) | `py_client.py --ca` |
//! | blocking client over `wss://` (feature `rustls`) | `node_server.mjs --tls` |
//! | `examples/chat.rs` | `browser_chat.mjs`: two tabs of headless Chromium |
//! | `examples/chat.rs` | our blocking clients and raw HTTP (no peer needed) |
//!
//! Both sides check: the peer prints what it saw (`OK n step`, `CLOSE 4000 client-bye`) and
//! our side records what it saw (the fragmented message arriving whole, the 1 MiB binary
//! intact, the Ping, the Pong, the Close code and reason).
//!
//! Ports are ephemeral and every wait is bounded. When a peer is missing, its test passes
//! and prints `SKIPPED interop <test>: <why>`, unless `RFC6455_INTEROP=required` is set (as
//! `scripts/test.sh` does), in which case it fails. `scripts/setup-peers.sh` installs them.

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;
mod interop_support;
#[path = "interop_support/sniffer.rs"]
mod sniffer;

use interop_support::{Peer, blob, bounded, describe_binary};
use rfc6455::handshake::{Accept, ClientRequest, Reject, Request, Response};
use rfc6455::sync::{self, Transport, WebSocket};
use rfc6455::{CloseCode, Config, Event, Message, MessageKind};
use std::collections::HashMap;
use std::fmt::Display;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// One wait for one message or event.
const STEP: Duration = Duration::from_secs(10);
/// A client peer's whole run (the peers cut themselves off at 30 s).
const CLIENT_PEER_RUN: Duration = Duration::from_secs(45);
/// Our client's whole script against a server peer.
const CLIENT_SCRIPT: Duration = Duration::from_secs(40);
/// The browser run (the script cuts itself off at 60 s).
const BROWSER_RUN: Duration = Duration::from_secs(90);

/// What a client peer prints when every step passed.
const CLIENT_PEER_OK: [&str; 8] = [
    "OK 1 text-echo",
    "OK 2 binary-echo",
    "OK 3 fragmented-send",
    "OK 4 fragmented-receive",
    "OK 5 client-ping",
    "OK 6 server-ping",
    "OK 7 client-close",
    "OK 8 server-close",
];

/// What a server peer prints (after `LISTENING <port>`) for our client's script. Our Close
/// echo carries the code without a reason, so its line has no reason.
const SERVER_PEER_EVENTS: [&str; 3] = [
    "PING client-ping",
    "CLOSE 4000 client-bye",
    "CLOSE-ECHO 4000",
];

/// Adds what was being done to an error.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

fn text_of(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

// ------------------------------------------------------------------------------------------
// Our blocking server against the client peers.

/// What our server saw on one connection, in order, and how its script ended.
#[derive(Debug)]
struct ServerReport {
    path: String,
    seen: Vec<String>,
    result: Result<(), String>,
}

/// Starts our scripted server on an ephemeral port, `serve` handling each connection on its
/// own thread; each connection reports when it ends. The accepting thread outlives the test
/// harmlessly (it blocks in `accept`).
fn start_script_server(
    serve: impl Fn(TcpStream) -> ServerReport + Clone + Send + 'static,
) -> (u16, Receiver<ServerReport>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (tx, serve) = (tx.clone(), serve.clone());
            thread::spawn(move || {
                let _ = tx.send(serve(stream));
            });
        }
    });
    (port, rx)
}

/// Accepts a connection with `accept` (given the handshake callback), then runs the script.
fn serve_script<S: Transport>(
    accept: impl FnOnce(
        &mut dyn FnMut(&Request) -> Result<Accept, Reject>,
    ) -> Result<WebSocket<S>, rfc6455::Error>,
) -> ServerReport {
    let mut path = String::new();
    let mut seen = Vec::new();
    let accepted = accept(&mut |request| {
        request.path().clone_into(&mut path);
        Ok(Accept::new())
    });
    let result = accepted
        .context("handshake")
        .and_then(|mut ws| server_script(&mut ws, &path, &mut seen));
    ServerReport { path, seen, result }
}

/// Our blocking server over TCP.
fn serve_plain(stream: TcpStream) -> ServerReport {
    serve_script(|callback| sync::accept_with(stream, Config::default(), callback))
}

/// The server side of the README's line protocol, recording every event in `seen`.
fn server_script<S: Transport>(
    ws: &mut WebSocket<S>,
    path: &str,
    seen: &mut Vec<String>,
) -> Result<(), String> {
    loop {
        let Some(event) = ws.recv_event().context("recv")? else {
            seen.push("END clean".into());
            return Ok(());
        };
        match event {
            Event::Message(Message::Text(text)) => {
                seen.push(format!("TEXT {text}"));
                match text.as_str() {
                    "please-fragment" => {
                        let parts = [
                            ("server-", false),
                            ("fragmented-", false),
                            ("message", true),
                        ];
                        for (part, fin) in parts {
                            ws.send_fragment(MessageKind::Text, part.as_bytes(), fin)
                                .context("send fragment")?;
                        }
                    }
                    "please-ping" => {
                        ws.send_ping(b"server-ping").context("ping")?;
                        loop {
                            match ws.recv_event().context("waiting for the pong")? {
                                Some(Event::Pong(payload)) => {
                                    seen.push(format!("PONG {}", text_of(&payload)));
                                    if payload == "server-ping".as_bytes() {
                                        break;
                                    }
                                }
                                Some(Event::Ping(payload)) => {
                                    seen.push(format!("PING {}", text_of(&payload)));
                                }
                                other => return Err(format!("waiting for the pong: {other:?}")),
                            }
                        }
                        ws.send_text("got-pong:server-ping").context("send")?;
                    }
                    "close-me" if path == "/server-close" => {
                        ws.send_close(CloseCode(4000), "server-bye")
                            .context("send close")?;
                        loop {
                            match ws.recv_event().context("waiting for the close echo")? {
                                Some(Event::Close(frame)) => seen.push(
                                    format!("CLOSE-ECHO {} {}", frame.code, frame.reason)
                                        .trim_end()
                                        .to_owned(),
                                ),
                                Some(other) => seen.push(format!("AFTER OUR CLOSE {other:?}")),
                                None => {
                                    seen.push("END clean".into());
                                    return Ok(());
                                }
                            }
                        }
                    }
                    _ => ws.send(Message::Text(text)).context("echo")?,
                }
            }
            Event::Message(Message::Binary(data)) => {
                seen.push(describe_binary(&data));
                ws.send(Message::Binary(data)).context("echo")?;
            }
            Event::Ping(payload) => seen.push(format!("PING {}", text_of(&payload))),
            Event::Pong(payload) => seen.push(format!("PONG {}", text_of(&payload))),
            Event::Close(frame) => {
                seen.push(
                    format!("CLOSE {} {}", frame.code, frame.reason)
                        .trim_end()
                        .to_owned(),
                );
            }
            other => return Err(format!("unexpected event {other:?}")),
        }
    }
}

/// Runs a client peer (`script`, then `args`, with the URL's `PORT` filled in) against our
/// server and checks both sides.
fn client_peer_against_our_server(
    test: &str,
    program: &Path,
    script: &str,
    args: &[&str],
    serve: impl Fn(TcpStream) -> ServerReport + Clone + Send + 'static,
) {
    let started = Instant::now();
    let (port, reports) = start_script_server(serve);
    // The peer talks to us through a relay that reads the frame headers.
    let relay = sniffer::Sniffer::start(port);
    let port = relay.port.to_string();
    let mut argv = vec![script.to_owned()];
    argv.extend(args.iter().map(|a| a.replace("PORT", &port)));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut peer = Peer::spawn(test, program, &argv);
    let status = peer.finish(CLIENT_PEER_RUN);
    assert!(
        status.success() && peer.lines() == CLIENT_PEER_OK,
        "{test}: {status}, expected the 8 OK lines\n{}",
        peer.transcript()
    );

    let mut by_path = HashMap::new();
    for _ in 0..2 {
        let report = reports.recv_timeout(STEP).unwrap_or_else(|_| {
            panic!("{test}: our server did not finish both connections: {by_path:?}")
        });
        by_path.insert(report.path.clone(), report);
    }
    let a = &by_path["/interop"];
    assert_eq!(a.result, Ok(()), "{test}: our server, /interop: {a:?}");
    assert_eq!(
        a.seen,
        [
            "TEXT hello",
            "BINARY 1048576 bytes i%251",
            "TEXT frag-ment-ed",
            "TEXT please-fragment",
            "PING client-ping",
            "TEXT please-ping",
            "PONG server-ping",
            "CLOSE 4000 client-bye",
            "END clean",
        ],
        "{test}: what our server saw on /interop"
    );
    let b = &by_path["/server-close"];
    assert_eq!(b.result, Ok(()), "{test}: our server, /server-close: {b:?}");
    assert_eq!(
        b.seen,
        ["TEXT close-me", "CLOSE-ECHO 4000 server-bye", "END clean"],
        "{test}: what our server saw on /server-close"
    );
    // Over wss:// the relay sees only TLS records.
    if !args.iter().any(|a| a.starts_with("wss:")) {
        assert_compressed_both_ways(test, &relay.seen());
    }
    println!("{test}: passed in {:?}", started.elapsed());
}

/// RFC 7692 in interop: every 101 agreed permessage-deflate, and frames with RSV1 (the
/// "compressed" bit) went both ways.
fn assert_compressed_both_ways(test: &str, seen: &sniffer::Seen) {
    assert!(
        !seen.extensions.is_empty()
            && seen
                .extensions
                .iter()
                .all(|e| e.starts_with("permessage-deflate")),
        "{test}: the 101s agreed {:?}",
        seen.extensions
    );
    assert!(
        seen.to_server.1 > 0 && seen.to_client.1 > 0,
        "{test}: compressed frames (all, with RSV1): to the server {:?}, to the client {:?}",
        seen.to_server,
        seen.to_client
    );
    println!(
        "{test}: permessage-deflate {:?}; frames (all, compressed) to server {:?}, to client {:?}",
        seen.extensions, seen.to_server, seen.to_client
    );
}

#[test]
fn our_sync_server_with_py_client() {
    let Some(python) = interop_support::python("py_client") else {
        return;
    };
    client_peer_against_our_server(
        "py_client",
        &python,
        "py_client.py",
        &["ws://127.0.0.1:PORT"],
        serve_plain,
    );
}

#[test]
fn our_sync_server_with_node_client() {
    let Some(node) = interop_support::node("node_client", &["ws"]) else {
        return;
    };
    client_peer_against_our_server(
        "node_client",
        &node,
        "node_client.mjs",
        &["ws://127.0.0.1:PORT"],
        serve_plain,
    );
}

// ------------------------------------------------------------------------------------------
// Our clients against the server peers.

/// Starts a server peer and reads its `LISTENING <port>` line.
fn start_server_peer(test: &str, program: &Path, args: &[&str]) -> (Peer, u16) {
    let mut peer = Peer::spawn(test, program, args);
    let first = peer.next_line(STEP).unwrap_or_default();
    let port = first
        .strip_prefix("LISTENING ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{test}: expected LISTENING <port>\n{}", peer.transcript()));
    (peer, port)
}

/// After our client's script: the server peer printed exactly its expected events, and
/// exits cleanly once its stdin closes.
fn check_server_peer(test: &str, mut peer: Peer, script: Result<(), String>) {
    if let Err(e) = script {
        panic!("{test}: {e}\n{}", peer.transcript());
    }
    let events = |lines: &[String]| {
        let mut events: Vec<String> = lines.iter().skip(1).cloned().collect();
        events.sort();
        events
    };
    let mut want: Vec<String> = SERVER_PEER_EVENTS.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    // The lines of the two connections may interleave: wait for all of them, in any order.
    peer.read_until(STEP, |lines| lines.len() > SERVER_PEER_EVENTS.len());
    let status = peer.finish(STEP);
    assert!(
        status.success() && events(peer.lines()) == want,
        "{test}: {status}, expected {want:?}\n{}",
        peer.transcript()
    );
}

/// Our blocking client's side of the README's script, against the server at `base`
/// (`ws://127.0.0.1:PORT`), each connection opened by `connect`.
fn sync_client_script<S: Transport>(
    base: &str,
    connect: impl Fn(&str) -> Result<(WebSocket<S>, Response), rfc6455::Error>,
) -> Result<(), String> {
    let (mut ws, _response) = connect(&format!("{base}/interop")).context("connect")?;

    ws.send_text("hello").context("send text")?;
    expect(&mut ws, "hello".into(), "text-echo")?;

    let blob = blob();
    ws.send_binary(&blob).context("send binary")?;
    expect(&mut ws, blob.into(), "binary-echo")?;

    for (part, fin) in [("frag-", false), ("ment-", false), ("ed", true)] {
        ws.send_fragment(MessageKind::Text, part.as_bytes(), fin)
            .context("send fragment")?;
    }
    expect(&mut ws, "frag-ment-ed".into(), "fragmented-send")?;

    ws.send_text("please-fragment").context("send")?;
    expect(
        &mut ws,
        "server-fragmented-message".into(),
        "fragmented-receive",
    )?;

    ws.send_ping(b"client-ping").context("ping")?;
    match ws.recv_event().context("client-ping")? {
        Some(Event::Pong(payload)) if payload == "client-ping".as_bytes() => {}
        other => return Err(format!("client-ping: expected the pong, got {other:?}")),
    }

    // The server's Ping is answered by the core; the server says so once the Pong arrives.
    ws.send_text("please-ping").context("send")?;
    match ws.recv_event().context("server-ping")? {
        Some(Event::Ping(payload)) if payload == "server-ping".as_bytes() => {}
        other => return Err(format!("server-ping: expected the ping, got {other:?}")),
    }
    expect(&mut ws, "got-pong:server-ping".into(), "server-ping")?;

    ws.send_close(CloseCode(4000), "client-bye")
        .context("close")?;
    match ws.recv_event().context("client-close")? {
        Some(Event::Close(frame)) if frame.code == CloseCode(4000) => {}
        other => {
            return Err(format!(
                "client-close: expected the echo of 4000, got {other:?}"
            ));
        }
    }
    match ws.recv_event().context("client-close")? {
        None => {}
        other => return Err(format!("client-close: expected the end, got {other:?}")),
    }

    let (mut ws, _response) = connect(&format!("{base}/server-close")).context("connect")?;
    ws.send_text("close-me").context("send")?;
    match ws.recv_event().context("server-close")? {
        Some(Event::Close(frame))
            if frame.code == CloseCode(4000) && frame.reason == "server-bye" => {}
        other => {
            return Err(format!(
                "server-close: expected Close 4000 server-bye, got {other:?}"
            ));
        }
    }
    match ws.recv_event().context("server-close")? {
        None => Ok(()),
        other => Err(format!("server-close: expected the end, got {other:?}")),
    }
}

/// Receives the next message (within `STEP`) and checks it is `want`.
fn expect<S: Transport>(ws: &mut WebSocket<S>, want: Message, step: &str) -> Result<(), String> {
    match ws.recv_timeout(STEP).context(step)? {
        Some(got) if got == want => Ok(()),
        other => Err(format!(
            "{step}: expected {}, got {}",
            show(Some(&want)),
            show(other.as_ref())
        )),
    }
}

fn show(message: Option<&Message>) -> String {
    match message {
        Some(Message::Text(text)) if text.len() <= 60 => format!("text {:?}", text.as_str()),
        Some(Message::Text(text)) => format!("text of {} bytes", text.len()),
        Some(Message::Binary(data)) => describe_binary(data),
        None => "the end of the connection".into(),
    }
}

fn sync_client_against_server_peer(test: &str, program: &Path, script: &str) {
    let started = Instant::now();
    let (peer, port) = start_server_peer(test, program, &[script]);
    let relay = sniffer::Sniffer::start(port);
    let base = format!("ws://127.0.0.1:{}", relay.port);
    let result = bounded(test, CLIENT_SCRIPT, move || {
        sync_client_script(&base, |uri: &str| sync::connect(uri))
    })
    .and_then(|r| r);
    check_server_peer(test, peer, result);
    assert_compressed_both_ways(test, &relay.seen());
    println!("{test}: passed in {:?}", started.elapsed());
}

#[test]
fn our_sync_client_with_py_server() {
    let Some(python) = interop_support::python("py_server") else {
        return;
    };
    sync_client_against_server_peer("py_server", &python, "py_server.py");
}

#[test]
fn our_sync_client_with_node_server() {
    let Some(node) = interop_support::node("node_server", &["ws"]) else {
        return;
    };
    sync_client_against_server_peer("node_server", &node, "node_server.mjs");
}

#[cfg(feature = "tokio")]
mod tokio_client {
    use super::*;
    use rfc6455::tokio as ws_tokio;
    use tokio::time::timeout;

    /// Our tokio client's side of the README's script; every wait is bounded by `STEP`.
    async fn script(port: u16) -> Result<(), String> {
        let base = format!("ws://127.0.0.1:{port}");
        let (mut ws, _response) = ws_tokio::connect(&format!("{base}/interop"))
            .await
            .context("connect")?;
        macro_rules! next_event {
            ($ws:expr, $step:expr) => {
                timeout(STEP, $ws.recv_event())
                    .await
                    .context($step)?
                    .context($step)?
            };
        }
        macro_rules! expect {
            ($ws:expr, $want:expr, $step:expr) => {{
                let want: Message = $want;
                match timeout(STEP, $ws.recv())
                    .await
                    .context($step)?
                    .context($step)?
                {
                    Some(got) if got == want => {}
                    other => {
                        return Err(format!(
                            "{}: expected {}, got {}",
                            $step,
                            show(Some(&want)),
                            show(other.as_ref())
                        ));
                    }
                }
            }};
        }

        ws.send_text("hello").await.context("send text")?;
        expect!(ws, "hello".into(), "text-echo");

        let blob = blob();
        ws.send_binary(&blob).await.context("send binary")?;
        expect!(ws, blob.into(), "binary-echo");

        for (part, fin) in [("frag-", false), ("ment-", false), ("ed", true)] {
            ws.send_fragment(MessageKind::Text, part.as_bytes(), fin)
                .await
                .context("send fragment")?;
        }
        expect!(ws, "frag-ment-ed".into(), "fragmented-send");

        ws.send_text("please-fragment").await.context("send")?;
        expect!(ws, "server-fragmented-message".into(), "fragmented-receive");

        ws.send_ping(b"client-ping").await.context("ping")?;
        match next_event!(ws, "client-ping") {
            Some(Event::Pong(payload)) if payload == "client-ping".as_bytes() => {}
            other => return Err(format!("client-ping: expected the pong, got {other:?}")),
        }

        ws.send_text("please-ping").await.context("send")?;
        match next_event!(ws, "server-ping") {
            Some(Event::Ping(payload)) if payload == "server-ping".as_bytes() => {}
            other => return Err(format!("server-ping: expected the ping, got {other:?}")),
        }
        expect!(ws, "got-pong:server-ping".into(), "server-ping");

        // `close` waits for the echo and the end of the stream (bounded by the close timeout).
        timeout(STEP, ws.close(CloseCode(4000), "client-bye"))
            .await
            .context("client-close")?
            .context("client-close")?;

        let (mut ws, _response) = ws_tokio::connect(&format!("{base}/server-close"))
            .await
            .context("connect")?;
        ws.send_text("close-me").await.context("send")?;
        match next_event!(ws, "server-close") {
            Some(Event::Close(frame))
                if frame.code == CloseCode(4000) && frame.reason == "server-bye" => {}
            other => {
                return Err(format!(
                    "server-close: expected Close 4000 server-bye, got {other:?}"
                ));
            }
        }
        match next_event!(ws, "server-close") {
            None => Ok(()),
            other => Err(format!("server-close: expected the end, got {other:?}")),
        }
    }

    fn against(test: &str, program: &Path, peer_script: &str) {
        let started = Instant::now();
        let (peer, port) = start_server_peer(test, program, &[peer_script]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = runtime
            .block_on(async { timeout(CLIENT_SCRIPT, script(port)).await })
            .context("whole script")
            .and_then(|r| r);
        check_server_peer(test, peer, result);
        println!("{test}: passed in {:?}", started.elapsed());
    }

    #[test]
    fn our_tokio_client_with_py_server() {
        let Some(python) = interop_support::python("tokio py_server") else {
            return;
        };
        against("tokio py_server", &python, "py_server.py");
    }

    #[test]
    fn our_tokio_client_with_node_server() {
        let Some(node) = interop_support::node("tokio node_server", &["ws"]) else {
            return;
        };
        against("tokio node_server", &node, "node_server.mjs");
    }
}

#[cfg(not(feature = "tokio"))]
#[test]
fn our_tokio_client_with_server_peers() {
    let line = "SKIPPED interop tokio client: built without the `tokio` feature (cargo test --all-features runs it)";
    println!("{line}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

// ------------------------------------------------------------------------------------------
// TLS (feature `rustls`): our blocking server and client over wss:// with a test CA.

#[cfg(feature = "rustls")]
#[path = "interop_support/tls.rs"]
mod tls;

// ------------------------------------------------------------------------------------------
// The chat example.

/// Starts `examples/chat.rs`'s server on an ephemeral port.
fn start_chat() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    thread::spawn(move || chat::serve(listener));
    port
}

/// One plain HTTP/1.1 GET; returns the whole response (the server closes after it).
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

/// Without any peer: the page at `/`, 404 elsewhere, 403 for a foreign Origin, and a
/// broadcast between two of our clients, the sender included.
#[test]
fn chat_example_serves_page_and_broadcasts() {
    let port = start_chat();
    let page = http_get(port, "/");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    for needle in [
        r#"<input id="msg""#,
        r#"<button id="send""#,
        r#"<ul id="log">"#,
        "window.chatReady = true",
        "/ws`",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(http_get(port, "/nope").starts_with("HTTP/1.1 404 "));
    assert!(
        http_get(port, "/ws").starts_with("HTTP/1.1 400 "),
        "a plain GET of /ws is not an upgrade"
    );

    let url = format!("ws://127.0.0.1:{port}/ws");
    let foreign = ClientRequest::new(&url)
        .unwrap()
        .header("Origin", "http://evil.example");
    match sync::connect_with(foreign, Config::default()) {
        Err(rfc6455::Error::Rejected(response)) if response.status() == 403 => {}
        other => panic!("a foreign origin must get 403, got {:?}", other.map(|_| ())),
    }
    let same = ClientRequest::new(&url)
        .unwrap()
        .header("Origin", &format!("http://127.0.0.1:{port}"));
    let (mut a, _) = sync::connect_with(same, Config::default()).expect("connect a");
    let (mut b, _) = sync::connect(&url).expect("connect b");
    a.send_text("hi from a").expect("send");
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.recv_timeout(STEP).expect("recv"),
            Some("hi from a".into())
        );
    }
    b.send_binary(b"\x00\x01").expect("send");
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.recv_timeout(STEP).expect("recv"),
            Some(vec![0u8, 1].into())
        );
    }
    a.close(CloseCode::NORMAL, "bye").expect("close a");
    b.close(CloseCode::NORMAL, "bye").expect("close b");
}

#[test]
fn chat_example_in_chromium() {
    const TEST: &str = "browser_chat";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let started = Instant::now();
    let port = start_chat();
    // Chromium reaches the chat through a relay that reads the frame headers.
    let relay = sniffer::Sniffer::start(port);
    let url = format!("http://127.0.0.1:{}/", relay.port);
    let mut peer = Peer::spawn(TEST, &node, &["browser_chat.mjs", &url]);
    let status = peer.finish(BROWSER_RUN);
    assert!(
        status.success()
            && peer.lines()
                == [
                    "OK pages-ready",
                    "OK a-to-b",
                    "OK b-to-a",
                    "OK large-message"
                ],
        "{TEST}: {status}\n{}",
        peer.transcript()
    );
    assert_compressed_both_ways(TEST, &relay.seen());
    println!("{TEST}: passed in {:?}", started.elapsed());
}
