//! The tokio_chat example as a service: its chat protocol (catch-up from the last ID), its
//! page in headless Chromium, and two nodes sharing a Redis Stream behind nginx, one of
//! which is killed mid-chat.
//!
//! | test | needs |
//! |---|---|
//! | `resp_*` (the example's Redis client parser) | nothing |
//! | `chat_protocol_*` (one node, Rust clients) | nothing |
//! | `chat_page_*` (one node, two tabs, a restart) | node, playwright-core, chromium |
//! | `chat_behind_nginx_*` (2 nodes, Redis, nginx, 2 tabs + 8 Rust clients) | those + redis-server, nginx |
//!
//! Every program is started here on 127.0.0.1 (the example on port 0; Redis and nginx on a
//! port found free just before, in a scratch directory with a generated config) and stopped
//! at the end. A missing program skips its test (`SKIPPED interop ...`) unless
//! `RFC6455_INTEROP=required`, as in `tests/interop.rs`. Every wait is bounded; nothing
//! waits by sleeping.
#![cfg(feature = "tokio")]

#[allow(dead_code)]
mod interop_support;
#[allow(dead_code)]
#[path = "../examples/chat_broker/resp.rs"]
mod resp;

mod support;

use rfc6455::handshake::ClientRequest;
use rfc6455::{CloseCode, Config, Message};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until, timeout};

/// The chat protocol's subprotocol name (`examples/tokio_chat.rs`).
const PROTOCOL: &str = "rfc6455-chat.v1";
/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------- RESP parser

const LIMITS: resp::Limits = resp::Limits {
    max_bulk: 64,
    max_elements: 8,
    max_depth: 5,
    max_line: 32,
    max_reply: 256,
};

/// An `XREAD` reply: arrays 5 deep, bulk strings (one empty, one with CRLF inside), a null.
const XREAD_REPLY: &[u8] = b"*1\r\n*2\r\n$4\r\nchat\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$4\r\nnick\r\n$0\r\n\r\n$4\r\nbody\r\n$4\r\na\r\nb\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n";

