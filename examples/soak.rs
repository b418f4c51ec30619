//! Chaos soak: many connections between our own client and our own server, through a
//! fault-injecting TCP proxy, each side sending sequence-numbered, checksummed messages; the
//! invariants are checked while it runs and at the end.
//!
//! ```text
//! cargo run --release --example soak -- [--conns 2000] [--seconds 60] [--faults on|off]
//!     [--sync-every 8] [--deflate-off-every 5] [--msg-rate 0.5] [--seed N]
//!     [--chunk-rate 0.05] [--delay-rate 0.02] [--stall-rate 0.003]
//!     [--half-close-rate 0.003] [--rst-rate 0.003]
//! ```
//!
//! Every flag has an environment twin (`SOAK_CONNS`, `SOAK_SECONDS`, `SOAK_FAULTS`,
//! `SOAK_SYNC_EVERY`, `SOAK_DEFLATE_OFF_EVERY`, `SOAK_MSG_RATE`, `SOAK_SEED`,
//! `SOAK_CHUNK_RATE`, `SOAK_DELAY_RATE`, `SOAK_STALL_RATE`, `SOAK_HALF_CLOSE_RATE`,
//! `SOAK_RST_RATE`); a flag wins over its variable. `scripts/soak.sh` runs a fault-free phase
//! and then a faulted one.
//!
//! # Set-up
//!
//! * `--conns` client slots, each keeping one connection up (a slot whose connection died
//!   reconnects, with a fresh sequence space, until the run ends). One slot in
//!   `--sync-every` uses the blocking adapter on its own thread (256 KiB stack): half of
//!   those as the client (against the tokio server), half as the server (against a tokio
//!   client). Every other connection is tokio on both ends. One client in
//!   `--deflate-off-every` does not offer permessage-deflate; the others negotiate it.
//! * Each connection goes through the proxy (two tasks, one per direction), which injects,
//!   unless `--faults off`:
//!   - per forwarded read (`--chunk-rate`, `--delay-rate`): chunking (the read is written
//!     as up to 16 pieces, down to 1 byte each) and delays (1-20 ms);
//!   - per connection-second (`--stall-rate`, `--half-close-rate`, `--rst-rate`), at most
//!     one fatal fault per connection, until the close timeout after the run's end (so a
//!     few land in closing handshakes): a stall (one direction
//!     stops being forwarded for good, so keepalive must find it), a half-close (one
//!     direction is shut down with a FIN) or an RST (both sockets closed with `SO_LINGER`
//!     0).
//! * Timeouts are short, so a fault is found within the run: handshake 3 s, close 3 s,
//!   keepalive Ping after 2 s of silence, its Pong due within 3 s.
//! * Both sides send: sizes skewed small (90% up to 1 KiB, 9% up to 64 KiB, 1% up to 1 MiB),
//!   text (ASCII and multi-byte UTF-8) and binary (random and compressible), one in ten
//!   fragmented (2-5 fragments), at `--msg-rate` messages per second per side (Poisson).
//!   The default, 0.5, offers 2,000 messages/s at 2,000 connections: about half of what
//!   this tool reached on 2 shared cores (~3,800/s, CPU-bound). Overloaded, connections
//!   start failing their 3-s handshake and keepalive deadlines (errors, which the faulted
//!   run allows but the fault-free one does not).
//!   A binary message is `B`, the sequence number and the FNV-1a 64 hash of the body (both
//!   little-endian u64), then the body; a text message the same with `T` and 16 hex digits
//!   for each number.
//!
//! # Invariants
//!
//! * Each receiver checks every message as it arrives: the next sequence number, the hash,
//!   and that the sender has at least attempted that message. A skipped number is *lost*
//!   (a gap in the middle is never allowed), a smaller one *out of order*, a bad hash, a bad
//!   header or a message nobody sent *corrupted*.
//! * When both ends of a connection are over, what each side received is compared with what
//!   the other side's API accepted (the send call returned `Ok`): never more (plus the one
//!   message whose send was cut short, which may have gone out whole), and exactly as many
//!   when the connection saw no fatal fault and both ends closed cleanly. With `--faults off`
//!   every connection must close cleanly (the client closes with 1000 at the end of the
//!   run) and nothing may be missing.
//! * A watchdog marks a connection *hung* if it is still up 18 s (close + keepalive
//!   interval + keepalive timeout + 10 s margin) after its fatal fault, or 21 s (handshake +
//!   the same) after the end of the run.
//! * Resources come back: after every task and thread has ended, `malloc_trim(0)`, then the
//!   resident memory (VmRSS) and the open descriptors (/proc/self/fd) are compared with the
//!   baseline taken once the runtime, listeners and proxy are up but before any connection.
//!   Descriptors must not exceed the baseline; memory may exceed it by at most 64 MiB plus
//!   25% of the baseline. Observed at 2,000 connections: a peak of 1.3-1.7 GiB (most of it
//!   the deflate contexts of busy connections), then 20-40 MiB left above a 3.5 MiB
//!   baseline, nearly all of it partly used pages in glibc's per-thread arenas (the
//!   largest mappings are printed when the check fails, or with `SOAK_SHOW_MAPS=1`). The
//!   slack does not grow with the run's length; a leak of 20 KiB or more per connection
//!   (a compressor, a receive buffer) over the ~3,000 connections of a 60-s run exceeds it.
//! * A panic anywhere fails the run.
//!
//! Progress goes to stdout every 10 s; the last line is
//! `soak: CONNS connections, MSGS messages, L lost, C corrupted, O out of order, E errors
//! reported, rss START->END KiB, fds START->END`. The exit status is 0 only if nothing was
//! lost, corrupted, out of order, hung, unclean (faults off), leaked or panicked.

use rfc6455::deflate::DeflateConfig;
use rfc6455::handshake::{Accept, Reject, Request};
use rfc6455::tokio::{ReadHalf, WriteHalf};
use rfc6455::{ClientRequest, CloseCode, Config, Error, Message, MessageKind, UsageError};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ------------------------------------------------------------------ settings

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack for a loaded machine on top of the protocol's own timeouts.
const MARGIN: Duration = Duration::from_secs(10);
/// Allowed RSS growth: this much plus a quarter of the baseline (see the module docs).
const RSS_SLACK_KIB: u64 = 64 << 10;
const THREAD_STACK: usize = 256 << 10;
const CLIENT: usize = 0;
const SERVER: usize = 1;
const DIR_NAMES: [&str; 2] = ["c->s", "s->c"];

