//! The tokio adapter's one loop over a [`Pump`]: the handshakes, the [`WebSocket`] and its
//! split halves all run on it. Every method is a `poll` that never blocks and keeps all
//! state here or in the pump, which is what makes the public futures cancel safe. Every
//! protocol decision is the pump's.
//!
//! [`WebSocket`]: super::WebSocket

use crate::error::Error;
use crate::pump::Pump;
use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::time::{Instant, Sleep, sleep_until};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use tokio_util::io::poll_read_buf;

/// A stream, the clock the pump's deadlines are measured on, and the adapter's write
/// bookkeeping.
pub(super) struct Driver<S> {
    pub(super) stream: S,
    /// The origin of the pump's clock.
    start: Instant,
    /// Sleeps until the pump's next deadline; reset as the deadline moves.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes were written since the stream was last flushed.
    needs_flush: bool,
    write_shut: bool,
    /// A write failed once the outcome was settled (see `Pump::transport_failed`): the peer
    /// is gone; stop writing.
    write_failed: bool,
    /// Split only: the writer half's task, while its last write poll returned `Pending`.
    pub(super) parked_writer: Option<Waker>,
    /// Split only: the reader's task, while it waits for a write it left to the parked writer.
    pub(super) reader_waiting: Option<Waker>,
    /// Wakers to wake once the lock is released (see [`take_wakes`](Self::take_wakes)).
    deferred_wakes: [Option<Waker>; 2],
}

/// How a drive ended.
pub(super) enum Outcome<T> {
    /// The step yielded.
    Step(T),
    /// The pump is done with the stream.
    Ended,
}

impl<S> Driver<S> {
    pub(super) const fn new(stream: S, start: Instant) -> Self {
        Self {
            stream,
            start,
            timer: None,
            needs_flush: false,
            write_shut: false,
            write_failed: false,
            parked_writer: None,
            reader_waiting: None,
            deferred_wakes: [None, None],
        }
    }

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

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Tells the pump the time when a deadline is due. The clock is read only while a timer
    /// is armed: with none (keepalive off, the default, and no close under way) an echoed
    /// message reads no clock at all.
    fn tick<P: Pump>(&self, pump: &mut P) {
        if let Some(deadline) = pump.poll_timeout() {
            let now = self.start.elapsed();
            if deadline <= now {
                pump.handle_timeout(now);
            }
        }
    }

    // -------------------------------------------------------------- writing