#[test]
fn resp_reply_parses_the_same_however_it_is_split() {
    let whole = resp::parse(XREAD_REPLY, &LIMITS)
        .expect("valid")
        .expect("complete");
    assert_eq!(whole.1, XREAD_REPLY.len());
    let bulk = |s: &[u8]| resp::Value::Bulk(Some(s.to_vec()));
    let entry = |id: &[u8], fields| resp::Value::Array(Some(vec![bulk(id), fields]));
    let want = resp::Value::Array(Some(vec![resp::Value::Array(Some(vec![
        bulk(b"chat"),
        resp::Value::Array(Some(vec![
            entry(
                b"1-0",
                resp::Value::Array(Some(vec![
                    bulk(b"nick"),
                    bulk(b""),
                    bulk(b"body"),
                    bulk(b"a\r\nb"),
                ])),
            ),
            entry(b"1-1", resp::Value::Array(None)),
        ])),
    ]))]));
    assert_eq!(whole.0, want);
    // Every proper prefix asks for more and consumes nothing.
    for cut in 0..XREAD_REPLY.len() {
        assert_eq!(
            resp::parse(&XREAD_REPLY[..cut], &LIMITS),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }
    // A reply followed by the start of the next is parsed alone.
    let mut two = XREAD_REPLY.to_vec();
    two.extend_from_slice(b"+OK\r\n:4");
    assert_eq!(resp::parse(&two, &LIMITS), Ok(Some(whole)));
    assert_eq!(
        resp::parse(b"+OK\r\n", &LIMITS),
        Ok(Some((resp::Value::Simple("OK".into()), 5)))
    );
    assert_eq!(
        resp::parse(b"-ERR no\r\n", &LIMITS),
        Ok(Some((resp::Value::Error("ERR no".into()), 9)))
    );
    assert_eq!(
        resp::parse(b":-7\r\n", &LIMITS),
        Ok(Some((resp::Value::Int(-7), 5)))
    );
}

#[test]
fn resp_declared_lengths_over_the_limits_fail_before_the_data_arrives() {
    for (reply, why) in [
        (&b"$65\r\n"[..], "bulk string of 65 bytes exceeds 64"),
        (b"$9223372036854775807\r\n", "bulk string of"),
        (b"$-2\r\n", "bulk length -2"),
        (b"*9\r\n", "array of 9 elements exceeds 8"),
        (b"*-5\r\n", "array length -5"),
        (
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n",
            "nested deeper than 5",
        ),
        (b"$3\r\nabcXY", "not followed by CRLF"),
        (
            b"+0123456789012345678901234567890123",
            "line longer than 32",
        ),
        (b"\r\n", "empty line"),
        (b"!3\r\n", "unknown reply type byte 0x21"),
        (b":12x\r\n", "bad number"),
    ] {
        match resp::parse(reply, &LIMITS) {
            Err(resp::ParseError(e)) => assert!(e.contains(why), "{reply:?}: {e}"),
            other => panic!("{reply:?}: expected an error with {why:?}, got {other:?}"),
        }
    }
    // Incomplete beyond the whole-reply limit: an array of small strings that never ends.
    let mut long = b"*8\r\n".to_vec();
    for _ in 0..7 {
        long.extend_from_slice(b"$60\r\n");
        long.extend_from_slice(&[b'x'; 60]);
        long.extend_from_slice(b"\r\n");
    }
    long.extend_from_slice(b"$60\r\nxx");
    assert!(long.len() > LIMITS.max_reply);
    assert!(resp::parse(&long, &LIMITS).is_err());
}

#[test]
fn resp_request_is_an_array_of_bulk_strings() {
    let mut out = Vec::new();
    resp::encode(&[b"XADD", b"k", b"*", b"body", b"a\r\nb"], &mut out);
    assert_eq!(
        out,
        b"*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n$4\r\nbody\r\n$4\r\na\r\nb\r\n"
    );
}

// ------------------------------------------------------------------------------ programs

/// A program's output line.
enum Line {
    Out(String),
    Err(String),
}

/// A program running as a subprocess: its stdout and stderr lines arrive through a channel
/// and are all kept for failure messages. Dropping it kills the process.
struct Program {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: UnboundedReceiver<Line>,
    transcript: Vec<String>,
}

impl Program {
    fn start(name: &str, program: &Path, args: &[String], dir: Option<&Path>) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let tx2 = tx.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(out).lines();
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(Line::Out(line)).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut err = BufReader::new(err).lines();
            while let Ok(Some(line)) = err.next_line().await {
                if tx2.send(Line::Err(line)).is_err() {
                    break;
                }
            }
        });
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            transcript: Vec::new(),
        }
    }

    /// The next output line (`stderr: ` prefixed for stderr) within `wait`; `None` once
    /// both streams have ended.
    async fn next_line(&mut self, wait: Duration) -> Option<String> {
        let line = match timeout(wait, self.lines.recv()).await {
            Ok(Some(Line::Out(line))) => line,
            Ok(Some(Line::Err(line))) => format!("stderr: {line}"),
            Ok(None) => return None,
            Err(_) => panic!(
                "{}: no output within {wait:?}\n{}",
                self.name,
                self.transcript()
            ),
        };
        self.transcript.push(line.clone());
        Some(line)
    }

    /// Reads lines until one satisfies `want`, within `wait` in total; returns it.
    async fn wait_for(
        &mut self,
        what: &str,
        wait: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left).await {
                Some(line) if want(&line) => return line,
                Some(_) => {}
                None => panic!("{}: ended before {what}\n{}", self.name, self.transcript()),
            }
        }
    }

    async fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let written = stdin.write_all(format!("{line}\n").as_bytes()).await;
        let written = match written {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            panic!("{}: write to stdin: {e}\n{}", self.name, self.transcript());
        }
    }

    /// Kills the process (SIGKILL: a crash, as far as its clients can tell) and waits for it.
    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = timeout(WATCHDOG, self.child.wait()).await;
    }

    fn transcript(&self) -> String {
        format!(
            "--- {} output ---\n{}",
            self.name,
            self.transcript.join("\n")
        )
    }
}

/// Starts tokio_chat on a free port (or `addr`) with `args`; returns it and its port.
async fn start_chat(binary: &Path, name: &str, addr: &str, args: &[String]) -> (Program, u16) {
    let mut all = vec![addr.to_owned()];
    all.extend_from_slice(args);
    let mut chat = Program::start(name, binary, &all, None);
    let line = chat
        .wait_for("its listening line", WATCHDOG, |l| {
            l.starts_with("tokio chat server on http://")
        })
        .await;
    let port = line
        .strip_prefix("tokio chat server on http://127.0.0.1:")
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (chat, port)
}

