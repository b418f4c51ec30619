//! The user-facing examples as built programs, started as subprocesses on 127.0.0.1:0:
//!
//! | example | driven by |
//! |---|---|
//! | `client` | our blocking server on a thread, closing with 1000, 1001, 1002 or 4000 |
//! | `echo_server` (both adapters) | our blocking clients; its thread count under 200 connections |
//! | `tokio_echo` | our blocking client; the close it reports on stderr |
//! | `tokio_chat` | raw HTTP, our blocking clients, and two headless Chromium tabs |
//!
//! Each binary comes from `cargo build --example NAME` with this test's profile, features and
//! target directory: a no-op when `cargo test` has built the examples already, a build when
//! only this test was asked for. A program's stdout and stderr lines arrive through channels,
//! so every wait is a bounded channel receive, never a sleep.
#![cfg(feature = "std")]

#[allow(dead_code)]
mod interop_support;

use rfc6455::handshake::ClientRequest;
use rfc6455::sync;
use rfc6455::{CloseCode, Config, Error, Message};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------ harness

/// Builds `examples/NAME.rs` as this test was built (profile, features, target directory)
/// and returns the path of the binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // The test runs from TARGET/PROFILE/deps/; examples land in TARGET/PROFILE/examples/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary sits in TARGET/PROFILE/deps");
    let target_dir = profile_dir.parent().expect("TARGET");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let features: Vec<&str> = [
        ("std", cfg!(feature = "std")),
        ("tokio", cfg!(feature = "tokio")),
        ("rustls", cfg!(feature = "rustls")),
        ("tokio-rustls", cfg!(feature = "tokio-rustls")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--no-default-features", "--features", &features.join(",")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A line of output, or the end of one of the two streams.
enum Output {
    Stdout(String),
    Stderr(String),
    Closed,
}

/// An example running as a subprocess. Its stdout and stderr lines arrive through one
/// channel; everything seen is kept for failure messages. Dropping it kills the process.
struct Program {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Output>,
    open_streams: usize,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Program {
    fn start(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (tx, output) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        forward(stdout, tx.clone(), Output::Stdout);
        forward(stderr, tx, Output::Stderr);
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            output,
            open_streams: 2,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Waits for the next line on either stream; `false` once both have ended.
    fn next(&mut self, deadline: Instant) -> bool {
        if self.open_streams == 0 {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.output.recv_timeout(left) {
            Ok(Output::Stdout(line)) => self.stdout.push(line),
            Ok(Output::Stderr(line)) => self.stderr.push(line),
            Ok(Output::Closed) => self.open_streams -= 1,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: no output within {WATCHDOG:?}\n{}",
                    self.name,
                    self.transcript()
                )
            }
            Err(RecvTimeoutError::Disconnected) => unreachable!("each stream says Closed"),
        }
        true
    }

    /// Reads output until `done(stdout, stderr)` holds.
    fn wait_for(&mut self, what: &str, done: impl Fn(&[String], &[String]) -> bool) {
        let deadline = Instant::now() + WATCHDOG;
        while !done(&self.stdout, &self.stderr) {
            assert!(
                self.next(deadline),
                "{}: ended before {what}\n{}",
                self.name,
                self.transcript()
            );
        }
    }

    /// The first stdout line (a server's "listening" line).
    fn first_line(&mut self) -> String {
        self.wait_for("its first line", |out, _| !out.is_empty());
        self.stdout[0].clone()
    }

    /// Closes stdin, reads the rest of the output and returns the exit status. A process
    /// whose stdout and stderr have both ended is exiting, so the final `wait` is short.
    fn finish(&mut self) -> ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + WATCHDOG;
        while self.next(deadline) {}
        self.child.wait().expect("wait")
    }

    fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// The number of threads the process runs (Linux only).
    fn threads(&self) -> Option<usize> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
    }

    fn transcript(&self) -> String {
        format!(
            "--- {0} stdout ---\n{1}\n--- {0} stderr ---\n{2}",
            self.name,
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends each line of `pipe` as `wrap(line)`, then `Closed`.
fn forward(pipe: impl Read + Send + 'static, tx: mpsc::Sender<Output>, wrap: fn(String) -> Output) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Output::Closed);
    });
}

/// The `ws://ADDR` at the end of a server's listening line, checked against `prefix`.
fn listening_url(line: &str, prefix: &str) -> String {
    let addr = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?}ADDR, got {line:?}"));
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    format!("ws://{addr}/")
}

/// Waits (boundedly) for what a server thread sends.
fn wait<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("the server thread did not report: {e}"))
}

// ------------------------------------------------------------------------------ client

