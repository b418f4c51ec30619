//! A server that answers the opening handshake with something other than 101 (RFC 6455 §4.1:
//! "the client handles the response per HTTP [RFC2616] procedures"): the client keeps the
//! status, the headers and up to `MAX_REJECTION_BODY` (4 KiB) of the body, framed per
//! RFC 9112 §6.3, and both adapters return it as `Error::Rejected`.
//!
//! The first half drives `ClientHandshake` directly (split invariance, framing, the cap, a
//! hostile `Content-Length`, measured with a counting allocator: this is its own test
//! binary, the counters are per thread); the second half runs both adapters against a
//! scripted raw TCP server on 127.0.0.1.

use rfc6455::handshake::{ClientHandshake, ClientRequest, MAX_REJECTION_BODY, Response};
use rfc6455::{Config, Error, HandshakeError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ counting allocator

struct Counting;

thread_local! {
    /// Bytes this thread has allocated and not freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most `LIVE` has been since the last `reset_peak`.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let now = l.get() + delta;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments; the counters are
// const-initialised thread-locals, which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes allocated on this thread, at most, while `f` ran, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

// ------------------------------------------------------------------ sans-IO helpers

fn client() -> ClientHandshake {
    client_with(Config::default())
}

fn client_with(config: Config) -> ClientHandshake {
    let entropy = Box::new(|d: &mut [u8]| d.fill(7));
    let mut hs = ClientHandshake::new(
        ClientRequest::new("ws://a.example/").unwrap(),
        config,
        entropy,
    )
    .unwrap();
    let n = hs.pending_transmit().len();
    hs.advance_transmit(n);
    hs
}

/// What a finished handshake shows: its error, and its response's status, body and whether
/// the body is whole.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    error: Option<HandshakeError>,
    status: Option<u16>,
    body: Vec<u8>,
    complete: bool,
}

fn outcome(hs: &ClientHandshake) -> Outcome {
    Outcome {
        error: hs.error(),
        status: hs.response().map(Response::status),
        body: hs.response().map(|r| r.body().to_vec()).unwrap_or_default(),
        complete: hs.response().is_some_and(Response::body_complete),
    }
}

/// Feeds `parts` in order, then end-of-file if `eof`.
fn feed(parts: &[&[u8]], eof: bool) -> Outcome {
    let mut hs = client();
    for part in parts {
        let _ = hs.receive(part);
    }
    if eof {
        let _ = hs.receive_eof();
    }
    outcome(&hs)
}

/// The outcome of `input` fed whole, and the same whatever the split: at every cut point,
/// and a byte at a time (DESIGN §5.3).
fn split_invariant(input: &[u8], eof: bool) -> Outcome {
    let whole = feed(&[input], eof);
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(feed(&[a, b], eof), whole, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(feed(&bytes, eof), whole, "a byte at a time");
    whole
}

fn rejected(status: u16, body: &[u8], complete: bool) -> Outcome {
    Outcome {
        error: Some(HandshakeError::UnexpectedStatus(status)),
        status: Some(status),
        body: body.to_vec(),
        complete,
    }
}

// ------------------------------------------------------------------ sans-IO tests

#[test]
fn rfc9112_6_3_content_length_body_is_kept_with_the_headers() {
    let input = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"ws\"\r\n\
                  Content-Length: 16\r\n\r\n{\"error\":\"auth\"}trailing junk";
    assert_eq!(
        split_invariant(input, false),
        rejected(401, b"{\"error\":\"auth\"}", true)
    );
    let mut hs = client();
    assert_eq!(hs.receive(&input[..input.len() - 20]), Ok(()));
    assert!(!hs.is_terminated(), "the body is not read yet");
    assert_eq!(hs.error(), None);
    let _ = hs.receive(&input[input.len() - 20..]);
    let response = hs.response().unwrap();
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"ws\"")
    );
    assert!(hs.is_terminated());
}

#[test]
fn rfc9112_7_1_chunked_body_is_decoded() {
    let input = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\
                  Transfer-Encoding: gzip, chunked\r\nContent-Length: 999\r\n\r\n\
                  5;name=\"v\"\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
    // The last coding is chunked: the chunks are decoded (the codings before it are not
    // ours to undo), and Transfer-Encoding overrides Content-Length.
    assert_eq!(
        split_invariant(input, false),
        rejected(503, b"hello 0123456789", true)
    );
}

#[test]
fn rfc9112_6_3_close_delimited_body_ends_at_eof() {
    let input = b"HTTP/1.1 302 Found\r\nLocation: wss://elsewhere.example/\r\n\r\nmoved";
    assert_eq!(
        split_invariant(input, false),
        Outcome {
            error: None,
            status: Some(302),
            body: Vec::new(),
            complete: true,
        },
        "without end-of-file the body may go on"
    );
    assert_eq!(split_invariant(input, true), rejected(302, b"moved", true));
    // A coding other than chunked last: close-delimited too.
    let input = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip\r\n\r\nzz";
    assert_eq!(split_invariant(input, true), rejected(500, b"zz", true));
}