/// A port free right now (bound, then released: the program started next binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("rfc6455-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        // nginx's workers run as `nobody` when it starts as root: they must reach it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .expect("chmod scratch dir");
        }
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A program on PATH or at one of `paths`, or a skip.
fn find_program(test: &str, name: &str, paths: &[&str], package: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(paths.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .or_else(|| {
            interop_support::skip(
                test,
                &format!("`{name}` is not installed (apt-get install {package})"),
            )
        })
}

/// redis-server on a free port, keeping nothing on disk. Waits for its "ready" line.
async fn start_redis(program: &Path, dir: &Path) -> (Program, u16) {
    for _ in 0..3 {
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--logfile",
            "",
            "--daemonize",
            "no",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut redis = Program::start("redis-server", program, &args, None);
        let line = redis
            .wait_for("ready or failed", WATCHDOG, |l| {
                l.contains("Ready to accept connections") || l.contains("Could not create server")
            })
            .await;
        if line.contains("Ready") {
            return (redis, port);
        }
        // Someone took the port between our check and Redis's bind: try another.
        redis.kill().await;
    }
    panic!("redis-server could not bind a free port in 3 tries");
}

/// nginx in front of the chat nodes on a free port: `least_conn` over `upstreams`, with the
/// WebSocket upgrade passed on. Waits until it has started its worker (it listens then).
async fn start_nginx(program: &Path, dir: &Path, upstreams: &[u16]) -> (Nginx, u16) {
    for _ in 0..3 {
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n"))
            .collect();
        let d = dir.display();
        let config = format!(
            "# Generated by tests/chat_scale.rs\n\
             worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log stderr notice;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
               upstream chat {{\n    least_conn;\n{servers}  }}\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://chat;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Upgrade $http_upgrade;\n\
                   proxy_set_header Connection $connection_upgrade;\n\
                   proxy_set_header Host $http_host;\n\
                   proxy_connect_timeout 2s;\n\
                   proxy_read_timeout 1h;\n\
                   proxy_send_timeout 1h;\n\
                 }}\n  }}\n}}\n"
        );
        let file = dir.join("nginx.conf");
        std::fs::write(&file, config).expect("write nginx.conf");
        let args = [
            "-p".to_owned(),
            format!("{d}/"),
            "-c".to_owned(),
            file.display().to_string(),
            "-e".to_owned(),
            "stderr".to_owned(),
        ];
        let mut nginx = Program::start("nginx", program, &args, Some(dir));
        let line = nginx
            .wait_for("worker start or failure", WATCHDOG, |l| {
                l.contains("start worker process") || l.contains("[emerg]")
            })
            .await;
        let nginx = Nginx(nginx);
        if !line.contains("[emerg]") {
            return (nginx, port);
        }
        assert!(
            line.contains("Address already in use"),
            "nginx failed:\n{}",
            nginx.0.transcript()
        );
    }
    panic!("nginx could not bind a free port in 3 tries");
}

/// nginx's master: stopped with SIGTERM (through `kill`), so it takes its worker with it
/// (a SIGKILLed master leaves its workers running).
struct Nginx(Program);

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.0.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

// ------------------------------------------------------------------ a Rust chat client

// NOTE(reconnect): this loop stands in for `rfc6455::tokio::reconnect::Client` (branch
// `reconnect`, not merged yet). Once it lands, replace `run_client` with a `Client::spawn`
// whose `on_connect` hook sends `hello\n<last ID>`, and keep the cid bookkeeping below (the
// library's outbox does not resend what a dropped connection may have lost).

/// The page's backoff (`examples/chat.html`): full jitter over base · 2^(attempt-1), capped.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(15);
/// A connection live this long resets the backoff.
const STABLE: Duration = Duration::from_secs(5);

/// The most a client waits before attempt `attempt` (1-based).
fn backoff_window(attempt: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP)
}

/// What a Rust client reports, with when it happened.
#[derive(Debug)]
enum Event {
    /// `ready` after `hello`: live, on `node`, after `attempts` attempts in this outage.
    Ready { node: String, attempts: u32 },
    /// A message from the log.
    Message { id: String, text: String },
    /// The live connection dropped.
    Down { why: String },
    /// The server refused one of ours.
    Nack { reason: String },
}

enum ClientCommand {
    /// Say this (queued while away).
    Say(String),
    /// Say this the moment the connection drops (at once if it is down); answered once armed.
    OnDisconnect(String, oneshot::Sender<()>),
}

struct RustClient {
    name: String,
    commands: UnboundedSender<ClientCommand>,
    events: UnboundedReceiver<(Instant, Event)>,
    /// What it has received, in order.
    log: Vec<(String, String)>,
    node: String,
    /// (noticed, live again, attempts) for each outage.
    outages: Vec<(Instant, Instant, u32)>,
    down_since: Option<Instant>,
    /// Why the last connection dropped.
    down_why: String,
}

impl RustClient {
    fn spawn(name: &str, url: &str) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(run_client(url.to_owned(), command_rx, event_tx));
        Self {
            name: name.to_owned(),
            commands,
            events,
            log: Vec::new(),
            node: String::new(),
            outages: Vec::new(),
            down_since: None,
            down_why: String::new(),
        }
    }

    fn say(&self, text: &str) {
        let _ = self.commands.send(ClientCommand::Say(text.to_owned()));
    }

    /// Returns once the client has armed it.
    async fn on_disconnect(&self, text: &str) {
        let (armed, ack) = oneshot::channel();
        let _ = self
            .commands
            .send(ClientCommand::OnDisconnect(text.to_owned(), armed));
        timeout(WATCHDOG, ack)
            .await
            .expect("armed in time")
            .expect("client running");
    }

    /// Takes events until `done(self)` holds, within `wait`.
    async fn until(&mut self, what: &str, wait: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + wait;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.events.recv()).await {
                Ok(Some((at, event))) => self.apply(at, event),
                Ok(None) => panic!("client {}: its task ended", self.name),
                Err(_) => panic!(
                    "client {}: not {what} within {wait:?}; node {:?}, {} messages: {:?}",
                    self.name,
                    self.node,
                    self.log.len(),
                    self.log
                ),
            }
        }
    }

    fn apply(&mut self, at: Instant, event: Event) {
        match event {
            Event::Ready { node, attempts } => {
                if let Some(down) = self.down_since.take() {
                    self.outages.push((down, at, attempts));
                }
                self.node = node;
            }
            Event::Message { id, text } => self.log.push((id, text)),
            Event::Down { why } => {
                self.down_why = why;
                self.down_since.get_or_insert(at);
                self.node.clear();
            }
            Event::Nack { reason } => panic!("client {}: nack {reason}", self.name),
        }
    }
}

