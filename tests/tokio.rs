//! The tokio adapter over real sockets (127.0.0.1:0) and in-memory duplex pipes.
//!
//! No test sleeps to synchronise: tasks hand each other results through channels and join
//! handles. Timer tests run on tokio's paused clock where the peer's behaviour makes that sound
//! (a silent peer, or an in-memory pipe); `WATCHDOG` only turns a hang into a failure.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use rfc6455::handshake::{Accept, ClientRequest, Reject};
use rfc6455::tokio::{self as ws, WebSocket};
use rfc6455::{
    CloseCode, Config, Error, Event, HandshakeError, Message, MessageKind, ProtocolError, Role,
};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, timeout};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(20);

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

/// A server that echoes every message of one connection; yields how `recv` ended.
async fn echo_server(config: Config) -> (String, tokio::task::JoinHandle<Result<(), Error>>) {
    let (listener, url) = listen().await;
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let mut ws = ws::accept_with(stream, config, |_| Ok(Accept::new())).await?;
        while let Some(message) = ws.recv().await? {
            ws.send(message).await?;
        }
        Ok(())
    });
    (url, task)
}

async fn connect(url: &str) -> WebSocket<ws::MaybeTlsStream> {
    ws::connect(url).await.unwrap().0
}

/// A masked client frame (FIN set), as a hand-written peer sends it.
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

/// Reads one unmasked (server) frame: `(opcode, payload)`, or `None` at end of stream.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await.ok()?;
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            r.read_exact(&mut ext).await.unwrap();
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            r.read_exact(&mut ext).await.unwrap();
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    r.read_exact(&mut payload).await.unwrap();
    Some((head[0] & 0x0f, payload))
}

/// Asserts the next frame is a Close with `code`.
async fn expect_close<R: AsyncRead + Unpin>(r: &mut R, code: u16) {
    let (opcode, payload) = read_frame(r).await.expect("a close frame");
    assert_eq!(
        opcode, 0x8,
        "expected a close frame, got opcode {opcode:#x}"
    );
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
}

/// Asserts the stream ends (ignoring nothing: any byte is a failure).
async fn expect_eof<R: AsyncRead + Unpin>(r: &mut R) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:?}");
}

