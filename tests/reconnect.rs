//! The reconnecting client (`rfc6455::tokio::reconnect`) against servers that die, restart,
//! refuse, stall and answer with errors, on 127.0.0.1 only.
//!
//! The servers are tokio tasks in the test (killed by aborting them, restarted on the same
//! port), one is a real process (`examples/echo_server`, killed with SIGKILL), and the
//! network faults come from `support::chaos_proxy`. Jitter comes from a seeded generator
//! so schedules replay; tests that wait for backoffs run on tokio's paused clock.

mod support;

use rfc6455::handshake::ClientRequest;
use rfc6455::tokio::reconnect::{
    Backoff, Cause, Client, Disconnected, Options, OutboxPolicy, Reconnecting, SendError, Stop,
    Update,
};
use rfc6455::{CloseCode, Config, Error, Event, Message};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::chaos_proxy::{ChaosProxy, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(20);

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ------------------------------------------------------------------ jitter

/// SplitMix64, seeded: the jitter source tests inject, and the same sequence to check it.
#[derive(Clone)]
struct Seeded(u64);

impl Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An `Entropy` that hands out this sequence, 8 bytes (one `u64`) at a time, as
    /// `u64::from_le_bytes` reads them back.
    fn entropy(mut self) -> impl FnMut(&mut [u8]) + Send {
        move |dest: &mut [u8]| {
            for chunk in dest.chunks_mut(8) {
                let bytes = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
        }
    }
}

/// Options for quick tests: windows from 10 ms to 160 ms, seeded jitter, keepalive off
/// (tests about keepalive turn it on).
fn fast() -> Options {
    Options::default()
        .backoff(Backoff::default().base(ms(10)).cap(ms(160)))
        .jitter_entropy(Seeded(7).entropy())
        .configure(|c| c.keepalive_interval(None))
}

fn request(addr: SocketAddr) -> ClientRequest {
    ClientRequest::new(&format!("ws://{addr}/")).unwrap()
}

// ------------------------------------------------------------------ servers

/// What a test server does with its `n`th connection (from 0).
#[derive(Clone)]
enum Plan {
    /// Echo every message; record messages and the client's Close.
    Echo,
    /// Complete the handshake, wait `after`, then close with `code`.
    Close { code: CloseCode, after: Duration },
    /// Answer the HTTP request with these bytes and hang up.
    Http(String),
}

/// A server task on 127.0.0.1 that can be killed and restarted on the same port.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
    accepted: Arc<AtomicUsize>,
    /// `(connection, text)` for each text message; `(connection, "close CODE")` for the
    /// client's Close.
    seen: mpsc::UnboundedReceiver<(usize, String)>,
}

impl Server {
    async fn start(addr: SocketAddr, plan: impl Fn(usize) -> Plan + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the server");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, seen) = mpsc::unbounded_channel();
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                connections.spawn(serve(tcp, plan(n), n, tx.clone()));
            }
        });
        Self {
            addr,
            task,
            accepted,
            seen,
        }
    }

    async fn echo() -> Self {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), |_| Plan::Echo).await
    }

    /// Kills the server: its listener and every connection are dropped.
    async fn kill(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    async fn next_seen(&mut self) -> (usize, String) {
        timeout(WATCHDOG, self.seen.recv())
            .await
            .expect("the server saw something within the watchdog")
            .expect("the server is running")
    }
}

