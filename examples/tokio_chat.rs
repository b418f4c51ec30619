//! Chat server on the tokio adapter: the page of the `chat` example at `/` and its WebSocket at
//! `/ws`, on one port. Every message a client sends goes to every connected client, the
//! sender included, so two browser tabs make a chat.
//!
//! ```text
//! cargo run --release --example tokio_chat -- [ADDR]      # default 127.0.0.1:9002
//! ```
//!
//! Then open `http://127.0.0.1:9002/` in two tabs. It prints
//! `tokio chat server on http://ADDR/ (WebSocket at ws://ADDR/ws)` once it listens.
//!
//! What differs from the blocking `chat` example:
//!
//! * **A task per connection, no polling.** Each task `select!`s between the client's next
//!   message and the room's next broadcast. [`WebSocket::recv`] is cancel safe: when a
//!   broadcast wins the race, the half-read message stays buffered in the connection for the
//!   next `recv`.
//! * **The room is a `tokio::sync::broadcast` channel** of [`PreparedMessage`]s: a message is
//!   framed once and every member's task sends the same bytes. A member that falls more than
//!   `QUEUE` messages behind is told so by the channel (`Lagged`) and closed with 1008; a
//!   client that stops reading altogether is dropped once a send has waited `WRITE_TIMEOUT`.
//!
//! As in `chat`, the handshake runs over the sans-IO [`ServerHandshake`] so the same port can
//! answer a browser's plain `GET /` with the page, and `/ws` refuses other sites' pages
//! (cross-site WebSocket hijacking, RFC 6455 §10.2).

use rfc6455::handshake::{Accept, Reject, Request, ServerHandshake};
use rfc6455::tokio::WebSocket;
use rfc6455::{CloseCode, Config, Connection, Error, PreparedMessage};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, timeout, timeout_at};

/// Broadcasts one member may fall behind by before it is closed with 1008.
const QUEUE: usize = 1024;
/// The largest chat message accepted; a larger one closes the sender's connection with 1009.
const MAX_MESSAGE: u64 = 1 << 20;
/// How long one broadcast may wait to be written to a member before the member is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The page, shared with the blocking `chat` example.
const PAGE: &str = include_str!("chat.html");

type Room = broadcast::Sender<Arc<PreparedMessage>>;

#[tokio::main]
async fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    println!("tokio chat server on http://{addr}/ (WebSocket at ws://{addr}/ws)");
    let config = Config::default().max_message_size(MAX_MESSAGE);
    let (room, _) = broadcast::channel(QUEUE);
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
        let (room, config) = (room.clone(), config.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = handle(stream, &room, &config).await {
                eprintln!("tokio_chat: connection ended: {e}");
            }
        });
    }
}

/// One client connection, from its first byte to its end.
async fn handle(mut stream: TcpStream, room: &Room, config: &Config) -> Result<(), Error> {
    let Some(connection) = handshake(&mut stream, config).await else {
        return Ok(());
    };
    let mut ws = WebSocket::from_connection(stream, connection);
    // Subscribed before the 101 goes out: nothing said after the client is in is missed.
    let mut inbox = room.subscribe();
    ws.flush().await?; // the 101 response
    loop {
        tokio::select! {
            received = ws.recv() => match received? {
                Some(message) => {
                    // Only fails when nobody is subscribed, and this member is.
                    let _ = room.send(Arc::new(PreparedMessage::new(&message, config)));
                }
                None => return Ok(()), // the closing handshake is complete
            },
            broadcast = inbox.recv() => match broadcast {
                Ok(prepared) => timeout(WRITE_TIMEOUT, ws.send_prepared(&prepared))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))??,
                Err(RecvError::Lagged(_)) => {
                    return ws.close(CloseCode::POLICY_VIOLATION, "too slow").await;
                }
                // `main` holds the room's sender for as long as the server runs.
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Reads the request and answers it. Returns the connection (its 101 response queued) for
/// a WebSocket at `/ws`; otherwise writes the page, a 403 or 404, or the handshake's own
/// error response (400, 408, 431, ...), and returns `None`.
async fn handshake(stream: &mut TcpStream, config: &Config) -> Option<Connection> {
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
                return hs.accept(Accept::new()).ok();
            }
            hs.reject(Reject::new(403).body("cross-origin WebSocket refused\n"))
        }
        (None, Some("/")) => hs.reject(
            Reject::new(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-cache")
                .body(PAGE),
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
