//! The blocking adapter over real sockets on 127.0.0.1:0.
//!
//! Our server runs on its own thread and hands results back through a channel; the other end
//! is our client or a hand-written peer on a raw `TcpStream` (to send bad frames, stall, or
//! stay silent, and to read exactly what went over the wire). No test sleeps to synchronise:
//! the threads wait for each other through channels and blocking reads, and `WATCHDOG` (a
//! bounded channel wait, and a read timeout on raw sockets) only turns a hang into a failure.
#![cfg(feature = "std")]

use rfc6455::handshake::{Accept, ClientRequest, OriginPolicy, Reject};
use rfc6455::sync::{self, WebSocket};
use rfc6455::{
    CloseCode, Config, Error, Event, HandshakeError, Message, MessageKind, ProtocolError,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(20);
/// The timeouts of the tests that wait for one to fire.
const SHORT: Duration = Duration::from_millis(300);

// ------------------------------------------------------------------------------ harness

/// Runs `f` on a thread and waits at most `WATCHDOG` for it; a panic inside is re-raised.
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

/// Waits (boundedly) for what a server thread sends.
fn wait<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("the server thread did not report: {e}"))
}

/// Our server on its own thread: accepts one connection with `config`, then hands the
/// handshake's outcome to `body`, whose result comes back through the channel.
fn serve<T: Send + 'static>(
    config: Config,
    body: impl FnOnce(Result<WebSocket<TcpStream>, Error>) -> T + Send + 'static,
) -> (u16, Receiver<T>) {
    serve_with(config, |_| Ok(Accept::new()), body)
}

/// [`serve`] with an `accept_with` callback.
fn serve_with<T: Send + 'static>(
    config: Config,
    callback: impl FnOnce(&rfc6455::handshake::Request) -> Result<Accept, Reject> + Send + 'static,
    body: impl FnOnce(Result<WebSocket<TcpStream>, Error>) -> T + Send + 'static,
) -> (u16, Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let _ = tx.send(body(sync::accept_with(tcp, config, callback)));
    });
    (port, rx)
}

/// A server that echoes every message; reports how its `recv` loop ended.
fn echo_server(config: Config) -> (u16, Receiver<Result<(), Error>>) {
    serve(config, |ws| {
        let mut ws = ws?;
        while let Some(message) = ws.recv()? {
            ws.send(message)?;
        }
        Ok(())
    })
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/")
}

// ------------------------------------------------------------------------------ raw peer

/// A TCP connection to our server whose reads give up after `WATCHDOG`.
fn raw_connect(port: u16) -> TcpStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
    tcp
}

const RAW_REQUEST: &[u8] = b"GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Reads an HTTP head, up to and including the blank line.
fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).unwrap(),
            1,
            "EOF inside the head: {head:?}"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A hand-written client that has completed the opening handshake.
fn raw_client(port: u16) -> TcpStream {
    let mut tcp = raw_connect(port);
    tcp.write_all(RAW_REQUEST).unwrap();
    let head = read_head(&mut tcp);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A masked client frame with FIN set.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 1 << 16 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads one server frame: `(opcode, payload)`, or `None` at end of stream.
fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    match tcp.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("reading a frame: {e}"),
    }
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            tcp.read_exact(&mut ext).unwrap();
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            tcp.read_exact(&mut ext).unwrap();
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    tcp.read_exact(&mut payload).unwrap();
    Some((head[0] & 0x0f, payload))
}

/// Asserts the next frame is a Close with `code`.
fn expect_close(tcp: &mut TcpStream, code: u16) {
    let (opcode, payload) = read_frame(tcp).expect("a close frame, not EOF");
    assert_eq!(
        opcode, 0x8,
        "expected a close frame, got opcode {opcode:#x}"
    );
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
}

/// Asserts the stream ends with no further bytes.
fn expect_eof(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:?}");
}

// ------------------------------------------------------------------------------ messages

