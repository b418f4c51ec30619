//! Cancel safety of the tokio adapter, as a property (issue 18, item 2): a script of `recv`,
//! `recv_event`, `Stream::poll_next`, `send*`, `send_fragment`, `send_ping`, `flush` and
//! `close` calls (on a whole `WebSocket`, or on its split halves) where each future is dropped
//! after an arbitrary number of polls (none, some, or when it finishes) over an in-memory
//! `tokio::io::duplex` pipe that also returns `Pending` and short reads and writes at random.
//!
//! The peer is the sans-IO core alone (a `ServerHandshake` or `ClientHandshake`, then a
//! `Connection`) pumped by a few lines over the other end of the pipe, so the adapter under
//! test is checked against code it does not share. What the module docs of `rfc6455::tokio`
//! promise, checked for every script:
//!
//! * receiving: each of the peer's messages is returned exactly once, in order, whatever
//!   receive futures were dropped on the way ("an event is taken from the core only in the
//!   poll that returns it");
//! * sending: a send future polled at least once queued its message exactly once, one dropped
//!   before its first poll queued nothing; the peer receives exactly those messages, byte for
//!   byte, in order (so no dropped `send` or `flush` wrote a byte twice or skipped one);
//! * closing: a `close` future dropped after its first poll has queued the Close: `close`
//!   again is `UsageError::Closed` and `recv` finishes the handshake with `Ok(None)`; one
//!   dropped before its first poll queued nothing, and a later `close` completes normally.
//!
//! Runs on tokio's paused clock: a future that waits for what is not coming (a `recv` with
//! every message taken) is dropped once nothing else can run, and a hang is a failure.
#![cfg(feature = "tokio")]

use futures_core::Stream;
use proptest::prelude::*;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::tokio::{self as ws, ReadHalf, WebSocket, WriteHalf};
use rfc6455::{CloseCode, Config, Connection, Error, Event, Message, MessageKind, UsageError};
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// Turns a hang into a failure (on the paused clock: when nothing can run any more).
const WATCHDOG: Duration = Duration::from_secs(600);

// ------------------------------------------------------------------ the pipe

/// splitmix64: the pipe's and the payloads' randomness, seeded by proptest.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A duplex end that, at random, returns `Pending` (waking itself at once, as a spurious
/// readiness would) or reads and writes fewer bytes than it could: each poll of the adapter
/// can stop anywhere inside a frame.
struct Chaos {
    inner: DuplexStream,
    rng: Rng,
}

impl Chaos {
    /// `Some(limit)` to go on with at most `limit` bytes, `None` to return `Pending` now.
    fn draw(&mut self, cx: &Context<'_>, len: usize) -> Option<usize> {
        if self.rng.below(4) == 0 {
            cx.waker().wake_by_ref();
            return None;
        }
        Some(match self.rng.below(3) {
            0 => 1 + self.rng.below(len.clamp(1, 16)),
            1 => 1 + self.rng.below(len.max(1)),
            _ => len,
        })
    }
}

impl AsyncRead for Chaos {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(limit) = this.draw(cx, buf.remaining()) else {
            return Poll::Pending;
        };
        // Into a buffer of the drawn size, then copied: a short read without `unsafe`.
        let mut short = vec![0u8; limit.min(buf.remaining())];
        let mut short_buf = ReadBuf::new(&mut short);
        let poll = Pin::new(&mut this.inner).poll_read(cx, &mut short_buf);
        buf.put_slice(short_buf.filled());
        poll
    }
}