#[test]
fn rfc9112_6_3_statuses_without_a_body_end_at_the_head() {
    for status in [100, 204, 304] {
        let input = format!("HTTP/1.1 {status} X\r\n\r\nnot a body");
        assert_eq!(
            split_invariant(input.as_bytes(), false),
            rejected(status, b"", true)
        );
    }
}

#[test]
fn rfc9112_6_3_invalid_content_length_reports_the_status_without_a_body() {
    for value in ["12abc", "", "-1", "1, 2", "99999999999999999999999"] {
        let input = format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {value}\r\n\r\nbody");
        assert_eq!(
            split_invariant(input.as_bytes(), false),
            rejected(403, b"", false),
            "{value:?}"
        );
    }
    // Two equal values are one length (RFC 9110 §8.6 lets a recipient accept them).
    let input = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nno";
    assert_eq!(split_invariant(input, false), rejected(403, b"no", true));
}

#[test]
fn rfc9112_7_1_broken_chunks_keep_what_came_before() {
    let cases: [(&[u8], &[u8]); 5] = [
        (b"3\r\nabc\r\nzz\r\n", b"abc"), // not a hex size
        (b"3\r\nabcX\r\n", b"abc"),      // no CRLF after data
        (b"\r\n", b""),                  // empty size
        (b"3\nabc\r\n", b""),            // bare LF
        (b"11111111111111111\r\n", b""), // 17 hex digits: more than a u64
    ];
    for (chunks, kept) in cases {
        let mut input = b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        input.extend_from_slice(chunks);
        assert_eq!(
            split_invariant(&input, false),
            rejected(500, kept, false),
            "{}",
            String::from_utf8_lossy(chunks)
        );
    }
}

#[test]
fn body_is_cut_at_the_cap_without_waiting_for_the_rest() {
    let body = vec![b'x'; MAX_REJECTION_BODY + 1000];
    let mut input =
        format!("HTTP/1.1 500 X\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    input.extend_from_slice(&body);
    let cut = rejected(500, &body[..MAX_REJECTION_BODY], false);
    assert_eq!(feed(&[&input], false), cut);
    // Exactly at the cap: whole.
    let exact = &input[..input.len() - 1000];
    let exact = String::from_utf8_lossy(exact).replace(
        &format!("Content-Length: {}", body.len()),
        &format!("Content-Length: {MAX_REJECTION_BODY}"),
    );
    assert_eq!(
        feed(&[exact.as_bytes()], false),
        rejected(500, &body[..MAX_REJECTION_BODY], true)
    );
    // Close-delimited and chunked bodies stop at the cap too.
    let mut close = b"HTTP/1.1 500 X\r\n\r\n".to_vec();
    close.extend_from_slice(&body);
    assert_eq!(feed(&[&close], false), cut);
    let mut chunked = b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    chunked.extend_from_slice(&body);
    assert_eq!(feed(&[&chunked], false), cut);
}

#[test]
fn endless_chunk_framing_is_cut_off() {
    let mut hs = client();
    let _ = hs.receive(b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    let junk = [b'a'; 1024];
    let mut fed = 0;
    while hs.error().is_none() {
        let _ = hs.receive(&junk);
        fed += junk.len();
        assert!(
            fed <= 1 << 20,
            "still reading after {fed} bytes of extension"
        );
    }
    assert_eq!(outcome(&hs), rejected(500, b"", false));
    assert!(fed <= 16 * MAX_REJECTION_BODY + junk.len(), "{fed}");
}

#[test]
fn hostile_content_length_allocates_nothing_from_the_declared_size() {
    for declared in [u64::MAX, 1 << 62, 1 << 40] {
        let head = format!("HTTP/1.1 429 Too Many\r\nContent-Length: {declared}\r\n\r\n");
        let (out, peak) = peak_during(|| {
            let mut hs = client();
            let _ = hs.receive(head.as_bytes());
            let chunk = [b'z'; 1000];
            let mut rounds = 0;
            while hs.error().is_none() {
                let _ = hs.receive(&chunk);
                rounds += 1;
                assert!(rounds < 100, "the cap stops the body");
            }
            outcome(&hs)
        });
        assert_eq!(out, rejected(429, &[b'z'; MAX_REJECTION_BODY], false));
        // The request, head, inbox and the capped body: a few pages, not the declared size.
        assert!(peak < 64 << 10, "declared {declared}: peak {peak} bytes");
    }
}

#[test]
fn rfc6455_4_1_timeout_while_reading_the_body_reports_the_status() {
    let mut hs = client_with(Config::default().handshake_timeout(Duration::from_secs(5)));
    hs.handle_timeout(Duration::ZERO);
    let _ = hs.receive(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\npartial");
    assert_eq!(hs.poll_timeout(), Some(Duration::from_secs(5)));
    hs.handle_timeout(Duration::from_secs(4));
    assert_eq!(hs.error(), None);
    hs.handle_timeout(Duration::from_secs(5));
    assert_eq!(outcome(&hs), rejected(503, b"partial", false));
    assert_eq!(hs.poll_timeout(), None);
}

#[test]
fn transport_failure_while_reading_the_body_reports_the_status() {
    let mut hs = client();
    assert!(
        !hs.transport_failed(),
        "before the head, an I/O error is the error"
    );
    let _ = hs.receive(b"HTTP/1.1 502 Bad Gateway\r\n\r\nupstream di");
    assert!(hs.transport_failed());
    assert_eq!(outcome(&hs), rejected(502, b"upstream di", false));
    // EOF before a Content-Length body ended: incomplete.
    let out = feed(&[b"HTTP/1.1 500 X\r\nContent-Length: 9\r\n\r\nabc"], true);
    assert_eq!(out, rejected(500, b"abc", false));
}

#[test]
fn rfc6455_4_1_a_101_has_no_body_and_hands_over_the_frames() {
    let mut hs = client();
    let key = "BwcHBwcHBwcHBwcHBwcHBw==";
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        rfc6455::handshake::accept_key(key.as_bytes())
    );
    let mut wire = response.into_bytes();
    wire.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    hs.receive(&wire).unwrap();
    let (mut conn, response) = hs.into_connection().unwrap();
    assert!(response.body().is_empty() && response.body_complete());
    assert!(matches!(
        conn.poll_event(),
        Some(rfc6455::Event::Message(m)) if m == rfc6455::Message::from("hi")
    ));
}

// ------------------------------------------------------------------ adapters

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(20);

/// What the scripted server does after reading the request head.
enum Step {
    Write(Vec<u8>),
    /// Writes this byte over and over until the client goes away.
    Flood(u8),
    /// Keeps the connection open until the test ends (the sender is dropped).
    Hold(Receiver<()>),
}

/// A raw server on 127.0.0.1 that reads one request head and plays `script`, then closes.
fn scripted(script: Vec<Step>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        for step in script {
            match step {
                Step::Write(bytes) => {
                    if tcp.write_all(&bytes).is_err() {
                        return;
                    }
                }
                Step::Flood(b) => {
                    let chunk = [b; 4096];
                    while tcp.write_all(&chunk).is_ok() {}
                    return;
                }
                Step::Hold(until) => {
                    let _ = until.recv();
                }
            }
        }
    });
    port
}