#[test]
fn echo_roundtrip_text_binary_1mib_fragments_and_ping() {
    let (port, server) = echo_server(Config::default());
    bounded(move || {
        let (mut ws, response) = sync::connect(url(port)).unwrap();
        assert_eq!(response.status(), 101);

        ws.send_text("hello").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from("hello")));

        let binary: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        ws.send_binary(&binary).unwrap();
        let echoed = ws.recv().unwrap().unwrap();
        assert_eq!(echoed.kind(), MessageKind::Binary);
        assert_eq!(echoed.as_bytes(), &binary[..]);

        // RFC 6455 §5.4: a fragmented message is delivered as one message.
        ws.send_fragment(MessageKind::Text, b"frag-", false)
            .unwrap();
        ws.send_fragment(MessageKind::Text, b"ment-", false)
            .unwrap();
        ws.send_fragment(MessageKind::Text, b"ed", true).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from("frag-ment-ed")));

        // RFC 6455 §5.5.2: the server's core answers the Ping by itself.
        ws.send_ping(b"are you there").unwrap();
        match ws.recv_event().unwrap() {
            Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }

        ws.close(CloseCode::NORMAL, "done").unwrap();
    });
    wait(&server).expect("the echo server ends cleanly");
}

// ------------------------------------------------------------------------------ closing

