//! Chat server on the tokio adapter: the page of the `chat` example at `/` and its WebSocket at
//! `/ws`, on one port. Alone it keeps the chat in memory; with `--redis` it runs as one of
//! several nodes that share the chat through a Redis Stream, behind a load balancer.
//!
//! ```text
//! cargo run --release --example tokio_chat -- [ADDR] [--redis HOST:PORT] [--stream KEY] [--node NAME]
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:9002`, `KEY` to `rfc6455-chat`, `NAME` to `ADDR`. Then open
//! `http://127.0.0.1:9002/` in two tabs. It prints
//! `tokio chat server on http://ADDR/ (WebSocket at ws://ADDR/ws)` once it listens.
//! `docs/README-scaling.md` runs two nodes behind nginx.
//!
//! # How it works
//!
//! * **One log, one order.** A message is appended to the log (`XADD` to the stream, or the
//!   in-memory copy) and reaches every connection, the sender's included, from there: each
//!   node reads the stream in one task (`XREAD BLOCK`) and hands new entries to its
//!   connections through a `tokio::sync::broadcast` channel. The log's IDs give every node,
//!   and so every client, the same order.
//! * **Encode once, send many.** Each entry is framed once per protocol, as a
//!   [`PreparedMessage`], the first time a connection needs it; every member's task sends
//!   the same bytes.
//! * **A task per connection, no polling.** Each task `select!`s between the client's next
//!   message and the next entry. [`WebSocket::recv`] is cancel safe: when an entry wins the
//!   race, a half-read message stays buffered in the connection for the next `recv`. A
//!   member that falls more than `QUEUE` entries behind is closed (1013 for the chat
//!   protocol, whose clients come back and resume; 1008 otherwise); one that stops reading
//!   is dropped once a send has waited `WRITE_TIMEOUT`.
//! * **Same-origin upgrades only**, as in `chat`: `/ws` refuses other sites' pages
//!   (cross-site WebSocket hijacking, RFC 6455 §10.2).
//!
//! # Two protocols on `/ws`
//!
//! A client that offers no subprotocol gets the plain chat of the `chat` example: every text
//! or binary message it sends goes to everyone as it is, and it is sent what is said while
//! it is connected.
//!
//! A client that offers the subprotocol `rfc6455-chat.v1` (the page does; RFC 6455 §1.9)
//! speaks in text messages of newline-separated fields, the last of which may itself hold
//! newlines:
//!
//! | direction | message | meaning |
//! |---|---|---|
//! | client → | `hello\n<since>` | send me what came after ID `<since>` (empty: the last [`HISTORY`] messages), then everything new |
//! | client → | `say\n<cid>\n<nick>\n<text>` | post `<text>` as `<nick>`; `<cid>` is the client's own ID for it |
//! | ← server | `msg\n<id>\n<cid>\n<nick>\n<text>` | a message, in log order; `<id>` is `<ms>-<seq>`, so it carries the time |
//! | ← server | `bin\n<id>\n<cid>\n<nick>\n<bytes>` | a binary message (from a plain client), by its size |
//! | ← server | `ready\n<node>\n<count>` | the catch-up after `hello` is done: `<count>` messages; live from now on |
//! | ← server | `nack\n<cid>\n<reason>` | `<cid>` was refused (an empty or whitespace-only text, a bad nickname) |
//!
//! The server sends nothing before `hello`, so a client that reconnects says where it left
//! off and is given exactly what it missed, then the live feed, without a gap or a repeat
//! (entries up to the last one sent are skipped). Socket.IO calls this connection state
//! recovery. Delivery of a client's own `say` is confirmed by its `cid` coming back; a client
//! that did not see it come back says it again after the next `ready`, so a message can
//! arrive twice (if the first copy made it after all), and clients drop repeats by `cid`.

#[path = "chat_broker/mod.rs"]
mod chat_broker;

