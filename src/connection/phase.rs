//! Where the connection stands in its life: one value, not a set of flags.
//!
//! ```text
//!            send_close                 peer's Close taken
//!   Open ────────────────► CloseSent ─────────────────────► Closed
//!     │ peer's Close taken (echoed)                            │
//!     └────────────────────────────────────────────────────────┤
//!     │ protocol error, keepalive timeout                      │ EOF, or the close timer
//!     └──────────► Failed(error) ──────────────────────────────┴──► Ended(error or none)
//! ```
//!
//! The input side has its own two facts, kept where they belong: the read buffer knows
//! whether the transport reached end-of-file, and the assembler whether it has stopped (on
//! the peer's Close, or for good after a failure, when it discards everything, as
//! python-websockets' `fail()` swaps its parser for a discarding one). The send side knows
//! whether our Close is queued.

use crate::error::ProtocolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Messages flow both ways.
    Open,
    /// Our Close is queued; we wait for the peer's.
    CloseSent,
    /// Both Close frames have crossed; we wait for the transport to end (RFC 6455 §7.1.1: the
    /// server closes TCP first, the client waits for it, both bounded by the close timer).
    Closed,
    /// The connection failed (RFC 6455 §7.1.7): our Close with the error's code is queued,
    /// unless the transport is already gone; we wait for the transport to end.
    Failed(ProtocolError),
    /// The transport is over: end-of-file was read, or the close timer gave up waiting. The
    /// error, if the closing handshake did not complete.
    Ended(Option<ProtocolError>),
}

impl Phase {
    /// The error the connection ended or failed with.
    pub(crate) const fn error(self) -> Option<ProtocolError> {
        match self {
            Self::Failed(e) | Self::Ended(Some(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether messages can still be exchanged in some direction.
    pub(crate) const fn is_open_or_closing(self) -> bool {
        matches!(self, Self::Open | Self::CloseSent)
    }

    /// The phase after a failure: the first error stays (failure is sticky); a transport that
    /// already ended keeps ending, now with this error.
    pub(crate) const fn failed(self, error: ProtocolError) -> Self {
        match self {
            Self::Failed(_) | Self::Ended(Some(_)) => self,
            Self::Ended(None) => Self::Ended(Some(error)),
            Self::Open | Self::CloseSent | Self::Closed => Self::Failed(error),
        }
    }

    /// The phase once the transport ends (end-of-file, or the close timer). `unanswered`
    /// is the error to report if our Close was never answered.
    pub(crate) const fn ended(self, unanswered: Option<ProtocolError>) -> Self {
        match self {
            Self::Open | Self::Closed => Self::Ended(None),
            Self::CloseSent => Self::Ended(unanswered),
            Self::Failed(e) => Self::Ended(Some(e)),
            Self::Ended(_) => self,
        }
    }
}
