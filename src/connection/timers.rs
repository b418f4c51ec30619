//! One timer table for every deadline the core keeps: the opening handshake, the closing
//! handshake, keepalive (idle and Pong), the extension's release of state it can rebuild and
//! the release of buffers a large message grew, each a slot in the same table.
//!
//! Time enters only through [`TimerTable::advance`], called by the pump's `handle_timeout`.
//! An input that starts a timer (our Close, a failure, the peer's Close taken, bytes received
//! with keepalive on) has no clock to read, so it arms the timer *unpinned*: due `after` the
//! next clock reading. Until that reading [`TimerTable::next`] reports `Duration::ZERO`
//! ("call `handle_timeout` now"), and the reading pins the timer to `now + after`. So no
//! deadline is ever computed from a stale clock, however long the connection sat idle before
//! the input that armed it.

use super::Connection;
use core::time::Duration;

/// The timers, each one slot of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The opening handshake: reading the request or response, and writing what answers it.
    Handshake = 0,
    /// The closing handshake: the peer's Close, then the end of the transport.
    Close = 1,
    /// Keepalive: a Ping is due after this much silence.
    Idle = 2,
    /// Keepalive: the Pong to our Ping is due.
    Pong = 3,
    /// The extension may free state it can rebuild (see `Extension::release_after`).
    Release = 4,
    /// Buffers a large message grew are given back (see `Connection::shrink_buffers`).
    Shrink = 5,
}

const TIMERS: [Timer; COUNT] = [
    Timer::Handshake,
    Timer::Close,
    Timer::Idle,
    Timer::Pong,
    Timer::Release,
    Timer::Shrink,
];
const COUNT: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Off,
    /// Due this long after the next clock reading.
    Unpinned(Duration),
    /// Due at this instant of the caller's clock.
    At(Duration),
}

/// Deadlines by timer, and the latest clock reading.
#[derive(Debug, Clone)]
pub(crate) struct TimerTable {
    slots: [Slot; COUNT],
    now: Duration,
}

impl TimerTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [Slot::Off; COUNT],
            now: Duration::ZERO,
        }
    }

    /// A table with `timer` armed `after` the first clock reading.
    pub(crate) const fn with(timer: Timer, after: Duration) -> Self {
        let mut slots = [Slot::Off; COUNT];
        slots[timer as usize] = Slot::Unpinned(after);
        Self {
            slots,
            now: Duration::ZERO,
        }
    }

    /// Arms `timer` to fire `after` the next clock reading (replacing any earlier deadline).
    pub(crate) fn arm(&mut self, timer: Timer, after: Duration) {
        self.slots[timer as usize] = Slot::Unpinned(after);
    }

    /// Arms `timer` at `at` on the caller's clock, or unpinned `after` when there is no
    /// reading to measure from yet.
    pub(crate) fn arm_from(&mut self, timer: Timer, deadline: Deadline) {
        self.slots[timer as usize] = match deadline {
            Deadline::At(at) => Slot::At(at),
            Deadline::After(after) => Slot::Unpinned(after),
        };
    }

    /// Arms `timer` at `now + after`, `now` being the reading being handled: for timers that
    /// a timer starts (the Pong deadline once the keepalive Ping is out).
    pub(crate) fn arm_now(&mut self, timer: Timer, after: Duration) {
        self.slots[timer as usize] = Slot::At(self.now.saturating_add(after));
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer as usize] = Slot::Off;
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.slots[timer as usize] != Slot::Off
    }

    /// The deadline of `timer`, in the form another table can take over.
    pub(crate) fn deadline(&self, timer: Timer) -> Option<Deadline> {
        match self.slots[timer as usize] {
            Slot::Off => None,
            Slot::Unpinned(after) => Some(Deadline::After(after)),
            Slot::At(at) => Some(Deadline::At(at)),
        }
    }

    /// The earliest deadline: `Duration::ZERO` while a timer waits to be pinned.
    pub(crate) fn next(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        for slot in self.slots {
            let due = match slot {
                Slot::Off => continue,
                Slot::Unpinned(_) => return Some(Duration::ZERO),
                Slot::At(at) => at,
            };
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Takes a clock reading (never moving backwards) and pins the unpinned timers to it.
    pub(crate) fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
        for slot in &mut self.slots {
            if let Slot::Unpinned(after) = *slot {
                *slot = Slot::At(self.now.saturating_add(after));
            }
        }
    }

    /// The first timer whose deadline has passed, which is turned off.
    pub(crate) fn take_expired(&mut self) -> Option<Timer> {
        for timer in TIMERS {
            if let Slot::At(at) = self.slots[timer as usize] {
                if self.now >= at {
                    self.slots[timer as usize] = Slot::Off;
                    return Some(timer);
                }
            }
        }
        None
    }
}

/// A deadline handed from one table to another (the opening handshake's, carried into the
/// connection until the 101 response is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    At(Duration),
    After(Duration),
}

impl Connection {
    /// The next deadline at which [`handle_timeout`](Self::handle_timeout) must be called;
    /// `Duration::ZERO` when a timer was just armed and waits for a clock reading (see
    /// [Time](Self#time)).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_terminated() {
            return None;
        }
        self.timers.next()
    }

    /// Tells the connection the time and fires due timers: the close timeout (terminates the
    /// connection, failing it with [`ProtocolError::CloseTimeout`](crate::ProtocolError::CloseTimeout) if the peer never answered
    /// our Close), keepalive (queues a Ping, or fails with 1011 when the Pong is late), and
    /// the handshake timeout for a 101 response the peer never read. `now` is monotonic, from
    /// an origin the caller picks; it also starts the timers armed since the last call.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.timers.advance(now);
        while let Some(timer) = self.timers.take_expired() {
            self.timer_fired(timer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn unpinned_timers_are_due_at_once_and_pinned_by_the_next_reading() {
        let mut t = TimerTable::new();
        assert_eq!(t.next(), None);
        t.advance(S(5));
        t.arm(Timer::Close, S(10));
        assert_eq!(t.next(), Some(Duration::ZERO));
        // However late the reading, the timer counts from it.
        t.advance(S(3_600));
        assert_eq!(t.next(), Some(S(3_610)));
        assert_eq!(t.take_expired(), None);
        t.advance(S(3_610));
        assert_eq!(t.take_expired(), Some(Timer::Close));
        assert_eq!(t.next(), None);
    }

    #[test]
    fn the_earliest_deadline_wins_and_time_never_goes_back() {
        let mut t = TimerTable::new();
        t.arm(Timer::Idle, S(30));
        t.arm(Timer::Close, S(10));
        t.advance(S(100));
        assert_eq!(t.next(), Some(S(110)));
        t.advance(S(50));
        assert_eq!(t.take_expired(), None);
        t.arm_now(Timer::Pong, S(1));
        assert_eq!(t.next(), Some(S(101)));
        t.stop(Timer::Pong);
        t.stop(Timer::Close);
        assert_eq!(t.next(), Some(S(130)));
        assert_eq!(t.deadline(Timer::Idle), Some(Deadline::At(S(130))));
    }
}
