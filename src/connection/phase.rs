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

use super::Connection;
use super::timers::Timer;
use crate::close::CloseCode;
use crate::error::ProtocolError;
use crate::error::UsageError;
use crate::frame::Opcode;
use alloc::string::ToString;

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

impl Connection {
    /// Starts the closing handshake (RFC 6455 §7.1.2). [`CloseCode::NO_STATUS`] with an empty
    /// reason sends a Close frame without a body. The close timeout counts from the next
    /// [`handle_timeout`](Self::handle_timeout).
    ///
    /// # Errors
    /// [`UsageError::InvalidCloseCode`] for a code that may not be sent,
    /// [`UsageError::CloseReasonTooLong`] over 123 bytes, [`UsageError::Closed`] if a Close
    /// was already sent.
    pub fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        self.check_send()?;
        let code = if code == CloseCode::NO_STATUS && reason.is_empty() {
            None
        } else if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.0));
        } else if reason.len() > 123 {
            // RFC 6455 §5.5: control payloads are at most 125 bytes, two of which hold the
            // code.
            return Err(UsageError::CloseReasonTooLong(reason.len()));
        } else {
            Some(code)
        };
        self.send.close(code, reason);
        self.phase = Phase::CloseSent;
        self.closing_started();
        Ok(())
    }

    /// Fails the connection (RFC 6455 §7.1.7), once: the first error stays.
    pub(super) fn fail(&mut self, error: ProtocolError) {
        if self.error().is_some() {
            return;
        }
        let ended = self.is_terminated();
        self.phase = self.phase.failed(error);
        self.asm.stop();
        // RFC 6455 §7.1.7: "If _The WebSocket Connection is Established_ prior to the point
        // where the endpoint is required to _Fail the WebSocket Connection_, the endpoint
        // SHOULD send a Close frame with an appropriate status code (Section 7.4)".
        // After EOF there is no one to send a Close to (1006 is never on the wire).
        if !self.send.close_queued() && error != ProtocolError::UnexpectedEof {
            let mut reason = error.to_string();
            let mut cut = reason.len().min(123);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            self.send.close(Some(error.close_code()), &reason);
        }
        self.send.forget_pong();
        if !ended {
            self.closing_started();
        }
    }

    /// The peer's Close has been taken by the application.
    pub(super) fn peer_closed(&mut self, code: CloseCode) {
        if !self.send.close_queued() {
            // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
            // send a Close frame, the endpoint MUST send a Close frame in response. (When
            // sending a Close frame in response, the endpoint typically echos the status code
            // it received.)"
            let code = (code != CloseCode::NO_STATUS).then_some(code);
            self.send.close(code, "");
        }
        if self.phase.is_open_or_closing() {
            self.phase = Phase::Closed;
        }
        // The client now waits for the server to close TCP, but not forever.
        if !self.is_terminated() {
            self.closing_started();
        }
    }

    /// Keepalive stops and the close timer starts: the connection is on its way out.
    pub(super) fn closing_started(&mut self) {
        self.timers.stop(Timer::Idle);
        self.timers.stop(Timer::Pong);
        self.timers.arm(Timer::Close, self.config.close_timeout);
    }

    /// What each timer does when it fires.
    pub(super) fn timer_fired(&mut self, timer: Timer) {
        match timer {
            Timer::Close => self.close_timer_fired(),
            // Keepalive (RFC 6455 §5.5.2: a Ping "may serve as a keepalive"): a Ping after
            // the idle interval, a failure with 1011 if its Pong is late.
            Timer::Idle => {
                if self.phase == Phase::Open {
                    self.send.control(Opcode::Ping, b"keepalive");
                    self.timers
                        .arm_now(Timer::Pong, self.config.keepalive_timeout);
                }
            }
            Timer::Pong => {
                if self.phase == Phase::Open {
                    self.fail(ProtocolError::KeepaliveTimeout);
                }
            }
            Timer::Release => {
                if let Some(extension) = self.extension.as_mut() {
                    extension.release();
                }
            }
            Timer::Shrink => self.shrink_buffers(),
            // The peer never read our 101: the connection never really started.
            Timer::Handshake => {
                if self.handshake_left > 0 && !self.is_terminated() {
                    self.asm.stop();
                    self.phase = Phase::Ended(Some(ProtocolError::HandshakeTimeout));
                }
            }
        }
    }

    pub(super) fn close_timer_fired(&mut self) {
        // RFC 6455 §7.1.1: the client "MAY close the connection at any time after sending and
        // receiving a Close message", so once both Closes have crossed, giving up on the
        // peer's TCP close is still a clean end. Our Close left unanswered is not. RFC 6455
        // §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was
        // received by the endpoint [...] _The WebSocket Connection Close Code_ is considered
        // to be 1006." The caller must be able to tell that from a clean close. A protocol
        // error already found behind undelivered events stays the one reported.
        let unanswered = (!self.asm.close_seen() && !self.asm.has_failure())
            .then_some(ProtocolError::CloseTimeout);
        self.phase = self.phase.ended(unanswered);
        if !self.asm.has_failure() {
            self.asm.stop();
        }
    }
}