/// A hand-written client: sends the opening handshake and reads the 101 head.
async fn raw_client(url_addr: &TcpListener) -> (TcpStream, TcpStream) {
    let mut client = TcpStream::connect(url_addr.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = url_addr.accept().await.unwrap();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    (client, server)
}

async fn read_response_head(client: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(client.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap()
}

/// A server WebSocket with a hand-written client on the other end of a real socket.
async fn server_with_raw_client(config: Config) -> (WebSocket<TcpStream>, TcpStream) {
    let (listener, _) = listen().await;
    let (mut client, server) = raw_client(&listener).await;
    let (ws, head) = tokio::join!(
        ws::accept_with(server, config, |_| Ok(Accept::new())),
        read_response_head(&mut client)
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (ws.unwrap(), client)
}

fn pair(
    server: Config,
    client: Config,
    buffer: usize,
) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(buffer);
    (
        WebSocket::from_upgraded(a, Role::Server, server, &[]),
        WebSocket::from_upgraded(b, Role::Client, client, &[]),
    )
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

async fn sink_send<K: Sink<Message> + Unpin>(
    sink: &mut K,
    message: Message,
) -> Result<(), K::Error> {
    poll_fn(|cx| Pin::new(&mut *sink).poll_ready(cx)).await?;
    Pin::new(&mut *sink).start_send(message)?;
    poll_fn(|cx| Pin::new(&mut *sink).poll_flush(cx)).await
}

// ------------------------------------------------------------------ messages

#[tokio::test]
async fn echo_roundtrip_text_and_binary_1mib() {
    let (url, server) = echo_server(Config::default()).await;
    let mut client = connect(&url).await;
    let text: String = (0..1 << 20)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let binary: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();

    client.send_text("hello").await.unwrap();
    assert_eq!(client.recv().await.unwrap(), Some(Message::from("hello")));
    client.send_text(&text).await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap().as_bytes(),
        text.as_bytes()
    );
    client.send_binary(&binary).await.unwrap();
    let echoed = client.recv().await.unwrap().unwrap();
    assert_eq!(echoed.kind(), MessageKind::Binary);
    assert_eq!(echoed.as_bytes(), &binary[..]);
    client.send(Bytes::from(binary.clone())).await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap().as_bytes(),
        &binary[..]
    );

    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(client.connection().is_closed());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn rfc6455_5_4_fragmented_send_arrives_as_one_message() {
    let (url, server) = echo_server(Config::default()).await;
    let mut client = connect(&url).await;
    client
        .send_fragment(MessageKind::Text, "hél".as_bytes()[..2].as_ref(), false)
        .await
        .unwrap();
    // A control frame may sit between fragments (RFC 6455 §5.4).
    client.send_ping(b"between").await.unwrap();
    client
        .send_fragment(MessageKind::Text, "hél".as_bytes()[2..].as_ref(), false)
        .await
        .unwrap();
    client
        .send_fragment(MessageKind::Text, b"lo", true)
        .await
        .unwrap();
    assert_eq!(client.recv().await.unwrap(), Some(Message::from("héllo")));
    // A whole message while a fragmented one is open is refused, nothing queued.
    client
        .send_fragment(MessageKind::Binary, &[1, 2], false)
        .await
        .unwrap();
    assert!(matches!(client.send_text("no").await, Err(Error::Usage(_))));
    client
        .send_fragment(MessageKind::Binary, &[3], true)
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.unwrap(),
        Some(Message::from(vec![1, 2, 3]))
    );
    client.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn rfc6455_5_5_2_ping_is_answered_with_pong() {
    let (url, server) = echo_server(Config::default()).await;
    let mut client = connect(&url).await;
    client.send_ping(b"are you there").await.unwrap();
    match client.recv_event().await.unwrap() {
        Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert!(matches!(
        client.send_ping(&[0; 126]).await,
        Err(Error::Usage(_))
    ));
    client.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn stream_and_sink_roundtrip() {
    let (url, server) = echo_server(Config::default()).await;
    let mut client = connect(&url).await;
    for i in 0..10 {
        sink_send(&mut client, Message::from(format!("item {i}")))
            .await
            .unwrap();
    }
    for i in 0..10 {
        let message = next(&mut client).await.unwrap().unwrap();
        assert_eq!(message, Message::from(format!("item {i}")));
    }
    poll_fn(|cx| Pin::new(&mut client).poll_close(cx))
        .await
        .unwrap();
    assert!(
        next(&mut client).await.is_none(),
        "the stream ends after the close"
    );
    assert!(next(&mut client).await.is_none(), "and stays ended");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn stream_yields_an_error_once_then_ends() {
    let (mut server, client) = pair(Config::default(), Config::default(), 1024);
    drop(client);
    match next(&mut server).await {
        Some(Err(Error::Protocol(ProtocolError::UnexpectedEof))) => {}
        other => panic!("expected 1006, got {other:?}"),
    }
    assert!(next(&mut server).await.is_none());
    // `recv` keeps reporting the sticky error.
    assert!(matches!(
        server.recv().await,
        Err(Error::Protocol(ProtocolError::UnexpectedEof))
    ));
}

// ------------------------------------------------------------------ closing

#[tokio::test]
async fn rfc6455_7_close_from_client_4000_seen_on_both_ends() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        let event = ws.recv_event().await.unwrap();
        let next = ws.recv_event().await.unwrap();
        (event, next)
    });
    let (read, mut write) = connect(&url).await.split();
    let mut read = read;
    write
        .send_close(CloseCode(4000), "client done")
        .await
        .unwrap();
    // The initiator sees the peer's echo, which carries the same code.
    match read.recv_event().await.unwrap() {
        Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode(4000)),
        other => panic!("expected the echo, got {other:?}"),
    }
    assert!(read.recv_event().await.unwrap().is_none());
    let (event, next) = server.await.unwrap();
    match event {
        Some(Event::Close(frame)) => {
            assert_eq!(frame.code, CloseCode(4000));
            assert_eq!(frame.reason.as_str(), "client done");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(next.is_none(), "recv returns Ok(None) after a clean close");
}

#[tokio::test]
async fn rfc6455_7_close_from_server_4000_seen_on_both_ends() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        ws.close(CloseCode(4000), "server done").await.unwrap();
        assert!(ws.connection().is_closed());
        assert!(
            ws.recv().await.unwrap().is_none(),
            "recv after close stays Ok(None)"
        );
    });
    let mut client = connect(&url).await;
    match client.recv_event().await.unwrap() {
        Some(Event::Close(frame)) => {
            assert_eq!(frame.code, CloseCode(4000));
            assert_eq!(frame.reason.as_str(), "server done");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(client.recv().await.unwrap().is_none());
    assert!(matches!(
        client.send_text("late").await,
        Err(Error::Usage(_))
    ));
    server.await.unwrap();
}

#[tokio::test]
async fn rfc6455_7_1_5_eof_without_close_is_1006() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        ws.recv().await
    });
    let client = connect(&url).await;
    drop(client);
    match server.await.unwrap() {
        Err(Error::Protocol(e)) => {
            assert_eq!(e, ProtocolError::UnexpectedEof);
            assert_eq!(e.close_code().as_u16(), 1006);
        }
        other => panic!("expected 1006, got {other:?}"),
    }
}