use chat_broker::{Broker, Entry, PAGE, StreamId};
use rfc6455::handshake::{Accept, Reject, Request, ServerHandshake};
use rfc6455::tokio::WebSocket;
use rfc6455::{CloseCode, Config, Connection, Error, Message, PreparedMessage};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, timeout, timeout_at};

/// Entries one member may fall behind by before it is closed.
const QUEUE: usize = 1024;
/// The largest chat message accepted; a larger one closes the sender's connection with 1009.
const MAX_MESSAGE: u64 = 1 << 20;
/// How long one message may wait to be written to a member before the member is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages a newcomer (a `hello` without an ID) is shown.
pub const HISTORY: usize = 64;
/// The chat protocol's name, as offered in `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "rfc6455-chat.v1";
/// Longest nickname, in characters.
const MAX_NICK: usize = 32;
/// Longest client message ID, in bytes.
const MAX_CID: usize = 64;
/// The page, shared with the blocking `chat` example; [`page`] tells it our protocol.
const PAGE_HTML: &str = include_str!("chat.html");
/// The icon at `/favicon.ico`, which browsers ask for on their own (the page names the same
/// picture as a `data:` URL, so it also has one under the `chat` example).
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2563eb"/><path d="M8 9h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-9l-5 4v-4H8a2 2 0 0 1-2-2v-9a2 2 0 0 1 2-2z" fill="#fff"/></svg>"##;

/// How a form of an entry is framed: index into [`Entry::framed`].
const FRAMED_PLAIN: usize = 0;
const FRAMED_CHAT: usize = 1;

/// What every connection task shares.
struct Shared {
    broker: Arc<Broker>,
    config: Config,
    node: String,
    page: String,
}

/// The page with `data-chat-protocol` on its `<html>`: the page offers the subprotocol only
/// where the server says it speaks it, since a browser fails a handshake whose response
/// picks none of the subprotocols it offered (so the blocking `chat` example, which serves
/// the page as it is, gets a plain relay client).
fn page() -> String {
    let tag = r#"<html lang="en">"#;
    assert!(PAGE_HTML.contains(tag), "chat.html starts with {tag}");
    PAGE_HTML.replacen(
        tag,
        &format!(r#"<html lang="en" data-chat-protocol="{PROTOCOL}">"#),
        1,
    )
}

/// The command line: `[ADDR] [--redis HOST:PORT] [--stream KEY] [--node NAME]`.
struct Options {
    addr: String,
    redis: Option<String>,
    stream: String,
    node: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:9002".to_owned(),
        redis: None,
        stream: "rfc6455-chat".to_owned(),
        node: None,
    };
    let mut args = std::env::args().skip(1);
    let mut positional = 0;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--redis" => options.redis = Some(value("--redis")?),
            "--stream" => options.stream = value("--stream")?,
            "--node" => options.node = Some(value("--node")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if positional == 0 => {
                options.addr = arg;
                positional += 1;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let options = options().unwrap_or_else(|e| {
        eprintln!(
            "tokio_chat: {e}\nusage: tokio_chat [ADDR] [--redis HOST:PORT] [--stream KEY] [--node NAME]"
        );
        std::process::exit(2);
    });
    let broker = match &options.redis {
        Some(redis) => Broker::redis(redis, &options.stream, QUEUE)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("redis at {redis}: {e}")))?,
        None => Broker::local(QUEUE),
    };
    let listener = TcpListener::bind(&options.addr).await?;
    let addr = listener.local_addr()?;
    println!("tokio chat server on http://{addr}/ (WebSocket at ws://{addr}/ws)");
    if let Some(redis) = &options.redis {
        println!("sharing stream {:?} on redis {redis}", options.stream);
    }
    let shared = Arc::new(Shared {
        broker,
        config: Config::default().max_message_size(MAX_MESSAGE),
        node: options.node.unwrap_or_else(|| addr.to_string()),
        page: page(),
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: retrying at once would spin.
                eprintln!("tokio_chat: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = handle(stream, &shared).await {
                eprintln!("tokio_chat: connection ended: {e}");
            }
        });
    }
}