#[derive(Debug, Clone)]
struct Args {
    conns: usize,
    seconds: u64,
    faults: bool,
    sync_every: usize,
    deflate_off_every: usize,
    msg_rate: f64,
    seed: u64,
    chunk_rate: f64,
    delay_rate: f64,
    stall_rate: f64,
    half_close_rate: f64,
    rst_rate: f64,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let env = |name: &str| std::env::var(name).ok();
        let mut flags: HashMap<String, String> = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let Some(name) = flag.strip_prefix("--") else {
                return Err(format!("unexpected argument {flag}"));
            };
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        let mut get = |flag: &str, var: &str, default: &str| -> String {
            flags
                .remove(flag)
                .or_else(|| env(var))
                .unwrap_or_else(|| default.to_owned())
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("bad value for {name}: {v}"))
        }
        let seed_default = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let faults = match get("faults", "SOAK_FAULTS", "on").as_str() {
            "on" | "1" | "true" => true,
            "off" | "0" | "false" => false,
            other => return Err(format!("--faults takes on or off, not {other}")),
        };
        let args = Self {
            conns: num("conns", get("conns", "SOAK_CONNS", "2000"))?,
            seconds: num("seconds", get("seconds", "SOAK_SECONDS", "60"))?,
            faults,
            sync_every: num("sync-every", get("sync-every", "SOAK_SYNC_EVERY", "8"))?,
            deflate_off_every: num(
                "deflate-off-every",
                get("deflate-off-every", "SOAK_DEFLATE_OFF_EVERY", "5"),
            )?,
            msg_rate: num("msg-rate", get("msg-rate", "SOAK_MSG_RATE", "0.5"))?,
            seed: num("seed", get("seed", "SOAK_SEED", &seed_default.to_string()))?,
            chunk_rate: num("chunk-rate", get("chunk-rate", "SOAK_CHUNK_RATE", "0.05"))?,
            delay_rate: num("delay-rate", get("delay-rate", "SOAK_DELAY_RATE", "0.02"))?,
            stall_rate: num("stall-rate", get("stall-rate", "SOAK_STALL_RATE", "0.003"))?,
            half_close_rate: num(
                "half-close-rate",
                get("half-close-rate", "SOAK_HALF_CLOSE_RATE", "0.003"),
            )?,
            rst_rate: num("rst-rate", get("rst-rate", "SOAK_RST_RATE", "0.003"))?,
        };
        if let Some(flag) = flags.keys().next() {
            return Err(format!("unknown flag --{flag}"));
        }
        if args.msg_rate <= 0.0 {
            return Err("--msg-rate must be above 0".to_owned());
        }
        Ok(args)
    }
}

// ------------------------------------------------------------------ randomness and hashing

/// SplitMix64: small, fast, and enough for choosing sizes and faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut rng = Self(seed ^ 0x5851_F42D_4C95_7F2D);
        rng.next();
        rng
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// An exponentially distributed wait for an event of `rate` per second.
    fn exp(&mut self, rate: f64) -> Duration {
        let secs = -(1.0 - self.unit()).ln() / rate;
        Duration::from_secs_f64(secs.min(1e6))
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325_u64;
    for &byte in data {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

// ------------------------------------------------------------------ messages

const TEXT_PIECES: &[&str] = &[
    "soak ",
    "message ",
    "0123456789abcdef",
    "héllo ",
    "€uro ",
    "𝄞 clef ",
    "日本語 ",
    "ß ",
    "{\"seq\":",
    "\n",
];

fn body_size(rng: &mut Rng) -> usize {
    let pick = rng.range(0, 99);
    let size = if pick < 90 {
        rng.range(0, 1 << 10)
    } else if pick < 99 {
        rng.range((1 << 10) + 1, 64 << 10)
    } else {
        rng.range((64 << 10) + 1, 1 << 20)
    };
    size as usize
}

/// A whole payload: header and body.
fn make_message(rng: &mut Rng, seq: u64) -> (MessageKind, Vec<u8>) {
    let size = body_size(rng);
    let mut body = Vec::with_capacity(size);
    let text = rng.chance(0.5);
    if text {
        while body.len() < size {
            let piece = TEXT_PIECES[rng.range(0, TEXT_PIECES.len() as u64 - 1) as usize];
            if body.len() + piece.len() > size {
                body.resize(size, b'x');
            } else {
                body.extend_from_slice(piece.as_bytes());
            }
        }
    } else if rng.chance(0.5) {
        while body.len() < size {
            body.extend_from_slice(&rng.next().to_le_bytes());
        }
        body.truncate(size);
    } else {
        // Compressible: a short pattern repeated, with a random byte now and then.
        let pattern = rng.next().to_le_bytes();
        while body.len() < size {
            if rng.chance(0.05) {
                body.push(rng.next() as u8);
            } else {
                body.extend_from_slice(&pattern);
            }
        }
        body.truncate(size);
    }
    let hash = fnv1a(&body);
    let mut payload = Vec::with_capacity(size + 33);
    if text {
        payload.extend_from_slice(format!("T{seq:016x}{hash:016x}").as_bytes());
    } else {
        payload.push(b'B');
        payload.extend_from_slice(&seq.to_le_bytes());
        payload.extend_from_slice(&hash.to_le_bytes());
    }
    payload.extend_from_slice(&body);
    let kind = if text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    };
    (kind, payload)
}

/// Where a message is cut into fragments (empty: sent whole).
fn fragment_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    if !rng.chance(0.1) {
        return Vec::new();
    }
    let pieces = rng.range(2, 5);
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| rng.range(0, len as u64) as usize)
        .collect();
    cuts.sort_unstable();
    cuts
}

/// The header of a received message: sequence number and hash, then the body.
fn parse_message(message: &Message) -> Option<(u64, u64, &[u8])> {
    match message {
        Message::Binary(bytes) => {
            if bytes.len() < 17 || bytes[0] != b'B' {
                return None;
            }
            let seq = u64::from_le_bytes(bytes[1..9].try_into().ok()?);
            let hash = u64::from_le_bytes(bytes[9..17].try_into().ok()?);
            Some((seq, hash, &bytes[17..]))
        }
        Message::Text(text) => {
            let bytes = text.as_bytes();
            if bytes.len() < 33 || bytes[0] != b'T' {
                return None;
            }
            let seq = u64::from_str_radix(text.get(1..17)?, 16).ok()?;
            let hash = u64::from_str_radix(text.get(17..33)?, 16).ok()?;
            Some((seq, hash, &bytes[33..]))
        }
    }
}

// ------------------------------------------------------------------ bookkeeping

#[derive(Default)]
struct Direction {
    /// Send calls started (the message counted before the call).
    attempted: AtomicU64,
    /// Send calls that returned `Ok`.
    accepted: AtomicU64,
    /// Messages received in order with a good hash.
    received: AtomicU64,
}

