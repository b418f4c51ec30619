//! The blocking adapter's one loop over a [`Pump`]: write what the pump queued, read with the
//! pump's next deadline as the read timeout, feed what arrived, and repeat until a step
//! yields or the pump is done with the transport. The handshakes and the connection run on
//! it alike; every protocol decision is the pump's.

use super::Transport;
use crate::error::Error;
use crate::pump::Pump;
use std::io::{self, IoSlice};
use std::time::{Duration, Instant};

/// A transport and the clock the pump's deadlines are measured on.
#[derive(Debug)]
pub(crate) struct Driver<S> {
    pub(crate) stream: S,
    start: Instant,
    write_shut: bool,
    /// The caller's deadline for the current `recv_timeout`, from `start`.
    pub(crate) user_deadline: Option<Duration>,
    /// Writes are bounded by the pump's deadline (while an opening handshake is written).
    bounded_writes: bool,
    /// Bytes were written since the transport was last flushed.
    needs_flush: bool,
}

/// How a drive ended.
pub(crate) enum Outcome<T> {
    /// The step yielded.
    Step(T),
    /// The pump is done with the transport (its write half was shut down when the pump
    /// wanted it).
    Ended,
}

impl<S: Transport> Driver<S> {
    pub(crate) const fn new(stream: S, start: Instant) -> Self {
        Self {
            stream,
            start,
            write_shut: false,
            user_deadline: None,
            bounded_writes: false,
            needs_flush: false,
        }
    }

    /// Bounds every write by the pump's deadline (the opening handshake), or stops doing so.
    pub(crate) fn bound_writes(&mut self, bounded: bool) -> io::Result<()> {
        self.bounded_writes = bounded;
        if !bounded {
            self.stream.set_write_timeout(None)?;
        }
        Ok(())
    }

    /// Time since the driver's clock started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Tells the pump the time when a deadline is due. The clock is read only while a timer
    /// is armed: with none (keepalive off, the default, and no close under way) sending and
    /// receiving read no clock at all.
    pub(crate) fn tick<P: Pump>(&self, pump: &mut P) {
        if let Some(deadline) = pump.poll_timeout() {
            let now = self.start.elapsed();
            if deadline <= now {
                pump.handle_timeout(now);
            }
        }
    }

    /// Runs `pump` until `step` yields, or the pump is done with the transport; every step is
    /// followed by a write of what the pump queued (the handshakes).
    ///
    /// # Errors
    /// A transport error the pump does not settle (see [`Pump::transport_failed`]); a
    /// non-blocking transport with nothing to read gives `WouldBlock` (nothing is lost).
    pub(crate) fn drive<P, T>(
        &mut self,
        pump: &mut P,
        step: impl FnMut(&mut P) -> Option<T>,
    ) -> Result<Outcome<T>, Error>
    where
        P: Pump,
    {
        self.drive_batched(pump, step, |_| true)
    }

    /// Runs `pump` until `step` yields, or the pump is done with the transport.
    ///
    /// What the pump holds is yielded before anything is written or read: the messages of one
    /// read are handed out without touching the transport or the clock, and what the
    /// application queues meanwhile (replies fed with `feed`, Pongs) is written together
    /// once they are taken, before the next read, or as soon as [`WRITE_BATCH`] bytes wait.
    /// A step `urgent` marks (an event that obliged a Close echo or a Pong) is written at
    /// once.
    ///
    /// # Errors
    /// As [`drive`](Self::drive).
    #[inline]
    pub(crate) fn drive_batched<P, T>(
        &mut self,
        pump: &mut P,
        mut step: impl FnMut(&mut P) -> Option<T>,
        urgent: impl Fn(&T) -> bool,
    ) -> Result<Outcome<T>, Error>
    where
        P: Pump,
    {
        if let Some(yielded) = step(pump) {
            self.after_step(pump, urgent(&yielded))?;
            return Ok(Outcome::Step(yielded));
        }
        self.drive_io(pump, step, urgent)
    }

    /// The rest of [`drive_batched`](Self::drive_batched), once the pump has nothing to
    /// yield without I/O: out of line, so that handing out what the pump holds stays short.
    #[inline(never)]
    fn drive_io<P, T>(
        &mut self,
        pump: &mut P,
        mut step: impl FnMut(&mut P) -> Option<T>,
        urgent: impl Fn(&T) -> bool,
    ) -> Result<Outcome<T>, Error>
    where
        P: Pump,
    {
        let mut failed = false;
        loop {
            self.tick(pump);
            self.write_or_settle(pump)?;
            // A pump that failed at the last commit has nothing more to yield.
            if !failed {
                if let Some(yielded) = step(pump) {
                    self.after_step(pump, urgent(&yielded))?;
                    return Ok(Outcome::Step(yielded));
                }
            }
            if pump.wants_shutdown() && !self.write_shut {
                self.write_shut = true;
                let _ = self.stream.shutdown_write();
            }
            if pump.is_terminated() {
                if !self.write_shut {
                    self.write_shut = true;
                    let _ = self.stream.shutdown_write();
                }
                return Ok(Outcome::Ended);
            }
            failed = self.read_once(pump)?;
        }
    }