/// Which protocol a connection speaks.
#[derive(Clone, Copy)]
enum Speaks {
    /// No subprotocol: messages relayed as they are.
    Plain,
    /// [`PROTOCOL`].
    Chat,
}

/// One client connection, from its first byte to its end.
async fn handle(mut stream: TcpStream, shared: &Shared) -> Result<(), Error> {
    let Some((connection, speaks)) = handshake(&mut stream, shared).await else {
        return Ok(());
    };
    let mut ws = WebSocket::from_connection(stream, connection);
    // Subscribed before the 101 goes out: nothing logged after the client is in is missed.
    let live = shared.broker.subscribe();
    ws.flush().await?; // the 101 response
    match speaks {
        Speaks::Plain => plain(&mut ws, live, shared).await,
        Speaks::Chat => chat(&mut ws, live, shared).await,
    }
}

/// The plain protocol: each message into the log as it is; each entry out as it was sent.
async fn plain(
    ws: &mut WebSocket<TcpStream>,
    mut live: broadcast::Receiver<Arc<Entry>>,
    shared: &Shared,
) -> Result<(), Error> {
    loop {
        tokio::select! {
            received = ws.recv() => match received? {
                Some(message) => {
                    if let Err(e) = shared.broker.publish("", "", &message).await {
                        return log_unavailable(ws, &e).await;
                    }
                }
                None => return Ok(()), // the closing handshake is complete
            },
            entry = live.recv() => match entry {
                Ok(entry) => {
                    let framed = entry.framed(FRAMED_PLAIN, &shared.config, |e| e.message.clone());
                    send(ws, framed).await?;
                }
                Err(RecvError::Lagged(_)) => {
                    return ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
                }
                // The broker holds the sender for as long as the server runs.
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// The chat protocol (see the module docs): nothing until `hello`, then the catch-up, then
/// the live feed without what the catch-up already sent.
async fn chat(
    ws: &mut WebSocket<TcpStream>,
    mut live: broadcast::Receiver<Arc<Entry>>,
    shared: &Shared,
) -> Result<(), Error> {
    // The last entry sent to this client; `Some` once `hello` has been answered.
    let mut sent: Option<Option<StreamId>> = None;
    loop {
        tokio::select! {
            received = ws.recv() => {
                let Some(message) = received? else {
                    return Ok(()); // the closing handshake is complete
                };
                let Some(text) = message.as_text() else {
                    return ws.close(CloseCode::UNSUPPORTED_DATA, "rfc6455-chat.v1 is text").await;
                };
                match ChatRequest::parse(text) {
                    Ok(ChatRequest::Hello { since }) if sent.is_none() => {
                        match catch_up(ws, shared, since).await? {
                            Ok(last) => sent = Some(last),
                            Err(e) => return log_unavailable(ws, &e).await,
                        }
                    }
                    Ok(ChatRequest::Hello { .. }) => {
                        return ws.close(CloseCode::POLICY_VIOLATION, "hello twice").await;
                    }
                    Ok(ChatRequest::Say { cid, nick, text }) => {
                        if text.trim().is_empty() {
                            ws.send_text(&format!("nack\n{cid}\nempty message")).await?;
                            continue;
                        }
                        let Some(nick) = clean_nick(nick) else {
                            ws.send_text(&format!("nack\n{cid}\nbad nickname")).await?;
                            continue;
                        };
                        if let Err(e) = shared.broker.publish(&nick, cid, &Message::from(text)).await {
                            return log_unavailable(ws, &e).await;
                        }
                    }
                    Err(why) => return ws.close(CloseCode::POLICY_VIOLATION, why).await,
                }
            },
            entry = live.recv(), if sent.is_some() => match entry {
                Ok(entry) => {
                    let last = sent.get_or_insert(None);
                    if last.is_none_or(|last| entry.id > last) {
                        *last = Some(entry.id);
                        send(ws, entry.framed(FRAMED_CHAT, &shared.config, chat_frame)).await?;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // It can come back and resume from its last ID.
                    return ws.close(CloseCode::TRY_AGAIN_LATER, "too slow").await;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Answers `hello`: the entries after `since` (all of them, a page at a time), or the last
/// [`HISTORY`] for a newcomer, then `ready`. Returns the last entry sent, or the log's error.
async fn catch_up(
    ws: &mut WebSocket<TcpStream>,
    shared: &Shared,
    since: Option<StreamId>,
) -> Result<io::Result<Option<StreamId>>, Error> {
    let mut last = since;
    let mut count = 0;
    loop {
        let page = match last {
            Some(after) => shared.broker.after(after, PAGE).await,
            None => shared.broker.latest(HISTORY).await,
        };
        let page = match page {
            Ok(page) => page,
            Err(e) => return Ok(Err(e)),
        };
        for entry in &page {
            send(ws, entry.framed(FRAMED_CHAT, &shared.config, chat_frame)).await?;
            last = Some(entry.id);
        }
        count += page.len();
        // A newcomer's history is one read; a catch-up goes on until a page is short.
        if since.is_none() || page.len() < PAGE {
            break;
        }
    }
    ws.send_text(&format!("ready\n{}\n{count}", shared.node))
        .await?;
    Ok(Ok(last))
}

/// An entry in the chat protocol's form.
fn chat_frame(entry: &Entry) -> Message {
    let (id, cid, nick) = (entry.id, &entry.cid, &entry.nick);
    match &entry.message {
        Message::Text(text) => format!("msg\n{id}\n{cid}\n{nick}\n{}", text.as_str()).into(),
        Message::Binary(bytes) => format!("bin\n{id}\n{cid}\n{nick}\n{}", bytes.len()).into(),
    }
}

/// Sends a framed entry, giving up on a client that does not read for `WRITE_TIMEOUT`.
async fn send(ws: &mut WebSocket<TcpStream>, framed: &PreparedMessage) -> Result<(), Error> {
    timeout(WRITE_TIMEOUT, ws.send_prepared(framed))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
}

/// The log (Redis) failed: close with 1011, which tells a client to come back later (the
/// chat protocol's clients resend what was not confirmed).
async fn log_unavailable(ws: &mut WebSocket<TcpStream>, e: &io::Error) -> Result<(), Error> {
    eprintln!("tokio_chat: message log: {e}");
    ws.close(CloseCode::INTERNAL_ERROR, "message log unavailable")
        .await
}

/// A request in the chat protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum ChatRequest<'a> {
    /// `hello\n<since>`
    Hello {
        /// The last ID the client has, if any.
        since: Option<StreamId>,
    },
    /// `say\n<cid>\n<nick>\n<text>`
    Say {
        /// The client's ID for the message.
        cid: &'a str,
        /// The nickname, as sent.
        nick: &'a str,
        /// The message (may hold newlines).
        text: &'a str,
    },
}

impl<'a> ChatRequest<'a> {
    /// Parses a client's text message; the error is the close reason.
    pub fn parse(text: &'a str) -> Result<Self, &'static str> {
        match text.split_once('\n') {
            Some(("hello", "")) => Ok(Self::Hello { since: None }),
            Some(("hello", since)) => since
                .parse()
                .map(|since| Self::Hello { since: Some(since) })
                .map_err(|_| "bad hello"),
            Some(("say", rest)) => {
                let mut fields = rest.splitn(3, '\n');
                let (Some(cid), Some(nick), Some(text)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    return Err("bad say");
                };
                if cid.len() > MAX_CID || cid.chars().any(char::is_control) {
                    return Err("bad message id");
                }
                Ok(Self::Say { cid, nick, text })
            }
            _ => Err("unknown request"),
        }
    }
}

/// The nickname as shown: trimmed, at most [`MAX_NICK`] characters, no control characters;
/// `None` if that leaves nothing.
pub fn clean_nick(nick: &str) -> Option<String> {
    let nick = nick.trim();
    let ok =
        !nick.is_empty() && nick.chars().count() <= MAX_NICK && !nick.chars().any(char::is_control);
    ok.then(|| nick.to_owned())
}

/// Reads the request and answers it. Returns the connection (its 101 response queued) for
/// a WebSocket at `/ws`; otherwise writes the page, the icon, a 403 or 404, or the
/// handshake's own error response (400, 408, 431, ...), and returns `None`.
async fn handshake(stream: &mut TcpStream, shared: &Shared) -> Option<(Connection, Speaks)> {
    let config = &shared.config;
    let start = Instant::now();
    let mut hs = ServerHandshake::new(config.clone());
    hs.handle_timeout(Duration::ZERO); // starts the handshake timer
    let mut buf = [0u8; 4096];
    while hs.request().is_none() && hs.error().is_none() {
        let deadline = start + hs.poll_timeout()?;
        // A failure is sticky in the handshake, which has queued its response: the loop
        // condition sees it.
        let _ = match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => hs.receive_eof(),
            Ok(Ok(n)) => hs.receive(&buf[..n]),
            Ok(Err(_)) => return None,
            Err(_elapsed) => {
                hs.handle_timeout(start.elapsed());
                Ok(())
            }
        };
    }

    let answer = match (hs.request(), hs.plain_http_path().map(route)) {
        (Some(request), _) if route(request.path()) == "/ws" => {
            if same_origin(request) {
                // RFC 6455 §4.2.2: "The value chosen MUST be derived from the client's
                // handshake, specifically by selecting one of the values from the
                // |Sec-WebSocket-Protocol| field that the server is willing to use for this
                // connection (if any)." None chosen: the plain protocol.
                let speaks_chat = request.protocols().any(|p| p == PROTOCOL);
                let (accept, speaks) = if speaks_chat {
                    (Accept::new().protocol(PROTOCOL), Speaks::Chat)
                } else {
                    (Accept::new(), Speaks::Plain)
                };
                return hs.accept(accept).ok().map(|c| (c, speaks));
            }
            hs.reject(Reject::new(403).body("cross-origin WebSocket refused\n"))
        }
        (None, Some("/")) => hs.reject(
            Reject::new(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-cache")
                .body(&shared.page),
        ),
        (None, Some("/favicon.ico")) => hs.reject(
            Reject::new(200)
                .header("Content-Type", "image/svg+xml")
                .header("Cache-Control", "max-age=86400")
                .body(FAVICON),
        ),
        // A plain GET of /ws keeps the handshake's 400 (it is not an upgrade); a failed
        // handshake keeps its own response; a client that left gets none.
        (None, Some("/ws") | None) => Ok(()),
        (Some(_), _) | (None, Some(_)) => hs.reject(Reject::new(404).body("not found\n")),
    };
    debug_assert!(answer.is_ok(), "{answer:?}");
    if stream.write_all(hs.pending_transmit()).await.is_ok() {
        linger(stream).await;
    }
    None
}

/// The path without its query.
fn route(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _query)| path)
}

/// Whether a browser's `Origin` names the host the request was sent to (or there is none).
/// Behind a proxy this needs the client's `Host` passed on as it was (nginx:
/// `proxy_set_header Host $http_host`).
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.origin() else {
        return true;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|authority| authority.eq_ignore_ascii_case(request.host()))
}

/// Ends a plain HTTP exchange: closes our direction, then reads until the client closes
/// (for at most 2 s), so the response is not cut off by the reset that closing a socket with
/// unread input sends.
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 1024];
    let _ = timeout(Duration::from_secs(2), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