#[derive(Default)]
struct Side {
    started: AtomicBool,
    ended: AtomicBool,
    clean: AtomicBool,
}

/// One connection, shared by its two ends, the proxy and the watchdog.
struct Conn {
    id: u64,
    opened: Instant,
    /// [client->server, server->client].
    dirs: [Direction; 2],
    /// [client, server].
    sides: [Side; 2],
    /// When the proxy injected a fatal fault, and which.
    faulted_at: Mutex<Option<Instant>>,
    fault: Mutex<Option<&'static str>>,
    client_ended_at: Mutex<Option<Instant>>,
    hung: AtomicBool,
}

impl Conn {
    fn alive(&self) -> bool {
        !self.sides[CLIENT].ended.load(Relaxed)
            || (self.sides[SERVER].started.load(Relaxed) && !self.sides[SERVER].ended.load(Relaxed))
    }
}

const FAULT_NAMES: [&str; 5] = ["chunk", "delay", "stall", "half-close", "rst"];
const F_CHUNK: usize = 0;
const F_DELAY: usize = 1;
const F_STALL: usize = 2;
const F_HALF_CLOSE: usize = 3;
const F_RST: usize = 4;

struct Stats {
    args: Args,
    run_end: Instant,
    conns_made: AtomicU64,
    /// Client handshakes that completed, and those whose response agreed permessage-deflate.
    handshakes: AtomicU64,
    deflated: AtomicU64,
    /// The longest time from a fatal fault to the end of its connection (as the watchdog saw
    /// it, to within its 250-ms sweep), in milliseconds.
    fault_to_end_ms: AtomicU64,
    msgs: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    corrupted: AtomicU64,
    out_of_order: AtomicU64,
    hung: AtomicU64,
    unclean: AtomicU64,
    errors: AtomicU64,
    error_kinds: Mutex<BTreeMap<String, u64>>,
    faults: [AtomicU64; 5],
    registry: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Tasks and threads that must end before the resources are measured.
    live: AtomicUsize,
    violations_printed: AtomicU64,
}

static STATS: OnceLock<Stats> = OnceLock::new();
static PANICS: AtomicU64 = AtomicU64::new(0);

fn stats() -> &'static Stats {
    STATS.get().expect("stats are set up first")
}

/// Counts a task or thread as live until dropped.
struct Live;

impl Live {
    fn new() -> Self {
        stats().live.fetch_add(1, Relaxed);
        Self
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        stats().live.fetch_sub(1, Relaxed);
    }
}

impl Stats {
    fn config(&self, deflate: bool) -> Config {
        Config::default()
            .handshake_timeout(HANDSHAKE_TIMEOUT)
            .close_timeout(CLOSE_TIMEOUT)
            .keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .keepalive_timeout(KEEPALIVE_TIMEOUT)
            .deflate(DeflateConfig::default().enabled(deflate))
    }

    fn new_conn(&self) -> Arc<Conn> {
        let id = self.next_id.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            id,
            opened: Instant::now(),
            dirs: Default::default(),
            sides: Default::default(),
            faulted_at: Mutex::new(None),
            fault: Mutex::new(None),
            client_ended_at: Mutex::new(None),
            hung: AtomicBool::new(false),
        });
        self.conns_made.fetch_add(1, Relaxed);
        self.registry.lock().unwrap().insert(id, Arc::clone(&conn));
        conn
    }

    fn handshake_done(&self, response: &rfc6455::handshake::Response) {
        self.handshakes.fetch_add(1, Relaxed);
        if response
            .extensions()
            .is_some_and(|e| e.contains("permessage-deflate"))
        {
            self.deflated.fetch_add(1, Relaxed);
        }
    }

    fn lookup(&self, id: u64) -> Option<Arc<Conn>> {
        self.registry.lock().unwrap().get(&id).cloned()
    }

    fn violation(&self, what: &str) {
        if self.violations_printed.fetch_add(1, Relaxed) < 50 {
            eprintln!("soak: VIOLATION {what}");
        }
    }

    fn error(&self, context: &str, kind: String) {
        self.errors.fetch_add(1, Relaxed);
        *self
            .error_kinds
            .lock()
            .unwrap()
            .entry(format!("{context} {kind}"))
            .or_default() += 1;
    }

    /// Records how one end of a connection ended.
    fn side_ended(&self, conn: &Conn, side: usize, outcome: &Result<(), String>) {
        match outcome {
            Ok(()) => conn.sides[side].clean.store(true, Relaxed),
            Err(kind) => {
                // Which fatal fault the connection saw: an error without one is worth a look.
                let fault = conn.fault.lock().unwrap().unwrap_or("no fault");
                self.error(["client", "server"][side], format!("{kind} [{fault}]"));
            }
        }
        if side == CLIENT {
            *conn.client_ended_at.lock().unwrap() = Some(Instant::now());
        }
        conn.sides[side].ended.store(true, Relaxed);
    }

    /// Checks one received message against the sender's counts (continuous invariants).
    fn check(&self, conn: &Conn, dir: usize, expected: &mut u64, message: &Message) {
        let name = DIR_NAMES[dir];
        let Some((seq, hash, body)) = parse_message(message) else {
            self.corrupted.fetch_add(1, Relaxed);
            self.violation(&format!(
                "conn {} {name}: message without a valid header ({} bytes)",
                conn.id,
                message.as_bytes().len()
            ));
            return;
        };
        if seq >= conn.dirs[dir].attempted.load(Relaxed) {
            self.corrupted.fetch_add(1, Relaxed);
            self.violation(&format!(
                "conn {} {name}: seq {seq} received but never sent",
                conn.id
            ));
            return;
        }
        // A message with a bad hash still arrived: it counts as corrupted, not also as lost.
        if fnv1a(body) != hash {
            self.corrupted.fetch_add(1, Relaxed);
            self.violation(&format!(
                "conn {} {name}: seq {seq} has a bad hash ({} bytes)",
                conn.id,
                body.len()
            ));
        }
        if seq > *expected {
            self.lost.fetch_add(seq - *expected, Relaxed);
            self.violation(&format!(
                "conn {} {name}: expected seq {} got {seq}",
                conn.id, *expected
            ));
        } else if seq < *expected {
            self.out_of_order.fetch_add(1, Relaxed);
            self.violation(&format!(
                "conn {} {name}: seq {seq} after {}",
                conn.id,
                *expected - 1
            ));
            return;
        }
        *expected = seq + 1;
        conn.dirs[dir].received.fetch_add(1, Relaxed);
        self.msgs.fetch_add(1, Relaxed);
        self.bytes
            .fetch_add(message.as_bytes().len() as u64, Relaxed);
    }

    /// The end-of-connection invariants, once both ends are over.
    fn finalize(&self, conn: &Conn) {
        let clean =
            conn.sides[CLIENT].clean.load(Relaxed) && conn.sides[SERVER].clean.load(Relaxed);
        let faulted = conn.faulted_at.lock().unwrap().is_some();
        if !self.args.faults && !clean {
            self.unclean.fetch_add(1, Relaxed);
            self.violation(&format!(
                "conn {}: did not close cleanly with faults off (client clean {}, server \
                 started {} clean {})",
                conn.id,
                conn.sides[CLIENT].clean.load(Relaxed),
                conn.sides[SERVER].started.load(Relaxed),
                conn.sides[SERVER].clean.load(Relaxed)
            ));
        }
        let must_be_complete = !self.args.faults || (clean && !faulted);
        for (dir, name) in DIR_NAMES.iter().enumerate() {
            let d = &conn.dirs[dir];
            let attempted = d.attempted.load(Relaxed);
            let accepted = d.accepted.load(Relaxed);
            let received = d.received.load(Relaxed);
            if received > attempted {
                self.corrupted.fetch_add(received - attempted, Relaxed);
                self.violation(&format!(
                    "conn {} {name}: received {received} > attempted {attempted}",
                    conn.id
                ));
            }
            if must_be_complete && received < accepted {
                self.lost.fetch_add(accepted - received, Relaxed);
                self.violation(&format!(
                    "conn {} {name}: received {received} of {accepted} accepted, after a clean \
                     close",
                    conn.id
                ));
            }
        }
    }
}

