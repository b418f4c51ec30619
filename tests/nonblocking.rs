//! The blocking adapter over a non-blocking socket (issue 18, item 4): `recv` with nothing to
//! read returns `WouldBlock` after exactly one read (it used to treat `WouldBlock` as a read
//! timeout and spin), whatever deadline is armed; the opening handshake refuses such a socket
//! with an error that says why, also after one read. A wrapper transport counts the reads, so
//! a busy loop shows up as a count in the thousands rather than as a slow test.
//!
//! No test sleeps to synchronise: peers are plain `TcpStream`s driven from the test thread,
//! and readability is awaited with a blocking `peek`.
#![cfg(feature = "std")]

use rfc6455::handshake::ClientRequest;
use rfc6455::sync::{self, Transport, WebSocket};
use rfc6455::{Config, Error, Message};
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Turns a hang into a failure on the raw peers' reads; never used to wait for an event.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Reads after which [`Counted`] fails every read: the adapter is spinning.
const BUSY_LOOP: usize = 1000;

/// A `TcpStream` that counts the adapter's `read` calls.
struct Counted {
    tcp: TcpStream,
    reads: Arc<AtomicUsize>,
}

impl Counted {
    fn new(tcp: TcpStream) -> (Self, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = Self {
            tcp,
            reads: Arc::clone(&reads),
        };
        (counted, reads)
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A spinning adapter would never return: stop it with an error the test reports.
        if self.reads.fetch_add(1, Ordering::SeqCst) >= BUSY_LOOP {
            return Err(io::Error::other("busy loop: the adapter keeps reading"));
        }
        self.tcp.read(buf)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl Transport for Counted {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_read_timeout(&mut self.tcp, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        Transport::set_write_timeout(&mut self.tcp, timeout)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Write)
    }
}

/// A connected pair of loopback sockets: (accepted, connected).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(WATCHDOG)).unwrap();
    (server, client)
}

/// Our server, its handshake done over a blocking socket, then switched to non-blocking;
/// plus the raw client socket and the server's read counter.
fn nonblocking_server(config: Config) -> (WebSocket<Counted>, TcpStream, Arc<AtomicUsize>) {
    let (server, mut client) = tcp_pair();
    let (counted, reads) = Counted::new(server);
    let peer = thread::spawn(move || {
        client
            .write_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        client
    });
    let ws = sync::accept_with(counted, config, |_| Ok(rfc6455::handshake::Accept::new()))
        .expect("the handshake over a blocking socket");
    let client = peer.join().unwrap();
    ws.get_ref().tcp.set_nonblocking(true).unwrap();
    reads.store(0, Ordering::SeqCst);
    (ws, client, reads)
}

/// A masked client frame (RFC 6455 §5.3: a client MUST mask), FIN set.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Blocks until the socket has bytes to read, then makes it non-blocking again.
fn wait_readable(tcp: &TcpStream) {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
    tcp.peek(&mut [0u8; 1]).unwrap();
    tcp.set_nonblocking(true).unwrap();
}