#[test]
fn rfc6455_7_close_from_client_4000_seen_on_both_ends() {
    let (port, server) = serve(Config::default(), |ws| {
        let mut ws = ws.unwrap();
        let close = match ws.recv_event().unwrap() {
            Some(Event::Close(frame)) => frame,
            other => panic!("server expected the close, got {other:?}"),
        };
        (close, ws.recv().unwrap(), ws.recv().unwrap())
    });
    bounded(move || {
        let (mut ws, _) = sync::connect(url(port)).unwrap();
        ws.send_close(CloseCode(4000), "client-bye").unwrap();
        match ws.recv_event().unwrap() {
            // RFC 6455 §5.5.1: the echo "typically echos the status code it received".
            Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode(4000)),
            other => panic!("client expected the echo, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None, "a clean close ends with None");
        assert_eq!(ws.recv().unwrap(), None, "and keeps ending with None");
        assert!(matches!(
            ws.send_text("late"),
            Err(Error::Usage(rfc6455::UsageError::Closed))
        ));
    });
    let (frame, after, again) = wait(&server);
    assert_eq!(
        (frame.code, frame.reason.as_str()),
        (CloseCode(4000), "client-bye")
    );
    assert_eq!((after, again), (None, None));
}

#[test]
fn rfc6455_7_close_from_server_4000_seen_on_both_ends() {
    let (port, server) = serve(Config::default(), |ws| {
        let mut ws = ws.unwrap();
        ws.send_close(CloseCode(4000), "server-bye").unwrap();
        let echo = match ws.recv_event().unwrap() {
            Some(Event::Close(frame)) => frame,
            other => panic!("server expected the echo, got {other:?}"),
        };
        (echo, ws.recv().unwrap())
    });
    bounded(move || {
        let (mut ws, _) = sync::connect(url(port)).unwrap();
        match ws.recv_event().unwrap() {
            Some(Event::Close(frame)) => {
                assert_eq!(
                    (frame.code, frame.reason.as_str()),
                    (CloseCode(4000), "server-bye")
                );
            }
            other => panic!("client expected the close, got {other:?}"),
        }
        assert_eq!(ws.recv().unwrap(), None, "a clean close ends with None");
    });
    let (echo, after) = wait(&server);
    assert_eq!(echo.code, CloseCode(4000));
    assert_eq!(after, None);
}

#[test]
fn close_waits_for_the_echo_and_returns_ok() {
    let (port, server) = echo_server(Config::default());
    bounded(move || {
        let (mut ws, _) = sync::connect(url(port)).unwrap();
        ws.close(CloseCode(4000), "bye").unwrap();
        assert_eq!(ws.recv().unwrap(), None);
    });
    wait(&server).expect("the echo server sees a clean close");
}

#[test]
fn rfc6455_7_1_5_server_reports_eof_without_close_as_1006() {
    let (port, server) = serve(Config::default(), |ws| ws.unwrap().recv());
    let tcp = raw_client(port);
    drop(tcp);
    match wait(&server) {
        Err(Error::Protocol(e)) => {
            assert_eq!(e, ProtocolError::UnexpectedEof);
            assert_eq!(e.close_code(), CloseCode::ABNORMAL);
            assert_eq!(e.close_code().as_u16(), 1006);
        }
        other => panic!("expected 1006, got {other:?}"),
    }
}

#[test]
fn rfc6455_7_1_5_client_reports_eof_without_close_as_1006() {
    // The server completes the handshake and drops the socket without a Close frame.
    let (port, server) = serve(Config::default(), drop);
    bounded(move || {
        let (mut ws, _) = sync::connect(url(port)).unwrap();
        wait(&server);
        match ws.recv() {
            Err(Error::Protocol(ProtocolError::UnexpectedEof)) => {}
            other => panic!("expected 1006, got {other:?}"),
        }
    });
}

#[test]
fn close_timeout_bounds_close_when_the_peer_never_answers() {
    let config = Config::default().close_timeout(SHORT);
    let (port, server) = serve(config, |ws| {
        let mut ws = ws.unwrap();
        let started = Instant::now();
        let result = ws.close(CloseCode(4000), "bye");
        let took = started.elapsed();
        assert!(ws.connection().is_terminated());
        (result, took)
    });
    let mut tcp = raw_client(port);
    // Read the Close, never answer it; the server gives up and closes TCP.
    expect_close(&mut tcp, 4000);
    expect_eof(&mut tcp);
    let (result, took) = wait(&server);
    assert!(
        matches!(result, Err(Error::Protocol(ProtocolError::CloseTimeout))),
        "an unanswered Close is not a clean close: {result:?}"
    );
    assert!(took >= SHORT, "gave up early, after {took:?}");
    assert!(took < SHORT * 5, "gave up late, after {took:?}");
}

#[test]
fn close_reports_a_peer_that_hangs_up_without_answering() {
    let (port, server) = serve(Config::default(), |ws| {
        let mut ws = ws.unwrap();
        ws.close(CloseCode(4000), "bye")
    });
    let mut tcp = raw_client(port);
    // Read the Close, then hang up without a Close of our own.
    expect_close(&mut tcp, 4000);
    drop(tcp);
    match wait(&server) {
        Err(Error::Protocol(ProtocolError::UnexpectedEof)) => {}
        other => panic!("expected 1006 (EOF without a Close), got {other:?}"),
    }
}

// ------------------------------------------------------------------------------ handshake

#[test]
fn accept_with_callback_sees_the_request_and_shapes_the_response() {
    let (seen_tx, seen_rx) = mpsc::channel();
    let (port, server) = serve_with(
        // The client's Origin names another host: the default policy would answer 403.
        Config::default().origin_policy(OriginPolicy::Any),
        move |request| {
            let offered: Vec<String> = request.protocols().map(str::to_owned).collect();
            let _ = seen_tx.send((
                request.path().to_owned(),
                request.origin().map(str::to_owned),
                request.header("x-custom").map(str::to_owned),
                offered,
            ));
            Ok(Accept::new()
                .protocol("chat.v2")
                .header("X-Server", "rfc6455"))
        },
        |ws| ws.map(|ws| ws.connection().state()),
    );
    bounded(move || {
        let request = ClientRequest::new(&format!("ws://127.0.0.1:{port}/chat?room=1"))
            .unwrap()
            .protocol("chat.v1")
            .protocol("chat.v2")
            .header("Origin", "https://example.com")
            .header("X-Custom", "yes");
        let (_ws, response) = sync::connect_with(request, Config::default()).unwrap();
        assert_eq!(response.protocol(), Some("chat.v2"));
        assert_eq!(response.header("x-server"), Some("rfc6455"));
    });
    let (path, origin, custom, offered) = wait(&seen_rx);
    assert_eq!(path, "/chat?room=1");
    assert_eq!(origin.as_deref(), Some("https://example.com"));
    assert_eq!(custom.as_deref(), Some("yes"));
    assert_eq!(offered, ["chat.v1", "chat.v2"]);
    assert!(wait(&server).is_ok());
}

#[test]
fn accept_with_rejection_403_reaches_the_raw_peer() {
    let (port, server) = serve_with(
        Config::default(),
        |request| match request.origin() {
            Some("https://trusted.example") => Ok(Accept::new()),
            _ => Err(Reject::new(403).body("origin not allowed")),
        },
        |ws| ws.map(drop),
    );
    let mut tcp = raw_connect(port);
    tcp.write_all(RAW_REQUEST).unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.ends_with("origin not allowed"), "{response}");
    assert!(matches!(
        wait(&server),
        Err(Error::Handshake(HandshakeError::Rejected(403)))
    ));
}