fn error_kind(e: &Error) -> String {
    let text = match e {
        Error::Io(io) => return format!("io {:?}", io.kind()),
        Error::Rejected(response) => return format!("rejected {}", response.status()),
        other => format!("{other:?}"),
    };
    // `Protocol(KeepaliveTimeout)`, `Usage(Failed(UnexpectedEof))`: short enough to group by.
    text.chars().take(60).collect()
}

// ------------------------------------------------------------------ tokio ends

/// The two halves of a tokio connection, run together until both are done.
async fn run_halves<S>(
    conn: &Conn,
    side: usize,
    mut rd: ReadHalf<S>,
    mut wr: WriteHalf<S>,
    seed: u64,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let st = stats();
    let run_end = tokio::time::Instant::from_std(st.run_end);
    let (done_tx, done_rx) = watch::channel(false);
    let reader = async move {
        let mut expected = 0;
        let outcome = loop {
            match rd.recv().await {
                Ok(Some(message)) => st.check(conn, 1 - side, &mut expected, &message),
                Ok(None) => break Ok(()),
                Err(e) => break Err(error_kind(&e)),
            }
        };
        let _ = done_tx.send(true);
        outcome
    };
    let writer = async move {
        let mut done = done_rx;
        let mut rng = Rng::new(seed);
        let dir = &conn.dirs[side];
        let mut seq = 0;
        loop {
            let wait = rng.exp(st.args.msg_rate);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = tokio::time::sleep_until(run_end) => break,
                _ = done.changed() => return Ok(()),
            }
            if tokio::time::Instant::now() >= run_end {
                break;
            }
            let (kind, payload) = make_message(&mut rng, seq);
            let cuts = fragment_cuts(&mut rng, payload.len());
            dir.attempted.fetch_add(1, Relaxed);
            let sent = tokio::select! {
                r = send_tokio(&mut wr, kind, &payload, &cuts) => r,
                // The reader is done: the connection is over, this message is in doubt.
                _ = done.changed() => return Ok(()),
            };
            match sent {
                Ok(()) => {
                    dir.accepted.fetch_add(1, Relaxed);
                    seq += 1;
                }
                // After the peer's Close, or a failure the reader reports: not this end's
                // error to count.
                Err(Error::Usage(UsageError::Closed | UsageError::Failed(_))) => return Ok(()),
                Err(e) => return Err(error_kind(&e)),
            }
        }
        if side == CLIENT {
            tokio::select! {
                r = wr.send_close(CloseCode::NORMAL, "") => match r {
                    Ok(()) | Err(Error::Usage(UsageError::Closed | UsageError::Failed(_))) => {}
                    Err(e) => return Err(error_kind(&e)),
                },
                _ = done.changed() => {}
            }
        }
        Ok(())
    };
    let (read, write) = tokio::join!(reader, writer);
    read.and(write)
}

async fn send_tokio<S: AsyncRead + AsyncWrite + Unpin>(
    wr: &mut WriteHalf<S>,
    kind: MessageKind,
    payload: &[u8],
    cuts: &[usize],
) -> Result<(), Error> {
    if cuts.is_empty() {
        return match kind {
            MessageKind::Text => {
                wr.send_text(std::str::from_utf8(payload).expect("text payloads are UTF-8"))
                    .await
            }
            MessageKind::Binary => wr.send_binary(payload).await,
        };
    }
    let mut start = 0;
    for (i, &cut) in cuts
        .iter()
        .chain(std::iter::once(&payload.len()))
        .enumerate()
    {
        wr.send_fragment(kind, &payload[start..cut], i == cuts.len())
            .await?;
        start = cut;
    }
    Ok(())
}

fn client_uri(port: u16, id: u64) -> ClientRequest {
    ClientRequest::new(&format!("ws://127.0.0.1:{port}/soak/{id}")).expect("a valid URI")
}

fn parse_id(request: &Request) -> Option<u64> {
    request.path().strip_prefix("/soak/")?.parse().ok()
}

/// One tokio client connection through the proxy at `target`.
async fn tokio_client(
    conn: &Conn,
    target: SocketAddr,
    deflate: bool,
    seed: u64,
) -> Result<(), String> {
    let st = stats();
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect io {:?}", e.kind())),
        Err(_) => return Err("connect timeout".to_owned()),
    };
    let _ = stream.set_nodelay(true);
    let request = client_uri(target.port(), conn.id);
    let ws = match rfc6455::tokio::client(stream, request, st.config(deflate)).await {
        Ok((ws, response)) => {
            st.handshake_done(&response);
            ws
        }
        Err(e) => return Err(format!("handshake {}", error_kind(&e))),
    };
    let (rd, wr) = ws.split();
    run_halves(conn, CLIENT, rd, wr, seed).await
}

