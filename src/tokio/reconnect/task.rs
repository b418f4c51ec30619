//! The task behind a [`Client`](super::Client): connect, run the hook, carry messages both
//! ways until the connection ends, then decide, wait and start again.

use super::outbox::Shared;
use super::retry_after::retry_after;
use super::{Cause, Disconnected, Options, Reconnecting, Stop, Update};
use crate::close::{CloseCode, CloseFrame};
use crate::connection::{Connection, Event};
use crate::error::{Error, HandshakeError};
use crate::handshake::{ClientRequest, Response};
use crate::tokio::{MaybeTlsStream, WebSocket};
use futures_sink::Sink;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

type Ws = WebSocket<MaybeTlsStream>;
type Updates = mpsc::Sender<Update>;

/// The attempts since the last connection that lasted (see `Backoff::reset_after`).
#[derive(Debug, Default)]
struct Outage {
    attempts: u32,
    started: Option<Instant>,
}

/// What ended a connection or an attempt.
enum Failure {
    Closed(CloseFrame),
    Failed(Arc<Error>),
}

/// How a live connection ended.
enum Ended {
    /// The application asked to stop; the connection was closed.
    Stopped,
    /// It was lost; `up_for` is how long it had been up.
    Lost { failure: Failure, up_for: Duration },
}

/// How a session's message loop ended.
enum SessionEnd {
    /// A close request, or the client was dropped.
    StopRequested,
    /// The connection ended: the server's Close if one came, the error if one did.
    Lost {
        peer_close: Option<CloseFrame>,
        error: Option<Error>,
    },
}

/// One wake of the message loop.
enum Step {
    StopRequested,
    Event(Result<Option<Event>, Error>),
}

/// The task: runs until the client stops, then reports why.
pub(super) async fn run(
    request: ClientRequest,
    mut options: Options,
    shared: Arc<Shared>,
    updates: Updates,
) {
    // However the task ends (a panic in the hook, the runtime shutting down), senders must
    // learn that nothing more will be sent rather than wait for room forever.
    let _stopped = StopOnDrop(Arc::clone(&shared));
    let mut outage = Outage::default();
    let stop = loop {
        let Some(attempt) = unless_stopping(&shared, connect(&request, &mut options)).await else {
            break Stop::Closed;
        };
        // A lost connection was reported (`Disconnected`) with its error; a failed attempt
        // is reported with the next `Reconnecting`.
        let (failure, reported) = match attempt {
            Err(error) => (Failure::Failed(Arc::new(error)), false),
            Ok((ws, response)) => match connected(ws, response, &shared, &updates).await {
                Ended::Stopped => break Stop::Closed,
                Ended::Lost { failure, up_for } => {
                    if up_for >= options.backoff.reset_after {
                        outage = Outage::default();
                    }
                    (failure, true)
                }
            },
        };
        let cause = match &failure {
            Failure::Closed(frame) => Cause::Closed(frame),
            Failure::Failed(error) => Cause::Failed(error),
        };
        if !(options.reconnect_if)(&cause) {
            break match failure {
                Failure::Closed(frame) => Stop::PeerClosed(frame),
                Failure::Failed(error) => Stop::Failed(error),
            };
        }
        let error = match failure {
            Failure::Failed(error) => Some(error),
            Failure::Closed(_) => None,
        };
        let Some(delay) = next_delay(&mut outage, &mut options, error.as_deref()) else {
            break Stop::GaveUp(error);
        };
        let next = Reconnecting {
            attempt: outage.attempts,
            delay,
            error: if reported { None } else { error },
        };
        if updates.send(Update::Reconnecting(next)).await.is_err()
            || unless_stopping(&shared, tokio::time::sleep(delay))
                .await
                .is_none()
        {
            break Stop::Closed;
        }
    };
    shared.set_stopped();
    let _ = updates.send(Update::Stopped(stop)).await;
}

/// Marks the client stopped when dropped.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set_stopped();
    }
}

