//! The pump: one loop over the sans-IO core shared by the [`WebSocket`](super::WebSocket) and
//! its split halves. Every method is a `poll` that never blocks and keeps all state here, which
//! is what makes the public futures cancel safe.

use crate::close::CloseCode;
use crate::connection::{Connection, Event};
use crate::error::{Error, UsageError};
use crate::message::Message;
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::time::{Instant, Sleep, sleep_until};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use tokio_util::io::poll_read_buf;

/// The connection, its stream and the adapter's bookkeeping: owned by a
/// [`WebSocket`](super::WebSocket), or shared by a [`ReadHalf`](super::ReadHalf) and a
/// [`WriteHalf`](super::WriteHalf).
pub(super) struct Inner<S> {
    pub(super) stream: S,
    pub(super) conn: Connection,
    /// The origin of the core's clock.
    start: Instant,
    /// Sleeps until the core's next deadline; reset as the deadline moves.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes were written since the stream was last flushed.
    needs_flush: bool,
    write_shut: bool,
    /// A write failed once the connection was closed: the peer is gone; stop writing.
    write_failed: bool,
    /// The `Stream` impl has yielded its end (`None` or an error).
    stream_ended: bool,
    /// Split only: the writer half's task, while its last write poll returned `Pending`.
    pub(super) parked_writer: Option<Waker>,
    /// Split only: the reader's task, while it waits for a write it left to the parked writer.
    pub(super) reader_waiting: Option<Waker>,
    /// Wakers to wake once the lock is released (see [`take_wakes`](Self::take_wakes)).
    deferred_wakes: [Option<Waker>; 2],
}

impl<S> Inner<S> {
    /// The wakers a split half must wake after releasing the lock: waking while holding it
    /// would deadlock with a waker that polls the other half inline.
    pub(super) fn take_wakes(&mut self) -> [Option<Waker>; 2] {
        core::mem::take(&mut self.deferred_wakes)
    }

    /// Ends the writer's "parked" state (its write future finished or was dropped) and hands a
    /// reader that left its write to the writer back to its own registration.
    pub(super) fn writer_gone(&mut self) {
        self.parked_writer = None;
        let reader = self.reader_waiting.take();
        self.wake_later(reader);
    }

