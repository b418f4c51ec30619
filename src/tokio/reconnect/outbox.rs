//! The state a [`Client`](super::Client), its [`Sender`]s and the connection task share:
//! the outbox, the connection state, and the application's requests.

use super::{OutboxPolicy, SendError};
use crate::close::{CloseCode, CloseFrame};
use crate::error::UsageError;
use crate::message::Message;
use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use tokio::sync::Notify;

/// Shared between the task and every handle.
#[derive(Debug)]
pub(super) struct Shared {
    state: Mutex<State>,
    /// Woken when the outbox makes room or the state changes (senders waiting for room,
    /// or for the end).
    room: Notify,
}

/// What the lock protects.
#[derive(Debug)]
pub(super) struct State {
    pub(super) outbox: VecDeque<Message>,
    capacity: usize,
    policy: OutboxPolicy,
    /// A connection is up and its hook has run: the outbox flows.
    pub(super) connected: bool,
    /// The task has ended: nothing more is sent.
    pub(super) stopped: bool,
    /// The application asked to close, with this frame.
    pub(super) close: Option<CloseFrame>,
    /// The `Client` (and with it the stream of updates) was dropped.
    pub(super) client_gone: bool,
    /// The task, to wake when something above changes.
    task: Option<Waker>,
}

impl Shared {
    pub(super) fn new(capacity: usize, policy: OutboxPolicy) -> Self {
        Self {
            state: Mutex::new(State {
                outbox: VecDeque::new(),
                capacity: capacity.max(1),
                policy,
                connected: false,
                stopped: false,
                close: None,
                client_gone: false,
                task: None,
            }),
            room: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock can panic halfway through an update.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the task's waker and says whether the application wants the task to stop
    /// (a close request, or the client dropped).
    pub(super) fn stop_requested(&self, waker: &Waker) -> bool {
        let mut state = self.lock();
        state.register(waker);
        state.close.is_some() || state.client_gone
    }

    /// Wakes the senders waiting for room (after the outbox drained, or a state change).
    pub(super) fn notify_room(&self) {
        self.room.notify_waiters();
    }

    /// Marks the connection up or down.
    pub(super) fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
        self.notify_room();
    }

    /// Marks the task done: the outbox is dropped and every sender fails from now on.
    pub(super) fn set_stopped(&self) {
        {
            let mut state = self.lock();
            state.stopped = true;
            state.connected = false;
            state.outbox.clear();
        }
        self.notify_room();
    }
}

impl State {
    pub(super) fn register(&mut self, waker: &Waker) {
        if !self.task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.task = Some(waker.clone());
        }
    }

    pub(super) fn wake_task(&mut self) {
        if let Some(task) = self.task.take() {
            task.wake();
        }
    }

    /// Queues `message` if there is room (or room can be made by the policy). `Err(message)`
    /// when the outbox is full and the caller may wait (connected, policy `Refuse`).
    fn offer(&mut self, message: Message) -> Result<Result<(), SendError>, Message> {
        if self.stopped {
            return Ok(Err(SendError::Stopped(message)));
        }
        if self.outbox.len() >= self.capacity {
            match self.policy {
                OutboxPolicy::DropOldest => {
                    self.outbox.pop_front();
                }
                OutboxPolicy::Refuse if self.connected => return Err(message),
                OutboxPolicy::Refuse => return Ok(Err(SendError::Full(message))),
            }
        }
        self.outbox.push_back(message);
        self.wake_task();
        Ok(Ok(()))
    }
}

/// A handle that sends through a [`Client`](super::Client)'s outbox; cheap to clone, for
/// other tasks. It does not keep the client alive: once the `Client` is dropped (or
/// stopped) sends fail with [`SendError::Stopped`].
#[derive(Debug, Clone)]
pub struct Sender {
    pub(super) shared: Arc<Shared>,
}

impl Sender {
    /// Queues a message in the outbox; it is written in order once a connection is up and
    /// the [`on_connect`](super::Options::on_connect) hook has run.
    ///
    /// With the outbox full, the [`OutboxPolicy`] decides: `DropOldest` drops the oldest
    /// queued message; `Refuse` waits for room while connected (the connection drains the
    /// outbox: back-pressure) and fails while disconnected.
    ///
    /// Returns once the message is queued: that says nothing about delivery (see the
    /// module docs, "What WebSocket cannot promise").
    ///
    /// Cancel safety: cancel safe; a message is queued only in the poll that returns `Ok`.
    ///
    /// # Errors
    /// [`SendError::Full`] (disconnected, outbox full, policy `Refuse`) and
    /// [`SendError::Stopped`] (the client has stopped), each giving the message back.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let mut message = message.into();
        loop {
            let mut room = pin!(self.shared.room.notified());
            // Registered before the check, so a wake between the check and the wait is kept.
            room.as_mut().enable();
            match self.shared.lock().offer(message) {
                Ok(result) => return result,
                Err(back) => message = back,
            }
            room.await;
        }
    }

    /// Queues a message without waiting: as [`send`](Self::send), but a full outbox while
    /// connected is [`SendError::Full`] too (unless the policy drops the oldest).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.shared
            .lock()
            .offer(message.into())
            .unwrap_or_else(|message| Err(SendError::Full(message)))
    }

    /// Asks the client to close: what is in the outbox is written first if a connection is
    /// up, then a Close with `code` and `reason`; the client waits for the server's Close
    /// (up to `Config::close_timeout`) and stops without reconnecting. Returns at once; the
    /// updates end with [`Disconnected`](super::Update::Disconnected) (if a connection was
    /// up) and [`Stopped`](super::Update::Stopped)`(`[`Stop::Closed`](super::Stop::Closed)`)`.
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent (1005, 1006, 1015,
    /// below 1000 ...), [`UsageError::CloseReasonTooLong`] beyond 123 bytes; nothing changes.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        // RFC 6455 §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close
        // control frame by an endpoint".
        if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.as_u16()));
        }
        // RFC 6455 §5.5: control frames carry at most 125 bytes, 2 of them the code.
        if reason.len() > 123 {
            return Err(UsageError::CloseReasonTooLong(reason.len()));
        }
        let mut state = self.shared.lock();
        if state.close.is_none() {
            state.close = Some(CloseFrame::new(code, reason));
        }
        state.wake_task();
        Ok(())
    }

    /// Whether a connection is up (and its hook has run) right now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Whether the client has stopped for good.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }

    /// Waits until the client has stopped for good (a producer task can end with it).
    ///
    /// Cancel safety: cancel safe.
    pub async fn stopped(&self) {
        loop {
            let mut change = pin!(self.shared.room.notified());
            change.as_mut().enable();
            if self.shared.lock().stopped {
                return;
            }
            change.await;
        }
    }

    /// Messages waiting in the outbox (for showing them as pending).
    #[must_use]
    pub fn outbox_len(&self) -> usize {
        self.shared.lock().outbox.len()
    }
}