#[tokio::test]
async fn rfc6455_5_1_protocol_error_sends_1002_before_the_socket_closes() {
    let (mut server, mut peer) = server_with_raw_client(Config::default()).await;
    let server = tokio::spawn(async move { server.recv().await });
    // An unmasked frame from a client (RFC 6455 §5.1).
    peer.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    expect_close(&mut peer, 1002).await;
    expect_eof(&mut peer).await;
    drop(peer);
    match server.await.unwrap() {
        Err(Error::Protocol(e)) => assert_eq!(e.close_code().as_u16(), 1002),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn close_timeout_bounds_close_when_the_peer_never_answers() {
    let close_timeout = Duration::from_secs(3);
    let (mut server, mut peer) =
        server_with_raw_client(Config::default().close_timeout(close_timeout)).await;
    let start = Instant::now();
    let result = timeout(WATCHDOG, server.close(CloseCode(4000), "bye"))
        .await
        .unwrap();
    assert!(
        matches!(result, Err(Error::Protocol(ProtocolError::CloseTimeout))),
        "an unanswered Close is not a clean close: {result:?}"
    );
    assert!(
        start.elapsed() >= close_timeout,
        "gave up after {:?}",
        start.elapsed()
    );
    assert!(server.connection().is_terminated());
    // The peer got our Close, then the end of the stream; it never answered.
    expect_close(&mut peer, 4000).await;
    expect_eof(&mut peer).await;
}

/// A server over an in-memory stream, and the raw peer end (paused-clock tests: with a real
/// socket, tokio's auto-advance can run the clock past a read that is about to be ready).
fn server_with_raw_peer(config: Config) -> (WebSocket<DuplexStream>, DuplexStream) {
    let (ours, peer) = tokio::io::duplex(64 << 10);
    (
        WebSocket::from_upgraded(ours, Role::Server, config, &[]),
        peer,
    )
}

/// The close timeout under test in the two tests below.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A server reads `first` (which starts with the text message "hi"), sits idle for 60 s, is
/// sent `later`, and receives once more: returns that result, how long the last receive took
/// and the peer's end.
async fn recv_after_a_long_idle(
    first: &[u8],
    later: &[u8],
) -> (Result<Option<Message>, Error>, Duration, DuplexStream) {
    let (mut server, mut peer) =
        server_with_raw_peer(Config::default().close_timeout(CLOSE_TIMEOUT));
    peer.write_all(first).await.unwrap();
    let hi = timeout(WATCHDOG, server.recv()).await.unwrap().unwrap();
    assert_eq!(hi, Some(Message::from("hi")));
    tokio::time::advance(Duration::from_secs(60)).await;
    peer.write_all(later).await.unwrap();
    let start = Instant::now();
    let end = timeout(WATCHDOG, server.recv()).await.unwrap();
    (end, start.elapsed(), peer)
}

/// The close timeout counts from when the closing starts, however long the connection sat
/// idle before: the adapter skips the clock while no timer is armed, and must read it again
/// once a Close or an error is about to be taken.
#[tokio::test(start_paused = true)]
async fn close_timeout_counts_from_the_peers_close_after_a_long_idle() {
    // The peer closes but never ends its stream: the server waits out the close timeout.
    let close = client_frame(0x8, &1000u16.to_be_bytes());
    let (end, took, mut peer) = recv_after_a_long_idle(&client_frame(0x1, b"hi"), &close).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert!(took >= CLOSE_TIMEOUT, "gave up after {took:?}");
    expect_close(&mut peer, 1000).await;
}

#[tokio::test(start_paused = true)]
async fn close_timeout_counts_from_a_deferred_error_after_a_long_idle() {
    // A message, then an unmasked frame (RFC 6455 §5.1) in the same write: the error waits
    // behind the message.
    let mut wire = client_frame(0x1, b"hi");
    wire.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let (end, took, mut peer) = recv_after_a_long_idle(&wire, &[]).await;
    assert!(matches!(end, Err(Error::Protocol(_))), "{end:?}");
    assert!(took >= CLOSE_TIMEOUT, "gave up after {took:?}");
    expect_close(&mut peer, 1002).await;
}

// ------------------------------------------------------------------ handshake

#[tokio::test(start_paused = true)]
async fn handshake_timeout_drops_a_stalled_peer() {
    let (listener, _) = listen().await;
    let mut peer = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    peer.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs")
        .await
        .unwrap();
    let config = Config::default().handshake_timeout(Duration::from_millis(500));
    let start = Instant::now();
    let result = timeout(
        WATCHDOG,
        ws::accept_with(stream, config, |_| Ok(Accept::new())),
    )
    .await
    .unwrap();
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(500));
    // The stalled peer is told (408) and dropped.
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).await.unwrap();
    assert!(
        rest.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn rejected_handshake_reports_the_status_on_both_ends() {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let stream = listener.accept().await.unwrap().0;
        ws::accept_with(stream, Config::default(), |request| {
            assert_eq!(request.path(), "/private");
            Err(Reject::new(403))
        })
        .await
    });
    let request = ClientRequest::new(&format!("{url}private")).unwrap();
    let client = ws::connect_with(request, Config::default()).await;
    match client {
        Err(Error::Rejected(response)) => assert_eq!(response.status(), 403),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Handshake(HandshakeError::Rejected(403)))
    ));
}

