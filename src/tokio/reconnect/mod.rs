//! A client that reconnects by itself (feature `tokio`): backoff with full jitter, a
//! bounded outbox for what is sent while disconnected, an on-connect hook, keepalive, and
//! connection-state updates next to the messages.
//!
//! [`Client::spawn`] starts a task that connects, runs your
//! [`on_connect`](Options::on_connect) hook (re-authenticate, re-subscribe), then moves the
//! outbox to the connection in order and hands you what arrives. When the connection ends
//! for a reason worth retrying it waits ([`Backoff`]) and connects again. You read one
//! stream of [`Update`]s, messages and state changes in the order they happened:
//!
//! ```
//! use rfc6455::tokio::reconnect::{Client, Options, Stop, Update};
//! use rfc6455::{ClientRequest, CloseCode, Message};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("ws://{}/feed", listener.local_addr()?);
//! # tokio::spawn(async move {
//! #     let mut ws = rfc6455::tokio::accept(listener.accept().await.unwrap().0).await.unwrap();
//! #     while let Ok(Some(message)) = ws.recv().await {
//! #         if ws.send(message).await.is_err() { break; }
//! #     }
//! # });
//! let options = Options::default().on_connect(|ws, _response| {
//!     // Runs after every connect, before the outbox flows.
//!     Box::pin(async move { ws.send_text("subscribe prices").await })
//! });
//! let mut client = Client::spawn(ClientRequest::new(&url)?, options);
//! client.send("hello").await?; // queued; written once connected
//! while let Some(update) = client.recv().await {
//!     match update {
//!         Update::Connected(response) => println!("connected ({})", response.status()),
//!         Update::Message(message) => {
//!             println!("got {message:?}");
//!             if message == Message::from("hello") {
//!                 client.close(CloseCode::NORMAL, "done")?;
//!             }
//!         }
//!         Update::Disconnected(why) => println!("disconnected ({})", why.code.as_u16()),
//!         Update::Reconnecting(next) => println!("attempt {} in {:?}", next.attempt, next.delay),
//!         Update::Stopped(stop) => {
//!             assert!(matches!(stop, Stop::Closed));
//!             break;
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # When it reconnects
//!
//! The decision is [`Cause::is_transient`] unless you set your own with
//! [`Options::reconnect_if`]:
//!
//! * **reconnect** on I/O errors (connection refused or reset; not TLS certificate errors),
//!   the end of the stream without a Close (1006), a keepalive Pong that never came (1011),
//!   the server's Close with 1001 (going away), 1011, 1012 (restarting), 1013 (try again
//!   later) or 1014 (bad gateway); a handshake answered 5xx, 408 or 429, a handshake that
//!   timed out or was cut off;
//! * **stop** on the server's Close with 1000, 1008 (policy violation) or any other code,
//!   on the client's own protocol failures (1002, 1007, 1009), on other 4xx (a 401 will not
//!   fix itself), on 3xx (redirects are not followed), and on invalid requests.
//!
//! A `Retry-After` on a rejection (429, 503), in seconds or as an HTTP-date, makes the wait
//! at least that long (up to [`Backoff::max_retry_after`]).
//!
//! # Keepalive
//!
//! A TCP connection whose peer vanished (a laptop closed, a NAT that forgot us) stays open
//! without a byte until something is written. So keepalive is on for this client: the
//! default [`Options::config`] sends a Ping after 10 s without input and gives up 10 s later
//! (1011, which reconnects); a dead connection is noticed within 20 s.
//!
//! # What WebSocket cannot promise
//!
//! WebSocket runs over TCP, which acknowledges bytes to the peer's kernel, not messages to
//! its application; and neither side learns which of its last writes arrived when a
//! connection breaks. So:
//!
//! * a message handed to a connection shortly before it dropped **may or may not have
//!   arrived**. The client does not resend it (it cannot know), and a message still in the
//!   outbox is sent on the next connection;
//! * "sent" ([`Sender::send`] returning `Ok`) means queued, never delivered;
//! * messages the server sent while we were disconnected are lost unless the server keeps
//!   them and the application asks for them again (send the last ID seen from the hook);
//! * **at-least-once delivery needs acknowledgements from the application**: number your
//!   messages, have the other side acknowledge them, resend what is unacknowledged after a
//!   reconnect (from the hook), and make handling a duplicate harmless.
//!
//! # Outbox
//!
//! Sends go through a bounded outbox ([`Options::outbox_capacity`], default 1024 messages).
//! While connected it drains as fast as the connection writes (messages move to the
//! connection while less than `Config::write_buffer_high_water` waits there, so a drop
//! takes at most that much plus one message with it) and a full outbox makes
//! [`Sender::send`] wait. While disconnected it fills, and a full outbox follows
//! [`OutboxPolicy`]: `Refuse` (the default: the send fails and gives the message back) or
//! `DropOldest`. [`Client::close`] writes what is left before its Close; when the client
//! stops otherwise, what is left is dropped.
//!
//! Keep reading updates: while the application does not, the task waits for it, and so do
//! the socket's reads, the outbox and the keepalive (the server sees the back-pressure).