/// Connects, then runs the hook (bounded by the handshake timeout).
async fn connect(request: &ClientRequest, options: &mut Options) -> Result<(Ws, Response), Error> {
    let config = options.config.clone();
    let timeout = config.handshake_timeout;
    #[cfg(feature = "tokio-rustls")]
    let (mut ws, response) = match &options.tls {
        Some(tls) => crate::tokio::connect_tls(request.clone(), config, Arc::clone(tls)).await?,
        None => crate::tokio::connect_with(request.clone(), config).await?,
    };
    #[cfg(not(feature = "tokio-rustls"))]
    let (mut ws, response) = crate::tokio::connect_with(request.clone(), config).await?;
    if let Some(hook) = options.on_connect.as_mut() {
        // A failed hook drops the connection without a Close: it may be the connection
        // that failed.
        tokio::time::timeout(timeout, hook(&mut ws, &response))
            .await
            .map_err(|_| Error::Handshake(HandshakeError::Timeout))??;
    }
    Ok((ws, response))
}

/// Runs a connection from `Connected` to its end.
async fn connected(mut ws: Ws, response: Response, shared: &Shared, updates: &Updates) -> Ended {
    shared.set_connected(true);
    let up_since = Instant::now();
    let end = if updates
        .send(Update::Connected(Box::new(response)))
        .await
        .is_err()
    {
        SessionEnd::StopRequested
    } else {
        session(&mut ws, shared, updates).await
    };
    shared.set_connected(false);
    match end {
        SessionEnd::StopRequested => {
            // A close request, or the client was dropped: "going away" (RFC 6455 §7.4.1).
            let frame = shared
                .lock()
                .close
                .clone()
                .unwrap_or_else(|| CloseFrame::new(CloseCode::GOING_AWAY, ""));
            let disconnected = close(&mut ws, shared, updates, frame).await;
            let _ = updates.send(Update::Disconnected(disconnected)).await;
            Ended::Stopped
        }
        SessionEnd::Lost { peer_close, error } => {
            let error = error.map(Arc::new);
            let (code, reason) = match (&peer_close, &error) {
                (Some(frame), _) => (frame.code, frame.reason.to_string()),
                (None, Some(error)) => (code_of(error), error.to_string()),
                (None, None) => (CloseCode::NO_STATUS, String::new()),
            };
            let disconnected = Disconnected {
                code,
                reason,
                error: error.clone(),
            };
            let _ = updates.send(Update::Disconnected(disconnected)).await;
            let failure = match (peer_close, error) {
                (Some(frame), _) => Failure::Closed(frame),
                (None, Some(error)) => Failure::Failed(error),
                (None, None) => Failure::Closed(CloseFrame::new(CloseCode::NO_STATUS, "")),
            };
            Ended::Lost {
                failure,
                up_for: up_since.elapsed(),
            }
        }
    }
}

/// The close code a connection that failed with `error` ended with.
fn code_of(error: &Error) -> CloseCode {
    match error {
        Error::Protocol(e) => e.close_code(),
        _ => CloseCode::ABNORMAL,
    }
}

/// Carries messages both ways until the connection ends or the application stops it.
async fn session(ws: &mut Ws, shared: &Shared, updates: &Updates) -> SessionEnd {
    let mut peer_close = None;
    loop {
        match poll_fn(|cx| poll_session(cx, ws, shared)).await {
            Step::StopRequested => return SessionEnd::StopRequested,
            Step::Event(Ok(Some(Event::Message(message)))) => {
                if updates.send(Update::Message(message)).await.is_err() {
                    return SessionEnd::StopRequested;
                }
            }
            Step::Event(Ok(Some(Event::Close(frame)))) => peer_close = Some(frame),
            // Pings are answered by the core; Pongs are the keepalive's.
            Step::Event(Ok(Some(_))) => {}
            Step::Event(Ok(None)) => {
                return SessionEnd::Lost {
                    peer_close,
                    error: None,
                };
            }
            Step::Event(Err(error)) => {
                return SessionEnd::Lost {
                    peer_close,
                    error: Some(error),
                };
            }
        }
    }
}

