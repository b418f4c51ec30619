//! The catalogue's harness: a per-thread counting allocator, runners that feed each input
//! whole, byte by byte and at seeded random cuts (and insist all agree), and frame builders.

use rfc6455::frame::{apply_mask, decode_header};
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::{Config, Connection, Event, HandshakeError, ProtocolError, Role};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

// ------------------------------------------------------------------------------ allocator

/// Counts the bytes allocated by the current thread while [`measure`] runs.
///
/// The counters are thread-local, so tests running in parallel on other threads do not
/// disturb a measurement; the measured cases need no mutex.
pub struct CountingAlloc;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let _ = ACTIVE.try_with(|active| {
        if active.get() {
            let now = CURRENT.get() + delta;
            CURRENT.set(now);
            PEAK.set(PEAK.get().max(now));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counters have no effect on it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the peak of bytes allocated (and not yet freed) on
/// this thread while it ran, counted from zero at the start. Whatever `f` builds and drops,
/// connections included, is counted; memory allocated before the call is not.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    CURRENT.set(0);
    PEAK.set(0);
    ACTIVE.set(true);
    let r = f();
    ACTIVE.set(false);
    (r, PEAK.get().max(0) as usize)
}

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

/// Asserts `peak <= bound` and prints both, so `--nocapture` shows the margins.
pub fn assert_peak(what: &str, peak: usize, bound: usize) {
    println!("{what}: peak allocation {peak} bytes (bound {bound})");
    assert!(
        peak <= bound,
        "{what}: peak allocation {peak} bytes exceeds {bound}"
    );
}

/// Runs `f`, printing how long it took (CPU cost is reported, never asserted).
pub fn timed<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    println!("{what}: {:?}", start.elapsed());
    r
}

// ------------------------------------------------------------------------------ cuts

/// SplitMix64, seeded from the case name, so a failing cut reproduces.
pub struct Rng(u64);

impl Rng {
    pub fn new(name: &str, salt: u64) -> Self {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Self(hash ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A chunk length in `1..=max`, log-uniform so that tiny and large chunks both occur.
    pub fn size(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let bits = usize::BITS - max.leading_zeros();
        let cap = 1usize << (self.next_u64() % u64::from(bits + 1)).min(u64::from(bits - 1));
        1 + (self.next_u64() as usize) % cap.min(max)
    }
}

/// How an input is cut into reads.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    Whole,
    Bytewise,
    /// Seeded random cuts; odd seeds read through `read_buf` + `commit_read`.
    Random(u64),
    /// Fixed-size reads.
    Every(usize),
}

/// The cuts every catalogue case runs: whole, byte by byte, three seeded random splits.
pub const CUTS: [Cut; 5] = [
    Cut::Whole,
    Cut::Bytewise,
    Cut::Random(1),
    Cut::Random(2),
    Cut::Random(3),
];

/// The chunks of `input` under `cut`, produced lazily (a byte-by-byte cut of 60 MB must
/// not allocate a slice per byte).
pub fn chunks<'a>(
    name: &str,
    input: &'a [u8],
    cut: Cut,
) -> impl Iterator<Item = &'a [u8]> + use<'a> {
    let mut rest = input;
    let mut rng = Rng::new(name, if let Cut::Random(seed) = cut { seed } else { 0 });
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = match cut {
            Cut::Whole => rest.len(),
            Cut::Bytewise => 1,
            Cut::Every(n) => n.clamp(1, rest.len()),
            Cut::Random(_) => rng.size(rest.len().min(1 << 16)),
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

// ------------------------------------------------------------------------------ frames

pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame header with any first byte and a declared length in the minimal form.
pub fn header(b0: u8, declared: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![b0];
    if declared < 126 {
        out.push(m | declared as u8);
    } else if declared <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(declared as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&declared.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame: first byte `b0` (FIN, RSV and opcode bits), payload masked with `mask`.
pub fn frame_b0(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = header(b0, payload.len() as u64, mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A frame a client sends (masked with [`KEY`]).
pub fn c2s(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_b0((u8::from(fin) << 7) | opcode, payload, Some(KEY))
}

/// A frame a server sends (unmasked).
pub fn s2c(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_b0((u8::from(fin) << 7) | opcode, payload, None)
}

/// A frame as the peer of `role` sends it: masked towards a server, not towards a client.
pub fn from_peer(role: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => c2s(fin, opcode, payload),
        Role::Client => s2c(fin, opcode, payload),
    }
}

pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Parses the frames a connection of `role` wrote: (opcode, unmasked payload).
pub fn parse_output(role: Role, mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let (h, n) = decode_header(out)
            .expect("we wrote a valid header")
            .expect("we wrote a whole header");
        assert_eq!(h.mask.is_some(), role == Role::Client, "masking by role");
        let len = h.payload_len as usize;
        let mut payload = out[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((h.opcode.as_u8(), payload));
        out = &out[n + len..];
    }
    frames
}

// ------------------------------------------------------------------------------ connections

pub fn server() -> Connection {
    Connection::server(Config::default())
}

pub fn client() -> Connection {
    Connection::client(Config::default(), Box::new(|b: &mut [u8]| b.fill(0x5a)))
}

pub fn new_conn(role: Role, config: Config) -> Connection {
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, Box::new(|b: &mut [u8]| b.fill(0x5a))),
    }
}

/// What a connection made of an input, with everything it wrote taken out as it went.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub events: Vec<Event>,
    pub error: Option<ProtocolError>,
    /// Our frames, in order: (opcode, payload).
    pub frames: Vec<(u8, Vec<u8>)>,
}

impl Run {
    /// Asserts the connection failed with `code`: the error's code, and (except for 1006,
    /// which is never on the wire) a Close frame with that code as our last frame.
    pub fn assert_failed(&self, code: u16) {
        let error = self
            .error
            .unwrap_or_else(|| panic!("no error; run: {self:?}"));
        assert_eq!(error.close_code().as_u16(), code, "error {error:?}");
        if code == 1006 {
            assert!(
                !self.frames.iter().any(|(op, _)| *op == CLOSE),
                "Close sent on EOF"
            );
        } else {
            let (op, payload) = self.frames.last().expect("a Close frame");
            assert_eq!(*op, CLOSE);
            assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
        }
    }
}

/// Feeds `chunks` to `conn` (odd random seeds through `read_buf`), draining events and output
/// after each, then EOF if asked.
pub fn feed<'a>(
    mut conn: Connection,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    zero_copy: bool,
    eof: bool,
) -> Run {
    let role = conn.role();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let drain = |conn: &mut Connection, events: &mut Vec<Event>, out: &mut Vec<u8>| {
        events.extend(std::iter::from_fn(|| conn.poll_event()));
        while !conn.pending_transmit().is_empty() {
            let chunk = conn.pending_transmit();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            conn.advance_transmit(n);
        }
    };
    drain(&mut conn, &mut events, &mut out);
    for chunk in chunks {
        if zero_copy {
            let mut rest = chunk;
            while !rest.is_empty() {
                let buf = conn.read_buf();
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                let _ = conn.commit_read(n);
                rest = &rest[n..];
            }
        } else {
            let _ = conn.receive(chunk);
        }
        drain(&mut conn, &mut events, &mut out);
    }
    if eof {
        let _ = conn.receive_eof();
        drain(&mut conn, &mut events, &mut out);
    }
    Run {
        events,
        error: conn.error(),
        frames: parse_output(role, &out),
    }
}

/// Runs `input` through fresh connections from `make` under every cut in [`CUTS`] and asserts
/// that all give the same events, error and output; returns that common result.
pub fn run(name: &str, make: impl Fn() -> Connection, input: &[u8], eof: bool) -> Run {
    run_cuts(name, make, input, eof, &CUTS)
}

pub fn run_cuts(
    name: &str,
    make: impl Fn() -> Connection,
    input: &[u8],
    eof: bool,
    cuts: &[Cut],
) -> Run {
    let mut first: Option<Run> = None;
    for &cut in cuts {
        let zero_copy = matches!(cut, Cut::Random(seed) if seed % 2 == 1);
        let got = feed(make(), chunks(name, input, cut), zero_copy, eof);
        match &first {
            None => first = Some(got),
            Some(expected) => assert_eq!(&got, expected, "{name}: {cut:?} differs from whole"),
        }
    }
    first.expect("at least one cut")
}

// ------------------------------------------------------------------------------ handshakes

/// The server handshake's result: the status written and, once accepted, the connection's
/// run over the bytes that followed the request.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRun {
    pub error: Option<HandshakeError>,
    pub status: Option<u16>,
    /// The response bytes (the rejection, or the 101 head).
    pub response: Vec<u8>,
    pub run: Option<Run>,
}

impl ServerRun {
    pub fn response_text(&self) -> String {
        String::from_utf8_lossy(&self.response).into_owned()
    }

    /// Asserts a rejection with `status` whose head carries each of `headers` exactly.
    pub fn assert_rejected(&self, status: u16, headers: &[&str]) {
        let e = self.error.unwrap_or_else(|| panic!("accepted: {self:?}"));
        assert_eq!(e.http_status(), status, "{e:?}");
        assert_eq!(self.status, Some(status), "{}", self.response_text());
        for h in headers {
            assert!(
                self.response_text().contains(&format!("\r\n{h}\r\n")),
                "{h:?} missing from {}",
                self.response_text()
            );
        }
    }

    pub fn assert_accepted(&self) -> &Run {
        assert_eq!(self.error, None, "{}", self.response_text());
        assert_eq!(self.status, Some(101), "{}", self.response_text());
        self.run.as_ref().expect("accepted")
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let line = response.split(|&b| b == b'\r').next()?;
    let code = line.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Feeds a request to a server handshake in `chunks`; accepts (with no subprotocol) when it
/// is valid, stopping at the first error.
pub fn server_handshake<'a>(
    config: &Config,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> ServerRun {
    let mut hs = ServerHandshake::new(config.clone());
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = hs.receive(chunk) {
            error = Some(e);
            break;
        }
    }
    match (error, hs.request().is_some()) {
        (None, true) => {
            let conn = hs.accept(Accept::new()).expect("accept a valid request");
            let mut conn = conn;
            let mut response = Vec::new();
            // The 101 head is the connection's first output; frames may follow it.
            while !conn.pending_transmit().is_empty() {
                let chunk = conn.pending_transmit();
                response.extend_from_slice(chunk);
                let n = chunk.len();
                conn.advance_transmit(n);
            }
            let end = response
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("101 head")
                + 4;
            let mut run = feed(conn, [], false, false);
            let mut frames = parse_output(Role::Server, &response[end..]);
            frames.append(&mut run.frames);
            run.frames = frames;
            response.truncate(end);
            ServerRun {
                error: None,
                status: status_of(&response),
                response,
                run: Some(run),
            }
        }
        _ => {
            let response = hs.pending_transmit().to_vec();
            ServerRun {
                error: hs.error(),
                status: status_of(&response),
                response,
                run: None,
            }
        }
    }
}

/// [`server_handshake`] under every cut; all must agree.
pub fn run_server(name: &str, config: &Config, input: &[u8]) -> ServerRun {
    let mut first: Option<ServerRun> = None;
    for cut in CUTS {
        let got = server_handshake(config, chunks(name, input, cut));
        match &first {
            None => first = Some(got),
            Some(expected) => assert_eq!(&got, expected, "{name}: {cut:?} differs from whole"),
        }
    }
    first.expect("at least one cut")
}

/// A valid request with `extra` header lines (each ending in CRLF) before the blank line.
pub fn request_with(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// The client handshake's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRun {
    pub error: Option<HandshakeError>,
    pub status: Option<u16>,
    pub run: Option<Run>,
}

/// The nonce every client here uses; its accept value is the RFC's sample one.
pub const NONCE: &[u8; 16] = b"the sample nonce";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn client_handshake<'a>(
    request: ClientRequest,
    config: &Config,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> ClientRun {
    let mut at = 0;
    let entropy = Box::new(move |dest: &mut [u8]| {
        for b in dest {
            *b = NONCE[at % 16];
            at += 1;
        }
    });
    let mut hs = ClientHandshake::new(request, config.clone(), entropy).expect("valid request");
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = hs.receive(chunk) {
            error = Some(e);
            break;
        }
    }
    let status = hs.response().map(|r| r.status());
    if hs.is_complete() {
        let (conn, _) = hs.into_connection().expect("complete");
        ClientRun {
            error,
            status,
            run: Some(feed(conn, [], false, false)),
        }
    } else {
        ClientRun {
            error: hs.error(),
            status,
            run: None,
        }
    }
}

/// [`client_handshake`] under every cut; all must agree.
pub fn run_client(
    name: &str,
    request: impl Fn() -> ClientRequest,
    config: &Config,
    input: &[u8],
) -> ClientRun {
    let mut first: Option<ClientRun> = None;
    for cut in CUTS {
        let got = client_handshake(request(), config, chunks(name, input, cut));
        match &first {
            None => first = Some(got),
            Some(expected) => assert_eq!(&got, expected, "{name}: {cut:?} differs from whole"),
        }
    }
    first.expect("at least one cut")
}

/// A 101 response with the sample accept value and `extra` header lines.
pub fn response_with(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {SAMPLE_ACCEPT}\r\n{extra}\r\n"
    )
    .into_bytes()
}

pub fn chat_request() -> ClientRequest {
    ClientRequest::new("ws://server.example.com/chat").expect("valid uri")
}