/// A `Step::Hold` and the sender whose drop releases it.
fn hold() -> (Step, Sender<()>) {
    let (tx, rx) = mpsc::channel();
    (Step::Hold(rx), tx)
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/")
}

/// Runs `f` on a thread and waits at most `WATCHDOG` for it.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("not done within {WATCHDOG:?}"),
    }
}

/// Connects with the blocking adapter and with the tokio adapter (a fresh server from
/// `script` for each) and returns both rejections, with how long each took.
fn both_adapters(
    config: &Config,
    script: impl Fn() -> (Vec<Step>, Option<Sender<()>>),
) -> [(Box<Response>, Duration); 2] {
    let rejected = |result: Result<(), Error>| match result {
        Err(Error::Rejected(response)) => response,
        other => panic!("expected a rejection, got {other:?}"),
    };
    let (steps, guard) = script();
    let port = scripted(steps);
    let c = config.clone();
    let blocking = bounded(move || {
        let start = Instant::now();
        let request = ClientRequest::new(&url(port)).unwrap();
        let result = rfc6455::sync::connect_with(request, c).map(drop);
        (result, start.elapsed())
    });
    drop(guard);
    let (steps, guard) = script();
    let port = scripted(steps);
    let c = config.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokio = runtime.block_on(async move {
        let start = tokio::time::Instant::now();
        let request = ClientRequest::new(&url(port)).unwrap();
        let result = tokio::time::timeout(WATCHDOG, rfc6455::tokio::connect_with(request, c))
            .await
            .expect("within the watchdog")
            .map(drop);
        (result, start.elapsed())
    });
    drop(guard);
    [
        (rejected(blocking.0), blocking.1),
        (rejected(tokio.0), tokio.1),
    ]
}