#[test]
fn our_client_sees_the_rejection_status() {
    let (port, server) = serve_with(
        Config::default(),
        |_| Err(Reject::new(403)),
        |ws| ws.map(drop),
    );
    let result = bounded(move || sync::connect(url(port)).map(drop));
    match result {
        Err(Error::Rejected(response)) => assert_eq!(response.status(), 403),
        other => panic!("{other:?}"),
    }
    assert!(wait(&server).is_err());
}

#[test]
fn handshake_timeout_drops_a_peer_that_stalls_mid_request() {
    let config = Config::default().handshake_timeout(SHORT);
    let (port, server) = serve(config, |ws| {
        let started = Instant::now();
        (ws.map(drop), started.elapsed())
    });
    let mut tcp = raw_connect(port);
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
        .unwrap();
    // The peer stalls; the server answers 408 and closes.
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    let (result, took) = wait(&server);
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(took < SHORT * 5, "dropped late, after {took:?}");
}

#[test]
fn client_handshake_timeout_bounds_a_silent_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_held_tx, held_rx) = mpsc::channel::<TcpStream>();
    thread::spawn(move || {
        // Accept and say nothing; hold the socket until the test ends.
        let (tcp, _) = listener.accept().unwrap();
        let _ = held_rx.recv();
        drop(tcp);
    });
    let started = Instant::now();
    let result = bounded(move || {
        let request = ClientRequest::new(&url(port)).unwrap();
        sync::connect_with(request, Config::default().handshake_timeout(SHORT)).map(drop)
    });
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(started.elapsed() < SHORT * 5);
}

// ------------------------------------------------------------------------------ failures