/// Our blocking server for one connection on a thread: after the handshake it runs `body`,
/// whose result comes back through the channel.
fn one_connection<T: Send + 'static>(
    body: impl FnOnce(sync::WebSocket<TcpStream>) -> T + Send + 'static,
) -> (String, Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        let ws = sync::accept(tcp).expect("handshake");
        let _ = tx.send(body(ws));
    });
    (url, rx)
}

/// Runs the client example against a server that closes with `code` right after the
/// handshake (the client's stdin stays open, so the close is the server's); returns the
/// client's exit status and its stderr.
fn client_after_server_close(code: CloseCode) -> (ExitStatus, Vec<String>) {
    let (url, server) = one_connection(move |mut ws| ws.close(code, "closing on purpose"));
    let mut client = Program::start("client", &[&url]);
    wait(&server).expect("the client answered the server's Close");
    let status = client.finish();
    (status, client.stderr.clone())
}

#[test]
fn rfc6455_7_4_1_client_example_exits_nonzero_when_the_server_closes_1002() {
    let (status, stderr) = client_after_server_close(CloseCode::PROTOCOL_ERROR);
    assert!(
        !status.success(),
        "exit {status} after a 1002 close: {stderr:?}"
    );
    assert!(
        stderr
            .iter()
            .any(|l| l == r#"client: server closed with 1002 "closing on purpose""#),
        "the close code and reason are reported: {stderr:?}"
    );
}

#[test]
fn rfc6455_7_4_2_client_example_exits_nonzero_on_an_application_close_code() {
    let (status, stderr) = client_after_server_close(CloseCode(4000));
    assert!(
        !status.success(),
        "exit {status} after a 4000 close: {stderr:?}"
    );
}

#[test]
fn rfc6455_7_4_1_client_example_exits_zero_when_the_server_closes_1000_or_1001() {
    for code in [CloseCode::NORMAL, CloseCode::GOING_AWAY] {
        let (status, stderr) = client_after_server_close(code);
        assert!(
            status.success(),
            "exit {status} after a {code} close: {stderr:?}"
        );
        let report = format!(r#"client: server closed with {code} "closing on purpose""#);
        assert!(stderr.contains(&report), "{stderr:?}");
    }
}

#[test]
fn client_example_echoes_stdin_then_closes_1000_on_end_of_input() {
    let (url, server) = one_connection(|mut ws| {
        while let Some(message) = ws.recv()? {
            ws.send(message)?;
        }
        Ok::<_, Error>(())
    });
    let mut client = Program::start("client", &[&url]);
    client.write_line("hello over the wire");
    client.wait_for("the echo", |out, _| {
        out.iter().any(|l| l == "hello over the wire")
    });
    let status = client.finish();
    assert!(status.success(), "exit {status}\n{}", client.transcript());
    wait(&server).expect("the server saw a clean close");
    assert!(
        client
            .stderr
            .iter()
            .any(|l| l.starts_with("client: server closed with 1000")),
        "{}",
        client.transcript()
    );
}

#[test]
fn client_example_exits_nonzero_when_it_cannot_connect() {
    // A port that was just free: nothing listens on it any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let mut client = Program::start("client", &[&format!("ws://127.0.0.1:{port}/")]);
    let status = client.finish();
    assert!(!status.success(), "exit {status}\n{}", client.transcript());
    assert!(
        client.stderr.iter().any(|l| l.starts_with("client: ")),
        "{}",
        client.transcript()
    );
}

// ------------------------------------------------------------------------------ servers

/// Starts the echo server example with `adapter`; returns it and its URL.
#[cfg(feature = "tokio")]
fn echo_server(adapter: &str) -> (Program, String) {
    let mut server = Program::start("echo_server", &["127.0.0.1:0", "--adapter", adapter]);
    let line = server.first_line();
    let url = listening_url(&line, "echo server listening on ws://");
    (server, url)
}

#[cfg(feature = "tokio")]
#[test]
fn echo_server_example_echoes_and_picks_the_first_subprotocol_on_both_adapters() {
    for adapter in ["tokio", "blocking"] {
        let (_server, url) = echo_server(adapter);
        let request = ClientRequest::new(&url)
            .unwrap()
            .protocol("chat.v2")
            .protocol("chat.v1");
        let (mut ws, response) = sync::connect_with(request, Config::default()).unwrap();
        assert_eq!(response.protocol(), Some("chat.v2"), "{adapter}");
        ws.send_text("ping-pong").unwrap();
        assert_eq!(
            ws.recv().unwrap(),
            Some(Message::from("ping-pong")),
            "{adapter}"
        );
        ws.send_binary(&[0, 1, 2, 255]).unwrap();
        assert_eq!(
            ws.recv().unwrap(),
            Some(Message::from(vec![0u8, 1, 2, 255])),
            "{adapter}"
        );
        ws.close(CloseCode::NORMAL, "done").unwrap();
        // No subprotocol offered, none chosen.
        let (mut ws, response) = sync::connect(&url).unwrap();
        assert_eq!(response.protocol(), None, "{adapter}");
        ws.close(CloseCode::NORMAL, "").unwrap();
        // A page from another origin (a console on another site, a `file:` page) may use the
        // demo: it keeps no per-user state, so it allows any Origin (RFC 6455 §10.2 leaves
        // the policy to the server; the library's default would answer 403).
        for origin in ["https://elsewhere.example", "null"] {
            let request = ClientRequest::new(&url).unwrap().header("Origin", origin);
            let (mut ws, _) = sync::connect_with(request, Config::default())
                .unwrap_or_else(|e| panic!("{adapter}, Origin {origin}: {e}"));
            ws.send_text("cross-origin").unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::from("cross-origin")));
            ws.close(CloseCode::NORMAL, "").unwrap();
        }
    }
}