mod backoff;
mod outbox;
mod retry_after;
mod task;

pub use backoff::Backoff;
pub use outbox::Sender;

use super::{MaybeTlsStream, WebSocket};
use crate::close::{CloseCode, CloseFrame};
use crate::config::Config;
use crate::entropy::{Entropy, default_entropy};
use crate::error::{Error, HandshakeError, ProxyError, UsageError};
use crate::handshake::{ClientRequest, Response};
use crate::message::Message;
use futures_core::Stream;
use outbox::Shared;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Updates buffered for the application before the task waits for it to read (reading the
/// socket waits too: back-pressure reaches the server through TCP).
const UPDATES: usize = 128;

// ------------------------------------------------------------------ updates

/// What the [`Client`] reports, in the order it happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Update {
    /// A message from the server.
    Message(Message),
    /// A connection is up and the [`on_connect`](Options::on_connect) hook has run; the
    /// outbox flows now. Holds the server's handshake response (subprotocol, cookies).
    Connected(Box<Response>),
    /// The connection is gone.
    Disconnected(Disconnected),
    /// The client waits `delay`, then makes attempt `attempt`.
    Reconnecting(Reconnecting),
    /// The client has stopped for good; this is the last update.
    Stopped(Stop),
}

/// How a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Disconnected {
    /// The server's close code (1005 if its Close had none); the code of our own Close when
    /// the client failed the connection (1002, 1009, 1011 for a late keepalive Pong) or
    /// closed it; 1006 when it ended without a closing handshake (I/O error, end of stream).
    pub code: CloseCode,
    /// The Close frame's reason, or the error's message.
    pub reason: String,
    /// The error that ended it, if one did.
    pub error: Option<Arc<Error>>,
}

/// The next connection attempt.
#[derive(Debug)]
#[non_exhaustive]
pub struct Reconnecting {
    /// Attempts in this outage, this one included (1 after a disconnect, see
    /// [`Backoff::reset_after`]).
    pub attempt: u32,
    /// How long the client waits before it (full jitter, or the server's `Retry-After`).
    pub delay: Duration,
    /// Why the previous attempt failed; `None` for the first attempt after a disconnect
    /// (its [`Disconnected`] said why).
    pub error: Option<Arc<Error>>,
}

/// Why the client stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stop {
    /// The application asked ([`Client::close`], or the `Client` was dropped).
    Closed,
    /// The server closed with a code the policy does not retry (1000, 1008, ... by default;
    /// see the [`Disconnected`] before this).
    PeerClosed(CloseFrame),
    /// A failure the policy does not retry (a 401, a certificate error, a bad URI, the
    /// client's own protocol failure ...).
    Failed(Arc<Error>),
    /// [`Backoff::max_attempts`] or [`Backoff::max_elapsed`] ran out; the last failure, if
    /// the last attempt had one.
    GaveUp(Option<Arc<Error>>),
}