/// The tokio server's accept loop.
async fn tokio_server(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let live = Live::new();
        tokio::spawn(async move {
            let _live = live;
            let st = stats();
            let _ = stream.set_nodelay(true);
            let mut found = None;
            let accepted = rfc6455::tokio::accept_with(stream, st.config(true), |request| {
                server_lookup(request, &mut found)
            })
            .await;
            let Some(conn) = found else {
                if let Err(e) = accepted {
                    st.error("server (before request)", error_kind(&e));
                }
                return;
            };
            let outcome = match accepted {
                Ok(ws) => {
                    let (rd, wr) = ws.split();
                    run_halves(
                        &conn,
                        SERVER,
                        rd,
                        wr,
                        st.args.seed ^ conn.id.rotate_left(32) ^ 1,
                    )
                    .await
                }
                Err(e) => Err(format!("handshake {}", error_kind(&e))),
            };
            st.side_ended(&conn, SERVER, &outcome);
        });
    }
}

fn server_lookup(request: &Request, found: &mut Option<Arc<Conn>>) -> Result<Accept, Reject> {
    let conn = parse_id(request)
        .and_then(|id| stats().lookup(id))
        .ok_or_else(|| Reject::new(404))?;
    conn.sides[SERVER].started.store(true, Relaxed);
    *found = Some(conn);
    Ok(Accept::new())
}

// ------------------------------------------------------------------ blocking ends

/// A message being sent over the blocking adapter, which may refuse a fragment (the queue
/// is over its high-water mark) without queueing it: the same call is retried later.
struct Outgoing {
    kind: MessageKind,
    payload: Vec<u8>,
    cuts: Vec<usize>,
    next: usize,
}

enum Step {
    Done,
    Refused,
}

fn send_sync(
    ws: &mut rfc6455::sync::WebSocket<std::net::TcpStream>,
    out: &mut Outgoing,
) -> Result<Step, Error> {
    let ends: Vec<usize> = out
        .cuts
        .iter()
        .copied()
        .chain(std::iter::once(out.payload.len()))
        .collect();
    while out.next < ends.len() {
        let start = if out.next == 0 { 0 } else { ends[out.next - 1] };
        let piece = &out.payload[start..ends[out.next]];
        let result = if out.cuts.is_empty() {
            match out.kind {
                MessageKind::Text => {
                    ws.send_text(std::str::from_utf8(piece).expect("text payloads are UTF-8"))
                }
                MessageKind::Binary => ws.send_binary(piece),
            }
        } else {
            ws.send_fragment(out.kind, piece, out.next + 1 == ends.len())
        };
        match result {
            Ok(()) => out.next += 1,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Refused),
            Err(e) => return Err(e),
        }
    }
    Ok(Step::Done)
}

/// One end of a connection over the blocking adapter: sends, receives and closes on one
/// thread, with short receive timeouts between sends.
fn run_sync(
    conn: &Conn,
    side: usize,
    mut ws: rfc6455::sync::WebSocket<std::net::TcpStream>,
    seed: u64,
) -> Result<(), String> {
    let st = stats();
    // A write timeout, so that a peer (or proxy) that stops reading cannot block this thread
    // in a write for ever: what is not written stays queued (up to the high-water mark).
    let _ = ws
        .get_mut()
        .set_write_timeout(Some(Duration::from_millis(100)));
    let mut rng = Rng::new(seed);
    let dir = &conn.dirs[side];
    let mut expected = 0;
    let mut seq = 0;
    let mut next_send = Instant::now() + rng.exp(st.args.msg_rate);
    let mut out: Option<Outgoing> = None;
    let mut sending = true;
    let mut close_sent = false;
    let mut send_error = None;
    loop {
        let now = Instant::now();
        if sending && out.is_none() && now >= st.run_end {
            sending = false;
        }
        if sending && out.is_none() && now >= next_send {
            let (kind, payload) = make_message(&mut rng, seq);
            let cuts = fragment_cuts(&mut rng, payload.len());
            dir.attempted.fetch_add(1, Relaxed);
            out = Some(Outgoing {
                kind,
                payload,
                cuts,
                next: 0,
            });
        }
        if let Some(message) = out.as_mut() {
            match send_sync(&mut ws, message) {
                Ok(Step::Done) => {
                    dir.accepted.fetch_add(1, Relaxed);
                    seq += 1;
                    out = None;
                    next_send = Instant::now() + rng.exp(st.args.msg_rate);
                }
                Ok(Step::Refused) => {}
                Err(e) => {
                    out = None;
                    sending = false;
                    if !matches!(e, Error::Usage(UsageError::Closed | UsageError::Failed(_))) {
                        send_error.get_or_insert(error_kind(&e));
                    }
                }
            }
        }
        if !sending && out.is_none() && side == CLIENT && !close_sent && send_error.is_none() {
            match ws.send_close(CloseCode::NORMAL, "") {
                Ok(()) => close_sent = true,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(Error::Usage(UsageError::Closed | UsageError::Failed(_))) => close_sent = true,
                Err(e) => {
                    close_sent = true;
                    send_error.get_or_insert(error_kind(&e));
                }
            }
        }
        let now = Instant::now();
        let wait = if out.is_some() {
            Duration::from_millis(20)
        } else if sending {
            next_send
                .min(st.run_end)
                .saturating_duration_since(now)
                .min(Duration::from_millis(200))
        } else {
            Duration::from_millis(200)
        };
        match ws.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(Some(message)) => st.check(conn, 1 - side, &mut expected, &message),
            Ok(None) => break,
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => return Err(error_kind(&e)),
        }
    }
    send_error.map_or(Ok(()), Err)
}

/// One blocking client connection through the proxy at `target`.
fn sync_client(conn: &Conn, target: SocketAddr, deflate: bool, seed: u64) -> Result<(), String> {
    let st = stats();
    let stream = std::net::TcpStream::connect_timeout(&target, HANDSHAKE_TIMEOUT)
        .map_err(|e| format!("connect io {:?}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    let request = client_uri(target.port(), conn.id);
    let (ws, response) = rfc6455::sync::client(stream, request, st.config(deflate))
        .map_err(|e| format!("handshake {}", error_kind(&e)))?;
    st.handshake_done(&response);
    run_sync(conn, CLIENT, ws, seed)
}

/// The blocking server's accept loop, a thread per connection.
fn sync_server(listener: std::net::TcpListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let live = Live::new();
        let spawned = std::thread::Builder::new()
            .name("soak-sync-server".to_owned())
            .stack_size(THREAD_STACK)
            .spawn(move || {
                let _live = live;
                let st = stats();
                let _ = stream.set_nodelay(true);
                let mut found = None;
                let accepted = rfc6455::sync::accept_with(stream, st.config(true), |request| {
                    server_lookup(request, &mut found)
                });
                let Some(conn) = found else {
                    if let Err(e) = accepted {
                        st.error("server (before request)", error_kind(&e));
                    }
                    return;
                };
                let outcome = match accepted {
                    Ok(ws) => run_sync(
                        &conn,
                        SERVER,
                        ws,
                        st.args.seed ^ conn.id.rotate_left(32) ^ 1,
                    ),
                    Err(e) => Err(format!("handshake {}", error_kind(&e))),
                };
                st.side_ended(&conn, SERVER, &outcome);
            });
        if let Err(e) = spawned {
            stats().error("server", format!("thread spawn {:?}", e.kind()));
        }
    }
}

// ------------------------------------------------------------------ client slots

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// tokio on both ends.
    Tokio,
    /// A blocking client against the tokio server.
    SyncClient,
    /// A tokio client against the blocking server.
    SyncServer,
}

