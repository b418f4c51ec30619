//! Echo load generator: N connections each send M messages of S bytes, with up to W messages
//! in flight per connection, and report messages per second and the server's CPU time per
//! message (user + system, from `/proc/PID/stat`).
//!
//! ```text
//! cargo run --release --features tokio --example load -- \
//!     [--raw] [--url ws://127.0.0.1:9001/] [--conns 100] [--msgs 1000] [--size 16] \
//!     [--window 1] [--text] [--warmup 20] [--sources 1] [--pid SERVER_PID] [--label NAME]
//! cargo run --release --features tokio --example load -- --idle 10000 --pid SERVER_PID ...
//! cargo run --release --features tokio --example load -- --accept 5000 [--parallel 16] ...
//! ```
//!
//! * `--window W`: messages in flight per connection. At 1 each connection sends, waits for
//!   the echo, and repeats; above 1 it sends W, then one more for each echo that comes back
//!   (the connection is split into a reading and a writing half, so neither side can stall
//!   the other).
//! * `--text`: text messages (ASCII) instead of binary ones.
//! * `--raw` speaks plain TCP (the URL's host and port): S bytes out, S bytes back, for a
//!   baseline echo server.
//! * `--idle N` opens N connections, waits, and reports the growth of the server's resident
//!   memory per connection instead.
//! * `--accept N` measures the accept rate instead: N new connections, each a TCP connect
//!   and the opening handshake, then dropped, `--parallel P` (default 16) at a time; reports
//!   connections per second and the server's CPU time per connection.
//! * `--deflate`: offer permessage-deflate (RFC 7692). Off by default, so that the echo
//!   benchmark compares like with like: none of the peer servers in `benches/peers` takes it.
//! * `--sources K` spreads the client sockets over the source addresses 127.0.0.1 ..
//!   127.0.0.K, so that many connections (or many short ones, which leave ports in
//!   TIME_WAIT) do not run out of ephemeral ports.
//!
//! The client runs on one thread (a current-thread runtime) so that on a small machine the
//! server keeps the other cores. The last line is machine-readable (`RESULT key=value ...`);
//! `scripts/bench-echo.sh` collects it.

use rfc6455::Message;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

struct Args {
    url: String,
    raw: bool,
    conns: usize,
    msgs: usize,
    size: usize,
    window: usize,
    text: bool,
    warmup: usize,
    pid: Option<u32>,
    idle: Option<usize>,
    accept: Option<usize>,
    parallel: usize,
    sources: usize,
    deflate: bool,
    label: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:9001/".into(),
        raw: false,
        conns: 100,
        msgs: 1000,
        size: 16,
        window: 1,
        text: false,
        warmup: 20,
        pid: None,
        idle: None,
        accept: None,
        parallel: 16,
        sources: 1,
        deflate: false,
        label: "server".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next().unwrap_or_else(|| {
                eprintln!("{flag} needs a value");
                std::process::exit(2)
            })
        };
        let num = |v: String| -> usize {
            v.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {v}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--url" => a.url = value(),
            "--raw" => a.raw = true,
            "--conns" => a.conns = num(value()),
            "--msgs" => a.msgs = num(value()),
            "--size" => a.size = num(value()),
            "--window" => a.window = num(value()).max(1),
            "--text" => a.text = true,
            "--warmup" => a.warmup = num(value()),
            "--pid" => a.pid = Some(num(value()) as u32),
            "--idle" => a.idle = Some(num(value())),
            "--accept" => a.accept = Some(num(value())),
            "--parallel" => a.parallel = num(value()).max(1),
            "--sources" => a.sources = num(value()).clamp(1, 254),
            "--deflate" => a.deflate = true,
            "--label" => a.label = value(),
            "-h" | "--help" => {
                println!("see the doc comment at the top of examples/load.rs");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// The address of a `ws://host:port/path` URL (numeric host, as the scripts use).
fn server_addr(url: &str) -> SocketAddr {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.parse().unwrap_or_else(|_| {
        eprintln!("need a numeric ws://IP:PORT/ URL, got {url:?}");
        std::process::exit(2)
    })
}

/// A TCP connection from source address 127.0.0.(1 + i % sources), TCP_NODELAY on.
async fn connect(server: SocketAddr, i: usize, sources: usize) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Ports of connections this process closed first sit in TIME_WAIT; let bind reuse them.
    socket.set_reuseaddr(true)?;
    let source = Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8);
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The client's configuration: permessage-deflate offered only when asked for.
fn client_config(deflate: bool) -> rfc6455::Config {
    #[cfg(feature = "deflate")]
    {
        rfc6455::Config::default()
            .deflate(rfc6455::deflate::DeflateConfig::default().enabled(deflate))
    }
    #[cfg(not(feature = "deflate"))]
    {
        assert!(!deflate, "--deflate needs the `deflate` feature");
        rfc6455::Config::default()
    }
}

/// The server's CPU time so far: the sum of its threads' on-CPU time from
/// `/proc/PID/task/*/schedstat` (nanoseconds), or else user + system time from
/// `/proc/PID/stat`, whose 10 ms clock ticks are too coarse for short runs.
fn cpu_time(pid: u32) -> Duration {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    let mut total = 0u64;
    let mut seen = false;
    for entry in threads.flatten() {
        let Ok(line) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = line
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            total += ns;
            seen = true;
        }
    }
    if seen {
        return Duration::from_nanos(total);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name (which may contain spaces).
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64)
}

fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The server's resident set size in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

type Ws = rfc6455::tokio::WebSocket<TcpStream>;

enum Conn {
    Ws(Box<Ws>),
    Raw(TcpStream),
}

impl Conn {
    /// Connection `i` (which picks its source address) to the server at `url`.
    async fn open(
        url: &str,
        raw: bool,
        deflate: bool,
        sources: usize,
        i: usize,
    ) -> std::io::Result<Conn> {
        let stream = connect(server_addr(url), i, sources).await?;
        if raw {
            return Ok(Conn::Raw(stream));
        }
        let request = rfc6455::ClientRequest::new(url).map_err(std::io::Error::other)?;
        let (ws, _) = rfc6455::tokio::client(stream, request, client_config(deflate))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Conn::Ws(Box::new(ws)))
    }

    /// Sends `n` copies of `message` with up to `window` in flight, and takes every echo.
    async fn echo(self, n: usize, window: usize, message: &Message) -> Conn {
        let len = message.len();
        match self {
            Conn::Ws(mut ws) if window == 1 => {
                for _ in 0..n {
                    ws.send(message.clone()).await.expect("send");
                    let echo = ws.recv().await.expect("recv").expect("server closed");
                    assert_eq!(echo.len(), len, "echo length");
                }
                Conn::Ws(ws)
            }
            Conn::Ws(ws) => {
                let (mut rd, mut wr) = ws.split();
                let room = Semaphore::new(window);
                let writer = async {
                    for _ in 0..n {
                        room.acquire().await.expect("open semaphore").forget();
                        wr.send(message.clone()).await.expect("send");
                    }
                };
                let reader = async {
                    for _ in 0..n {
                        let echo = rd.recv().await.expect("recv").expect("server closed");
                        assert_eq!(echo.len(), len, "echo length");
                        room.add_permits(1);
                    }
                };
                tokio::join!(writer, reader);
                Conn::Ws(Box::new(rd.reunite(wr).expect("halves of one socket")))
            }
            Conn::Raw(mut stream) => {
                let payload = message.as_bytes();
                let (mut rd, mut wr) = stream.split();
                let room = Semaphore::new(window);
                let writer = async {
                    for _ in 0..n {
                        room.acquire().await.expect("open semaphore").forget();
                        wr.write_all(payload).await.expect("write");
                    }
                };
                let reader = async {
                    let mut buf = vec![0; len];
                    for _ in 0..n {
                        rd.read_exact(&mut buf).await.expect("read");
                        room.add_permits(1);
                    }
                };
                tokio::join!(writer, reader);
                Conn::Raw(stream)
            }
        }
    }
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        if let Some(n) = args.idle {
            idle(&args, n).await;
        } else if let Some(n) = args.accept {
            accept(&args, n).await;
        } else {
            echo(args).await;
        }
    });
}