#[tokio::test]
async fn from_upgraded_feeds_the_leftover_bytes_first() {
    let (a, mut b) = tokio::io::duplex(1024);
    let mut leftover = client_frame(0x1, b"already read");
    let second = client_frame(0x1, b"from the stream");
    leftover.extend_from_slice(&second[..3]);
    let mut server = WebSocket::from_upgraded(a, Role::Server, Config::default(), &leftover);
    b.write_all(&second[3..]).await.unwrap();
    assert_eq!(
        server.recv().await.unwrap(),
        Some(Message::from("already read"))
    );
    assert_eq!(
        server.recv().await.unwrap(),
        Some(Message::from("from the stream"))
    );
}

// ------------------------------------------------------------------ split

#[tokio::test]
async fn split_halves_run_in_two_tasks_and_reunite() {
    let (url, server) = echo_server(Config::default()).await;
    let (mut read, mut write) = connect(&url).await.split();
    const N: usize = 200;
    let (all_echoed, echoed) = oneshot::channel();
    let writer = tokio::spawn(async move {
        for i in 0..N {
            write.send_text(&format!("message {i}")).await.unwrap();
        }
        // The echo server cannot answer messages that arrive after our Close; wait for all.
        echoed.await.unwrap();
        write.send_close(CloseCode::NORMAL, "").await.unwrap();
        write
    });
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut all_echoed = Some(all_echoed);
        while let Some(message) = read.recv().await.unwrap() {
            seen.push(message);
            if seen.len() == N {
                all_echoed.take().unwrap().send(()).unwrap();
            }
        }
        (seen, read)
    });
    let (seen, read) = timeout(WATCHDOG, reader).await.unwrap().unwrap();
    let write = writer.await.unwrap();
    assert_eq!(seen.len(), N);
    for (i, message) in seen.iter().enumerate() {
        assert_eq!(*message, Message::from(format!("message {i}")));
    }
    server.await.unwrap().unwrap();

    assert!(read.is_pair_of(&write));
    let ws = read.reunite(write).unwrap();
    assert!(ws.connection().is_closed());

    // Halves of different WebSockets are handed back.
    let (a, _) = pair(Config::default(), Config::default(), 64).0.split();
    let (_, b) = pair(Config::default(), Config::default(), 64).0.split();
    let err = a.reunite(b).unwrap_err();
    assert!(!err.0.is_pair_of(&err.1));
}