/// What ended a connection or an attempt, for the reconnect policy.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Cause<'a> {
    /// The server closed the connection with this frame.
    Closed(&'a CloseFrame),
    /// A connection, a connect attempt or the on-connect hook failed with this error.
    Failed(&'a Error),
}

impl Cause<'_> {
    /// The default policy: whether this cause is worth reconnecting for (see the module
    /// docs, "When it reconnects").
    ///
    /// ```
    /// use rfc6455::tokio::reconnect::Cause;
    /// use rfc6455::{CloseCode, CloseFrame, Error, ProtocolError};
    /// let restart = CloseFrame::new(CloseCode::SERVICE_RESTART, "deploy");
    /// assert!(Cause::Closed(&restart).is_transient());
    /// let normal = CloseFrame::new(CloseCode::NORMAL, "");
    /// assert!(!Cause::Closed(&normal).is_transient());
    /// let eof = Error::Protocol(ProtocolError::UnexpectedEof);
    /// assert!(Cause::Failed(&eof).is_transient());
    /// ```
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Closed(frame) => transient_code(frame.code),
            Self::Failed(error) => transient_error(error),
        }
    }
}

/// Close codes that say "try again": going away, abnormal, internal error, restarting,
/// try again later, bad gateway.
const fn transient_code(code: CloseCode) -> bool {
    matches!(code.as_u16(), 1001 | 1006 | 1011 | 1012 | 1013 | 1014)
}

/// HTTP statuses that say "try again": timeout, too many requests, server errors.
const fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

