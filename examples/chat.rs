//! Chat server: one port serves a chat page at `/` and its WebSocket at `/ws`. Every message
//! a client sends goes to every connected client, the sender included, so two browser tabs
//! make a chat.
//!
//! ```text
//! cargo run --release --example chat -- [ADDR]      # default 127.0.0.1:9002
//! ```
//!
//! Then open `http://127.0.0.1:9002/` in two tabs. Default features only (the blocking
//! adapter), one thread per connection:
//!
//! * **Page and WebSocket on one port.** The handshake runs over the sans-IO
//!   [`ServerHandshake`] rather than `sync::accept`. A browser's plain `GET /` is not a
//!   WebSocket upgrade, so the handshake fails with a queued 400, but
//!   [`ServerHandshake::plain_http_path`] still gives its path. That lets the server replace
//!   the 400 with the page (`Reject::new(200)`) or a 404. An upgrade at `/ws` becomes a
//!   [`sync::WebSocket`] through `WebSocket::from_connection`.
//! * **Same-origin upgrades only.** A browser sends `Origin` with every WebSocket request;
//!   `/ws` refuses other sites' pages with 403 (cross-site WebSocket hijacking, RFC 6455
//!   §10.2). Clients that send no `Origin` (not browsers) are let in.
//! * **Encode once, send many.** A received message is encoded once as a
//!   [`PreparedMessage`] and an `Arc` of it goes into each member's queue. Each connection's
//!   thread alternates a short `recv_timeout` with writing what its queue holds
//!   (`send_prepared`: no re-encoding, no copy). A tokio server would `select!` on both
//!   instead of polling. A member whose queue fills up (it stopped reading) leaves the room and
//!   is closed with 1008, so one stuck client costs the others nothing.

use rfc6455::handshake::{Accept, Reject, Request, ServerHandshake};
use rfc6455::sync::WebSocket;
use rfc6455::{CloseCode, Config, Connection, Error, PreparedMessage};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a connection waits for its client's next message before it writes out the
/// broadcasts queued for it. This is the longest a broadcast waits before it is sent.
const POLL: Duration = Duration::from_millis(20);
/// Broadcasts that can wait in one member's queue. A member with a full queue has stopped
/// reading, and is dropped.
const QUEUE: usize = 1024;
/// The largest chat message accepted; a larger one closes the sender's connection with 1009.
const MAX_MESSAGE: u64 = 1 << 20;
/// How long a write to a client may block before its data just stays queued in the
/// connection. Past `Config::write_buffer_high_water` (1 MiB), a send fails and the connection
/// ends.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The chat page (`examples/chat.html`, shared with `tokio_chat`). It connects to `/ws` on its
/// own host, sets `window.chatReady` once the socket is open, and appends each received
/// message to `#log` as an `<li>`.
const PAGE: &str = include_str!("chat.html");

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr)?;
    let addr = listener.local_addr()?;
    println!("chat server on http://{addr}/ (WebSocket at ws://{addr}/ws)");
    serve(listener)
}

/// Serves the chat on `listener`, a thread per connection, until accepting fails.
///
/// # Errors
/// Never returns in normal operation; `Ok` if the listener's stream of connections ends.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    let config = Config::default().max_message_size(MAX_MESSAGE);
    let room = Arc::new(Room::default());
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("chat: accept failed: {e}");
                continue;
            }
        };
        let (room, config) = (Arc::clone(&room), config.clone());
        thread::spawn(move || handle(stream, &room, &config));
    }
    Ok(())
}

/// Everyone connected: a bounded queue of broadcasts per member.
#[derive(Default)]
struct Room {
    members: Mutex<Vec<(u64, SyncSender<Arc<PreparedMessage>>)>>,
    next_id: AtomicU64,
}

impl Room {
    fn join(&self) -> (u64, Receiver<Arc<PreparedMessage>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        self.lock().push((id, tx));
        (id, rx)
    }

    fn leave(&self, id: u64) {
        self.lock().retain(|(member, _)| *member != id);
    }

    /// Queues `message` for every member. A member whose queue is full (or who is gone) is
    /// dropped from the room; its connection sees its queue disconnect and closes.
    fn broadcast(&self, message: &Arc<PreparedMessage>) {
        self.lock()
            .retain(|(_, queue)| queue.try_send(Arc::clone(message)).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, SyncSender<Arc<PreparedMessage>>)>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One client connection, from its first byte to its end.
fn handle(mut stream: TcpStream, room: &Room, config: &Config) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Some(connection) = handshake(&mut stream, config) else {
        return;
    };
    let mut ws = WebSocket::from_connection(stream, connection);
    let (id, queue) = room.join();
    let result = chat(&mut ws, room, &queue, config);
    room.leave(id);
    if let Err(e) = result {
        eprintln!("chat: connection ended: {e}");
    }
}

/// Relays messages between one client and the room until the connection ends.
fn chat(
    ws: &mut WebSocket<TcpStream>,
    room: &Room,
    queue: &Receiver<Arc<PreparedMessage>>,
    config: &Config,
) -> Result<(), Error> {
    ws.flush()?; // the 101 response
    loop {
        match ws.recv_timeout(POLL) {
            Ok(Some(message)) => room.broadcast(&Arc::new(PreparedMessage::new(&message, config))),
            Ok(None) => return Ok(()), // the closing handshake is complete
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
        loop {
            match queue.try_recv() {
                Ok(prepared) => ws.send_prepared(&prepared)?,
                Err(TryRecvError::Empty) => break,
                // The room dropped us: our queue overflowed while we were not keeping up.
                Err(TryRecvError::Disconnected) => {
                    return ws.close(CloseCode::POLICY_VIOLATION, "too slow");
                }
            }
        }
    }
}

/// Reads the request and answers it. Returns the connection (its 101 response queued) for
/// a WebSocket at `/ws`; otherwise writes the page, a 403 or 404, or the handshake's own
/// error response (400, 408, 431, ...), and returns `None`.
fn handshake(stream: &mut TcpStream, config: &Config) -> Option<Connection> {
    let start = Instant::now();
    let mut hs = ServerHandshake::new(config.clone());
    hs.handle_timeout(Duration::ZERO); // starts the handshake timer
    let mut buf = [0u8; 4096];
    while hs.request().is_none() && hs.error().is_none() {
        let deadline = hs.poll_timeout()?;
        let wait = deadline.saturating_sub(start.elapsed());
        stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        // A failure is sticky in the handshake, which has queued its response: the loop
        // condition sees it.
        let _ = match stream.read(&mut buf) {
            Ok(0) => hs.receive_eof(),
            Ok(n) => hs.receive(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                hs.handle_timeout(start.elapsed());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(_) => return None,
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
        // handshake keeps its own response (400, 408, 431, ...); a client that left gets none.
        (None, Some("/ws") | None) => Ok(()),
        (Some(_), _) | (None, Some(_)) => hs.reject(Reject::new(404).body("not found\n")),
    };
    debug_assert!(answer.is_ok(), "{answer:?}");
    if stream.write_all(hs.pending_transmit()).is_ok() {
        linger(stream);
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
/// (bounded), so the response is not cut off by a reset that closing with unread input
/// would send.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut sink = [0u8; 1024];
    for _ in 0..64 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}