#[tokio::test]
async fn split_reader_answers_ping_while_the_writer_half_is_idle() {
    let (listener, url) = listen().await;
    let (release, released) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        let (mut read, write) = ws.split();
        // The writer half exists, held by an idle task that never writes.
        let idle = tokio::spawn(async move {
            released.await.unwrap();
            write
        });
        let mut pings = 0;
        while let Some(event) = read.recv_event().await.unwrap() {
            if matches!(event, Event::Ping(_)) {
                pings += 1;
            }
        }
        drop(idle.await.unwrap());
        pings
    });
    let mut client = connect(&url).await;
    for i in 0..3u8 {
        client.send_ping(&[i]).await.unwrap();
        match timeout(WATCHDOG, client.recv_event())
            .await
            .unwrap()
            .unwrap()
        {
            Some(Event::Pong(payload)) => assert_eq!(&payload[..], &[i]),
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    release.send(()).unwrap();
    client.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(server.await.unwrap(), 3);
}

/// A stream that announces when a write would block.
struct Observed<S> {
    inner: S,
    write_blocked: Arc<Notify>,
    blocked_once: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Observed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Observed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if poll.is_pending() && !self.blocked_once.swap(true, Ordering::SeqCst) {
            self.write_blocked.notify_one();
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn split_reader_answers_ping_while_the_writer_is_blocked() {
    let (listener, _) = listen().await;
    let (mut peer, stream) = raw_client(&listener).await;
    let write_blocked = Arc::new(Notify::new());
    let stream = Observed {
        inner: stream,
        write_blocked: write_blocked.clone(),
        blocked_once: Arc::default(),
    };
    let (server, head) = tokio::join!(ws::accept(stream), read_response_head(&mut peer));
    assert!(head.starts_with("HTTP/1.1 101"));
    let (mut read, mut write) = server.unwrap().split();

    // The writer sends more than the socket buffers hold to a peer that is not reading yet.
    let big = vec![0x5a; 32 << 20];
    let writer = tokio::spawn(async move {
        write.send_binary(&big).await.unwrap();
        write.send_text("after").await.unwrap();
        write
    });
    let reader = tokio::spawn(async move {
        let event = read.recv_event().await.unwrap();
        (event, read)
    });
    timeout(WATCHDOG, write_blocked.notified()).await.unwrap();

    // The writer is parked on write readiness; the reader must get the Pong queued without
    // stealing the writer's registration.
    peer.write_all(&client_frame(0x9, b"ping while blocked"))
        .await
        .unwrap();
    let (event, read) = timeout(WATCHDOG, reader).await.unwrap().unwrap();
    assert_eq!(
        event,
        Some(Event::Ping(Bytes::from_static(b"ping while blocked")))
    );

    // Now the peer reads: the big message, then the Pong, then the writer's next message.
    // (Sent as two frames: `max_send_frame_size` is 16 MiB.)
    let (opcode, payload) = timeout(WATCHDOG, read_frame(&mut peer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((opcode, payload.len()), (0x2, 16 << 20));
    let (opcode, payload) = read_frame(&mut peer).await.unwrap();
    assert_eq!((opcode, payload.len()), (0x0, 16 << 20));
    let (opcode, payload) = read_frame(&mut peer).await.unwrap();
    assert_eq!((opcode, &payload[..]), (0xA, &b"ping while blocked"[..]));
    let (opcode, payload) = read_frame(&mut peer).await.unwrap();
    assert_eq!((opcode, &payload[..]), (0x1, &b"after"[..]));
    // The writer was not starved: it finished.
    let write = timeout(WATCHDOG, writer).await.unwrap().unwrap();
    drop((read, write));
}

// ------------------------------------------------------------------ cancel safety

#[tokio::test]
async fn recv_dropped_mid_message_loses_and_duplicates_nothing() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut server = WebSocket::from_upgraded(a, Role::Server, Config::default(), &[]);
    let mut wire = Vec::new();
    for i in 0..50 {
        wire.extend(client_frame(0x1, format!("message {i}").as_bytes()));
        if i % 7 == 0 {
            wire.extend(client_frame(0x9, b"p"));
        }
    }
    let mut got = Vec::new();
    // Three bytes at a time: most polls read part of a frame and return Pending; each such
    // future is dropped and a new one started.
    for chunk in wire.chunks(3) {
        b.write_all(chunk).await.unwrap();
        loop {
            let mut fut = std::pin::pin!(server.recv());
            match fut.as_mut().poll(&mut noop_cx()) {
                Poll::Ready(message) => got.push(message.unwrap().unwrap()),
                Poll::Pending => break,
            }
        }
    }
    let expected: Vec<Message> = (0..50)
        .map(|i| Message::from(format!("message {i}")))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn recv_cancelled_by_select_loses_and_duplicates_nothing() {
    const N: usize = 300;
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let mut ws = ws::accept(listener.accept().await.unwrap().0)
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut cancelled = 0;
        let mut ticks = tokio::time::interval(Duration::from_micros(200));
        loop {
            tokio::select! {
                message = ws.recv() => match message.unwrap() {
                    Some(message) => got.push(message),
                    None => break,
                },
                _ = ticks.tick() => cancelled += 1,
            }
        }
        (got, cancelled)
    });
    let mut client = connect(&url).await;
    for i in 0..N {
        // Large enough that a message often spans several reads.
        let body = format!("{i:>8}").repeat(2000);
        client.send_text(&body).await.unwrap();
    }
    client.close(CloseCode::NORMAL, "").await.unwrap();
    let (got, cancelled) = timeout(WATCHDOG, server).await.unwrap().unwrap();
    assert_eq!(got.len(), N);
    for (i, message) in got.iter().enumerate() {
        assert_eq!(*message, Message::from(format!("{i:>8}").repeat(2000)));
    }
    assert!(
        cancelled > 0,
        "the timer never won a race; the test proved nothing"
    );
}

#[tokio::test]
async fn send_dropped_after_first_poll_is_sent_exactly_once() {
    let (mut server, mut client) = pair(Config::default(), Config::default(), 1024);
    let big = vec![9u8; 64 << 10];
    {
        // A future that is never polled queues nothing.
        let _unpolled = server.send_text("never");
    }
    assert_eq!(server.connection().transmit_len(), 0);
    {
        let mut fut = std::pin::pin!(server.send_binary(&big));
        assert!(
            fut.as_mut().poll(&mut noop_cx()).is_pending(),
            "the pipe holds 1 KiB"
        );
    }
    let queued = server.connection().transmit_len();
    assert!(queued > 0 && queued < big.len() as u64 + 14, "{queued}");
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(message) = client.recv().await.unwrap() {
            got.push(message);
        }
        got
    });
    // The next send writes the rest of the dropped one first.
    server.send_text("next").await.unwrap();
    server.close(CloseCode::NORMAL, "").await.unwrap();
    let got = timeout(WATCHDOG, reader).await.unwrap().unwrap();
    assert_eq!(got, vec![Message::from(big), Message::from("next")]);
}

// ------------------------------------------------------------------ back-pressure

#[tokio::test]
async fn sink_poll_ready_holds_the_queue_under_the_high_water_mark() {
    let high_water = 64 << 10;
    let message = Message::from(vec![7u8; 8 << 10]);
    let frame = message.len() as u64 + 4;
    let server_config = Config::default().write_buffer_high_water(high_water);
    // The peer end exists but never reads: the pipe holds 4 KiB.
    let (mut server, client) = pair(server_config, Config::default(), 4096);
    let mut cx = noop_cx();
    let mut sent = 0;
    while Pin::new(&mut server).poll_ready(&mut cx).is_ready() {
        Pin::new(&mut server).start_send(message.clone()).unwrap();
        sent += 1;
        let queued = server.connection().transmit_len();
        assert!(queued <= high_water as u64 + frame, "{queued} bytes queued");
        assert!(sent < 1000, "poll_ready never pushed back");
    }
    assert!(
        sent >= (high_water as u64 / frame) as usize,
        "pushed back early, after {sent}"
    );
    // It stays pending while the peer does not read.
    for _ in 0..3 {
        assert!(Pin::new(&mut server).poll_ready(&mut cx).is_pending());
        assert!(server.connection().transmit_len() <= high_water as u64 + frame);
    }

    // Once the peer reads, everything arrives, in order and once.
    let mut client = client;
    let reader = tokio::spawn(async move {
        let mut count = 0;
        while let Some(m) = client.recv().await.unwrap() {
            assert_eq!(m.len(), 8 << 10);
            count += 1;
        }
        count
    });
    for _ in 0..20 {
        sink_send(&mut server, message.clone()).await.unwrap();
    }
    server.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(timeout(WATCHDOG, reader).await.unwrap().unwrap(), sent + 20);
}

// ------------------------------------------------------------------ keepalive

#[tokio::test(start_paused = true)]
async fn keepalive_wakes_recv_without_incoming_bytes_and_pong_keeps_it_open() {
    let interval = Duration::from_secs(30);
    let config = Config::default()
        .keepalive_interval(Some(interval))
        .keepalive_timeout(Duration::from_secs(10));
    let (mut server, mut client) = pair(config, Config::default(), 1 << 16);
    // The client only reads (answering Pings automatically) until the close.
    let client = tokio::spawn(async move { client.recv().await });
    let start = Instant::now();
    for round in 1..=3u32 {
        match timeout(WATCHDOG * 10, server.recv_event())
            .await
            .unwrap()
            .unwrap()
        {
            Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"keepalive"),
            other => panic!("expected the keepalive pong, got {other:?}"),
        }
        assert!(
            start.elapsed() >= interval * round,
            "round {round} at {:?}",
            start.elapsed()
        );
    }
    server.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(client.await.unwrap().unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn keepalive_late_pong_fails_with_1011_over_memory_pipe() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(30)))
        .keepalive_timeout(Duration::from_secs(10));
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let mut server = WebSocket::from_upgraded(a, Role::Server, config, &[]);
    // A peer that reads but never answers.
    let peer = tokio::spawn(async move {
        let ping = read_frame(&mut b).await.unwrap();
        expect_close(&mut b, 1011).await;
        expect_eof(&mut b).await;
        ping
    });
    let start = Instant::now();
    let result = timeout(WATCHDOG * 10, server.recv()).await.unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Protocol(ProtocolError::KeepaliveTimeout))
        ),
        "{result:?}"
    );
    assert!(start.elapsed() >= Duration::from_secs(40));
    assert_eq!(peer.await.unwrap(), (0x9, b"keepalive".to_vec()));
}

#[tokio::test(start_paused = true)]
async fn keepalive_late_pong_fails_with_1011_over_tcp() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_secs(30)))
        .keepalive_timeout(Duration::from_secs(10));
    let (mut server, mut peer) = server_with_raw_client(config).await;
    let server = tokio::spawn(async move { server.recv().await });
    let (opcode, payload) = timeout(WATCHDOG * 10, read_frame(&mut peer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((opcode, &payload[..]), (0x9, &b"keepalive"[..]));
    expect_close(&mut peer, 1011).await;
    expect_eof(&mut peer).await;
    drop(peer);
    let result = server.await.unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Protocol(ProtocolError::KeepaliveTimeout))
        ),
        "{result:?}"
    );
}
