//! Echo load generator: N connections each send M messages of S bytes, one in flight per
//! connection (send, wait for the echo, repeat), and report messages per second and the
//! server's CPU time per message (user + system, from `/proc/PID/stat`).
//!
//! ```text
//! cargo run --release --features tokio --example load -- \
//!     [--raw] [--url ws://127.0.0.1:9001/] [--conns 100] [--msgs 1000] [--size 16] \
//!     [--warmup 20] [--pid SERVER_PID] [--label NAME]
//! cargo run --release --features tokio --example load -- --idle 10000 --pid SERVER_PID ...
//! ```
//!
//! `--raw` speaks plain TCP (the URL's host and port): S bytes out, S bytes back, for a
//! baseline echo server. `--idle N` opens N connections, waits, and reports the growth of
//! the server's resident memory per connection instead.
//!
//! The client runs on one thread (a current-thread runtime) so that on a small machine the
//! server keeps the other cores. The last line is machine-readable (`RESULT key=value ...`);
//! `scripts/bench-echo.sh` collects it.

use rfc6455::Message;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    raw: bool,
    conns: usize,
    msgs: usize,
    size: usize,
    warmup: usize,
    pid: Option<u32>,
    idle: Option<usize>,
    label: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:9001/".into(),
        raw: false,
        conns: 100,
        msgs: 1000,
        size: 16,
        warmup: 20,
        pid: None,
        idle: None,
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
            "--warmup" => a.warmup = num(value()),
            "--pid" => a.pid = Some(num(value()) as u32),
            "--idle" => a.idle = Some(num(value())),
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

/// `host:port` of a `ws://host:port/path` URL.
fn host_port(url: &str) -> String {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The server's user + system CPU time so far.
fn cpu_time(pid: u32) -> Duration {
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

enum Conn {
    Ws(Box<rfc6455::tokio::WebSocket<TcpStream>>),
    Raw(TcpStream, Vec<u8>),
}

impl Conn {
    async fn open(args_url: &str, raw: bool, size: usize) -> Conn {
        if raw {
            let stream = TcpStream::connect(host_port(args_url))
                .await
                .expect("connect");
            stream.set_nodelay(true).unwrap();
            Conn::Raw(stream, vec![0; size])
        } else {
            let stream = TcpStream::connect(host_port(args_url))
                .await
                .expect("connect");
            stream.set_nodelay(true).unwrap();
            let request = rfc6455::ClientRequest::new(args_url).expect("url");
            let (ws, _) = rfc6455::tokio::client(stream, request, rfc6455::Config::default())
                .await
                .expect("handshake");
            Conn::Ws(Box::new(ws))
        }
    }

    /// Sends one message and waits for its echo.
    async fn round_trip(&mut self, payload: &bytes::Bytes) {
        match self {
            Conn::Ws(ws) => {
                ws.send(Message::Binary(payload.clone()))
                    .await
                    .expect("send");
                match ws.recv().await.expect("recv") {
                    Some(m) => assert_eq!(m.len(), payload.len(), "echo length"),
                    None => panic!("server closed"),
                }
            }
            Conn::Raw(stream, buf) => {
                stream.write_all(payload).await.expect("write");
                stream.read_exact(buf).await.expect("read");
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
        } else {
            echo(&args).await;
        }
    });
}

async fn echo(args: &Args) {
    let payload: bytes::Bytes = (0..args.size).map(|i| (i * 31 + 7) as u8).collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(args.conns + 1));
    let mut tasks = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        let (url, raw, size, msgs, warmup) = (
            args.url.clone(),
            args.raw,
            args.size,
            args.msgs,
            args.warmup,
        );
        let (payload, barrier) = (payload.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&url, raw, size).await;
            for _ in 0..warmup {
                conn.round_trip(&payload).await;
            }
            barrier.wait().await;
            for _ in 0..msgs {
                conn.round_trip(&payload).await;
            }
            // The timed part ends here; closing is not measured.
            conn
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
    let total = (args.conns * args.msgs) as f64;
    let rate = total / secs;
    let cpu_us = cpu.map(|c| c * 1e6 / total);
    println!(
        "{}: {} conns x {} msgs x {} B in {:.2} s: {:.0} msgs/s, {:.1} MB/s each way{}",
        args.label,
        args.conns,
        args.msgs,
        args.size,
        secs,
        rate,
        rate * args.size as f64 / 1e6,
        match (cpu, cpu_us) {
            (Some(c), Some(us)) => format!(", server CPU {c:.2} s = {us:.2} us/msg"),
            _ => String::new(),
        }
    );
    println!(
        "RESULT label={} conns={} msgs={} size={} secs={:.4} msgs_per_s={:.1} server_cpu_s={} cpu_us_per_msg={}",
        args.label,
        args.conns,
        args.msgs,
        args.size,
        secs,
        rate,
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
        for _ in start..n.min(start + 200) {
            let (url, raw) = (args.url.clone(), args.raw);
            opened.push(tokio::spawn(async move { Conn::open(&url, raw, 1).await }));
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