    /// Queues `waker` for [`take_wakes`](Self::take_wakes). One poll defers at most one waker
    /// per half, so the two slots never overflow; if they did, waking at once is still correct.
    fn wake_later(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        match self.deferred_wakes.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(waker),
            None => waker.wake(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    pub(super) fn new(stream: S, mut conn: Connection, start: Instant) -> Self {
        conn.handle_timeout(start.elapsed());
        Self {
            stream,
            conn,
            start,
            timer: None,
            needs_flush: false,
            write_shut: false,
            write_failed: false,
            stream_ended: false,
            parked_writer: None,
            reader_waiting: None,
            deferred_wakes: [None, None],
        }
    }

    /// Advances the core's clock (firing due timers).
    fn tick(&mut self) {
        self.conn.handle_timeout(self.start.elapsed());
    }

    /// Runs a command that does not start a timer (a data message, a Ping or Pong) against
    /// the core. The clock is not read: reading it costs as much as queueing a small message
    /// on this VM (about 40 ns through the vDSO), and nothing here depends on the time.
    pub(super) fn queue(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        command(&mut self.conn)?;
        Ok(())
    }

    /// Runs a Close command against the core after advancing its clock: the close timeout
    /// counts from now.
    pub(super) fn queue_close(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), UsageError>,
    ) -> Result<(), Error> {
        self.tick();
        command(&mut self.conn)?;
        Ok(())
    }

    // -------------------------------------------------------------- writing

    /// Writes queued bytes until at most `limit` remain.
    fn poll_write_until(&mut self, cx: &mut Context<'_>, limit: u64) -> Poll<io::Result<()>> {
        while self.conn.transmit_len() > limit {
            // One chunk (all small frames are copied into one) goes out with a plain write:
            // on Linux a socket `writev` costs about 0.3 us more than a `send` in the kernel
            // (measured in the 100 x 16 B echo, 9.5 us per message in all).
            let pending = self.conn.pending_transmit();
            let written = if pending.len() as u64 == self.conn.transmit_len()
                || !self.stream.is_write_vectored()
            {
                Pin::new(&mut self.stream).poll_write(cx, pending)
            } else {
                let mut slices = [IoSlice::new(&[]); 16];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(self.conn.transmit_chunks()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count])
            };
            match ready!(written) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.conn.advance_transmit(n);
                    self.needs_flush = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued and flushes the stream.
    pub(super) fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_until(cx, 0))?;
        if self.needs_flush {
            ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// `Sink::poll_ready`: ready once at most `write_buffer_high_water` bytes are queued.
    pub(super) fn poll_ready_to_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.tick();
        let high_water = self.conn.config().write_buffer_high_water as u64;
        self.poll_write_until(cx, high_water).map_err(Error::from)
    }

    /// `Sink::poll_close`: queues a Close (1000) unless one was sent, writes everything, and
    /// shuts down the write half if the core says it is our turn.
    pub(super) fn poll_close_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.tick();
        if !self.conn.close_sent() {
            self.conn.send_close(CloseCode::NORMAL, "")?;
        }
        ready!(self.poll_flush_all(cx))?;
        if self.conn.wants_shutdown() && !self.write_shut {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            self.write_shut = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Runs a write operation for the writer (the `WriteHalf`): remembers the writer's waker
    /// while it is parked, and wakes a reader that left its write to the writer.
    pub(super) fn poll_as_writer<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let before = self.conn.transmit_len();
        let poll = op(self, cx);
        self.parked_writer = poll.is_pending().then(|| cx.waker().clone());
        if poll.is_ready() || self.conn.transmit_len() < before {
            let reader = self.reader_waiting.take();
            self.wake_later(reader);
        }
        poll
    }

    /// Runs a write operation for the reader. If the writer is parked on write readiness the
    /// write is attempted with the writer's waker, so the stream's write registration stays
    /// the writer's (see the module docs).
    fn poll_as_reader<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let Some(writer) = self.parked_writer.clone() else {
            return op(self, cx);
        };
        let before = self.conn.transmit_len();
        let poll = op(self, &mut Context::from_waker(&writer));
        if poll.is_pending() {
            // The writer finishes this write when the stream has room; it wakes us then.
            self.reader_waiting = Some(cx.waker().clone());
        }
        if poll.is_ready() || self.conn.transmit_len() < before {
            // We made room the writer may be waiting for.
            let writer = self.parked_writer.take();
            self.wake_later(writer);
        }
        poll
    }

    /// Starts writing what the core queued (Pongs, Close frames, keepalive Pings) without
    /// waiting for it to finish.
    fn write_obligations(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        if self.write_failed || (self.conn.transmit_len() == 0 && !self.needs_flush) {
            return Ok(());
        }
        match self.poll_as_reader(cx, Self::poll_flush_all) {
            Poll::Ready(Err(_)) if self.conn.is_closed() => {
                // The peer is gone while we were closing: the outcome is already known.
                self.write_failed = true;
                let _ = self.conn.receive_eof();
                Ok(())
            }
            Poll::Ready(Err(e)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    // -------------------------------------------------------------- reading

    /// Reads once, appending to the core's buffer without zeroing it first
    /// (`Connection::read_space`); the caller commits with `commit_space`.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut space = self.conn.read_space();
        poll_read_buf(Pin::new(&mut self.stream), cx, &mut space)
    }

    /// Waits for the core's next deadline; once it has passed, tells the core.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.conn.poll_timeout() else {
            return Poll::Pending;
        };
        let Some(at) = self.start.checked_add(deadline) else {
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        ready!(timer.as_mut().poll(cx));
        // The timer rounds up, so its deadline has passed on tokio's clock.
        self.conn.handle_timeout(deadline);
        Poll::Ready(())
    }

    /// The receive loop: events out, reads and timers in, obligations written on the way.
    pub(super) fn poll_recv_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Event>, Error>> {
        // The clock is read at most once per call (the loop below never waits: a pending read
        // or timer returns, and the timer path tells the core the time itself), and only when
        // the core has a use for it: with no timer armed and no close under way (keepalive off,
        // the default) an echoed message would otherwise read it twice, about 0.1 us of the
        // 8 us the 100 x 16 B echo costs per message.
        let mut ticked = false;
        loop {
            if !ticked && self.conn.poll_timeout().is_some() {
                self.tick();
                ticked = true;
            }
            self.write_obligations(cx)?;
            if let Some(event) = self.conn.poll_event() {
                // Start writing what the event obliged (a Pong, the Close echo). A write error
                // is left for the next call, so this event is not lost.
                let _ = self.write_obligations(cx);
                return Poll::Ready(Ok(Some(event)));
            }
            // `is_terminated` too: a close timeout ends a closing handshake that the peer never
            // answered, while the core's state stays `CloseSent`.
            if self.conn.is_closed() || self.conn.is_terminated() {
                return self.poll_finish(cx);
            }
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    let _ = self.conn.receive_eof();
                }
                Poll::Ready(Ok(_)) => {
                    let _ = self.conn.commit_space();
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => ready!(self.poll_timer(cx)),
            }
        }
    }