fn slot_mode(args: &Args, slot: usize) -> Mode {
    if args.sync_every == 0 || slot % args.sync_every != args.sync_every - 1 {
        Mode::Tokio
    } else if (slot / args.sync_every) % 2 == 0 {
        Mode::SyncClient
    } else {
        Mode::SyncServer
    }
}

fn slot_deflate(args: &Args, slot: usize) -> bool {
    args.deflate_off_every == 0 || slot % args.deflate_off_every != 2
}

/// Keeps one connection up from the start of the run to its end, reconnecting after a
/// failure; the first connection starts within the first 2 s (so 2,000 handshakes do not
/// arrive at once).
async fn tokio_slot(slot: usize, target: SocketAddr) {
    let st = stats();
    let mut rng = Rng::new(st.args.seed ^ (slot as u64).wrapping_mul(0x1000_0000_01B3));
    let deflate = slot_deflate(&st.args, slot);
    tokio::time::sleep(Duration::from_millis(rng.range(0, 2000))).await;
    while Instant::now() < st.run_end {
        let conn = st.new_conn();
        let outcome = tokio_client(&conn, target, deflate, rng.next()).await;
        st.side_ended(&conn, CLIENT, &outcome);
        tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
    }
}

fn sync_slot(slot: usize, target: SocketAddr) {
    let st = stats();
    let mut rng = Rng::new(st.args.seed ^ (slot as u64).wrapping_mul(0x1000_0000_01B3));
    let deflate = slot_deflate(&st.args, slot);
    std::thread::sleep(Duration::from_millis(rng.range(0, 2000)));
    while Instant::now() < st.run_end {
        let conn = st.new_conn();
        let outcome = sync_client(&conn, target, deflate, rng.next());
        st.side_ended(&conn, CLIENT, &outcome);
        std::thread::sleep(Duration::from_millis(rng.range(20, 200)));
    }
}

// ------------------------------------------------------------------ the proxy

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    Stall(usize),
    HalfClose(usize),
    Rst,
}

async fn proxy(listener: TcpListener, upstream: SocketAddr) {
    let mut n = 0u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        n += 1;
        let live = Live::new();
        tokio::spawn(async move {
            let _live = live;
            link(client, upstream, n).await;
        });
    }
}

/// One proxied connection: a task per direction (this one runs client->server and the
/// fatal-fault timer, a spawned one server->client).
async fn link(client: TcpStream, upstream: SocketAddr, n: u64) {
    let st = stats();
    let server = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(server)) => server,
        _ => return,
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut rng = Rng::new(st.args.seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (fault_tx, fault_rx) = watch::channel(Fault::None);
    let (a_done_tx, a_done_rx) = watch::channel(false);
    let (b_done_tx, b_done_rx) = watch::channel(false);
    let id = Arc::new(OnceLock::new());
    let b = {
        let (fault_rx, id, seed) = (fault_rx.clone(), Arc::clone(&id), rng.next());
        let live = Live::new();
        tokio::spawn(async move {
            let _live = live;
            pump(sr, cw, SERVER, fault_rx, a_done_rx, b_done_tx, &id, seed).await;
        })
    };
    // The fatal fault, if one falls inside the run.
    let args = &st.args;
    let total = args.stall_rate + args.half_close_rate + args.rst_rate;
    let mut plan = None;
    if args.faults && total > 0.0 {
        let at = Instant::now() + rng.exp(total);
        // Faults keep coming while the clients close, so some hit a closing handshake.
        if at < st.run_end + CLOSE_TIMEOUT {
            let pick = rng.unit() * total;
            let dir = rng.range(0, 1) as usize;
            let fault = if pick < args.stall_rate {
                Fault::Stall(dir)
            } else if pick < args.stall_rate + args.half_close_rate {
                Fault::HalfClose(dir)
            } else {
                Fault::Rst
            };
            plan = Some((at, fault));
        }
    }
    let a = pump(
        cr,
        sw,
        CLIENT,
        fault_rx,
        b_done_rx.clone(),
        a_done_tx,
        &id,
        rng.next(),
    );
    let timer = async {
        let Some((at, fault)) = plan else { return };
        let mut b_done = b_done_rx;
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
            _ = b_done.wait_for(|done| *done) => return,
        }
        let kind = match fault {
            Fault::Stall(_) => F_STALL,
            Fault::HalfClose(_) => F_HALF_CLOSE,
            _ => F_RST,
        };
        st.faults[kind].fetch_add(1, Relaxed);
        if let Some(conn) = id.get().and_then(|id| st.lookup(*id)) {
            *conn.faulted_at.lock().unwrap() = Some(Instant::now());
            *conn.fault.lock().unwrap() = Some(FAULT_NAMES[kind]);
        }
        let _ = fault_tx.send(fault);
        // Keep the sender: a dropped one would read as a change to the pumps.
        let _ = b_done.wait_for(|done| *done).await;
    };
    tokio::join!(a, timer);
    let _ = b.await;
}

