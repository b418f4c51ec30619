//! How long to wait before the next attempt: exponential backoff with full jitter.

use std::time::Duration;

/// The reconnect schedule: exponential backoff with "full jitter".
///
/// Attempt `n` (counted from 1 after each disconnect, see [`reset_after`](Self::reset_after))
/// waits a uniformly random time between zero and `min(cap, base × 2ⁿ⁻¹)`. Full jitter
/// spreads the clients of a restarted server over the whole window, instead of having them
/// all return at the same instants (a thundering herd), at the price of sometimes retrying
/// at once; the window still doubles, so the attempt rate falls off geometrically.
///
/// | field | default | |
/// |---|---|---|
/// | `base` | 500 ms | the first window |
/// | `cap` | 30 s | the largest window |
/// | `max_attempts` | `None` (unlimited) | attempts per outage before giving up |
/// | `max_elapsed` | `None` (unlimited) | time per outage before giving up |
/// | `reset_after` | 30 s | a connection up this long starts the next outage afresh |
/// | `max_retry_after` | 10 min | the longest `Retry-After` honoured |
///
/// ```
/// use rfc6455::tokio::reconnect::Backoff;
/// use std::time::Duration;
/// let backoff = Backoff::default().base(Duration::from_millis(100)).cap(Duration::from_secs(1));
/// assert_eq!(backoff.window(1), Duration::from_millis(100));
/// assert_eq!(backoff.window(4), Duration::from_millis(800));
/// assert_eq!(backoff.window(5), Duration::from_secs(1)); // capped
/// // The delay is the window scaled by a random fraction: `u64::MAX` is (almost) all of it.
/// assert_eq!(backoff.delay(4, 0), Duration::ZERO);
/// assert!(backoff.delay(4, u64::MAX) <= Duration::from_millis(800));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The window of the first attempt. Default 500 ms.
    pub base: Duration,
    /// The largest window. Default 30 s: a client notices a server that is back within
    /// about that long, and a thousand clients retry about 33 times a second between them.
    pub cap: Duration,
    /// Attempts in one outage before the client gives up
    /// ([`Stop::GaveUp`](super::Stop::GaveUp)). Default `None`: it never gives up on a
    /// failure the policy calls transient.
    pub max_attempts: Option<u32>,
    /// Time in one outage (from the disconnect, or from the first attempt) after which the
    /// client gives up rather than wait again. Default `None`: no limit.
    pub max_elapsed: Option<Duration>,
    /// A connection that stayed up at least this long ends its outage: the next disconnect
    /// starts again at attempt 1 with the `base` window. Default 30 s. A server that
    /// accepts and then drops the connection at once keeps the backoff growing.
    pub reset_after: Duration,
    /// The longest wait a `Retry-After` header (on a 429, a 503, ...) can impose; a longer
    /// one is cut to this. Default 10 minutes. It stops a server's typo (or a hostile
    /// value) from parking the client for years.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_attempts: None,
            max_elapsed: None,
            reset_after: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl Backoff {
            $(
                $(#[$doc])*
                #[must_use]
                pub const fn $name(mut self, value: $ty) -> Self {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets the `base` field.
    base: Duration;
    /// Sets the `cap` field.
    cap: Duration;
    /// Sets the `max_attempts` field.
    max_attempts: Option<u32>;
    /// Sets the `max_elapsed` field.
    max_elapsed: Option<Duration>;
    /// Sets the `reset_after` field.
    reset_after: Duration;
    /// Sets the `max_retry_after` field.
    max_retry_after: Duration;
}

impl Backoff {
    /// The window of attempt `attempt` (from 1): `min(cap, base × 2^(attempt − 1))`,
    /// without overflow for any attempt. Attempt 0 counts as 1.
    #[must_use]
    pub fn window(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1);
        1u32.checked_shl(doublings)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.cap, |window| window.min(self.cap))
    }

    /// The delay before attempt `attempt`, full jitter: `window(attempt)` scaled by
    /// `random / 2⁶⁴`, so a uniformly random `random` gives a delay uniform in the window.
    /// (Windows beyond about 584 years are treated as that long.)
    #[must_use]
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let window = u64::try_from(self.window(attempt).as_nanos()).unwrap_or(u64::MAX);
        // Both factors fit 64 bits, so the product fits 128; shifted back it fits 64.
        let nanos = (u128::from(window) * u128::from(random)) >> 64;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_double_up_to_the_cap_without_overflow() {
        let b = Backoff::default();
        let windows: Vec<_> = (1..=8).map(|n| b.window(n).as_millis()).collect();
        assert_eq!(windows, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(b.window(0), b.window(1));
        assert_eq!(b.window(u32::MAX), b.cap);
        let huge = Backoff::default().base(Duration::MAX).cap(Duration::MAX);
        assert_eq!(huge.window(3), Duration::MAX);
        assert!(huge.delay(3, u64::MAX) > Duration::from_secs(500 * 365 * 86400));
    }

    #[test]
    fn delay_is_the_window_scaled_by_the_random_fraction() {
        let b = Backoff::default().base(Duration::from_secs(1));
        assert_eq!(b.delay(1, 0), Duration::ZERO);
        assert_eq!(b.delay(1, 1 << 63), Duration::from_millis(500));
        assert_eq!(b.delay(2, 1 << 62), Duration::from_millis(500));
        assert!(b.delay(1, u64::MAX) < Duration::from_secs(1));
        assert!(b.delay(1, u64::MAX) > Duration::from_millis(999));
    }
}