/// The client's task: connect, `hello` with the last ID, take the catch-up, resend what was
/// not confirmed, go live; on a drop wait (backoff) and start over. Ends when the test drops
/// its `RustClient`.
async fn run_client(
    url: String,
    mut commands: UnboundedReceiver<ClientCommand>,
    events: UnboundedSender<(Instant, Event)>,
) {
    let emit = |event| {
        let _ = events.send((Instant::now(), event));
    };
    let jitter = RandomState::new();
    let mut state = ClientState::default();
    // As on the page: tries since the last connection that stayed up for `STABLE`; the
    // exponent of the backoff, and what `Ready` reports as the attempts an outage took.
    let mut attempt = 0u32;
    loop {
        match session(&url, &mut state, &mut commands, attempt, &emit).await {
            Session::Stopped => return,
            Session::Failed => {}
            Session::Dropped { live_for, why } => {
                emit(Event::Down { why });
                for text in std::mem::take(&mut state.armed) {
                    state.queue(text);
                }
                if live_for >= STABLE {
                    attempt = 0;
                }
            }
        }
        attempt += 1;
        // Full jitter: anywhere in the window.
        let random = jitter.hash_one((attempt, Instant::now())) % 1_000_000;
        let delay = backoff_window(attempt).mul_f64(random as f64 / 1_000_000.0);
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                () = sleep_until(deadline) => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(ClientCommand::Say(text)) => drop(state.queue(text)),
                    // Disconnected already: the moment is now.
                    Some(ClientCommand::OnDisconnect(text, armed)) => {
                        state.queue(text);
                        let _ = armed.send(());
                    }
                },
            }
        }
    }
}

#[derive(Default)]
struct ClientState {
    last_id: String,
    /// Said but not seen back yet, in order: (cid, text).
    unconfirmed: VecDeque<(String, String)>,
    armed: Vec<String>,
    seen_cids: HashSet<String>,
    counter: u64,
    nonce: u64,
}

impl ClientState {
    fn queue(&mut self, text: String) -> (String, String) {
        if self.nonce == 0 {
            self.nonce = RandomState::new().hash_one(Instant::now()) | 1;
        }
        self.counter += 1;
        let said = (format!("{:x}-{}", self.nonce, self.counter), text);
        self.unconfirmed.push_back(said.clone());
        said
    }
}

enum Session {
    /// The test dropped the client.
    Stopped,
    /// Connecting or the handshake failed.
    Failed,
    /// A live connection ended.
    Dropped { live_for: Duration, why: String },
}

