//! Replies batched by `feed`: queued without a write, and written together by the receive
//! call that has taken every message already received (both adapters); `send` still writes
//! before it returns, and an event that obliges a reply (a Ping) has its reply written before
//! the event is handed out. In-memory transports that count the writes they take.
#![cfg(feature = "tokio")]

use rfc6455::sync;
use rfc6455::tokio::WebSocket;
use rfc6455::{CloseCode, Config, Connection, Error, Event, Message, OsEntropy};
use std::future::{Future, poll_fn};
use std::io::{self, Cursor, ErrorKind, Read, Write};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The frames a client sends for `messages` (masked), in one buffer, as one read brings them.
fn client_frames(messages: &[&str], close: bool) -> Vec<u8> {
    let mut client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
    for text in messages {
        client.send_text(text).unwrap();
    }
    if close {
        client.send_close(CloseCode::NORMAL, "").unwrap();
    }
    let mut wire = Vec::new();
    for chunk in client.transmit_chunks() {
        wire.extend_from_slice(chunk);
    }
    wire
}

/// The messages (and whether a Close ends them) in what a server wrote.
fn server_frames(wire: &[u8]) -> (Vec<String>, bool) {
    let mut client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
    client.receive(wire).unwrap();
    let mut texts = Vec::new();
    let mut closed = false;
    while let Some(event) = client.poll_event() {
        match event {
            Event::Message(m) => texts.push(m.as_text().unwrap().to_owned()),
            Event::Close(_) => closed = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    (texts, closed)
}

// ------------------------------------------------------------------ blocking adapter

/// Reads from a script, records every write (one entry per `write` call).
struct Recorder {
    input: Cursor<Vec<u8>>,
    writes: Vec<Vec<u8>>,
    /// Every write is refused with `WouldBlock`.
    refuse: bool,
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.refuse {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.writes.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn sync_server(input: Vec<u8>, config: Config) -> sync::WebSocket<sync::NoTimeouts<Recorder>> {
    let transport = Recorder {
        input: Cursor::new(input),
        writes: Vec::new(),
        refuse: false,
    };
    sync::WebSocket::from_connection(sync::NoTimeouts(transport), Connection::server(config))
}

#[test]
fn sync_fed_replies_go_out_in_one_write_when_recv_needs_input() {
    let texts = ["one", "two", "three"];
    let mut ws = sync_server(client_frames(&texts, true), Config::default());
    for text in texts {
        let message = ws.recv().unwrap().expect("a message");
        assert_eq!(message.as_text(), Some(text));
        ws.feed(message).unwrap();
        assert!(ws.get_ref().0.writes.is_empty(), "feed wrote");
    }
    // The peer's Close is next: recv writes the three replies and the Close echo together,
    // then reads to the end of the stream.
    assert!(ws.recv().unwrap().is_none());
    let writes = &ws.get_ref().0.writes;
    assert_eq!(writes.len(), 1, "{} writes", writes.len());
    assert_eq!(
        server_frames(&writes[0]),
        (texts.map(String::from).to_vec(), true)
    );
}

#[test]
fn sync_send_still_writes_before_it_returns() {
    let mut ws = sync_server(client_frames(&["one"], true), Config::default());
    let message = ws.recv().unwrap().expect("a message");
    ws.send(message).unwrap();
    assert_eq!(ws.get_ref().0.writes.len(), 1);
    ws.feed_text("two").unwrap();
    ws.feed_binary(b"three").unwrap();
    assert_eq!(ws.get_ref().0.writes.len(), 1);
    ws.flush().unwrap();
    assert_eq!(ws.get_ref().0.writes.len(), 2);
    assert_eq!(ws.connection().transmit_len(), 0);
}

#[test]
fn sync_feed_over_the_high_water_mark_is_refused_without_queueing() {
    let config = Config::default().write_buffer_high_water(10);
    let mut ws = sync_server(client_frames(&[], false), config);
    ws.get_mut().0.refuse = true;
    ws.feed_binary(&[7; 20]).unwrap();
    let queued = ws.connection().transmit_len();
    assert_eq!(queued, 22);
    let refused = ws.feed_binary(&[8; 20]).unwrap_err();
    assert!(
        matches!(&refused, Error::Io(e) if e.kind() == ErrorKind::WouldBlock),
        "{refused:?}"
    );
    assert_eq!(ws.connection().transmit_len(), queued);
    // Once the transport takes writes again, the queue drains and feeding works.
    ws.get_mut().0.refuse = false;
    ws.feed_binary(&[8; 20]).unwrap();
    assert_eq!(ws.connection().transmit_len(), 22);
    assert_eq!(ws.get_ref().0.writes.len(), 1);
}

#[test]
fn rfc6455_5_5_2_sync_recv_event_writes_the_pong_before_handing_out_the_ping() {
    let mut client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
    client.send_ping(b"are you there").unwrap();
    let wire: Vec<u8> = client.transmit_chunks().flatten().copied().collect();
    let mut ws = sync_server(wire, Config::default());
    match ws.recv_event().unwrap() {
        Some(Event::Ping(payload)) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("unexpected {other:?}"),
    }
    // RFC 6455 §5.5.2: the Pong is sent "as soon as is practical": before the Ping is
    // handed to the application, not with its next call.
    let writes = &ws.get_ref().0.writes;
    assert_eq!(writes.len(), 1);
    assert_eq!(&writes[0][..2], &[0x8A, 13]);
}

// ------------------------------------------------------------------ tokio adapter

/// A duplex end that counts the writes it takes.
struct Counted {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Our server over a counted duplex end, and the raw other end.
fn tokio_server() -> (WebSocket<Counted>, Arc<AtomicUsize>, DuplexStream) {
    let (near, far) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let stream = Counted {
        inner: near,
        writes: Arc::clone(&writes),
    };
    let server = WebSocket::from_connection(stream, Connection::server(Config::default()));
    (server, writes, far)
}

/// Polls `fut` once; it must be waiting (for input).
fn poll_once_pending<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    let poll = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(poll.is_pending(), "expected the call to wait for input");
}

async fn read_available(far: &mut DuplexStream) -> Vec<u8> {
    let mut buf = vec![0; 1 << 16];
    let n = poll_fn(|cx| {
        let mut rb = ReadBuf::new(&mut buf);
        Pin::new(&mut *far)
            .poll_read(cx, &mut rb)
            .map_ok(|()| rb.filled().len())
    })
    .await
    .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn tokio_fed_replies_go_out_in_one_write_when_recv_needs_input() {
    use tokio::io::AsyncWriteExt;
    let (mut server, writes, mut far) = tokio_server();
    let texts = ["one", "two", "three", "four"];
    far.write_all(&client_frames(&texts, false)).await.unwrap();
    for text in texts {
        let message = server.recv().await.unwrap().expect("a message");
        assert_eq!(message.as_text(), Some(text));
        server.feed(message).await.unwrap();
    }
    assert_eq!(writes.load(Ordering::SeqCst), 0, "feed wrote");
    // The next recv has nothing to hand out: it writes the batch, then waits for input.
    poll_once_pending(server.recv());
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    let wire = read_available(&mut far).await;
    assert_eq!(
        server_frames(&wire),
        (texts.map(String::from).to_vec(), false)
    );
}

#[tokio::test]
async fn tokio_send_writes_and_flush_writes_what_was_fed() {
    let (mut server, writes, mut far) = tokio_server();
    server.send_text("one").await.unwrap();
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    server.feed_text("two").await.unwrap();
    server.feed(Message::from("three")).await.unwrap();
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    server.flush().await.unwrap();
    assert_eq!(writes.load(Ordering::SeqCst), 2);
    let mut wire = read_available(&mut far).await;
    if server_frames(&wire).0.len() < 3 {
        wire.extend(read_available(&mut far).await);
    }
    assert_eq!(
        server_frames(&wire).0,
        ["one", "two", "three"].map(String::from).to_vec()
    );
}

#[tokio::test]
async fn tokio_split_writer_feeds_and_the_reader_writes_before_it_waits() {
    let (server, writes, mut far) = tokio_server();
    let (mut reader, mut writer) = server.split();
    writer.feed_text("queued by the writer").await.unwrap();
    assert_eq!(writes.load(Ordering::SeqCst), 0);
    poll_once_pending(reader.recv());
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    let wire = read_available(&mut far).await;
    assert_eq!(
        server_frames(&wire).0,
        vec!["queued by the writer".to_owned()]
    );
}

#[tokio::test]
async fn rfc6455_5_5_2_tokio_recv_event_writes_the_pong_before_handing_out_the_ping() {
    use tokio::io::AsyncWriteExt;
    let (mut server, writes, mut far) = tokio_server();
    let mut client = Connection::client(Config::default(), Box::new(OsEntropy::new()));
    client.send_ping(b"are you there").unwrap();
    client.send_text("after the ping").unwrap();
    let wire: Vec<u8> = client.transmit_chunks().flatten().copied().collect();
    far.write_all(&wire).await.unwrap();
    match server.recv_event().await.unwrap() {
        Some(Event::Ping(payload)) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("unexpected {other:?}"),
    }
    // RFC 6455 §5.5.2: the Pong goes out before the Ping is handed out.
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    let pong = read_available(&mut far).await;
    assert_eq!(&pong[..2], &[0x8A, 13]);
    let message = server.recv().await.unwrap().expect("a message");
    assert_eq!(message.as_text(), Some("after the ping"));
}