/// One wake: stop if asked, move the outbox into the connection while it has room, then
/// read (which also writes what is queued and runs the timers).
fn poll_session(cx: &mut Context<'_>, ws: &mut Ws, shared: &Shared) -> Poll<Step> {
    if shared.stop_requested(cx.waker()) {
        return Poll::Ready(Step::StopRequested);
    }
    if let Err(error) = feed_outbox(cx, ws, shared) {
        return Poll::Ready(Step::Event(Err(error)));
    }
    ws.inner.poll_recv_event(cx).map(Step::Event)
}

/// Moves messages from the outbox to the connection, in order, while at most
/// `Config::write_buffer_high_water` bytes wait there: so what a drop can take with it is
/// bounded, and the rest waits in the outbox for the next connection.
fn feed_outbox(cx: &mut Context<'_>, ws: &mut Ws, shared: &Shared) -> Result<(), Error> {
    let mut moved = false;
    let result = loop {
        if !can_send(ws.connection()) || shared.lock().outbox.is_empty() {
            break Ok(());
        }
        match Pin::new(&mut *ws).poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => break Err(error),
            Poll::Pending => break Ok(()),
        }
        let Some(message) = shared.lock().outbox.pop_front() else {
            break Ok(());
        };
        if ws.inner.queue(|c| c.send(message.clone())).is_err() {
            // The connection stopped taking messages (it is closing): this one waits for
            // the next connection.
            shared.lock().outbox.push_front(message);
            break Ok(());
        }
        moved = true;
    };
    if moved {
        shared.notify_room();
    }
    result
}

/// Whether a connection still takes messages: no Close sent, no failure.
const fn can_send(connection: &Connection) -> bool {
    !connection.close_sent() && connection.error().is_none()
}

/// Closes a connection at the application's request: the outbox goes out first, then the
/// Close; messages that arrive meanwhile are still reported.
async fn close(ws: &mut Ws, shared: &Shared, updates: &Updates, frame: CloseFrame) -> Disconnected {
    let queued: Vec<_> = shared.lock().outbox.drain(..).collect();
    for message in queued {
        if ws.inner.queue(|c| c.send(message)).is_err() {
            break;
        }
    }
    // Refused only if a Close already went out (the server's was echoed): then the
    // closing handshake is under way and the loop below finishes it.
    let _ = ws
        .inner
        .queue(|c| c.send_close(frame.code, frame.reason.as_str()));
    let mut error = None;
    loop {
        match ws.recv_event().await {
            Ok(Some(Event::Message(message))) => {
                let _ = updates.send(Update::Message(message)).await;
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                error = Some(Arc::new(e));
                break;
            }
        }
    }
    Disconnected {
        code: frame.code,
        reason: frame.reason.to_string(),
        error,
    }
}

/// The wait before the next attempt, or `None` when the outage's budget is spent.
fn next_delay(
    outage: &mut Outage,
    options: &mut Options,
    error: Option<&Error>,
) -> Option<Duration> {
    let now = Instant::now();
    let started = *outage.started.get_or_insert(now);
    outage.attempts = outage.attempts.saturating_add(1);
    let backoff = &options.backoff;
    if backoff
        .max_attempts
        .is_some_and(|max| outage.attempts > max)
    {
        return None;
    }
    let mut random = [0u8; 8];
    options.jitter.fill(&mut random);
    let mut delay = backoff.delay(outage.attempts, u64::from_le_bytes(random));
    // RFC 9110 §10.2.3: Retry-After "indicates how long the user agent ought to wait before
    // making a follow-up request"; with 503, "how long the service is expected to be
    // unavailable to the client". The jitter still applies when it is the longer wait.
    if let Some(Error::Rejected(response)) = error {
        if let Some(wait) = retry_after(response, SystemTime::now()) {
            delay = delay.max(wait.min(backoff.max_retry_after));
        }
    }
    if let Some(max) = backoff.max_elapsed {
        let spent = now.saturating_duration_since(started);
        if spent.checked_add(delay).is_none_or(|total| total > max) {
            return None;
        }
    }
    Some(delay)
}

/// Runs `future` unless the application asks the client to stop first (`None` then).
async fn unless_stopping<F: Future>(shared: &Shared, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if shared.stop_requested(cx.waker()) {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await
}