#[test]
fn each_status_class_reaches_the_application_through_both_adapters() {
    let config = Config::default();
    let cases: [(&str, u16, &str, &str, &[u8]); 5] = [
        (
            "HTTP/1.1 301 Moved Permanently\r\nLocation: ws://new.example/\r\n\
             Content-Length: 5\r\n\r\nmoved",
            301,
            "location",
            "ws://new.example/",
            b"moved",
        ),
        (
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"chat\"\r\n\
             Transfer-Encoding: chunked\r\n\r\n4\r\nwho?\r\n6\r\n again\r\n0\r\n\r\n",
            401,
            "www-authenticate",
            "Basic realm=\"chat\"",
            b"who? again",
        ),
        (
            "HTTP/1.1 403 Forbidden\r\nX-Reason: origin\r\nContent-Length: 0\r\n\r\n",
            403,
            "x-reason",
            "origin",
            b"",
        ),
        (
            // Close-delimited: the server closes after it (the script ends).
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\n\r\nslow down",
            429,
            "retry-after",
            "120",
            b"slow down",
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\
             Content-Length: 11\r\n\r\nmaintenance",
            503,
            "retry-after",
            "Fri, 31 Dec 1999 23:59:59 GMT",
            b"maintenance",
        ),
    ];
    for (wire, status, header, value, body) in cases {
        let script = || (vec![Step::Write(wire.as_bytes().to_vec())], None);
        for (response, _) in both_adapters(&config, script) {
            assert_eq!(response.status(), status);
            assert_eq!(response.header(header), Some(value), "{status}");
            assert_eq!(response.body(), body, "{status}");
            assert!(response.body_complete(), "{status}");
        }
    }
}

#[test]
fn adapters_cut_the_body_at_the_cap_and_do_not_wait_for_the_rest() {
    // The server announces 1 MiB, sends a little more than the cap, then holds the
    // connection open: the client must answer from the cap, not from the timeout.
    let config = Config::default().handshake_timeout(Duration::from_secs(60));
    let script = || {
        let (step, guard) = hold();
        let mut wire = b"HTTP/1.1 500 Internal\r\nContent-Length: 1048576\r\n\r\n".to_vec();
        wire.extend(std::iter::repeat_n(b'e', MAX_REJECTION_BODY + 10));
        (vec![Step::Write(wire), step], Some(guard))
    };
    for (response, elapsed) in both_adapters(&config, script) {
        assert_eq!(response.status(), 500);
        assert_eq!(response.body(), vec![b'e'; MAX_REJECTION_BODY]);
        assert!(!response.body_complete());
        assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    }
}

#[test]
fn adapters_bound_a_slow_body_by_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let config = Config::default().handshake_timeout(timeout);
    let script = || {
        let (step, guard) = hold();
        let wire = b"HTTP/1.1 503 Busy\r\nContent-Length: 50\r\n\r\nten bytes!".to_vec();
        (vec![Step::Write(wire), step], Some(guard))
    };
    for (response, elapsed) in both_adapters(&config, script) {
        assert_eq!(response.status(), 503);
        assert_eq!(response.body(), b"ten bytes!");
        assert!(!response.body_complete());
        assert!(elapsed >= timeout, "{elapsed:?}");
    }
}

#[test]
fn adapters_survive_a_hostile_content_length() {
    let config = Config::default().handshake_timeout(Duration::from_secs(60));
    let script = || {
        let head = format!(
            "HTTP/1.1 413 Too Large\r\nContent-Length: {}\r\n\r\n",
            u64::MAX
        );
        (
            vec![Step::Write(head.into_bytes()), Step::Flood(b'!')],
            None,
        )
    };
    for (response, _) in both_adapters(&config, script) {
        assert_eq!(response.status(), 413);
        assert_eq!(response.body().len(), MAX_REJECTION_BODY);
        assert!(!response.body_complete());
    }
}

#[test]
fn error_stays_small_with_the_response_boxed() {
    assert!(std::mem::size_of::<Error>() <= 32);
    assert!(std::mem::size_of::<HandshakeError>() <= 24);
    fn is_copy<T: Copy>() {}
    is_copy::<HandshakeError>();
    let response_text = format!(
        "{}",
        both_adapters(&Config::default(), || (
            vec![Step::Write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
            )],
            None
        ))
        .map(|(r, _)| Error::Rejected(r))[0]
    );
    assert_eq!(
        response_text,
        "server rejected the handshake with status 404"
    );
}

#[test]
fn a_tcp_stream_of_our_own_still_gets_the_rejection() {
    // `sync::client` over a caller's stream builds the same error.
    let port = scripted(vec![Step::Write(
        b"HTTP/1.1 418 Teapot\r\nContent-Length: 3\r\n\r\ntea".to_vec(),
    )]);
    let result = bounded(move || {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let request = ClientRequest::new(&url(port)).unwrap();
        rfc6455::sync::client(tcp, request, Config::default()).map(drop)
    });
    match result {
        Err(Error::Rejected(response)) => {
            assert_eq!((response.status(), response.body()), (418, &b"tea"[..]));
        }
        other => panic!("{other:?}"),
    }
}