async fn session(
    url: &str,
    state: &mut ClientState,
    commands: &mut UnboundedReceiver<ClientCommand>,
    attempt: u32,
    emit: &impl Fn(Event),
) -> Session {
    let request = ClientRequest::new(url).expect("url").protocol(PROTOCOL);
    let connected = timeout(
        Duration::from_secs(5),
        rfc6455::tokio::connect_with(request, Config::default()),
    )
    .await;
    let Ok(Ok((mut ws, response))) = connected else {
        return Session::Failed;
    };
    assert_eq!(
        response.protocol(),
        Some(PROTOCOL),
        "the server speaks the chat protocol"
    );
    let say = |cid: &str, text: &str| format!("say\n{cid}\nrust\n{text}");
    if ws
        .send_text(&format!("hello\n{}", state.last_id))
        .await
        .is_err()
    {
        return Session::Failed;
    }
    let mut live_since: Option<Instant> = None;
    let dropped = |live_since: Option<Instant>, why: String| match live_since {
        Some(since) => Session::Dropped {
            live_for: since.elapsed(),
            why,
        },
        None => Session::Failed,
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => {
                    let _ = ws.close(CloseCode::NORMAL, "bye").await;
                    return Session::Stopped;
                }
                Some(ClientCommand::Say(text)) => {
                    let (cid, text) = state.queue(text);
                    if live_since.is_some() {
                        if let Err(e) = ws.send_text(&say(&cid, &text)).await {
                            return dropped(live_since, e.to_string());
                        }
                    }
                }
                Some(ClientCommand::OnDisconnect(text, armed)) => {
                    if live_since.is_some() {
                        state.armed.push(text);
                    } else {
                        state.queue(text);
                    }
                    let _ = armed.send(());
                }
            },
            received = ws.recv() => {
                let text = match received {
                    Ok(Some(Message::Text(text))) => text,
                    Ok(Some(Message::Binary(_))) => panic!("binary message in the chat protocol"),
                    Ok(None) => return dropped(live_since, "closed".into()),
                    Err(e) => return dropped(live_since, e.to_string()),
                };
                let mut fields = text.as_str().splitn(5, '\n');
                match fields.next() {
                    Some("msg") => {
                        let id = fields.next().expect("id").to_owned();
                        let cid = fields.next().expect("cid").to_owned();
                        let _nick = fields.next().expect("nick");
                        let body = fields.next().expect("text").to_owned();
                        state.last_id.clone_from(&id);
                        state.unconfirmed.retain(|(c, _)| *c != cid);
                        if cid.is_empty() || state.seen_cids.insert(cid) {
                            emit(Event::Message { id, text: body });
                        }
                    }
                    Some("ready") => {
                        let node = fields.next().expect("node").to_owned();
                        live_since = Some(Instant::now());
                        emit(Event::Ready { node, attempts: attempt });
                        // What a dropped connection may have lost, and what was queued.
                        for (cid, text) in state.unconfirmed.clone() {
                            if let Err(e) = ws.send_text(&say(&cid, &text)).await {
                                return dropped(live_since, e.to_string());
                            }
                        }
                    }
                    Some("nack") => {
                        let cid = fields.next().unwrap_or_default().to_owned();
                        state.unconfirmed.retain(|(c, _)| *c != cid);
                        emit(Event::Nack { reason: fields.collect::<Vec<_>>().join(" ") });
                    }
                    other => panic!("unexpected message kind {other:?} in {text:?}"),
                }
            }
        }
    }
}

// ------------------------------------------------------------------- the chat protocol

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_protocol_catch_up_resumes_after_the_last_id_without_gap_or_repeat() {
    let binary = support::example_binary("tokio_chat");
    let (_chat, port) = start_chat(&binary, "tokio_chat", "127.0.0.1:0", &[]).await;
    let url = format!("ws://127.0.0.1:{port}/ws");
    let connect = || async {
        let request = ClientRequest::new(&url).unwrap().protocol(PROTOCOL);
        let (ws, response) = rfc6455::tokio::connect_with(request, Config::default())
            .await
            .expect("connect");
        assert_eq!(response.protocol(), Some(PROTOCOL));
        ws
    };
    async fn next(ws: &mut rfc6455::tokio::WebSocket<rfc6455::tokio::MaybeTlsStream>) -> String {
        let message = timeout(WATCHDOG, ws.recv()).await.expect("in time");
        let message = message.expect("recv").expect("not closed");
        message.as_text().expect("text").to_owned()
    }
    /// (id, text) of a `msg`.
    fn msg(frame: &str) -> (String, String) {
        let f: Vec<&str> = frame.splitn(5, '\n').collect();
        assert_eq!((f[0], f.len()), ("msg", 5), "{frame:?}");
        (f[1].to_owned(), f[4].to_owned())
    }

    let mut a = connect().await;
    a.send_text("hello\n").await.unwrap();
    assert_eq!(next(&mut a).await, format!("ready\n127.0.0.1:{port}\n0"));
    // A plain client (no subprotocol) in the same room gets raw text.
    let (mut plain, _) = rfc6455::tokio::connect(&url).await.expect("plain");
    let mut ids = Vec::new();
    for i in 1..=3 {
        a.send_text(&format!("say\nc{i}\nann\nline {i}\nstill {i}"))
            .await
            .unwrap();
        let got = next(&mut a).await;
        let (id, text) = msg(&got);
        assert!(
            got.starts_with(&format!("msg\n{id}\nc{i}\nann\n")),
            "{got:?}"
        );
        assert_eq!(text, format!("line {i}\nstill {i}"), "newlines survive");
        ids.push(id);
        assert_eq!(next(&mut plain).await, format!("line {i}\nstill {i}"));
    }
    // IDs are <ms>-<seq> and grow.
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    assert!(
        ids.windows(2).all(|w| parse(&w[0]) < parse(&w[1])),
        "{ids:?}"
    );

    // Whitespace only: refused by cid, nothing logged.
    a.send_text("say\nblank\nann\n  \t ").await.unwrap();
    assert_eq!(next(&mut a).await, "nack\nblank\nempty message");

    // A newcomer gets the history, then ready with its size.
    let mut b = connect().await;
    b.send_text("hello\n").await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            msg(&next(&mut b).await),
            (id.clone(), format!("line {}\nstill {}", i + 1, i + 1))
        );
    }
    assert_eq!(next(&mut b).await, format!("ready\n127.0.0.1:{port}\n3"));
    b.close(CloseCode::NORMAL, "away").await.unwrap();

    // While b is away: two more.
    for i in 4..=5 {
        a.send_text(&format!("say\nc{i}\nann\nline {i}"))
            .await
            .unwrap();
        ids.push(msg(&next(&mut a).await).0);
    }
    // b comes back from the first message it saw... and gets exactly what came after.
    let mut b = connect().await;
    b.send_text(&format!("hello\n{}", ids[0])).await.unwrap();
    let mut caught_up = Vec::new();
    for _ in 1..ids.len() {
        caught_up.push(msg(&next(&mut b).await).0);
    }
    assert_eq!(caught_up, ids[1..]);
    assert_eq!(next(&mut b).await, format!("ready\n127.0.0.1:{port}\n4"));
    // ...then live, no repeats.
    a.send_text("say\nc6\nann\nlive").await.unwrap();
    let live = msg(&next(&mut b).await);
    assert_eq!(live.1, "live");
    assert!(parse(&live.0) > parse(&ids[4]));

    // A bad request closes the connection with 1008 and says why.
    b.send_text("hello\nnot-an-id").await.unwrap();
    loop {
        match timeout(WATCHDOG, b.recv_event()).await.expect("in time") {
            Ok(Some(rfc6455::Event::Close(frame))) => {
                assert_eq!(frame.code, CloseCode::POLICY_VIOLATION);
                assert_eq!(frame.reason.as_str(), "bad hello");
                break;
            }
            Ok(Some(rfc6455::Event::Message(m))) => panic!("expected the close, got {m:?}"),
            Ok(Some(_)) => {}
            other => panic!("expected the server's Close, got {other:?}"),
        }
    }

    // The icon is not a 404.
    let icon = http_get(port, "/favicon.ico").await;
    assert!(icon.starts_with("HTTP/1.1 200 OK\r\n"), "{icon}");
    assert!(icon.contains("Content-Type: image/svg+xml\r\n"), "{icon}");
    // The page it serves names the protocol, so the browser offers it.
    let page = http_get(port, "/").await;
    assert!(page.contains(&format!(
        r#"<html lang="en" data-chat-protocol="{PROTOCOL}">"#
    )));
    a.close(CloseCode::NORMAL, "bye").await.unwrap();
}