    /// After a step yielded: writes what it obliged (a Pong, a Close echo) when `urgent`,
    /// or what is queued once it reaches [`WRITE_BATCH`], before handing it over. A
    /// transport that refuses the write leaves it queued: what was taken is not lost.
    #[inline]
    fn after_step<P: Pump>(&mut self, pump: &mut P, urgent: bool) -> Result<(), Error> {
        if urgent || pump.transmit_len() >= WRITE_BATCH {
            self.write_or_settle(pump)?;
        }
        Ok(())
    }

    /// Writes what the pump queued; a write error the pump settles counts as end-of-file.
    fn write_or_settle<P: Pump>(&mut self, pump: &mut P) -> Result<(), Error> {
        match self.write_out(pump) {
            Ok(_) => Ok(()),
            Err(_) if pump.transport_failed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes queued bytes; `Ok(false)` when the transport refused a write (it would block,
    /// or its write timeout fired) with bytes still queued.
    pub(crate) fn write_out<P: Pump>(&mut self, pump: &mut P) -> io::Result<bool> {
        if pump.transmit_len() == 0 && !self.needs_flush {
            return Ok(true);
        }
        while pump.transmit_len() > 0 {
            if self.bounded_writes {
                let left = pump
                    .poll_timeout()
                    .map(|deadline| deadline.saturating_sub(self.start.elapsed()));
                if left == Some(Duration::ZERO) {
                    return Ok(false);
                }
                self.stream.set_write_timeout(left)?;
            }
            let mut slices = [IoSlice::new(&[]); 8];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(pump.transmit_chunks()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            match self.stream.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    pump.advance_transmit(n);
                    self.needs_flush = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()?;
        self.needs_flush = false;
        Ok(true)
    }

    /// Reads once into the pump, waiting no longer than its next deadline (and the caller's);
    /// returns whether the pump failed on what arrived.
    fn read_once<P: Pump>(&mut self, pump: &mut P) -> Result<bool, Error> {
        let deadline = match (pump.poll_timeout(), self.user_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self
            .user_deadline
            .is_some_and(|d| self.start.elapsed() >= d)
        {
            return Err(io::Error::from(io::ErrorKind::TimedOut).into());
        }
        let outcome = read_until(&mut self.stream, pump.read_buf(), deadline, self.start);
        let fed = match outcome {
            Ok(ReadOutcome::Data(n)) => pump.commit_read(n),
            Ok(ReadOutcome::Eof) => pump.receive_eof(),
            Ok(ReadOutcome::TimedOut) => Ok(()),
            // Nothing is lost: a partial frame stays in the pump for the next call.
            Ok(ReadOutcome::WouldBlock) => {
                return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
            }
            Err(_) if pump.transport_failed() => Ok(()),
            Err(e) => return Err(e.into()),
        };
        Ok(fed.is_err())
    }
}

/// Queued bytes at which the receive loop writes without waiting for the messages already
/// received to be taken (see `tokio/driver.rs`, which uses the same amount).
const WRITE_BATCH: u64 = 64 << 10;

enum ReadOutcome {
    Data(usize),
    Eof,
    /// The deadline passed with nothing read.
    TimedOut,
    /// A non-blocking transport had nothing to read: the read returned at once, with the
    /// deadline still ahead (or with no deadline at all).
    WouldBlock,
}

/// Reads once, giving up at `deadline` (measured from `start`).
fn read_until<S: Transport>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Option<Duration>,
    start: Instant,
) -> io::Result<ReadOutcome> {
    loop {
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Ok(ReadOutcome::TimedOut);
                }
                Some(left)
            }
            None => None,
        };
        stream.set_read_timeout(timeout)?;
        let began = start.elapsed();
        return match stream.read(buf) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            // A signal, or a TLS stream that took records but no data yet: time has passed,
            // so the read timeout is recomputed before reading on.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // A blocking read gives up only when its timeout fires; one that returns
                // before half of it has passed (or that had no timeout) did not block.
                let waited = start.elapsed().saturating_sub(began);
                match timeout {
                    Some(t) if waited >= t / 2 => Ok(ReadOutcome::TimedOut),
                    _ => Ok(ReadOutcome::WouldBlock),
                }
            }
            Err(e) => Err(e),
        };
    }
}