fn message(args: &Args) -> Message {
    if args.text {
        let text: String = (0..args.size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        Message::from(text)
    } else {
        let payload: bytes::Bytes = (0..args.size).map(|i| (i * 31 + 7) as u8).collect();
        Message::Binary(payload)
    }
}

async fn echo(args: Args) {
    let args = Arc::new(args);
    let message = message(&args);
    let barrier = Arc::new(tokio::sync::Barrier::new(args.conns + 1));
    let mut tasks = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let (args, message, barrier) = (Arc::clone(&args), message.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let conn = Conn::open(&args.url, args.raw, args.deflate, args.sources, i)
                .await
                .expect("connect");
            let conn = conn.echo(args.warmup, args.window, &message).await;
            barrier.wait().await;
            // The timed part ends when this returns; closing is not measured.
            conn.echo(args.msgs, args.window, &message).await
        }));
    }
    barrier.wait().await;
    let cpu0 = args.pid.map(cpu_time);
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(args.conns);
    for t in tasks {
        conns.push(t.await.expect("connection task"));
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = args
        .pid
        .map(|pid| (cpu_time(pid) - cpu0.unwrap()).as_secs_f64());
    for conn in conns {
        if let Conn::Ws(mut ws) = conn {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                ws.close(rfc6455::CloseCode::NORMAL, ""),
            )
            .await;
        }
    }
    let kind = if args.text { "text" } else { "binary" };
    let total = (args.conns * args.msgs) as f64;
    let rate = total / secs;
    let cpu_us = cpu.map(|c| c * 1e6 / total);
    println!(
        "{}: {} conns x {} msgs x {} B {kind}, window {}, in {:.2} s: {:.0} msgs/s, {:.1} MB/s each way{}",
        args.label,
        args.conns,
        args.msgs,
        args.size,
        args.window,
        secs,
        rate,
        rate * args.size as f64 / 1e6,
        match (cpu, cpu_us) {
            (Some(c), Some(us)) => format!(", server CPU {c:.2} s = {us:.2} us/msg"),
            _ => String::new(),
        }
    );
    println!(
        "RESULT label={} conns={} msgs={} size={} window={} kind={kind} deflate={} secs={:.4} msgs_per_s={:.1} server_cpu_s={} cpu_us_per_msg={}",
        args.label,
        args.conns,
        args.msgs,
        args.size,
        args.window,
        u8::from(args.deflate),
        secs,
        rate,
        cpu.map_or("NA".into(), |c| format!("{c:.3}")),
        cpu_us.map_or("NA".into(), |u| format!("{u:.3}")),
    );
}

/// New connections per second: `parallel` workers, each connecting, finishing the opening
/// handshake and dropping the connection, until `n` are done.
async fn accept(args: &Args, n: usize) {
    let args_url = args.url.clone();
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = args.pid.map(cpu_time);
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.parallel.min(n.max(1)) {
        let next = Arc::clone(&next);
        let (url, raw, deflate, sources) = (args_url.clone(), args.raw, args.deflate, args.sources);
        workers.push(tokio::spawn(async move {
            let server = server_addr(&url);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let stream = connect(server, i, sources).await.expect("connect");
                if !raw {
                    let request = rfc6455::ClientRequest::new(&url).expect("url");
                    let (ws, _) = rfc6455::tokio::client(stream, request, client_config(deflate))
                        .await
                        .expect("handshake");
                    drop(ws);
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("accept worker");
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = args
        .pid
        .map(|pid| (cpu_time(pid) - cpu0.unwrap()).as_secs_f64());
    let rate = n as f64 / secs;
    let cpu_us = cpu.map(|c| c * 1e6 / n as f64);
    println!(
        "{}: {n} connections + handshakes, {} at a time, in {secs:.2} s: {rate:.0} per second{}",
        args.label,
        args.parallel,
        match cpu_us {
            Some(us) => format!(", server CPU {us:.1} us per connection"),
            None => String::new(),
        }
    );
    println!(
        "RESULT label={} accept={n} parallel={} secs={secs:.4} accepts_per_s={rate:.1} server_cpu_s={} cpu_us_per_accept={}",
        args.label,
        args.parallel,
        cpu.map_or("NA".into(), |c| format!("{c:.3}")),
        cpu_us.map_or("NA".into(), |u| format!("{u:.3}")),
    );
}

async fn idle(args: &Args, n: usize) {
    let pid = args.pid.expect("--idle needs --pid");
    let before = rss(pid);
    let mut conns = Vec::with_capacity(n);
    // Open in batches so the listener's backlog never overflows.
    for start in (0..n).step_by(200) {
        let mut opened = Vec::new();
        for i in start..n.min(start + 200) {
            let (url, raw, deflate, sources) =
                (args.url.clone(), args.raw, args.deflate, args.sources);
            opened.push(tokio::spawn(async move {
                Conn::open(&url, raw, deflate, sources, i)
                    .await
                    .expect("connect")
            }));
        }
        for t in opened {
            conns.push(t.await.expect("open"));
        }
    }
    // Let the server settle (handshake buffers freed, tasks parked).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(pid);
    let per = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "{}: {n} idle connections: server RSS {:.1} MiB -> {:.1} MiB, {:.0} bytes per connection",
        args.label,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per
    );
    println!(
        "RESULT label={} idle={n} rss_before={before} rss_after={after} bytes_per_conn={per:.0}",
        args.label
    );
    drop(conns);
}