/// One plain HTTP/1.1 GET; the whole response (the server closes after it).
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    timeout(WATCHDOG, stream.read_to_string(&mut response))
        .await
        .expect("in time")
        .expect("read");
    response
}

// ---------------------------------------------------------------------------- the page

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_keeps_its_input_on_a_phone_screen_and_reconnects_after_a_restart() {
    const TEST: &str = "chat_page";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let binary = support::example_binary("tokio_chat");
    let (mut chat, port) = start_chat(&binary, "tokio_chat", "127.0.0.1:0", &[]).await;
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = vec!["chat_page.mjs".to_owned(), url];
    if let Some(dir) = std::env::var_os("CHAT_SCREENSHOTS") {
        args.push(PathBuf::from(dir).display().to_string());
    }
    let mut page = Program::start(TEST, &node, &args, Some(&interop_support::interop_dir()));
    // The script asks for the server to go away and come back on the same port.
    page.wait_for("KILL", Duration::from_secs(90), |l| {
        l == "KILL" || l.starts_with("FAIL")
    })
    .await;
    chat.kill().await;
    page.write_line("killed").await;
    page.wait_for("START", WATCHDOG, |l| l == "START" || l.starts_with("FAIL"))
        .await;
    let (_chat, again) = start_chat(
        &binary,
        "tokio_chat again",
        &format!("127.0.0.1:{port}"),
        &[],
    )
    .await;
    assert_eq!(again, port);
    page.write_line("started").await;
    while page.next_line(Duration::from_secs(60)).await.is_some() {}
    let status = page.child.wait().await.expect("wait");
    let oks: Vec<&str> = page
        .transcript
        .iter()
        .filter_map(|line| line.strip_prefix("OK "))
        .collect();
    let want = [
        "pages-ready",
        "blank-not-sent",
        "escaped",
        "nick-and-time",
        "order",
        "phone-layout",
        "desktop-layout",
        "favicon",
        "offline-shown",
        "pending-while-away",
        "reconnected",
        "pending-delivered",
    ];
    assert!(
        status.success()
            && oks
                .iter()
                .map(|s| s.split(' ').next().unwrap_or(""))
                .eq(want),
        "{TEST}: {status}\n{}",
        page.transcript()
    );
    for line in oks {
        println!("{TEST}: OK {line}");
    }
}