impl AsyncWrite for Chaos {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(limit) = this.draw(cx, data.len()) else {
            return Poll::Pending;
        };
        Pin::new(&mut this.inner).poll_write(cx, &data[..limit.min(data.len())])
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ------------------------------------------------------------------ dropping futures

/// How long a call's future lives.
#[derive(Clone, Copy, Debug)]
enum Polls {
    /// Dropped before its first poll.
    Never,
    /// Dropped after this many polls (each after a wake), unless it finished first.
    AtMost(u32),
    /// Awaited to the end.
    Finish,
}

/// Polls `fut` as `polls` says. `None` if it was dropped unfinished. A future still pending
/// once nothing else can run (the paused clock reaches our 1 ms timer) is dropped too: it
/// waits for something that is not coming.
async fn run<F: Future>(fut: F, polls: Polls) -> Option<F::Output> {
    let budget = match polls {
        Polls::Never => return None,
        Polls::AtMost(n) => n,
        Polls::Finish => {
            let out = tokio::time::timeout(WATCHDOG, fut).await;
            return Some(out.expect("a call that must finish hung"));
        }
    };
    let mut fut = pin!(fut);
    let mut idle = pin!(tokio::time::sleep(Duration::from_millis(1)));
    let mut left = budget;
    poll_fn(|cx| {
        left -= 1;
        match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending if left == 0 => Poll::Ready(None),
            Poll::Pending if idle.as_mut().poll(cx).is_ready() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Whether the future was polled at all: what decides if a send queued its message.
const fn polled(polls: Polls) -> bool {
    !matches!(polls, Polls::Never)
}

// ------------------------------------------------------------------ the peer

/// A payload of `len` bytes for message `id`: text (ASCII with some multi-byte characters,
/// so fragments split code points) or arbitrary bytes.
fn payload(id: u64, len: usize, text: bool) -> Vec<u8> {
    let mut rng = Rng(id.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ len as u64);
    if !text {
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        match rng.below(10) {
            0 => s.push('é'),
            1 => s.push('€'),
            2 => s.push('🦀'),
            _ => s.push(char::from(b'a' + rng.below(26) as u8)),
        }
    }
    while s.len() > len {
        s.pop();
    }
    while s.len() < len {
        s.push('.');
    }
    s.into_bytes()
}

fn message(bytes: Vec<u8>, text: bool) -> Message {
    if text {
        Message::from(String::from_utf8(bytes).expect("text payloads are UTF-8"))
    } else {
        Message::from(bytes)
    }
}

/// What the peer got: the messages in order, and its error if it failed.
#[derive(Debug)]
struct PeerLog {
    messages: Vec<Message>,
    error: Option<rfc6455::ProtocolError>,
}

/// The peer: the opening handshake in the role opposite to the adapter's, then every message
/// of `script` (and a Ping after every third) queued at once, then a plain pump until the
/// core is done with the stream.
async fn peer(stream: DuplexStream, adapter_is_client: bool, script: Vec<Message>) -> PeerLog {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = vec![0u8; 16 << 10];
    let mut conn = if adapter_is_client {
        let mut hs = ServerHandshake::new(Config::default());
        while hs.request().is_none() {
            let n = rd.read(&mut buf).await.expect("read the request");
            assert!(n > 0, "EOF before the request");
            hs.receive(&buf[..n]).expect("our client's request");
        }
        hs.accept(Accept::new()).expect("accept")
    } else {
        let request = ClientRequest::new("ws://peer.example/").unwrap();
        let mut counter = 0u8;
        let entropy = Box::new(move |d: &mut [u8]| {
            for b in d {
                counter = counter.wrapping_add(37);
                *b = counter;
            }
        });
        let mut hs = ClientHandshake::new(request, Config::default(), entropy).unwrap();
        wr.write_all(hs.pending_transmit()).await.unwrap();
        let n = hs.pending_transmit().len();
        hs.advance_transmit(n);
        while !hs.is_complete() {
            let n = rd.read(&mut buf).await.expect("read the response");
            assert!(n > 0, "EOF before the response");
            hs.receive(&buf[..n]).expect("our server's response");
        }
        hs.into_connection().expect("complete").0
    };
    for (i, m) in script.into_iter().enumerate() {
        conn.send(m).unwrap();
        if i % 3 == 2 {
            conn.send_ping(format!("ping {i}").as_bytes()).unwrap();
        }
    }
    pump(&mut conn, &mut rd, &mut wr, &mut buf).await
}

async fn pump(
    conn: &mut Connection,
    rd: &mut tokio::io::ReadHalf<DuplexStream>,
    wr: &mut tokio::io::WriteHalf<DuplexStream>,
    buf: &mut [u8],
) -> PeerLog {
    let mut messages = Vec::new();
    let mut shut = false;
    loop {
        while let Some(event) = conn.poll_event() {
            if let Event::Message(m) = event {
                messages.push(m);
            }
        }
        if conn.pending_transmit().is_empty() && conn.wants_shutdown() && !shut {
            let _ = wr.shutdown().await;
            shut = true;
        }
        if conn.is_terminated() {
            break;
        }
        let out = conn.pending_transmit().to_vec();
        tokio::select! {
            read = rd.read(buf) => match read {
                Ok(0) => {
                    let _ = conn.receive_eof();
                }
                Ok(n) => {
                    let _ = conn.receive(&buf[..n]);
                }
                Err(_) => break,
            },
            written = wr.write(&out), if !out.is_empty() => match written {
                Ok(n) => conn.advance_transmit(n),
                Err(_) => break,
            },
        }
    }
    PeerLog {
        messages,
        error: conn.error(),
    }
}

// ------------------------------------------------------------------ the adapter's side

/// One of the adapter's messages: its payload cut into fragments (one part: a whole message).
#[derive(Clone, Debug)]
struct Outgoing {
    text: bool,
    parts: Vec<Vec<u8>>,
    /// How each send is sent when whole: `send`, `send_text` / `send_binary`.
    via_send: bool,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The next message, or the next fragment of the one in progress.
    Send(Polls),
    Recv(Polls),
    RecvEvent(Polls),
    /// `Stream::poll_next` (whole `WebSocket` only; `recv` on the split reader).
    Next(Polls),
    Flush(Polls),
    Ping(Polls),
}

/// The adapter's WebSocket, whole or split.
enum Side<S> {
    Whole(Box<WebSocket<S>>),
    Split(ReadHalf<S>, WriteHalf<S>),
}

type Recv = Result<Option<Event>, Error>;

impl<S: AsyncRead + AsyncWrite + Unpin> Side<S> {
    /// One receive call, as `op` says, turned into an event.
    async fn receive(&mut self, op: Op, polls: Polls) -> Option<Recv> {
        let as_event = |r: Result<Option<Message>, Error>| r.map(|m| m.map(Event::Message));
        match (self, op) {
            (Self::Whole(ws), Op::Recv(_)) => run(ws.recv(), polls).await.map(as_event),
            (Self::Whole(ws), Op::RecvEvent(_)) => run(ws.recv_event(), polls).await,
            (Self::Whole(ws), _) => {
                let next = poll_fn(|cx| Pin::new(&mut *ws).poll_next(cx));
                run(next, polls)
                    .await
                    .map(|item| item.transpose().map(|m| m.map(Event::Message)))
            }
            (Self::Split(rd, _), Op::RecvEvent(_)) => run(rd.recv_event(), polls).await,
            (Self::Split(rd, _), _) => run(rd.recv(), polls).await.map(as_event),
        }
    }

    async fn send_part(
        &mut self,
        out: &Outgoing,
        part: usize,
        polls: Polls,
    ) -> Option<Result<(), Error>> {
        let data = &out.parts[part];
        let kind = if out.text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let fin = part + 1 == out.parts.len();
        macro_rules! send {
            ($w:expr) => {
                if out.parts.len() > 1 {
                    run($w.send_fragment(kind, data, fin), polls).await
                } else if out.via_send {
                    run($w.send(message(data.clone(), out.text)), polls).await
                } else if out.text {
                    let text = std::str::from_utf8(data).unwrap();
                    run($w.send_text(text), polls).await
                } else {
                    run($w.send_binary(data), polls).await
                }
            };
        }
        match self {
            Self::Whole(ws) => send!(ws),
            Self::Split(_, wr) => send!(wr),
        }
    }

    async fn flush(&mut self, polls: Polls) -> Option<Result<(), Error>> {
        match self {
            Self::Whole(ws) => run(ws.flush(), polls).await,
            Self::Split(_, wr) => run(wr.flush(), polls).await,
        }
    }

    async fn ping(&mut self, polls: Polls) -> Option<Result<(), Error>> {
        match self {
            Self::Whole(ws) => run(ws.send_ping(b"adapter ping"), polls).await,
            Self::Split(_, wr) => run(wr.send_ping(b"adapter ping"), polls).await,
        }
    }

    /// `close` on the whole WebSocket, `send_close` on the writer half.
    async fn close(&mut self, polls: Polls) -> Option<Result<(), Error>> {
        match self {
            Self::Whole(ws) => run(ws.close(CloseCode::NORMAL, "done"), polls).await,
            Self::Split(_, wr) => run(wr.send_close(CloseCode::NORMAL, "done"), polls).await,
        }
    }
}

/// A whole test case.
#[derive(Clone, Debug)]
struct Case {
    adapter_is_client: bool,
    split: bool,
    pipe: usize,
    seed: u64,
    /// The peer's messages.
    incoming: Vec<(usize, bool)>,
    /// The adapter's messages.
    outgoing: Vec<Outgoing>,
    ops: Vec<Op>,
    close: Polls,
}

fn check(case: Case) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(check_async(case));
}

async fn check_async(case: Case) {
    let incoming: Vec<Message> = case
        .incoming
        .iter()
        .enumerate()
        .map(|(i, &(len, text))| message(payload(i as u64, len, text), text))
        .collect();
    let (ours, theirs) = tokio::io::duplex(case.pipe);
    let peer = tokio::spawn(peer(theirs, case.adapter_is_client, incoming.clone()));
    let stream = Chaos {
        inner: ours,
        rng: Rng(case.seed),
    };
    let ws = if case.adapter_is_client {
        let request = ClientRequest::new("ws://adapter.example/").unwrap();
        ws::client(stream, request, Config::default())
            .await
            .unwrap()
            .0
    } else {
        ws::accept(stream).await.unwrap()
    };
    let mut side = if case.split {
        let (rd, wr) = ws.split();
        Side::Split(rd, wr)
    } else {
        Side::Whole(Box::new(ws))
    };

    let mut received = Vec::new();
    // What the peer must receive: each message's parts that were queued.
    let mut expected: Vec<Message> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let (mut next_out, mut next_part) = (0, 0);
    let take = |r: Recv, received: &mut Vec<Message>| match r {
        Ok(Some(Event::Message(m))) => received.push(m),
        Ok(Some(_)) => {}
        other => panic!("the connection ended while the peer was still sending: {other:?}"),
    };
    for op in case.ops.iter().copied() {
        match op {
            Op::Recv(p) | Op::RecvEvent(p) | Op::Next(p) => {
                // Finishing a receive needs a message still on its way.
                let p = match p {
                    Polls::Finish if received.len() == incoming.len() => Polls::AtMost(3),
                    p => p,
                };
                if let Some(r) = side.receive(op, p).await {
                    take(r, &mut received);
                }
            }
            Op::Send(p) => {
                let Some(out) = case.outgoing.get(next_out) else {
                    continue;
                };
                if let Some(r) = side.send_part(out, next_part, p).await {
                    r.expect("send");
                }
                if polled(p) {
                    current.extend_from_slice(&out.parts[next_part]);
                    next_part += 1;
                }
                // A whole message never polled is skipped; a fragment is tried again.
                if next_part == out.parts.len() || (!polled(p) && out.parts.len() == 1) {
                    if next_part == out.parts.len() {
                        expected.push(message(std::mem::take(&mut current), out.text));
                    }
                    next_out += 1;
                    next_part = 0;
                }
            }
            Op::Flush(p) => {
                if let Some(r) = side.flush(p).await {
                    r.expect("flush");
                }
            }
            Op::Ping(p) => {
                if let Some(r) = side.ping(p).await {
                    r.expect("send_ping");
                }
            }
        }
    }
    // A message left in fragments is finished, so the Close may follow it.
    if let Some(out) = case.outgoing.get(next_out).filter(|_| next_part > 0) {
        for part in next_part..out.parts.len() {
            side.send_part(out, part, Polls::Finish)
                .await
                .unwrap()
                .unwrap();
            current.extend_from_slice(&out.parts[part]);
        }
        expected.push(message(std::mem::take(&mut current), out.text));
    }
    while received.len() < incoming.len() {
        let r = tokio::time::timeout(
            WATCHDOG,
            side.receive(Op::Recv(Polls::Finish), Polls::Finish),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} of the peer's {} messages received; the rest never came (lost?)",
                received.len(),
                incoming.len()
            )
        })
        .expect("finished");
        take(r, &mut received);
    }
    side.flush(Polls::Finish).await.unwrap().unwrap();
    assert_eq!(received.len(), incoming.len(), "messages received");
    for (i, (got, want)) in received.iter().zip(&incoming).enumerate() {
        assert!(got == want, "message {i} of the peer arrived changed");
    }