fn transient_error(error: &Error) -> bool {
    match error {
        // Our side ended the connection with this code: 1006 for the end of the stream or
        // a close that never finished, 1011 for a keepalive Pong that never came; 1002,
        // 1007, 1009 for a server that broke the protocol, which a reconnect will not fix.
        Error::Protocol(e) => transient_code(e.close_code()),
        // TLS failures (an untrusted or expired certificate) and unusable addresses do not
        // heal by themselves; refused, reset, unreachable may.
        Error::Io(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        ),
        Error::Rejected(response) => transient_status(response.status()),
        Error::Handshake(e) => match e {
            HandshakeError::Timeout | HandshakeError::UnexpectedEof => true,
            HandshakeError::UnexpectedStatus(status) => transient_status(*status),
            HandshakeError::Proxy(proxy) => match proxy {
                ProxyError::Timeout | ProxyError::UnexpectedEof => true,
                ProxyError::Refused(status) => transient_status(*status),
                // RFC 1928 §6: general failure, network or host unreachable, connection
                // refused, TTL expired.
                ProxyError::Socks5Reply(code) => matches!(code, 1 | 3 | 4 | 5 | 6),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

// ------------------------------------------------------------------ options

/// What a hook returns: a boxed future borrowing the connection.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// The on-connect hook (see [`Options::on_connect`]).
type Hook = Box<
    dyn for<'a> FnMut(&'a mut WebSocket<MaybeTlsStream>, &'a Response) -> HookFuture<'a> + Send,
>;

/// The reconnect policy (see [`Options::reconnect_if`]).
type Policy = Arc<dyn Fn(&Cause<'_>) -> bool + Send + Sync>;

/// What a full outbox does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutboxPolicy {
    /// While disconnected the send fails with [`SendError::Full`], giving the message back;
    /// while connected [`Sender::send`] waits for room. The default: the application
    /// decides what is worth keeping.
    #[default]
    Refuse,
    /// The oldest queued message is dropped to make room, connected or not (for updates
    /// where only the latest matter: positions, prices).
    DropOldest,
}

/// How the [`Client`] connects, retries and queues.
///
/// ```
/// use rfc6455::tokio::reconnect::{Backoff, Options, OutboxPolicy};
/// use std::time::Duration;
/// let options = Options::default()
///     .backoff(Backoff::default().cap(Duration::from_secs(10)).max_attempts(Some(20)))
///     .outbox_capacity(100)
///     .outbox_policy(OutboxPolicy::DropOldest)
///     .configure(|config| config.max_message_size(1 << 20));
/// // Keepalive stays on: `configure` starts from this client's defaults.
/// assert_eq!(options.config.keepalive_interval, Some(Duration::from_secs(10)));
/// ```
#[non_exhaustive]
pub struct Options {
    /// The connection's limits and timers. Default: `Config::default()` with keepalive on
    /// (a Ping after 10 s without input, 10 s for the Pong), so a half-open connection is
    /// noticed. `streaming_threshold` is ignored: updates carry whole messages.
    pub config: Config,
    /// When to retry, and how long to wait. Default [`Backoff::default`].
    pub backoff: Backoff,
    /// Messages the outbox holds (at least 1). Default 1024.
    pub outbox_capacity: usize,
    /// What a full outbox does. Default [`OutboxPolicy::Refuse`].
    pub outbox_policy: OutboxPolicy,
    reconnect_if: Policy,
    on_connect: Option<Hook>,
    jitter: Box<dyn Entropy>,
    #[cfg(feature = "tokio-rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: Config::default()
                .keepalive_interval(Some(Duration::from_secs(10)))
                .keepalive_timeout(Duration::from_secs(10)),
            backoff: Backoff::default(),
            outbox_capacity: 1024,
            outbox_policy: OutboxPolicy::Refuse,
            reconnect_if: Arc::new(|cause: &Cause<'_>| cause.is_transient()),
            on_connect: None,
            jitter: default_entropy(),
            #[cfg(feature = "tokio-rustls")]
            tls: None,
        }
    }
}

impl core::fmt::Debug for Options {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Options")
            .field("config", &self.config)
            .field("backoff", &self.backoff)
            .field("outbox_capacity", &self.outbox_capacity)
            .field("outbox_policy", &self.outbox_policy)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Changes the connection's config, starting from this one (keepalive on by default).
    #[must_use]
    pub fn configure(mut self, change: impl FnOnce(Config) -> Config) -> Self {
        self.config = change(self.config);
        self
    }

    /// Sets the backoff.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the outbox capacity, in messages (at least 1).
    #[must_use]
    pub const fn outbox_capacity(mut self, messages: usize) -> Self {
        self.outbox_capacity = messages;
        self
    }

    /// Sets what a full outbox does.
    #[must_use]
    pub const fn outbox_policy(mut self, policy: OutboxPolicy) -> Self {
        self.outbox_policy = policy;
        self
    }

    /// Replaces the reconnect policy: `policy` says whether a cause is worth reconnecting
    /// for. [`Cause::is_transient`] is the default; extend it rather than start over:
    ///
    /// ```
    /// use rfc6455::CloseCode;
    /// use rfc6455::tokio::reconnect::{Cause, Options};
    /// // Also come back after the server's 1000 ("normal closure").
    /// let options = Options::default().reconnect_if(|cause| {
    ///     let normal = matches!(cause, Cause::Closed(f) if f.code == CloseCode::NORMAL);
    ///     cause.is_transient() || normal
    /// });
    /// ```
    #[must_use]
    pub fn reconnect_if(
        mut self,
        policy: impl Fn(&Cause<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.reconnect_if = Arc::new(policy);
        self
    }

    /// Sets the hook that runs after each connect, before the outbox flows and before
    /// [`Update::Connected`]: re-authenticate, re-subscribe, ask for what was missed. It
    /// gets the connection and the server's handshake response; messages it receives are
    /// its own (they are not reported as updates).
    ///
    /// It is bounded by `Config::handshake_timeout`. An error (or the timeout, reported as
    /// [`HandshakeError::Timeout`]) counts as a failed attempt: the connection is dropped and
    /// the reconnect policy decides.
    ///
    /// ```
    /// use rfc6455::tokio::reconnect::Options;
    /// let token = String::from("secret");
    /// let options = Options::default().on_connect(move |ws, response| {
    ///     let line = format!("auth {token} {}", response.protocol().unwrap_or("-"));
    ///     Box::pin(async move { ws.send_text(&line).await })
    /// });
    /// ```
    #[must_use]
    pub fn on_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'a> FnMut(&'a mut WebSocket<MaybeTlsStream>, &'a Response) -> HookFuture<'a>
            + Send
            + 'static,
    {
        self.on_connect = Some(Box::new(hook));
        self
    }

    /// Sets where the backoff's jitter comes from (8 bytes per delay). Default: the OS
    /// CSPRNG. Tests inject a seeded source to replay a schedule.
    #[must_use]
    pub fn jitter_entropy(mut self, entropy: impl Entropy + 'static) -> Self {
        self.jitter = Box::new(entropy);
        self
    }

    /// Sets the TLS client config for `wss://` (a private CA, client certificates).
    /// Default: [`tls::default_client_config`](crate::tls::default_client_config).
    #[cfg(feature = "tokio-rustls")]
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

// ------------------------------------------------------------------ client

/// Why a message was not queued; holds the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outbox is full (while disconnected with [`OutboxPolicy::Refuse`], or any time
    /// from [`Sender::try_send`]).
    #[error("outbox is full")]
    Full(Message),
    /// The client has stopped: nothing more will be sent.
    #[error("reconnecting client has stopped")]
    Stopped(Message),
}

impl SendError {
    /// The message that was not queued.
    #[must_use]
    pub fn into_message(self) -> Message {
        match self {
            Self::Full(m) | Self::Stopped(m) => m,
        }
    }
}

/// A WebSocket client that reconnects by itself (see the [module docs](self)).
///
/// Read it with [`recv`](Self::recv) (or as a [`Stream`] of [`Update`]s); send with
/// [`send`](Self::send), or from other tasks through a [`sender`](Self::sender). Dropping
/// it closes the connection (1001) and stops the task.
#[derive(Debug)]
pub struct Client {
    sender: Sender,
    updates: mpsc::Receiver<Update>,
}

impl Client {
    /// Starts connecting to `request` in a new task and returns at once; the first update
    /// says how it went ([`Update::Connected`], [`Update::Reconnecting`] or
    /// [`Update::Stopped`]).
    ///
    /// # Panics
    /// Outside a tokio runtime (it calls [`tokio::spawn`]).
    #[must_use]
    pub fn spawn(request: ClientRequest, mut options: Options) -> Self {
        // Updates carry whole messages.
        options.config.streaming_threshold = None;
        let shared = Arc::new(Shared::new(options.outbox_capacity, options.outbox_policy));
        let (tx, updates) = mpsc::channel(UPDATES);
        tokio::spawn(task::run(request, options, Arc::clone(&shared), tx));
        Self {
            sender: Sender { shared },
            updates,
        }
    }

    /// The next update; `None` after [`Update::Stopped`].
    ///
    /// Cancel safety: cancel safe.
    pub async fn recv(&mut self) -> Option<Update> {
        self.updates.recv().await
    }

    /// As [`Sender::send`].
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.sender.send(message).await
    }

    /// As [`Sender::try_send`].
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.sender.try_send(message)
    }

    /// As [`Sender::close`]: keep reading updates until `None` to see it finish.
    ///
    /// # Errors
    /// As [`Sender::close`].
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        self.sender.close(code, reason)
    }

    /// A handle for sending from other tasks.
    #[must_use]
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Whether a connection is up (and its hook has run) right now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.sender.is_connected()
    }
}

impl Stream for Client {
    type Item = Update;

    /// As [`Client::recv`].
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        self.get_mut().updates.poll_recv(cx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let mut state = self.sender.shared.lock();
        state.client_gone = true;
        state.wake_task();
    }
}