fn io_kind<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorKind {
    match result {
        Err(Error::Io(e)) => e.kind(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// The timers a blocking `recv` may have armed: none, keepalive, or keepalive plus the
/// caller's own `recv_timeout`. None of them may turn `WouldBlock` into a retry.
#[derive(Clone, Copy, Debug)]
enum Deadline {
    None,
    Keepalive,
    KeepaliveAndCaller,
}

fn recv_once(ws: &mut WebSocket<Counted>, deadline: Deadline) -> Result<Option<Message>, Error> {
    match deadline {
        Deadline::KeepaliveAndCaller => ws.recv_timeout(Duration::from_secs(30)),
        Deadline::None | Deadline::Keepalive => ws.recv(),
    }
}

fn config_for(deadline: Deadline) -> Config {
    match deadline {
        Deadline::None => Config::default(),
        Deadline::Keepalive | Deadline::KeepaliveAndCaller => {
            Config::default().keepalive_interval(Some(Duration::from_secs(30)))
        }
    }
}

/// Nothing to read: `WouldBlock` after one read; a frame in two parts: one read per part and
/// one more that would block, the partial frame kept across the `WouldBlock`.
fn recv_reads_once_per_wake(deadline: Deadline) {
    let (mut ws, mut client, reads) = nonblocking_server(config_for(deadline));

    assert_eq!(io_kind(recv_once(&mut ws, deadline)), ErrorKind::WouldBlock);
    assert_eq!(
        reads.swap(0, Ordering::SeqCst),
        1,
        "reads with nothing to read"
    );

    let frame = client_frame(0x1, b"one read per wake");
    let (first, rest) = frame.split_at(5);
    client.write_all(first).unwrap();
    wait_readable(&ws.get_ref().tcp);
    assert_eq!(io_kind(recv_once(&mut ws, deadline)), ErrorKind::WouldBlock);
    assert_eq!(
        reads.swap(0, Ordering::SeqCst),
        2,
        "reads for half a frame: the data, then one that would block"
    );

    client.write_all(rest).unwrap();
    wait_readable(&ws.get_ref().tcp);
    assert_eq!(
        recv_once(&mut ws, deadline).unwrap(),
        Some(Message::Text("one read per wake".into()))
    );
    assert_eq!(reads.swap(0, Ordering::SeqCst), 1, "reads for the rest");

    assert_eq!(io_kind(recv_once(&mut ws, deadline)), ErrorKind::WouldBlock);
    assert_eq!(reads.load(Ordering::SeqCst), 1, "reads after the message");
}

#[test]
fn nonblocking_recv_would_block_after_one_read() {
    recv_reads_once_per_wake(Deadline::None);
}

#[test]
fn nonblocking_recv_would_block_after_one_read_with_keepalive_armed() {
    recv_reads_once_per_wake(Deadline::Keepalive);
}

#[test]
fn nonblocking_recv_timeout_would_block_after_one_read_not_at_its_deadline() {
    recv_reads_once_per_wake(Deadline::KeepaliveAndCaller);
}

/// The error a handshake over a non-blocking socket must give: `WouldBlock`, saying why.
fn assert_needs_blocking(result: Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
            assert!(
                e.to_string().contains("needs a blocking transport"),
                "unclear error: {e}"
            );
        }
        other => panic!("expected the blocking-transport error, got {other:?}"),
    }
}

/// The client's handshake over a non-blocking socket to a server that has not answered yet:
/// the request is written, one read would block, and the handshake fails at once.
#[test]
fn client_handshake_refuses_a_nonblocking_transport_after_one_read() {
    let (mut server, client) = tcp_pair();
    client.set_nonblocking(true).unwrap();
    let (counted, reads) = Counted::new(client);
    let request = ClientRequest::new("ws://127.0.0.1/").unwrap();
    assert_needs_blocking(sync::client(counted, request, Config::default()).map(|(_, r)| r));
    assert_eq!(reads.load(Ordering::SeqCst), 1, "reads before giving up");
    // The request went out whole before the read.
    server.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        server.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"GET / HTTP/1.1\r\n"));
}

/// The server's handshake over a non-blocking socket: nothing has arrived, one read would
/// block, and `accept` fails at once instead of spinning until the request comes.
#[test]
fn server_handshake_refuses_a_nonblocking_transport_after_one_read() {
    let (server, _client) = tcp_pair();
    server.set_nonblocking(true).unwrap();
    let (counted, reads) = Counted::new(server);
    assert_needs_blocking(sync::accept(counted).map(|_| ()));
    assert_eq!(reads.load(Ordering::SeqCst), 1, "reads before giving up");
}

/// Half a request already arrived: the server reads it, then one read would block, and the
/// handshake fails (it cannot be resumed, so it must not pretend to wait).
#[test]
fn server_handshake_refuses_a_nonblocking_transport_mid_request() {
    let (server, mut client) = tcp_pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    wait_readable(&server);
    let (counted, reads) = Counted::new(server);
    assert_needs_blocking(sync::accept(counted).map(|_| ()));
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "the half request, then one more"
    );
}