    // The close, cancelled as the case says.
    match side.close(case.close).await {
        Some(r) => r.expect("close"),
        None if polled(case.close) => {
            // The Close is queued: closing again is a usage error, and a receive finishes the
            // handshake.
            let again = side.close(Polls::Finish).await.unwrap();
            assert!(
                matches!(again, Err(Error::Usage(UsageError::Closed))),
                "close after a dropped close: {again:?}"
            );
        }
        None => {
            // Nothing was queued: closing works as if never tried.
            side.close(Polls::Finish).await.unwrap().expect("close");
        }
    }
    loop {
        match side
            .receive(Op::Recv(Polls::Finish), Polls::Finish)
            .await
            .unwrap()
        {
            Ok(Some(Event::Message(m))) => panic!("a message after the peer's last: {m:?}"),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the closing handshake failed: {e}"),
        }
    }
    drop(side);
    let log = tokio::time::timeout(WATCHDOG, peer)
        .await
        .expect("the peer hung")
        .expect("the peer panicked");
    assert_eq!(log.error, None, "the peer failed");
    assert_eq!(
        log.messages.len(),
        expected.len(),
        "messages the peer received"
    );
    for (i, (got, want)) in log.messages.iter().zip(&expected).enumerate() {
        assert!(got == want, "our message {i} arrived changed");
    }
}