#[test]
fn rfc6455_5_2_reserved_opcode_sends_1002_before_the_socket_closes() {
    let config = Config::default().close_timeout(SHORT);
    let (port, server) = serve(config, |ws| ws.unwrap().recv());
    let mut tcp = raw_client(port);
    tcp.write_all(&client_frame(0x3, b"")).unwrap();
    // The Close frame with 1002 arrives first, then the end of the stream.
    expect_close(&mut tcp, 1002);
    expect_eof(&mut tcp);
    match wait(&server) {
        Err(Error::Protocol(e)) => {
            assert_eq!(e, ProtocolError::ReservedOpcode(3));
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
        other => panic!("expected the protocol error, got {other:?}"),
    }
}

#[test]
fn keepalive_pings_a_silent_peer_and_fails_1011_without_a_pong() {
    let config = Config::default()
        .keepalive_interval(Some(SHORT))
        .keepalive_timeout(SHORT)
        .close_timeout(SHORT);
    let (port, server) = serve(config, |ws| ws.unwrap().recv());
    let mut tcp = raw_client(port);

    // The first Ping is answered: the connection stays open and another Ping follows.
    let (opcode, payload) = read_frame(&mut tcp).expect("a keepalive ping");
    assert_eq!(opcode, 0x9, "expected a ping");
    tcp.write_all(&client_frame(0xA, &payload)).unwrap();
    let (opcode, _) = read_frame(&mut tcp).expect("a second keepalive ping");
    assert_eq!(opcode, 0x9, "expected another ping after the pong");

    // This one is not answered: Close 1011, then the end of the stream.
    expect_close(&mut tcp, 1011);
    expect_eof(&mut tcp);
    match wait(&server) {
        Err(Error::Protocol(ProtocolError::KeepaliveTimeout)) => {}
        other => panic!("expected the keepalive timeout, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------ recv_timeout

#[test]
fn recv_timeout_times_out_and_loses_nothing() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (timed_out_tx, timed_out_rx) = mpsc::channel();
    let (port, server) = serve(Config::default(), move |ws| {
        let mut ws = ws.unwrap();
        // Nothing has arrived yet.
        let empty = ws.recv_timeout(SHORT);
        // Half a frame has arrived when `go` comes.
        go_rx.recv().unwrap();
        let half = ws.recv_timeout(SHORT);
        let _ = timed_out_tx.send((empty, half));
        ws.recv_timeout(WATCHDOG)
    });
    let mut tcp = raw_client(port);

    let frame = client_frame(0x1, "split across the timeout".as_bytes());
    let (first, rest) = frame.split_at(9);
    tcp.write_all(first).unwrap();
    go_tx.send(()).unwrap();
    let (empty, half) = wait(&timed_out_rx);
    for result in [empty, half] {
        match result {
            Err(Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    tcp.write_all(rest).unwrap();
    let message = wait(&server).unwrap();
    assert_eq!(message, Some(Message::from("split across the timeout")));
}

#[test]
fn rfc6455_7_recv_event_timeout_times_out_then_delivers_the_peers_close() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (port, server) = serve(Config::default(), move |ws| {
        let mut ws = ws.unwrap();
        go_rx.recv().unwrap();
        ws.close(CloseCode(4001), "after the timeout")
    });
    bounded(move || {
        let (mut ws, _) = sync::connect(url(port)).unwrap();
        match ws.recv_event_timeout(SHORT) {
            Err(Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut),
            other => panic!("expected a timeout, got {other:?}"),
        }
        go_tx.send(()).unwrap();
        match ws.recv_event_timeout(WATCHDOG).unwrap() {
            Some(Event::Close(frame)) => assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode(4001), "after the timeout")
            ),
            other => panic!("expected the server's Close, got {other:?}"),
        }
        assert_eq!(ws.recv_event_timeout(WATCHDOG).unwrap(), None);
    });
    wait(&server).expect("the client answered the server's Close");
}

#[cfg(not(feature = "rustls"))]
#[test]
fn wss_without_the_rustls_feature_is_a_usage_error() {
    match sync::connect("wss://127.0.0.1:1/") {
        Err(Error::Usage(rfc6455::UsageError::InvalidUri(_))) => {}
        other => panic!("expected a usage error, got {:?}", other.map(drop)),
    }
}

// ------------------------------------------------------------------------------ backpressure

/// How a transport refuses a write when the peer never reads.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// A non-blocking socket: `WouldBlock` at once.
    NonBlocking,
    /// A blocking socket with a write timeout: refused once it fires (reported as
    /// `WouldBlock` whatever the platform's error kind).
    WriteTimeout,
}

/// Our server sends 16 KiB messages to a peer that reads nothing until told to. Sends are
/// accepted while the unsent backlog is at most the high-water mark (64 KiB here), then
/// refused with `WouldBlock`; a refused send queues nothing. Once the peer reads, every
/// accepted message arrives exactly once, in order.
fn a_peer_that_never_reads_meets_the_high_water_mark(refusal: Refusal) {
    const HIGH_WATER: usize = 64 * 1024;
    const SIZE: usize = 16 * 1024;
    let config = Config::default().write_buffer_high_water(HIGH_WATER);
    let (refused_tx, refused_rx) = mpsc::channel();
    let (port, server) = serve(config, move |ws| {
        let mut ws = ws.unwrap();
        match refusal {
            Refusal::NonBlocking => ws.get_ref().set_nonblocking(true).unwrap(),
            Refusal::WriteTimeout => ws
                .get_ref()
                .set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap(),
        }
        let mut accepted = 0u32;
        let mut peak = 0;
        // Under load the kernel may still move bytes from our socket's buffer to the peer's
        // after a write timed out, so a flush right after a refusal can succeed; then the
        // buffers were not full yet, and another round of sends fills them. A flush that
        // never fails within a few rounds fails the test.
        let mut rounds = 0;
        let (refused, queued, retried, queued_after_retry) = loop {
            rounds += 1;
            let refused = loop {
                let mut payload = vec![0u8; SIZE];
                payload[..4].copy_from_slice(&accepted.to_be_bytes());
                match ws.send_binary(&payload) {
                    Ok(()) => accepted += 1,
                    Err(Error::Io(e)) => break e.kind(),
                    Err(e) => panic!("expected a refusal, got {e}"),
                }
                peak = peak.max(ws.connection().transmit_len());
                // Loopback buffers hold a few MiB; a send that never refuses would pass this.
                assert!(accepted < 100_000, "sends were never refused");
            };
            let queued = ws.connection().transmit_len();
            // The same call again (the next message in sequence) is refused as well.
            let mut payload = vec![0u8; SIZE];
            payload[..4].copy_from_slice(&accepted.to_be_bytes());
            let retried = ws.send_binary(&payload);
            let queued_after_retry = ws.connection().transmit_len();
            if retried.is_ok() {
                accepted += 1;
            } else if ws.flush().is_err() {
                break (refused, queued, retried, queued_after_retry);
            }
            assert!(rounds < 10, "flush cannot finish while nothing is read");
        };
        refused_tx
            .send((accepted, peak, refused, queued, queued_after_retry))
            .unwrap();
        assert!(
            matches!(&retried, Err(Error::Io(e)) if e.kind() == refused),
            "{retried:?}"
        );
        // The peer reads now: block until everything is out, then mark the end.
        ws.get_ref().set_nonblocking(false).unwrap();
        ws.get_ref().set_write_timeout(None).unwrap();
        ws.flush().unwrap();
        ws.send_text("end").unwrap();
        ws.flush().unwrap();
    });
    let mut tcp = raw_client(port);

    let (accepted, peak, refused, queued, queued_after_retry) = wait(&refused_rx);
    assert_eq!(refused, ErrorKind::WouldBlock);
    assert!(accepted > 0);
    let frame = (SIZE + 4) as u64;
    assert!(
        peak <= HIGH_WATER as u64 + frame,
        "{peak} bytes queued, over the high-water mark plus one message"
    );
    assert!(
        queued > HIGH_WATER as u64,
        "refused below the mark: {queued}"
    );
    assert_eq!(queued_after_retry, queued, "a refused send queued bytes");

    let mut received = Vec::new();
    loop {
        let (opcode, payload) = read_frame(&mut tcp).expect("a frame before EOF");
        match opcode {
            0x2 => {
                assert_eq!(payload.len(), SIZE);
                received.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
            }
            0x1 => {
                assert_eq!(payload, b"end");
                break;
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    assert_eq!(received, (0..accepted).collect::<Vec<_>>());
    wait(&server);
}

#[test]
fn non_blocking_send_is_refused_above_the_high_water_mark() {
    a_peer_that_never_reads_meets_the_high_water_mark(Refusal::NonBlocking);
}

#[test]
fn write_timeout_send_is_refused_above_the_high_water_mark() {
    a_peer_that_never_reads_meets_the_high_water_mark(Refusal::WriteTimeout);
}

// ------------------------------------------------------------------------------ non-blocking

/// Over a non-blocking socket, `recv` with nothing to read returns `WouldBlock` at once (it
/// used to spin until data came), and a frame that arrives in two parts is kept across the
/// `WouldBlock` in between and delivered whole.
#[test]
fn nonblocking_recv_returns_would_block_and_keeps_a_partial_frame() {
    /// Blocks until the socket has bytes to read, then makes it non-blocking again.
    fn wait_readable(tcp: &TcpStream) {
        tcp.set_nonblocking(false).unwrap();
        tcp.peek(&mut [0u8; 1]).unwrap();
        tcp.set_nonblocking(true).unwrap();
    }
    fn kind(r: Result<Option<Message>, Error>) -> Result<Option<Message>, ErrorKind> {
        r.map_err(|e| match e {
            Error::Io(e) => e.kind(),
            other => panic!("expected an I/O error, got {other}"),
        })
    }
    // The peer writes each part only after the server reported on the one before.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (step_tx, step_rx) = mpsc::channel();
    let (port, server) = serve(Config::default(), move |ws| {
        let mut ws = ws.unwrap();
        ws.get_ref().set_nonblocking(true).unwrap();
        step_tx.send(kind(ws.recv())).unwrap(); // nothing sent yet
        go_rx.recv().unwrap(); // half a frame was sent
        wait_readable(ws.get_ref());
        step_tx.send(kind(ws.recv())).unwrap();
        go_rx.recv().unwrap(); // the rest was sent
        wait_readable(ws.get_ref());
        let whole = kind(ws.recv());
        let after = kind(ws.recv());
        (whole, after)
    });
    let mut tcp = raw_client(port);
    let frame = client_frame(0x1, b"hello, non-blocking world");
    let (first, rest) = frame.split_at(9);
    assert_eq!(wait(&step_rx), Err(ErrorKind::WouldBlock), "idle");
    tcp.write_all(first).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(wait(&step_rx), Err(ErrorKind::WouldBlock), "half a frame");
    tcp.write_all(rest).unwrap();
    go_tx.send(()).unwrap();

    let (whole, after) = wait(&server);
    assert_eq!(
        whole,
        Ok(Some(Message::Text("hello, non-blocking world".into())))
    );
    assert_eq!(after, Err(ErrorKind::WouldBlock));
}