async fn serve(
    mut tcp: TcpStream,
    plan: Plan,
    n: usize,
    seen: mpsc::UnboundedSender<(usize, String)>,
) {
    if let Plan::Http(answer) = plan {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
        return;
    }
    let Ok(mut ws) = rfc6455::tokio::accept(tcp).await else {
        return;
    };
    if let Plan::Close { code, after } = plan {
        tokio::time::sleep(after).await;
        let _ = ws.close(code, "planned").await;
        return;
    }
    loop {
        match ws.recv_event().await {
            Ok(Some(Event::Message(message))) => {
                let _ = seen.send((n, message.as_text().unwrap_or("<binary>").to_owned()));
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            Ok(Some(Event::Close(frame))) => {
                let _ = seen.send((n, format!("close {}", frame.code.as_u16())));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// `HTTP/1.1 STATUS` with extra header lines and a short body.
fn http(status: u16, headers: &str) -> String {
    format!("HTTP/1.1 {status} Status\r\n{headers}Content-Length: 4\r\n\r\nbody")
}

// ------------------------------------------------------------------ reading updates

async fn next(client: &mut Client) -> Update {
    timeout(WATCHDOG, client.recv())
        .await
        .expect("an update within the watchdog")
        .expect("the client is still running")
}

/// Skips `Reconnecting` updates (a server that is not back yet) up to the next other one.
async fn next_settled(client: &mut Client) -> Update {
    loop {
        match next(client).await {
            Update::Reconnecting(_) => {}
            other => return other,
        }
    }
}

fn text(update: Update) -> String {
    match update {
        Update::Message(message) => message.as_text().expect("text").to_owned(),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn disconnected(update: Update) -> Disconnected {
    match update {
        Update::Disconnected(d) => d,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

fn reconnecting(update: Update) -> Reconnecting {
    match update {
        Update::Reconnecting(r) => r,
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

fn stopped(update: Update) -> Stop {
    match update {
        Update::Stopped(stop) => stop,
        other => panic!("expected Stopped, got {other:?}"),
    }
}

async fn expect_connected(client: &mut Client) {
    match next_settled(client).await {
        Update::Connected(response) => assert_eq!(response.status(), 101),
        other => panic!("expected Connected, got {other:?}"),
    }
}

/// After `Stopped`, the stream ends: the task is gone and makes no more attempts.
async fn expect_end(client: &mut Client) {
    let end = timeout(WATCHDOG, client.recv()).await.expect("the end");
    assert!(end.is_none(), "{end:?}");
}

// ------------------------------------------------------------------ restarts

#[tokio::test]
async fn server_killed_and_restarted_on_the_same_port_mid_stream() {
    let mut server = Server::echo().await;
    let mut client = Client::spawn(request(server.addr), fast());
    expect_connected(&mut client).await;
    for i in 0..5 {
        client.send(format!("before {i}")).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(text(next(&mut client).await), format!("before {i}"));
        assert_eq!(server.next_seen().await, (0, format!("before {i}")));
    }

    let addr = server.kill().await;
    let lost = disconnected(next(&mut client).await);
    assert_eq!(lost.code, CloseCode::ABNORMAL, "{lost:?}");
    assert!(!client.is_connected());
    // Sent during the outage: kept in the outbox.
    for i in 0..5 {
        client.send(format!("during {i}")).await.unwrap();
    }
    assert_eq!(client.sender().outbox_len(), 5);

    let mut server = Server::start(addr, |_| Plan::Echo).await;
    expect_connected(&mut client).await;
    for i in 0..3 {
        client.send(format!("after {i}")).await.unwrap();
    }
    // The outbox first, in order, then what was sent after the reconnect.
    let expected: Vec<String> = (0..5)
        .map(|i| format!("during {i}"))
        .chain((0..3).map(|i| format!("after {i}")))
        .collect();
    for line in &expected {
        assert_eq!(&text(next(&mut client).await), line);
        assert_eq!(&server.next_seen().await.1, line);
    }
    assert_eq!(client.sender().outbox_len(), 0);
    client.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(
        disconnected(next(&mut client).await).code,
        CloseCode::NORMAL
    );
    assert!(matches!(stopped(next(&mut client).await), Stop::Closed));
    assert_eq!(server.next_seen().await.1, "close 1000");
    expect_end(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_process_killed_and_restarted_reconnects_every_time() {
    // examples/echo_server, killed with SIGKILL and started again on the same port, `runs`
    // times, with the default backoff (500 ms first window) and the OS's jitter. Each kill
    // is a fresh outage, as for a connection that had been up for a while (`reset_after`
    // zero stands in for that). Prints the time from the kill to `Connected` (for
    // benches/README.md); asserts only that each reconnect happened and carried a message.
    // RFC6455_RECONNECT_RUNS=40 for the numbers in benches/README.md.
    let runs: usize = std::env::var("RFC6455_RECONNECT_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
        .max(1);
    // RFC6455_RECONNECT_DOWNTIME_MS: how long the server stays down (the outage itself, not
    // a wait for anything); 0 by default.
    let downtime = Duration::from_millis(
        std::env::var("RFC6455_RECONNECT_DOWNTIME_MS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    );
    let binary = support::example_binary("echo_server");
    let (mut process, addr) = support::start_echo_server(&binary, "127.0.0.1:0").await;
    let options = Options::default()
        .backoff(Backoff::default().reset_after(Duration::ZERO))
        .configure(|c| c.keepalive_interval(None));
    let mut client = Client::spawn(request(addr), options);
    expect_connected(&mut client).await;
    let (mut times, mut attempts_needed) = (Vec::new(), Vec::new());
    for run in 0..runs {
        client.send(format!("run {run}")).await.unwrap();
        assert_eq!(text(next(&mut client).await), format!("run {run}"));
        let killed = Instant::now();
        process.kill().await.unwrap();
        tokio::time::sleep(downtime).await;
        let (restarted, same) = support::start_echo_server(&binary, &addr.to_string()).await;
        assert_eq!(same, addr);
        process = restarted;
        assert_eq!(
            disconnected(next(&mut client).await).code,
            CloseCode::ABNORMAL
        );
        let mut attempts = 0;
        loop {
            match next(&mut client).await {
                Update::Reconnecting(_) => attempts += 1,
                Update::Connected(_) => break,
                other => panic!("{other:?}"),
            }
        }
        times.push(killed.elapsed());
        attempts_needed.push(attempts);
    }
    client.send("last").await.unwrap();
    assert_eq!(text(next(&mut client).await), "last");
    process.kill().await.unwrap();
    times.sort();
    let pct = |p: usize| times[(runs - 1) * p / 100];
    println!(
        "reconnect after SIGKILL + {downtime:?} down + restart (default backoff, n={runs}): \
         min {:?} median {:?} p90 {:?} max {:?}",
        pct(0),
        pct(50),
        pct(90),
        pct(100)
    );
    let once = attempts_needed.iter().filter(|&&n| n == 1).count();
    println!("  reconnected at the first attempt in {once} of {runs} outages: {attempts_needed:?}");
    // Once the server is back, the next attempt comes within the current window, and the
    // windows double: at most about 2 × downtime + 1.5 s after it went down, plus the
    // process start. The rest is slack for a loaded machine.
    assert!(
        pct(100) < downtime * 4 + Duration::from_secs(10),
        "{times:?}"
    );
}

// ------------------------------------------------------------------ network faults

#[tokio::test]
async fn connection_reset_mid_stream_reconnects_and_flushes_the_outbox_in_order() {
    let mut server = Server::echo().await;
    let proxy = ChaosProxy::start(server.addr).await;
    let mut client = Client::spawn(request(proxy.addr()), fast());
    expect_connected(&mut client).await;
    client.send("one").await.unwrap();
    assert_eq!(text(next(&mut client).await), "one");
    assert_eq!(server.next_seen().await, (0, "one".to_owned()));

    proxy.reset_all();
    let lost = disconnected(next(&mut client).await);
    assert_eq!(lost.code, CloseCode::ABNORMAL, "{lost:?}");
    // The client reconnects through the proxy at once (attempt 1, a window of 10 ms).
    let attempt = reconnecting(next(&mut client).await);
    assert_eq!(attempt.attempt, 1);
    assert!(attempt.delay <= ms(10));
    for line in ["two", "three"] {
        match client.send(line).await {
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
    }
    expect_connected(&mut client).await;
    assert_eq!(text(next(&mut client).await), "two");
    assert_eq!(text(next(&mut client).await), "three");
    assert_eq!(server.next_seen().await, (1, "two".to_owned()));
    assert_eq!(server.next_seen().await, (1, "three".to_owned()));
    assert_eq!(proxy.accepted(), 2);
}

#[tokio::test]
async fn stalled_connection_is_noticed_by_keepalive_and_replaced() {
    // RFC 6455 §5.5.2: a Ping "may serve either as a keepalive or as a means to verify that
    // the remote endpoint is still responsive". The proxy freezes the connection (bytes
    // held, nothing closed): only the keepalive can tell.
    let server = Server::echo().await;
    let proxy = ChaosProxy::start(server.addr).await;
    let options = fast().configure(|c| {
        c.keepalive_interval(Some(ms(100)))
            .keepalive_timeout(ms(100))
            .close_timeout(ms(100))
            .handshake_timeout(ms(300))
    });
    let mut client = Client::spawn(request(proxy.addr()), options);
    expect_connected(&mut client).await;
    let frozen = Instant::now();
    proxy.set_mode(Mode::Stall);
    let lost = disconnected(next(&mut client).await);
    // Ping after 100 ms of silence, no Pong within 100 ms: 1011.
    assert_eq!(lost.code, CloseCode::INTERNAL_ERROR, "{lost:?}");
    assert!(matches!(
        lost.error.as_deref(),
        Some(Error::Protocol(rfc6455::ProtocolError::KeepaliveTimeout))
    ));
    // Not before the Ping's deadline: 100 ms from the last input at the latest.
    assert!(frozen.elapsed() >= ms(100), "{:?}", frozen.elapsed());
    proxy.set_mode(Mode::Forward);
    expect_connected(&mut client).await;
    client.send("alive").await.unwrap();
    assert_eq!(text(next(&mut client).await), "alive");
}

#[tokio::test]
async fn black_holed_handshakes_time_out_and_are_retried() {
    let server = Server::echo().await;
    let proxy = ChaosProxy::start(server.addr).await;
    proxy.set_mode(Mode::BlackHole);
    let options = fast().configure(|c| c.handshake_timeout(ms(150)));
    let mut client = Client::spawn(request(proxy.addr()), options);
    for attempt in 1..=2 {
        let next = reconnecting(next(&mut client).await);
        assert_eq!(next.attempt, attempt);
        assert!(
            matches!(
                next.error.as_deref(),
                Some(Error::Handshake(rfc6455::HandshakeError::Timeout))
            ),
            "{next:?}"
        );
    }
    assert!(proxy.accepted() >= 2);
    proxy.set_mode(Mode::Forward);
    expect_connected(&mut client).await;
    client.send("through").await.unwrap();
    assert_eq!(text(next(&mut client).await), "through");
}

#[tokio::test]
async fn refused_connections_are_retried_without_a_busy_loop() {
    // Every connection is reset on accept. Over one second the client may make only as
    // many attempts as its (seeded) backoff schedule allows; a busy loop would make
    // thousands.
    let server = Server::echo().await;
    let proxy = ChaosProxy::start(server.addr).await;
    proxy.set_mode(Mode::Refuse);
    let backoff = Backoff::default().base(ms(10)).cap(ms(80));
    let options = fast().backoff(backoff.clone());
    let window = Duration::from_secs(1);
    let started = Instant::now();
    let mut client = Client::spawn(request(proxy.addr()), options);
    let mut reported = 0;
    while started.elapsed() < window {
        match timeout(window.saturating_sub(started.elapsed()), client.recv()).await {
            Ok(Some(Update::Reconnecting(next))) => {
                reported += 1;
                assert_eq!(next.attempt, reported);
                assert!(next.delay <= backoff.window(next.attempt), "{next:?}");
                assert!(next.error.is_some());
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => break,
        }
    }
    let attempts = proxy.accepted();
    // The most attempts the schedule allows in the window: the first at once, then one per
    // delay for as long as the delays add up to less than the window.
    // (With 50 ms of slack for the attempt that may land between the loop's end and the
    // count.)
    let mut jitter = Seeded(7);
    let (mut allowed, mut spent) = (1, Duration::ZERO);
    for attempt in 1.. {
        spent += backoff.delay(attempt, jitter.next_u64());
        if spent > window + ms(50) {
            break;
        }
        allowed += 1;
    }
    println!("refused for {window:?}: {attempts} attempts, the schedule allows {allowed}");
    assert!(attempts <= allowed, "{attempts} attempts > {allowed}");
    assert!(attempts >= 3, "the client keeps trying: {attempts}");
    assert!(reported as usize + 1 >= attempts);
}

// ------------------------------------------------------------------ backoff and jitter

#[test]
fn full_jitter_is_uniform_within_the_exponential_window() {
    // Kolmogorov-Smirnov against U(0, window) for each attempt, over a seeded sequence; the
    // critical value at α = 0.001 is 1.95 / √n. "Equal jitter" (window/2 + U(0, window/2))
    // or no jitter would fail it by far.
    let backoff = Backoff::default();
    let mut jitter = Seeded(42);
    const N: usize = 20_000;
    for attempt in 1..=9 {
        let window = backoff.window(attempt).as_secs_f64();
        let mut fractions: Vec<f64> = (0..N)
            .map(|_| backoff.delay(attempt, jitter.next_u64()).as_secs_f64() / window)
            .collect();
        assert!(fractions.iter().all(|f| (0.0..=1.0).contains(f)));
        fractions.sort_by(f64::total_cmp);
        let d = fractions
            .iter()
            .enumerate()
            .map(|(i, &f)| ((i + 1) as f64 / N as f64 - f).max(f - i as f64 / N as f64))
            .fold(0.0, f64::max);
        let critical = 1.95 / (N as f64).sqrt();
        assert!(d < critical, "attempt {attempt}: D = {d} >= {critical}");
        let mean = fractions.iter().sum::<f64>() / N as f64;
        assert!((mean - 0.5).abs() < 0.01, "attempt {attempt}: mean {mean}");
    }
    // The windows themselves: 0.5, 1, 2, 4, 8, 16, 30, 30 ... seconds.
    let windows: Vec<u128> = (1..=9).map(|n| backoff.window(n).as_millis()).collect();
    assert_eq!(
        windows,
        [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    );
}

#[tokio::test(start_paused = true)]
async fn the_schedule_follows_the_injected_jitter_on_the_paused_clock() {
    // Every handshake is answered 503: the client retries with delays drawn from the
    // injected sequence, and the server sees each attempt no sooner than the delay said.
    let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), |_| {
        Plan::Http(http(503, ""))
    })
    .await;
    let backoff = Backoff::default()
        .base(Duration::from_secs(1))
        .cap(Duration::from_secs(8));
    let options = fast()
        .backoff(backoff.clone())
        .jitter_entropy(Seeded(99).entropy());
    let mut client = Client::spawn(request(server.addr), options);
    let mut jitter = Seeded(99);
    let mut previous: Option<(Duration, Instant)> = None;
    for attempt in 1..=6 {
        let next = reconnecting(next(&mut client).await);
        let expected = backoff.delay(attempt, jitter.next_u64());
        assert_eq!((next.attempt, next.delay), (attempt, expected));
        match next.error.as_deref() {
            Some(Error::Rejected(response)) => assert_eq!(response.status(), 503),
            other => panic!("{other:?}"),
        }
        if let Some((delay, at)) = previous {
            // The previous delay passed between the two failures (the paused clock moves
            // only when every task waits).
            let gap = at.elapsed();
            assert!(gap >= delay, "attempt {attempt}: {gap:?} < {delay:?}");
        }
        previous = Some((next.delay, Instant::now()));
    }
    assert_eq!(server.accepted(), 6);
}

#[tokio::test(start_paused = true)]
async fn rfc9110_10_2_3_retry_after_seconds_and_http_date_are_honoured() {
    let answers = [
        http(429, "Retry-After: 3\r\n"),
        // Measured against the response's own Date: 7 s later.
        http(
            503,
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Retry-After: Sun, 06 Nov 1994 08:49:44 GMT\r\n",
        ),
        // An absurd wait is cut to `max_retry_after`.
        http(503, "Retry-After: 99999999999999999999999\r\n"),
    ];
    let plans = answers.clone();
    let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), move |n| {
        plans.get(n).map_or(Plan::Echo, |a| Plan::Http(a.clone()))
    })
    .await;
    let options = fast().backoff(Backoff::default().base(ms(1)).max_retry_after(ms(15_000)));
    let mut client = Client::spawn(request(server.addr), options);
    let mut waited = Vec::new();
    for _ in 0..3 {
        let next = reconnecting(next(&mut client).await);
        let before = Instant::now();
        waited.push((next.delay, before));
    }
    assert_eq!(waited[0].0, Duration::from_secs(3));
    assert_eq!(waited[1].0, Duration::from_secs(7));
    assert_eq!(waited[2].0, Duration::from_secs(15));
    // The server saw the attempts that far apart.
    assert!(waited[1].1 - waited[0].1 >= Duration::from_secs(3));
    assert!(waited[2].1 - waited[1].1 >= Duration::from_secs(7));
    expect_connected(&mut client).await;
    assert!(waited[2].1.elapsed() >= Duration::from_secs(15));
}

#[tokio::test]
async fn backoff_resets_once_a_connection_stayed_up() {
    // Connections 0-2 are closed with 1012 at once: the attempts count up. Connection 3
    // stays up longer than `reset_after`: after it, counting starts again at 1.
    let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), |n| Plan::Close {
        code: CloseCode::SERVICE_RESTART,
        after: if n == 3 { ms(300) } else { Duration::ZERO },
    })
    .await;
    let options = fast().backoff(Backoff::default().base(ms(5)).reset_after(ms(200)));
    let mut client = Client::spawn(request(server.addr), options);
    let mut attempts = Vec::new();
    for _ in 0..5 {
        expect_connected(&mut client).await;
        let lost = disconnected(next(&mut client).await);
        assert_eq!(lost.code, CloseCode::SERVICE_RESTART);
        attempts.push(reconnecting(next(&mut client).await).attempt);
    }
    assert_eq!(attempts, [1, 2, 3, 1, 2]);
}

#[tokio::test]
async fn max_attempts_and_max_elapsed_give_up() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let options = fast().backoff(Backoff::default().base(ms(5)).max_attempts(Some(3)));
    let mut client = Client::spawn(request(addr), options);
    for attempt in 1..=3 {
        assert_eq!(reconnecting(next(&mut client).await).attempt, attempt);
    }
    match stopped(next(&mut client).await) {
        Stop::GaveUp(Some(error)) => assert!(matches!(*error, Error::Io(_)), "{error:?}"),
        other => panic!("{other:?}"),
    }
    expect_end(&mut client).await;

    let options = fast().backoff(
        Backoff::default()
            .base(ms(40))
            .cap(ms(40))
            .max_elapsed(Some(ms(100))),
    );
    let started = Instant::now();
    let mut client = Client::spawn(request(addr), options);
    loop {
        match next(&mut client).await {
            Update::Reconnecting(_) => {}
            Update::Stopped(Stop::GaveUp(_)) => break,
            other => panic!("{other:?}"),
        }
    }
    // It gave up rather than wait past the budget.
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ------------------------------------------------------------------ the policy

#[tokio::test]
async fn rfc6455_7_4_1_close_1000_and_1008_stop_1001_and_1012_reconnect() {
    for (code, reconnects) in [
        (CloseCode::NORMAL, false),
        (CloseCode::POLICY_VIOLATION, false),
        (CloseCode::GOING_AWAY, true),
        (CloseCode::SERVICE_RESTART, true),
        (CloseCode::TRY_AGAIN_LATER, true),
        (CloseCode(4000), false),
    ] {
        let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), move |n| {
            if n == 0 {
                Plan::Close {
                    code,
                    after: Duration::ZERO,
                }
            } else {
                Plan::Echo
            }
        })
        .await;
        let mut client = Client::spawn(request(server.addr), fast());
        expect_connected(&mut client).await;
        let lost = disconnected(next(&mut client).await);
        assert_eq!((lost.code, lost.reason.as_str()), (code, "planned"));
        if reconnects {
            assert_eq!(reconnecting(next(&mut client).await).attempt, 1);
            expect_connected(&mut client).await;
            assert_eq!(server.accepted(), 2);
        } else {
            match stopped(next(&mut client).await) {
                Stop::PeerClosed(frame) => assert_eq!(frame.code, code),
                other => panic!("{code:?}: {other:?}"),
            }
            expect_end(&mut client).await;
            assert_eq!(server.accepted(), 1, "{code:?}: no second attempt");
        }
    }
}

#[tokio::test]
async fn handshake_statuses_5xx_408_429_retry_other_4xx_stop_with_the_response() {
    for (status, retried) in [
        (500, true),
        (502, true),
        (503, true),
        (408, true),
        (429, true),
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (301, false),
    ] {
        let answer = http(status, "WWW-Authenticate: Bearer\r\nLocation: ws://x/\r\n");
        let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), move |n| {
            if n == 0 {
                Plan::Http(answer.clone())
            } else {
                Plan::Echo
            }
        })
        .await;
        let mut client = Client::spawn(request(server.addr), fast());
        if retried {
            let next = reconnecting(next(&mut client).await);
            match next.error.as_deref() {
                Some(Error::Rejected(response)) => assert_eq!(response.status(), status),
                other => panic!("{status}: {other:?}"),
            }
            expect_connected(&mut client).await;
        } else {
            match stopped(next(&mut client).await) {
                Stop::Failed(error) => match &*error {
                    Error::Rejected(response) => {
                        assert_eq!(response.status(), status);
                        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
                        assert_eq!(response.body(), b"body");
                    }
                    other => panic!("{status}: {other:?}"),
                },
                other => panic!("{status}: {other:?}"),
            }
            expect_end(&mut client).await;
            assert_eq!(server.accepted(), 1);
        }
    }
}

#[tokio::test]
async fn a_custom_policy_can_retry_after_a_normal_close() {
    let server = Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), |n| {
        if n == 0 {
            Plan::Close {
                code: CloseCode::NORMAL,
                after: Duration::ZERO,
            }
        } else {
            Plan::Echo
        }
    })
    .await;
    let options = fast().reconnect_if(|cause| {
        cause.is_transient() || matches!(cause, Cause::Closed(f) if f.code == CloseCode::NORMAL)
    });
    let mut client = Client::spawn(request(server.addr), options);
    expect_connected(&mut client).await;
    assert_eq!(
        disconnected(next(&mut client).await).code,
        CloseCode::NORMAL
    );
    expect_connected(&mut client).await;
}

// ------------------------------------------------------------------ outbox and hook

#[tokio::test]
async fn a_full_outbox_refuses_while_disconnected_or_drops_the_oldest() {
    for policy in [OutboxPolicy::Refuse, OutboxPolicy::DropOldest] {
        // Nothing listens yet: the client keeps retrying while the outbox fills.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let options = fast().outbox_capacity(3).outbox_policy(policy);
        let mut client = Client::spawn(request(addr), options);
        reconnecting(next(&mut client).await);
        for i in 0..3 {
            client.send(format!("m{i}")).await.unwrap();
        }
        let fourth = client.send("m3").await;
        let fifth = client.try_send("m4");
        let arrive: &[&str] = match policy {
            OutboxPolicy::Refuse => {
                match fourth {
                    Err(SendError::Full(message)) => assert_eq!(message, Message::from("m3")),
                    other => panic!("{other:?}"),
                }
                assert!(matches!(fifth, Err(SendError::Full(_))));
                &["m0", "m1", "m2"]
            }
            _ => {
                assert!(fourth.is_ok() && fifth.is_ok());
                &["m2", "m3", "m4"]
            }
        };
        assert_eq!(client.sender().outbox_len(), 3);
        let mut server = Server::start(addr, |_| Plan::Echo).await;
        expect_connected(&mut client).await;
        for line in arrive {
            assert_eq!(&text(next(&mut client).await), line);
            assert_eq!(&server.next_seen().await.1, line);
        }
    }
}

#[tokio::test]
async fn sends_wait_for_room_while_connected_and_fail_once_stopped() {
    let server = Server::echo().await;
    let mut client = Client::spawn(request(server.addr), fast().outbox_capacity(1));
    expect_connected(&mut client).await;
    // Capacity 1, connected: each send waits for the connection to take the one before.
    let sender = client.sender();
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            sender.send(format!("{i}")).await.unwrap();
        }
        sender
    });
    for i in 0..200 {
        assert_eq!(text(next(&mut client).await), format!("{i}"));
    }
    let sender = writer.await.unwrap();
    client.close(CloseCode::NORMAL, "").unwrap();
    assert!(
        client.close(CloseCode(1005), "").is_err(),
        "1005 may not be sent"
    );
    while !matches!(next(&mut client).await, Update::Stopped(_)) {}
    match sender.send("late").await {
        Err(SendError::Stopped(message)) => assert_eq!(message, Message::from("late")),
        other => panic!("{other:?}"),
    }
    assert!(sender.is_stopped());
}

#[tokio::test]
async fn the_hook_runs_before_the_outbox_on_every_connect() {
    let mut server = Server::echo().await;
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connects);
    let options = fast().on_connect(move |ws, response| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        assert_eq!(response.status(), 101);
        Box::pin(async move {
            ws.send_text(&format!("auth {n}")).await?;
            // The hook may wait for the server's answer; what it reads is its own.
            let reply = ws.recv().await?;
            assert_eq!(reply, Some(Message::from(format!("auth {n}"))));
            Ok(())
        })
    });
    let mut client = Client::spawn(request(server.addr), options);
    client
        .send("queued before the first connect")
        .await
        .unwrap();
    expect_connected(&mut client).await;
    assert_eq!(server.next_seen().await.1, "auth 0");
    assert_eq!(
        server.next_seen().await.1,
        "queued before the first connect"
    );
    assert_eq!(
        text(next(&mut client).await),
        "queued before the first connect"
    );

    let addr = server.kill().await;
    disconnected(next(&mut client).await);
    client.send("queued in the outage").await.unwrap();
    let mut server = Server::start(addr, |_| Plan::Echo).await;
    expect_connected(&mut client).await;
    assert_eq!(server.next_seen().await.1, "auth 1");
    assert_eq!(server.next_seen().await.1, "queued in the outage");
    assert_eq!(text(next(&mut client).await), "queued in the outage");
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_hook_is_a_failed_attempt() {
    let server = Server::echo().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let options = fast().on_connect(move |_, _| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        Box::pin(async move {
            if first {
                Err(Error::Io(std::io::Error::other("token service down")))
            } else {
                Ok(())
            }
        })
    });
    let mut client = Client::spawn(request(server.addr), options);
    let next = reconnecting(next(&mut client).await);
    assert!(
        matches!(next.error.as_deref(), Some(Error::Io(e)) if e.to_string() == "token service down")
    );
    expect_connected(&mut client).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn close_flushes_the_outbox_and_dropping_the_client_goes_away() {
    let mut server = Server::echo().await;
    let mut client = Client::spawn(request(server.addr), fast());
    expect_connected(&mut client).await;
    client.send("last words").await.unwrap();
    client.close(CloseCode(4001), "bye").unwrap();
    assert_eq!(server.next_seen().await.1, "last words");
    assert_eq!(server.next_seen().await.1, "close 4001");
    // The echo that raced the Close is still reported, then the end.
    let mut updates = Vec::new();
    while let Some(update) = timeout(WATCHDOG, client.recv()).await.unwrap() {
        updates.push(update);
    }
    let end = format!("{updates:?}");
    assert!(
        matches!(updates.last(), Some(Update::Stopped(Stop::Closed))),
        "{end}"
    );
    assert!(
        updates
            .iter()
            .any(|u| matches!(u, Update::Disconnected(d) if d.code.as_u16() == 4001)),
        "{end}"
    );

    let mut client = Client::spawn(request(server.addr), fast());
    let sender = client.sender();
    expect_connected(&mut client).await;
    drop(client);
    // RFC 6455 §7.4.1: 1001 "indicates that an endpoint is "going away"".
    assert_eq!(server.next_seen().await, (1, "close 1001".to_owned()));
    timeout(WATCHDOG, sender.stopped()).await.unwrap();
    assert!(sender.is_stopped());
    assert!(matches!(
        sender.try_send("late"),
        Err(SendError::Stopped(_))
    ));
}

#[test]
fn config_defaults_keep_keepalive_on() {
    let options = Options::default();
    assert_eq!(
        options.config.keepalive_interval,
        Some(Duration::from_secs(10))
    );
    assert_eq!(options.config.keepalive_timeout, Duration::from_secs(10));
    assert_eq!(options.outbox_capacity, 1024);
    assert_eq!(options.outbox_policy, OutboxPolicy::Refuse);
    let b = &options.backoff;
    assert_eq!(
        (b.base, b.cap, b.max_attempts, b.max_elapsed, b.reset_after),
        (
            ms(500),
            Duration::from_secs(30),
            None,
            None,
            Duration::from_secs(30)
        )
    );
    // `Config::default()` has it off: the reconnecting client is the one that turns it on.
    assert_eq!(Config::default().keepalive_interval, None);
}