// ------------------------------------------------------------------ strategies

fn polls() -> impl Strategy<Value = Polls> {
    prop_oneof![
        1 => Just(Polls::Never),
        6 => (1u32..40).prop_map(Polls::AtMost),
        2 => Just(Polls::Finish),
    ]
}

/// Mostly small messages, some of several pipe-fulls.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..200,
        2 => 200usize..4096,
        1 => 4096usize..70_000,
    ]
}

fn outgoing() -> impl Strategy<Value = Outgoing> {
    (
        size(),
        any::<bool>(),
        any::<bool>(),
        1usize..5,
        any::<u64>(),
    )
        .prop_map(|(len, text, via_send, parts, seed)| {
            let data = payload(seed | 1 << 63, len, text);
            // Cut anywhere: text fragments may split a code point.
            let mut rng = Rng(seed);
            let mut cuts: Vec<usize> = (1..parts).map(|_| rng.below(len + 1)).collect();
            cuts.sort_unstable();
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([len]) {
                out.push(data[at..cut].to_vec());
                at = cut;
            }
            Outgoing {
                text,
                parts: out,
                via_send,
            }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => polls().prop_map(Op::Send),
        3 => polls().prop_map(Op::Recv),
        2 => polls().prop_map(Op::RecvEvent),
        1 => polls().prop_map(Op::Next),
        2 => polls().prop_map(Op::Flush),
        1 => polls().prop_map(Op::Ping),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(64usize), 65usize..2048, Just(64 << 10)],
        any::<u64>(),
        prop::collection::vec((size(), any::<bool>()), 0..12),
        prop::collection::vec(outgoing(), 0..12),
        prop::collection::vec(op(), 0..60),
        polls(),
    )
        .prop_map(
            |(adapter_is_client, split, pipe, seed, incoming, outgoing, ops, close)| Case {
                adapter_is_client,
                split,
                pipe,
                seed,
                incoming,
                outgoing,
                ops,
                close,
            },
        )
}

/// 128 cases by default; `CANCEL_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("CANCEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Every future of the tokio adapter dropped at arbitrary poll points: nothing lost,
    /// nothing duplicated, sends queued exactly when first polled, close as documented.
    #[test]
    fn tokio_futures_dropped_anywhere_lose_and_duplicate_nothing(case in case()) {
        check(case);
    }
}

/// One fixed script: a whole message whose send future is dropped before its first poll is
/// never received; the next one, dropped after one poll, is received once.
#[test]
fn a_send_never_polled_is_not_received() {
    check(Case {
        adapter_is_client: true,
        split: false,
        pipe: 64,
        seed: 1,
        incoming: vec![(10, true)],
        outgoing: vec![
            Outgoing {
                text: true,
                parts: vec![b"dropped".to_vec()],
                via_send: false,
            },
            Outgoing {
                text: false,
                parts: vec![b"sent".to_vec()],
                via_send: true,
            },
        ],
        ops: vec![
            Op::Send(Polls::Never),
            Op::Send(Polls::AtMost(1)),
            Op::Recv(Polls::AtMost(1)),
        ],
        close: Polls::AtMost(1),
    });
}