/// Forwards one direction, injecting the faults meant for it.
#[allow(clippy::too_many_arguments)]
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    dir: usize,
    mut fault: watch::Receiver<Fault>,
    mut other_done: watch::Receiver<bool>,
    done: watch::Sender<bool>,
    id: &OnceLock<u64>,
    seed: u64,
) {
    let st = stats();
    let mut rng = Rng::new(seed);
    let mut buf = vec![0u8; 64 << 10];
    // The client's request line names the connection: `GET /soak/ID HTTP/1.1`.
    let mut head = (dir == CLIENT).then(Vec::new);
    let affects_me =
        |f: Fault| matches!(f, Fault::Rst) || f == Fault::Stall(dir) || f == Fault::HalfClose(dir);
    'outer: loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Rst => {
                let _ = rd.as_ref().set_zero_linger();
                let _ = wr.as_ref().set_zero_linger();
                break;
            }
            f if f == Fault::Stall(dir) => {
                // Forward nothing more; end when the other direction has, or at an RST.
                tokio::select! {
                    _ = other_done.wait_for(|d| *d) => {}
                    _ = fault.wait_for(|f| *f == Fault::Rst) => continue,
                }
                break;
            }
            f if f == Fault::HalfClose(dir) => {
                let _ = wr.shutdown().await;
                // Swallow what still comes, until the end.
                loop {
                    tokio::select! {
                        r = rd.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { break 'outer },
                        _ = other_done.wait_for(|d| *d) => break 'outer,
                        _ = fault.wait_for(|f| *f == Fault::Rst) => continue 'outer,
                    }
                }
            }
            _ => {}
        }
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(n) if n > 0 => n,
                _ => {
                    let _ = wr.shutdown().await;
                    break;
                }
            },
            _ = fault.changed() => continue,
        };
        if let Some(h) = head.as_mut() {
            h.extend_from_slice(&buf[..n.min(512)]);
            if let Some(line_end) = h.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&h[..line_end]);
                if let Some(parsed) = line
                    .strip_prefix("GET /soak/")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|s| s.parse().ok())
                {
                    let _ = id.set(parsed);
                }
                head = None;
            } else if h.len() > 4096 {
                head = None;
            }
        }
        if st.args.faults && rng.chance(st.args.delay_rate) {
            st.faults[F_DELAY].fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(rng.range(1, 20))).await;
        }
        // The pieces to write: the whole read, or up to 16 small pieces and the rest.
        let mut ends = Vec::new();
        if st.args.faults && n > 1 && rng.chance(st.args.chunk_rate) {
            st.faults[F_CHUNK].fetch_add(1, Relaxed);
            let mut at = 0;
            for _ in 0..16 {
                let size = if rng.chance(0.5) {
                    rng.range(1, 8)
                } else {
                    rng.range(1, 2048)
                } as usize;
                at += size;
                if at >= n {
                    break;
                }
                ends.push(at);
            }
        }
        ends.push(n);
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            while start < end {
                // One `write` per select: a write future dropped while pending wrote nothing.
                tokio::select! {
                    r = wr.write(&buf[start..end]) => match r {
                        Ok(0) | Err(_) => break 'outer,
                        Ok(k) => start += k,
                    },
                    _ = fault.changed() => {
                        if affects_me(*fault.borrow()) {
                            continue 'outer;
                        }
                    }
                }
            }
            if i + 1 < ends.len() && rng.chance(0.25) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }
    let _ = done.send(true);
}

// ------------------------------------------------------------------ process resources

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The largest mappings by resident size (printed when memory did not come back), to tell
/// the heap from thread stacks and other caches.
fn largest_mappings(count: usize) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut maps: Vec<(u64, String)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kib = rss
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            maps.push((kib, current.clone()));
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-'))
        {
            current = line.to_owned();
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.0));
    maps.into_iter()
        .take(count)
        .map(|(kib, map)| format!("{kib} KiB {map}"))
        .collect()
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Returns freed heap memory to the system, so RSS shows what is still in use.
fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Raises the soft limit on open files to the hard limit (each connection holds four).
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the one struct we pass, which lives
    // for the call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

// ------------------------------------------------------------------ main

fn progress(started: Instant, open: usize) {
    let st = stats();
    let faults: Vec<String> = FAULT_NAMES
        .iter()
        .zip(&st.faults)
        .map(|(name, n)| format!("{name}={}", n.load(Relaxed)))
        .collect();
    let kinds = st.error_kinds.lock().unwrap();
    let mut top: Vec<(&String, &u64)> = kinds.iter().collect();
    top.sort_by_key(|e| std::cmp::Reverse(*e.1));
    let errors: Vec<String> = top
        .iter()
        .take(8)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let secs = started.elapsed().as_secs_f64();
    let msgs = st.msgs.load(Relaxed);
    println!(
        "soak: t={secs:.0}s open={open} made={} deflate={}/{} msgs={msgs} ({:.0}/s) delivered={}MiB rss={}MiB lost={} \
         corrupted={} out-of-order={} hung={} | faults {} | errors {}: {}",
        st.conns_made.load(Relaxed),
        st.deflated.load(Relaxed),
        st.handshakes.load(Relaxed),
        msgs as f64 / secs,
        st.bytes.load(Relaxed) >> 20,
        rss_kib() >> 10,
        st.lost.load(Relaxed),
        st.corrupted.load(Relaxed),
        st.out_of_order.load(Relaxed),
        st.hung.load(Relaxed),
        faults.join(" "),
        st.errors.load(Relaxed),
        errors.join(", ")
    );
}

/// Finalizes the connections that are over; marks those past their deadline as hung.
/// Returns how many are still open.
fn sweep(now: Instant) -> usize {
    let st = stats();
    let end_budget =
        HANDSHAKE_TIMEOUT + CLOSE_TIMEOUT + KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT + MARGIN;
    let fault_budget = CLOSE_TIMEOUT + KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT + MARGIN;
    let mut done = Vec::new();
    let mut open = 0;
    {
        let registry = st.registry.lock().unwrap();
        for conn in registry.values() {
            let client_end = *conn.client_ended_at.lock().unwrap();
            if !conn.alive() {
                // A server end that never saw the request gets its handshake timeout.
                let settled = conn.sides[SERVER].started.load(Relaxed)
                    || client_end.is_some_and(|t| now > t + HANDSHAKE_TIMEOUT + MARGIN);
                if settled {
                    done.push(Arc::clone(conn));
                }
                continue;
            }
            open += 1;
            let mut deadline = (st.run_end + end_budget).max(conn.opened + end_budget);
            if let Some(at) = *conn.faulted_at.lock().unwrap() {
                deadline = deadline.min(at + fault_budget);
            }
            if now > deadline && !conn.hung.swap(true, Relaxed) {
                st.hung.fetch_add(1, Relaxed);
                st.violation(&format!(
                    "conn {} still up {:?} after its deadline (client ended {}, server started \
                     {} ended {})",
                    conn.id,
                    now - deadline,
                    conn.sides[CLIENT].ended.load(Relaxed),
                    conn.sides[SERVER].started.load(Relaxed),
                    conn.sides[SERVER].ended.load(Relaxed)
                ));
            }
        }
    }
    let mut registry = st.registry.lock().unwrap();
    for conn in done {
        if let Some(at) = *conn.faulted_at.lock().unwrap() {
            let ms = Instant::now().saturating_duration_since(at).as_millis() as u64;
            st.fault_to_end_ms.fetch_max(ms, Relaxed);
        }
        registry.remove(&conn.id);
        st.finalize(&conn);
    }
    open
}

