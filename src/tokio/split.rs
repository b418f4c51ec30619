//! The split halves: two handles on one `Arc<Mutex<Inner>>`, each registering its own task's
//! waker on its own direction of the stream (see the parent module's docs).

use super::{Inner, WebSocket};
use crate::adapters::send_family;
use crate::connection::{Connection, Event};
use crate::error::{Error, UsageError};
use crate::message::Message;
use ::tokio::io::{AsyncRead, AsyncWrite};
use futures_core::Stream;
use futures_sink::Sink;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Runs `f` under the lock (never held across an `.await`), then wakes whatever `f` asked to
/// wake, outside the lock.
fn with_lock<S, R>(shared: &Mutex<Inner<S>>, f: impl FnOnce(&mut Inner<S>) -> R) -> R {
    // The state is only mutated by the core's own methods; a panic in another task's poll
    // does not leave it torn in a way we could repair by refusing to continue.
    let mut inner = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let result = f(&mut inner);
    let wakes = inner.driver.take_wakes();
    drop(inner);
    for waker in wakes.into_iter().flatten() {
        waker.wake();
    }
    result
}

/// Shares `inner` between a new pair of halves.
pub(super) fn split<S>(inner: Inner<S>) -> (ReadHalf<S>, WriteHalf<S>) {
    let shared = Arc::new(Mutex::new(inner));
    (
        ReadHalf {
            shared: Arc::clone(&shared),
        },
        WriteHalf { shared },
    )
}

/// The reading half of a split [`WebSocket`]: [`recv`](Self::recv), [`recv_event`](Self::recv_event)
/// and a [`Stream`] of messages. It also drives the timers and writes the protocol's replies
/// (Pong, Close echo), so keep a task polling it.
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The writing half of a split [`WebSocket`]: the `send*` methods (our Close with
/// [`send_close`](Self::send_close), which does not wait for the peer's),
/// [`flush`](Self::flush) and a [`Sink`] of messages.
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S> core::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> core::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// As [`WebSocket::recv`] (cancel safe).
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| with_lock(&self.shared, |i| i.poll_recv_message(cx))).await
    }

    /// As [`WebSocket::recv_event`] (cancel safe).
    ///
    /// # Errors
    /// As [`WebSocket::recv`].
    pub async fn recv_event(&mut self) -> Result<Option<Event>, Error> {
        poll_fn(|cx| with_lock(&self.shared, |i| i.poll_recv_event(cx))).await
    }

    /// Whether `write` is the other half of the same WebSocket.
    #[must_use]
    pub fn is_pair_of(&self, write: &WriteHalf<S>) -> bool {
        Arc::ptr_eq(&self.shared, &write.shared)
    }

    /// Puts the halves back together.
    ///
    /// # Errors
    /// [`ReuniteError`] (holding both halves) if they come from different WebSockets.
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocket<S>, ReuniteError<S>> {
        if !self.is_pair_of(&write) {
            return Err(ReuniteError(self, write));
        }
        drop(write);
        let Ok(mutex) = Arc::try_unwrap(self.shared) else {
            unreachable!("halves are not Clone: the pair holds the only two references");
        };
        let mut inner = mutex.into_inner().unwrap_or_else(PoisonError::into_inner);
        inner.driver.parked_writer = None;
        inner.driver.reader_waiting = None;
        drop(inner.driver.take_wakes());
        Ok(WebSocket { inner })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    /// As the [`WebSocket`]'s `Stream` (cancel safe).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        with_lock(&self.shared, |i| i.poll_next_message(cx))
    }
}

/// Clears the writer's "parked" mark when a write future ends or is dropped, and hands a
/// reader waiting on that write back its own registration.
struct ParkGuard<'a, S>(&'a Mutex<Inner<S>>);

impl<S> Drop for ParkGuard<'_, S> {
    fn drop(&mut self) {
        with_lock(self.0, |i| i.driver.writer_gone());
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// The one way the send family queues: the command runs against the core under the
    /// lock at the first poll (exactly once), then everything queued is written.
    async fn submit(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        with_lock(&self.shared, |i| i.queue(command))?;
        self.flush().await
    }

    /// The one way the `feed` family queues: waits (writing, registered as the writer) while
    /// the queue is over `Config::write_buffer_high_water`, then runs the command against the
    /// core under the lock, once, without writing.
    async fn enqueue(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        {
            let _parked = ParkGuard(&self.shared);
            poll_fn(|cx| {
                with_lock(&self.shared, |i| {
                    i.poll_as_writer(cx, Inner::poll_ready_to_queue)
                })
            })
            .await?;
        }
        with_lock(&self.shared, |i| i.queue(command))
    }

    send_family!(submit, enqueue; async; [.await];
        "Cancel safety: as the [`WebSocket`]'s: queued exactly once at the first poll, then \
         written; a dropped future leaves it queued for the next write. Unlike \
         [`WebSocket::close`], nothing here waits for the peer's Close: the [`ReadHalf`] \
         sees it, finishes the handshake and returns `Ok(None)`.";
        "Back-pressure and cancel safety: as the [`WebSocket`]'s `feed`. What is fed here is \
         written by this half's next `send*` or `flush`, or by the [`ReadHalf`] when it is \
         about to wait for input: a writer that feeds should flush once its batch is fed.");

    /// As [`WebSocket::flush`] (cancel safe).
    ///
    /// # Errors
    /// [`Error::Io`] on transport failure.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let _parked = ParkGuard(&self.shared);
        poll_fn(|cx| {
            with_lock(&self.shared, |i| {
                i.poll_as_writer(cx, Inner::poll_flush_all)
            })
        })
        .await?;
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    /// As the [`WebSocket`]'s `Sink` (applies `Config::write_buffer_high_water`).
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        with_lock(&self.shared, |i| {
            i.poll_as_writer(cx, Inner::poll_ready_to_queue)
        })
    }

    /// Queues the message.
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        with_lock(&self.shared, |i| i.queue(|c| c.send(item)))
    }

    /// Writes everything queued and flushes the stream.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        with_lock(&self.shared, |i| {
            i.poll_as_writer(cx, Inner::poll_flush_all)
        })
        .map_err(Error::from)
    }

    /// Queues a Close (1000) unless one was sent and writes everything; the [`ReadHalf`]
    /// finishes the handshake.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        with_lock(&self.shared, |i| {
            i.poll_as_writer(cx, Inner::poll_close_sink)
        })
    }
}

/// The halves given to [`ReadHalf::reunite`] came from different WebSockets; both are
/// handed back.
pub struct ReuniteError<S>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S> core::fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S> core::fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("tried to reunite halves of different websockets")
    }
}

impl<S> std::error::Error for ReuniteError<S> {}