// ------------------------------------------------------------------- scaled out

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_behind_nginx_survives_a_node_kill_and_loses_nothing() {
    const TEST: &str = "chat_scale";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let Some(redis_server) = find_program(
        TEST,
        "redis-server",
        &["/usr/bin/redis-server"],
        "redis-server",
    ) else {
        return;
    };
    let Some(nginx_program) = find_program(TEST, "nginx", &["/usr/sbin/nginx"], "nginx") else {
        return;
    };
    let binary = support::example_binary("tokio_chat");
    let started = Instant::now();
    let scratch = Scratch::new("chat-scale");
    let (_redis, redis_port) = start_redis(&redis_server, &scratch.0).await;
    let node_args = |name: &str| {
        [
            "--redis",
            &format!("127.0.0.1:{redis_port}"),
            "--stream",
            "chat-test",
            "--node",
            name,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let (mut node_a, port_a) =
        start_chat(&binary, "node-a", "127.0.0.1:0", &node_args("node-a")).await;
    let (_node_b, port_b) =
        start_chat(&binary, "node-b", "127.0.0.1:0", &node_args("node-b")).await;
    let (_nginx, front) = start_nginx(&nginx_program, &scratch.0, &[port_a, port_b]).await;
    let page_url = format!("http://127.0.0.1:{front}/");
    let ws_url = format!("ws://127.0.0.1:{front}/ws");

    let mut tabs = Program::start(
        "chat_tabs",
        &node,
        &["chat_tabs.mjs".to_owned()],
        Some(&interop_support::interop_dir()),
    );
    tabs.wait_for("STARTED", WATCHDOG, |l| l == "STARTED").await;
    // Opened one at a time, each live before the next: least_conn then alternates nodes.
    let mut tab_node = BTreeMap::new();
    for tab in ["tab1", "tab2"] {
        tabs.write_line(&format!("open {tab} {page_url}")).await;
        let line = tabs
            .wait_for("READY", WATCHDOG, |l| {
                l.starts_with("READY ") || l.starts_with("FAIL")
            })
            .await;
        let node = line
            .strip_prefix(&format!("READY {tab} "))
            .unwrap_or_else(|| panic!("{line}\n{}", tabs.transcript()));
        tab_node.insert(tab, node.to_owned());
    }
    let mut clients = Vec::new();
    for i in 1..=8 {
        let mut client = RustClient::spawn(&format!("rust{i}"), &ws_url);
        client.until("live", WATCHDOG, |c| !c.node.is_empty()).await;
        clients.push(client);
    }
    let on = |node: &str| {
        let tabs: Vec<&str> = tab_node
            .iter()
            .filter(|(_, n)| *n == node)
            .map(|(t, _)| *t)
            .collect();
        let rust: Vec<usize> = (0..clients.len())
            .filter(|&i| clients[i].node == node)
            .collect();
        (tabs, rust)
    };
    let (tabs_a, rust_a) = on("node-a");
    let (tabs_b, rust_b) = on("node-b");
    assert!(
        !tabs_a.is_empty() && !tabs_b.is_empty() && !rust_a.is_empty() && !rust_b.is_empty(),
        "clients not spread over both nodes: tabs {tab_node:?}, rust {:?}",
        clients.iter().map(|c| &c.node).collect::<Vec<_>>()
    );
    let mut expected: Vec<String> = Vec::new();

    // 1. Everyone says something; everyone sees everything.
    for tab in tab_node.keys() {
        say_in_tab(&mut tabs, tab, &format!("before-{tab}")).await;
        expected.push(format!("before-{tab}"));
    }
    for c in &clients {
        c.say(&format!("before-{}", c.name));
        expected.push(format!("before-{}", c.name));
    }
    for c in &mut clients {
        let n = expected.len();
        c.until("caught up before the kill", WATCHDOG, |c| c.log.len() >= n)
            .await;
    }

    // 2. Node A's clients will say something the moment they notice the drop.
    for tab in &tabs_a {
        tabs.write_line(&format!("arm {tab} away-{tab}")).await;
        tabs.wait_for("ARMED", WATCHDOG, |l| {
            l.starts_with("ARMED ") || l.starts_with("FAIL")
        })
        .await;
        expected.push(format!("away-{tab}"));
    }
    for &i in &rust_a {
        clients[i]
            .on_disconnect(&format!("away-{}", clients[i].name))
            .await;
        expected.push(format!("away-{}", clients[i].name));
    }

    // 3. Kill node A.
    let killed = Instant::now();
    node_a.kill().await;
    // While A's clients are away (the first of them has noticed), B's clients talk.
    let first = rust_a[0];
    clients[first]
        .until("down", WATCHDOG, |c| {
            c.down_since.is_some() || c.outages.len() == 1
        })
        .await;
    for tab in &tabs_b {
        say_in_tab(&mut tabs, tab, &format!("during-{tab}")).await;
        expected.push(format!("during-{tab}"));
    }
    for &i in &rust_b {
        clients[i].say(&format!("during-{}", clients[i].name));
        expected.push(format!("during-{}", clients[i].name));
    }

    // 4. Every client of A is back, on B.
    for &i in &rust_a {
        clients[i]
            .until("back", Duration::from_secs(20), |c| c.outages.len() == 1)
            .await;
        assert_eq!(clients[i].node, "node-b");
    }
    let mut reconnects: Vec<(String, f64, u32)> = Vec::new();
    for &i in &rust_a {
        let (down, up, attempts) = clients[i].outages[0];
        reconnects.push((
            clients[i].name.clone(),
            (up - down).as_secs_f64() * 1e3,
            attempts,
        ));
        println!(
            "{TEST}: {} noticed the kill after {:.1} ms ({})",
            clients[i].name,
            (down - killed).as_secs_f64() * 1e3,
            clients[i].down_why
        );
    }
    // (The tabs' outages are read once they have caught up, below.)

    // 5. Everyone says something after the reconnect.
    for tab in tab_node.keys() {
        say_in_tab(&mut tabs, tab, &format!("after-{tab}")).await;
        expected.push(format!("after-{tab}"));
    }
    for c in &clients {
        c.say(&format!("after-{}", c.name));
        expected.push(format!("after-{}", c.name));
    }

    // 6. Everyone has everything: once each, in one order, the same for all.
    let n = expected.len();
    let mut logs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for c in &mut clients {
        c.until(
            "caught up after the reconnect",
            Duration::from_secs(20),
            |c| c.log.len() >= n,
        )
        .await;
        logs.insert(c.name.clone(), c.log.clone());
    }
    for tab in tab_node.keys() {
        tabs.write_line(&format!("log {tab} {n}")).await;
        let line = tabs
            .wait_for("LOG", Duration::from_secs(30), |l| {
                l.starts_with("LOG ") || l.starts_with("FAIL")
            })
            .await;
        let items = line
            .strip_prefix(&format!("LOG {tab}"))
            .unwrap_or_else(|| panic!("{line}\n{}", tabs.transcript()));
        let log = items
            .split_whitespace()
            .map(|item| {
                let (id, text) = item.split_once(':').expect("ID:TEXT");
                (id.to_owned(), text.to_owned())
            })
            .collect();
        logs.insert((*tab).to_owned(), log);
    }
    for tab in &tabs_a {
        tabs.write_line(&format!("stats {tab}")).await;
        let line = tabs
            .wait_for("STATS", WATCHDOG, |l| {
                l.starts_with("STATS ") || l.starts_with("FAIL")
            })
            .await;
        let outages: Vec<&str> = line.split_whitespace().skip(2).collect();
        assert_eq!(outages.len(), 1, "{tab}: one outage expected: {line}");
        let (ms, attempts) = outages[0].split_once(':').expect("MS:ATTEMPTS");
        reconnects.push((
            (*tab).to_owned(),
            ms.parse().expect("ms"),
            attempts.parse().expect("attempts"),
        ));
    }
    tabs.write_line("quit").await;

    let reference = logs.values().next().expect("some client").clone();
    let mut want_sorted = expected.clone();
    want_sorted.sort();
    for (name, log) in &logs {
        assert_eq!(
            log,
            &reference,
            "{name} saw another order or other IDs than {}",
            logs.keys().next().unwrap()
        );
        let mut texts: Vec<String> = log.iter().map(|(_, t)| t.clone()).collect();
        texts.sort();
        assert_eq!(texts, want_sorted, "{name}: lost or repeated messages");
    }
    let ids: Vec<(u64, u64)> = reference
        .iter()
        .map(|(id, _)| {
            let (ms, seq) = id.split_once('-').expect("ms-seq");
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "IDs grow: {reference:?}"
    );

    // 7. Back within the backoff bound: each attempt waits at most its window, and takes at
    // most ATTEMPT (connect through nginx, handshake, catch-up) on a busy 2-core machine.
    const ATTEMPT: Duration = Duration::from_secs(2);
    let mut times: Vec<f64> = Vec::new();
    for (name, ms, attempts) in &reconnects {
        let bound: Duration = (1..=*attempts).map(|a| backoff_window(a) + ATTEMPT).sum();
        assert!(
            *attempts >= 1 && *ms <= bound.as_secs_f64() * 1e3,
            "{name}: back after {ms:.1} ms and {attempts} attempts; bound {bound:?}"
        );
        times.push(*ms);
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{TEST}: node-a killed; {} clients back on node-b: reconnect ms min {:.0} p50 {:.0} p90 {:.0} max {:.0}; \
         each (ms, attempts): {}",
        reconnects.len(),
        pick(0.0),
        pick(0.5),
        pick(0.9),
        pick(1.0),
        reconnects
            .iter()
            .map(|(n, ms, a)| format!("{n} {ms:.0}/{a}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{TEST}: {n} messages ({} said while node-a's clients were away), each seen once and \
         in one order by all {} clients; {:?} in all",
        tabs_a.len() + rust_a.len() + tabs_b.len() + rust_b.len(),
        logs.len(),
        started.elapsed()
    );
    assert_eq!(logs.len(), tab_node.len() + clients.len());
}

async fn say_in_tab(tabs: &mut Program, tab: &str, text: &str) {
    tabs.write_line(&format!("say {tab} {text}")).await;
    tabs.wait_for("SAID", WATCHDOG, |l| {
        l.starts_with("SAID ") || l.starts_with("FAIL")
    })
    .await;
}