fn main() {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Relaxed);
        default_hook(info);
    }));
    let nofile = raise_nofile();
    let needed = args.conns as u64 * 4 + 256;
    if nofile < needed {
        eprintln!("soak: warning: {nofile} open files allowed, {needed} wanted");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let settle = Duration::from_millis(200);
    let run_end = started + settle + Duration::from_secs(args.seconds);
    println!(
        "soak: {} connections for {} s, faults {}, seed {}, 1 in {} blocking, 1 in {} without \
         deflate, {} msg/s per side; rss tolerance {} KiB + 25% of baseline",
        args.conns,
        args.seconds,
        if args.faults { "on" } else { "off" },
        args.seed,
        args.sync_every,
        args.deflate_off_every,
        args.msg_rate,
        RSS_SLACK_KIB
    );
    let _ = STATS.set(Stats {
        args: args.clone(),
        run_end,
        conns_made: AtomicU64::new(0),
        handshakes: AtomicU64::new(0),
        deflated: AtomicU64::new(0),
        fault_to_end_ms: AtomicU64::new(0),
        msgs: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        corrupted: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        hung: AtomicU64::new(0),
        unclean: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_kinds: Mutex::new(BTreeMap::new()),
        faults: Default::default(),
        registry: Mutex::new(HashMap::with_capacity(args.conns * 2)),
        next_id: AtomicU64::new(0),
        live: AtomicUsize::new(0),
        violations_printed: AtomicU64::new(0),
    });
    let st = stats();

    // Servers and proxies: tokio server behind one proxy, blocking server behind another.
    let (tokio_proxy, sync_proxy) = runtime.block_on(async {
        let tokio_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tokio_addr = tokio_listener.local_addr().expect("addr");
        tokio::spawn(tokio_server(tokio_listener));
        let sync_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let sync_addr = sync_listener.local_addr().expect("addr");
        std::thread::Builder::new()
            .name("soak-sync-accept".to_owned())
            .stack_size(THREAD_STACK)
            .spawn(move || sync_server(sync_listener))
            .expect("accept thread");
        let p1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let p2 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (a1, a2) = (
            p1.local_addr().expect("addr"),
            p2.local_addr().expect("addr"),
        );
        tokio::spawn(proxy(p1, tokio_addr));
        tokio::spawn(proxy(p2, sync_addr));
        tokio::time::sleep(settle / 2).await;
        (a1, a2)
    });
    trim_heap();
    let rss_start = rss_kib();
    let fds_start = fd_count();

    let mut threads = Vec::new();
    runtime.block_on(async {
        for slot in 0..args.conns {
            match slot_mode(&args, slot) {
                Mode::Tokio => {
                    let live = Live::new();
                    tokio::spawn(async move {
                        let _live = live;
                        tokio_slot(slot, tokio_proxy).await;
                    });
                }
                Mode::SyncServer => {
                    let live = Live::new();
                    tokio::spawn(async move {
                        let _live = live;
                        tokio_slot(slot, sync_proxy).await;
                    });
                }
                Mode::SyncClient => {
                    let live = Live::new();
                    let spawned = std::thread::Builder::new()
                        .name("soak-sync-client".to_owned())
                        .stack_size(THREAD_STACK)
                        .spawn(move || {
                            let _live = live;
                            sync_slot(slot, tokio_proxy);
                        });
                    match spawned {
                        Ok(handle) => threads.push(handle),
                        Err(e) => st.error("client", format!("thread spawn {:?}", e.kind())),
                    }
                }
            }
        }
        // Progress and the watchdog, until every task and thread is over (or the watchdog
        // gives up on them).
        let end_budget =
            HANDSHAKE_TIMEOUT + CLOSE_TIMEOUT + KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT + MARGIN;
        let give_up = run_end + end_budget + Duration::from_secs(5);
        let mut last_progress = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = Instant::now();
            let open = sweep(now);
            if now.duration_since(last_progress) >= Duration::from_secs(10) {
                last_progress = now;
                progress(started, open);
            }
            if now > run_end && st.live.load(Relaxed) == 0 {
                break;
            }
            if now > give_up {
                eprintln!(
                    "soak: {} tasks/threads still running {:?} after the end of the run",
                    st.live.load(Relaxed),
                    now - run_end
                );
                break;
            }
        }
    });
    let all_ended = st.live.load(Relaxed) == 0;
    if all_ended {
        for handle in threads {
            let _ = handle.join();
        }
    }
    let open = sweep(Instant::now() + Duration::from_secs(3600));
    progress(started, open);

    // The end reading: runtime, listeners and proxy still up, as at the start.
    trim_heap();
    let rss_end = rss_kib();
    let fds_end = fd_count();
    let rss_limit = rss_start + RSS_SLACK_KIB + rss_start / 4;
    let fd_leak = fds_end > fds_start;
    let rss_leak = rss_end > rss_limit;
    let (lost, corrupted, out_of_order) = (
        st.lost.load(Relaxed),
        st.corrupted.load(Relaxed),
        st.out_of_order.load(Relaxed),
    );
    let (hung, unclean, panics) = (
        st.hung.load(Relaxed),
        st.unclean.load(Relaxed),
        PANICS.load(Relaxed),
    );
    let mut failures = Vec::new();
    if lost + corrupted + out_of_order > 0 {
        failures.push("messages lost, corrupted or out of order".to_owned());
    }
    if hung > 0 || !all_ended {
        failures.push(format!("{hung} connections hung"));
    }
    if unclean > 0 {
        failures.push(format!(
            "{unclean} connections did not close cleanly with faults off"
        ));
    }
    if panics > 0 {
        failures.push(format!("{panics} panics"));
    }
    if fd_leak {
        failures.push(format!("descriptors leaked: {fds_start} -> {fds_end}"));
    }
    if rss_leak || std::env::var_os("SOAK_SHOW_MAPS").is_some() {
        for map in largest_mappings(12) {
            println!("soak: mapping {map}");
        }
    }
    if rss_leak {
        failures.push(format!(
            "memory not returned: {rss_end} KiB > limit {rss_limit} KiB"
        ));
    }
    println!(
        "soak: {} in {:.1} s; hung {hung}, unclean {unclean}, panics {panics}, longest fault \
         to end {} ms, rss limit {} KiB",
        if failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL ({})", failures.join("; "))
        },
        started.elapsed().as_secs_f64(),
        st.fault_to_end_ms.load(Relaxed),
        rss_limit
    );
    println!(
        "soak: {} connections, {} messages, {lost} lost, {corrupted} corrupted, {out_of_order} \
         out of order, {} errors reported, rss {rss_start}->{rss_end} KiB, fds \
         {fds_start}->{fds_end}",
        st.conns_made.load(Relaxed),
        st.msgs.load(Relaxed),
        st.errors.load(Relaxed)
    );
    // The runtime may hold hung tasks: leave without waiting for them.
    std::process::exit(i32::from(!failures.is_empty()));
}