/// The default adapter serves connections as tasks: 200 open connections leave its thread
/// count where it was, while the blocking adapter runs a thread for each.
#[cfg(all(feature = "tokio", target_os = "linux"))]
#[test]
fn echo_server_example_tokio_holds_200_connections_without_a_thread_each() {
    const CONNECTIONS: usize = 200;
    for adapter in ["tokio", "blocking"] {
        let (server, url) = echo_server(adapter);
        let idle = server.threads().expect("/proc/PID/status");
        let mut sockets = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let (mut ws, _) = sync::connect(&url).unwrap();
            // One round trip: the server is serving this connection, not just accepting it.
            ws.send_text(&i.to_string()).unwrap();
            assert_eq!(ws.recv().unwrap(), Some(Message::from(i.to_string())));
            sockets.push(ws);
        }
        let busy = server.threads().expect("/proc/PID/status");
        match adapter {
            "tokio" => assert!(
                busy <= idle + 4,
                "tokio: {idle} threads idle, {busy} with {CONNECTIONS} connections"
            ),
            _ => assert!(
                busy >= idle + CONNECTIONS,
                "blocking: {idle} threads idle, {busy} with {CONNECTIONS} connections"
            ),
        }
        for mut ws in sockets {
            ws.close(CloseCode::NORMAL, "").unwrap();
        }
    }
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_echo_example_echoes_and_reports_the_close_code() {
    let mut server = Program::start("tokio_echo", &["127.0.0.1:0"]);
    let line = server.first_line();
    let url = listening_url(&line, "tokio echo server listening on ws://");
    let (mut ws, _) = sync::connect(&url).unwrap();
    ws.send_text("one").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from("one")));
    ws.send_binary(&[7; 70_000]).unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from(vec![7u8; 70_000])));
    ws.close(CloseCode(4000), "bye").unwrap();
    server.wait_for("the close report", |_, err| {
        err.iter()
            .any(|l| l.ends_with(r#": closed, code 4000 "bye""#))
    });
}

/// Starts the tokio chat example; returns it and its port.
#[cfg(feature = "tokio")]
fn tokio_chat() -> (Program, u16) {
    let mut server = Program::start("tokio_chat", &["127.0.0.1:0"]);
    let line = server.first_line();
    let rest = line
        .strip_prefix("tokio chat server on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port = rest.split('/').next().and_then(|p| p.parse().ok());
    (
        server,
        port.unwrap_or_else(|| panic!("no port in {line:?}")),
    )
}

/// One plain HTTP/1.1 GET; returns the whole response (the server closes after it).
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WATCHDOG)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_chat_example_serves_page_refuses_foreign_origins_and_broadcasts() {
    let (_server, port) = tokio_chat();
    let page = http_get(port, "/");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("window.chatReady = true"), "{page}");
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
        Err(Error::Rejected(response)) if response.status() == 403 => {}
        other => panic!("a foreign origin must get 403, got {:?}", other.map(drop)),
    }
    let same = ClientRequest::new(&url)
        .unwrap()
        .header("Origin", &format!("http://127.0.0.1:{port}"));
    let (mut a, _) = sync::connect_with(same, Config::default()).expect("connect a");
    let (mut b, _) = sync::connect(&url).expect("connect b");
    a.send_text("hi from a").unwrap();
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.recv().unwrap(), Some(Message::from("hi from a")));
    }
    b.send_binary(b"\x00\x01").unwrap();
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.recv().unwrap(), Some(Message::from(vec![0u8, 1])));
    }
    a.close(CloseCode::NORMAL, "bye").unwrap();
    b.close(CloseCode::NORMAL, "bye").unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_chat_example_in_chromium() {
    const TEST: &str = "browser_tokio_chat";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let (_server, port) = tokio_chat();
    let url = format!("http://127.0.0.1:{port}/");
    let mut peer = interop_support::Peer::spawn(TEST, &node, &["browser_chat.mjs", &url]);
    let status = peer.finish(Duration::from_secs(90));
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
}