    /// Writes queued bytes until at most `limit` remain.
    fn poll_write_until<P: Pump>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        limit: u64,
    ) -> Poll<io::Result<()>> {
        while pump.transmit_len() > limit {
            // One chunk (all small frames are copied into one) goes out with a plain write:
            // on Linux a socket `writev` costs more than a `send` in the kernel.
            let pending = pump.pending_transmit();
            let written = if pending.len() as u64 == pump.transmit_len()
                || !self.stream.is_write_vectored()
            {
                Pin::new(&mut self.stream).poll_write(cx, pending)
            } else {
                let mut slices = [IoSlice::new(&[]); 16];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(pump.transmit_chunks()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count])
            };
            match ready!(written) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    pump.advance_transmit(n);
                    self.needs_flush = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued and flushes the stream.
    pub(super) fn poll_flush_all<P: Pump>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_write_until(cx, pump, 0))?;
        if self.needs_flush {
            ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
            self.needs_flush = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes until at most `high_water` bytes are queued (`Sink::poll_ready`).
    pub(super) fn poll_below<P: Pump>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        high_water: u64,
    ) -> Poll<io::Result<()>> {
        self.poll_write_until(cx, pump, high_water)
    }

    /// Shuts down the write half when the pump wants it (`Sink::poll_close`).
    pub(super) fn poll_shutdown_if_wanted<P: Pump>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &P,
    ) -> Poll<io::Result<()>> {
        if pump.wants_shutdown() && !self.write_shut {
            ready!(Pin::new(&mut self.stream).poll_shutdown(cx))?;
            self.write_shut = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Bookkeeping after a write poll of the writer (the `WriteHalf`): remembers the
    /// writer's waker while it is parked, and wakes a reader that left its write to the
    /// writer once the write is done or made room.
    pub(super) fn writer_polled(&mut self, cx: &Context<'_>, pending: bool, progressed: bool) {
        self.parked_writer = pending.then(|| cx.waker().clone());
        if !pending || progressed {
            let reader = self.reader_waiting.take();
            self.wake_later(reader);
        }
    }

    /// Runs a write operation for the reader. If the writer is parked on write readiness the
    /// write is attempted with the writer's waker, so the stream's write registration stays
    /// the writer's (see the module docs of `tokio`).
    fn poll_as_reader<P: Pump, R>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        op: impl FnOnce(&mut Self, &mut Context<'_>, &mut P) -> Poll<R>,
    ) -> Poll<R> {
        let Some(writer) = self.parked_writer.clone() else {
            return op(self, cx, pump);
        };
        let before = pump.transmit_len();
        let poll = op(self, &mut Context::from_waker(&writer), pump);
        if poll.is_pending() {
            // The writer finishes this write when the stream has room; it wakes us then.
            self.reader_waiting = Some(cx.waker().clone());
        }
        if poll.is_ready() || pump.transmit_len() < before {
            // We made room the writer may be waiting for.
            let writer = self.parked_writer.take();
            self.wake_later(writer);
        }
        poll
    }

    /// Starts writing what the pump queued (the request or response of a handshake, Pongs,
    /// Close frames, keepalive Pings) without waiting for it to finish; `true` once all of it
    /// is written and flushed. A write error the pump settles counts as end-of-file.
    fn write_queued<P: Pump>(&mut self, cx: &mut Context<'_>, pump: &mut P) -> Result<bool, Error> {
        if self.write_failed || (pump.transmit_len() == 0 && !self.needs_flush) {
            return Ok(true);
        }
        match self.poll_as_reader(cx, pump, Self::poll_flush_all) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(_)) if pump.transport_failed() => {
                self.write_failed = true;
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(e.into()),
            Poll::Pending => Ok(false),
        }
    }

    // -------------------------------------------------------------- reading

    /// Reads once, appending to the pump's buffer without zeroing it first
    /// (`Pump::read_space`); the caller commits with `commit_space`.
    fn poll_read<P: Pump>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
    ) -> Poll<io::Result<usize>> {
        let mut space = pump.read_space();
        poll_read_buf(Pin::new(&mut self.stream), cx, &mut space)
    }

    /// Waits for the pump's next deadline; once it has passed, tells the pump.
    fn poll_timer<P: Pump>(&mut self, cx: &mut Context<'_>, pump: &mut P) -> Poll<()> {
        let Some(deadline) = pump.poll_timeout() else {
            return Poll::Pending;
        };
        let now = self.start.elapsed();
        if deadline <= now {
            // Due already (or a timer armed since the last reading, to be pinned now).
            pump.handle_timeout(now);
            return Poll::Ready(());
        }
        let Some(at) = self.start.checked_add(deadline) else {
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        ready!(timer.as_mut().poll(cx));
        // The timer rounds up, so its deadline has passed on tokio's clock.
        pump.handle_timeout(deadline);
        Poll::Ready(())
    }

    /// [`poll_drive_batched`](Self::poll_drive_batched) with every step urgent (the
    /// handshakes).
    pub(super) fn poll_drive<P: Pump, T>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        step: impl FnMut(&mut P) -> Option<T>,
    ) -> Poll<Result<Outcome<T>, Error>> {
        self.poll_drive_batched(cx, pump, step, |_| true)
    }

    /// The loop: yields what `step` takes from the pump, writes what the pump queued, reads
    /// and waits for its deadlines, shuts down the write half when the pump wants it, and ends
    /// when the pump is done with the stream.
    ///
    /// What the pump holds is yielded before anything is written or read: a batch of messages
    /// that arrived in one read is handed out one call at a time without touching the stream
    /// or the clock, and what the application queues meanwhile (replies fed with `feed`, Pongs)
    /// goes out together, in one write, once the batch is taken and before the next read
    /// waits, or as soon as [`WRITE_BATCH`] bytes are queued. A step that `urgent` marks (an
    /// event that obliged a Close echo or a Pong, a handshake step) is followed by a write at
    /// once, as the loop always did.
    #[inline]
    pub(super) fn poll_drive_batched<P: Pump, T>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        mut step: impl FnMut(&mut P) -> Option<T>,
        urgent: impl Fn(&T) -> bool,
    ) -> Poll<Result<Outcome<T>, Error>> {
        if let Some(yielded) = step(pump) {
            self.after_step(cx, pump, urgent(&yielded));
            return Poll::Ready(Ok(Outcome::Step(yielded)));
        }
        self.poll_drive_io(cx, pump, step, urgent)
    }

    /// The rest of [`poll_drive_batched`](Self::poll_drive_batched), once the pump has
    /// nothing to yield without I/O: kept out of line, so the path that hands out what the
    /// pump holds stays a few instructions.
    #[inline(never)]
    fn poll_drive_io<P: Pump, T>(
        &mut self,
        cx: &mut Context<'_>,
        pump: &mut P,
        mut step: impl FnMut(&mut P) -> Option<T>,
        urgent: impl Fn(&T) -> bool,
    ) -> Poll<Result<Outcome<T>, Error>> {
        // The clock is read at most once per call: the loop below never waits (a pending read
        // or timer returns, and the timer path tells the pump the time itself).
        self.tick(pump);
        let mut failed = false;
        loop {
            let written = self.write_queued(cx, pump)?;
            // A pump that failed on the last input has nothing more to yield.
            if !failed {
                if let Some(yielded) = step(pump) {
                    self.after_step(cx, pump, urgent(&yielded));
                    return Poll::Ready(Ok(Outcome::Step(yielded)));
                }
            }
            if written && !self.write_failed && !self.write_shut && pump.wants_shutdown() {
                let shutdown = |d: &mut Self, cx: &mut Context<'_>, _: &mut P| {
                    Pin::new(&mut d.stream).poll_shutdown(cx)
                };
                if self.poll_as_reader(cx, pump, shutdown).is_ready() {
                    self.write_shut = true;
                }
            }
            if pump.is_terminated() {
                if !self.write_shut && !self.write_failed {
                    // One attempt only: the pump is done, and a shutdown that must write (TLS
                    // close_notify) to a peer that stopped reading must not hold us longer.
                    let shutdown = |d: &mut Self, cx: &mut Context<'_>, _: &mut P| {
                        Pin::new(&mut d.stream).poll_shutdown(cx)
                    };
                    let _ = self.poll_as_reader(cx, pump, shutdown);
                    self.write_shut = true;
                }
                return Poll::Ready(Ok(Outcome::Ended));
            }
            failed = match self.poll_read(cx, pump) {
                Poll::Ready(Ok(0)) => pump.receive_eof().is_err(),
                Poll::Ready(Ok(_)) => pump.commit_space().is_err(),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => false,
                Poll::Ready(Err(_)) if pump.transport_failed() => false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {
                    ready!(self.poll_timer(cx, pump));
                    false
                }
            };
        }
    }

    /// After a step yielded: starts writing what it obliged (a Pong, the Close echo) when
    /// `urgent`, or what is queued once it reaches [`WRITE_BATCH`]. A write error is left for
    /// the next call, so what was taken is not lost.
    #[inline]
    fn after_step<P: Pump>(&mut self, cx: &mut Context<'_>, pump: &mut P, urgent: bool) {
        if urgent || pump.transmit_len() >= WRITE_BATCH {
            let _ = self.write_queued(cx, pump);
        }
    }
}

/// Queued bytes at which the receive loop writes without waiting for the batch of received
/// events to be taken: enough for many small replies per write, little enough that a peer
/// streaming without pause still gets its replies as they are made.
pub(super) const WRITE_BATCH: u64 = 64 << 10;