    /// Skips events other than messages.
    pub(super) fn poll_recv_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Message>, Error>> {
        loop {
            match ready!(self.poll_recv_event(cx)) {
                Ok(Some(Event::Message(message))) => return Poll::Ready(Ok(Some(message))),
                Ok(Some(_)) => {}
                Ok(None) => return Poll::Ready(Ok(None)),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// After the closing handshake (or a failure): write everything, shut down our write half
    /// when the core says it is our turn, then wait for the peer's EOF, bounded by the close
    /// timeout. Ends with `Ok(None)` after a clean close, else the sticky error.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>, Error>> {
        while !self.conn.is_terminated() {
            self.tick();
            if self.conn.is_terminated() {
                break;
            }
            let mut writing = false;
            if !self.write_failed {
                match self.poll_as_reader(cx, Self::poll_flush_all) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => {
                        self.write_failed = true;
                        let _ = self.conn.receive_eof();
                        continue;
                    }
                    Poll::Pending => writing = true,
                }
            }
            if !writing && !self.write_failed && self.conn.wants_shutdown() && !self.write_shut {
                let shutdown =
                    |i: &mut Self, cx: &mut Context<'_>| Pin::new(&mut i.stream).poll_shutdown(cx);
                if self.poll_as_reader(cx, shutdown).is_ready() {
                    self.write_shut = true;
                }
            }
            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => {
                    let _ = self.conn.receive_eof();
                }
                // Bytes after the closing handshake are ignored by the core.
                Poll::Ready(Ok(_)) => {
                    let _ = self.conn.commit_space();
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset while closing ends the wait for the peer; the outcome is known.
                Poll::Ready(Err(_)) => {
                    let _ = self.conn.receive_eof();
                }
                Poll::Pending => ready!(self.poll_timer(cx)),
            }
        }
        if !self.write_shut && !self.write_failed {
            // One attempt only: the connection is over, and a shutdown that must write (TLS
            // close_notify) to a peer that stopped reading must not hold us past the timeout.
            let shutdown =
                |i: &mut Self, cx: &mut Context<'_>| Pin::new(&mut i.stream).poll_shutdown(cx);
            let _ = self.poll_as_reader(cx, shutdown);
            self.write_shut = true;
        }
        Poll::Ready(self.conn.error().map_or(Ok(None), |e| Err(e.into())))
    }

    /// `Stream::poll_next`: messages until the end, which is yielded once.
    pub(super) fn poll_next_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.stream_ended {
            return Poll::Ready(None);
        }
        let next = ready!(self.poll_recv_message(cx)).transpose();
        if !matches!(next, Some(Ok(_))) {
            self.stream_ended = true;
        }
        Poll::Ready(next)
    }
}
