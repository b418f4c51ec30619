//! What the adapters report to `tracing` (feature `tracing`), and nothing without it.
//!
//! One span per connection, `websocket`, with the fields `role` (`client` / `server`) and
//! `peer` (the remote address where the adapter knows it: `connect` does, an `accept` over
//! any stream does not; record it with `WebSocket::span`). The adapters enter it while they
//! work on the connection, so every event below carries it. Events, all at DEBUG:
//!
//! * the handshake's outcome: `status` and `protocol` when it succeeds, `error` when not;
//! * close codes: `close sent` (`code`, with `by` = `application`, `echo` or `failure`) and
//!   `close received` (`code`);
//! * protocol errors: `error` and the `code` of the Close frame sent for it (1006 when none
//!   could be sent);
//! * the end: `closed` after a clean closing handshake, `transport error` otherwise.
//!
//! Payload bytes are never recorded: not message data, not Ping or Pong payloads, not close
//! reasons (only their length).

use crate::close::CloseCode;
#[cfg(feature = "tracing")]
use crate::close::CloseFrame;
use crate::connection::{Connection, Event, Role};
use crate::error::Error;
use std::net::SocketAddr;

/// The connection's span, or nothing without the `tracing` feature.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    /// Our Close has been reported (queued by the application, or echoed, or sent for a
    /// failure), so no later event reports another.
    #[cfg(feature = "tracing")]
    close_noted: bool,
}

/// While alive, the connection's span is the current one.
pub(crate) struct Entered<'a> {
    #[cfg(feature = "tracing")]
    _entered: tracing::span::Entered<'a>,
    #[cfg(not(feature = "tracing"))]
    _span: core::marker::PhantomData<&'a ()>,
}

impl Trace {
    /// A new connection's span.
    #[allow(unused_variables)]
    pub(crate) fn new(role: Role, peer: Option<SocketAddr>) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: {
                let role = match role {
                    Role::Client => "client",
                    Role::Server => "server",
                };
                let span = tracing::debug_span!("websocket", role, peer = tracing::field::Empty);
                if let Some(peer) = peer {
                    span.record("peer", tracing::field::display(peer));
                }
                span
            },
            #[cfg(feature = "tracing")]
            close_noted: false,
        }
    }

    /// After an application command: its Close, if it queued one, is reported already
    /// (by [`close_sent`]).
    #[allow(unused_variables)]
    pub(crate) fn commanded(&mut self, close_sent_before: bool, conn: &Connection) {
        #[cfg(feature = "tracing")]
        if !close_sent_before && conn.close_sent() {
            self.close_noted = true;
        }
    }

    /// The span (feature `tracing`).
    #[cfg(feature = "tracing")]
    pub(crate) const fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Makes the span current until the guard drops.
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            #[cfg(feature = "tracing")]
            _entered: self.span.enter(),
            #[cfg(not(feature = "tracing"))]
            _span: core::marker::PhantomData,
        }
    }

    /// The opening handshake succeeded with `status` (101, or 200 over HTTP/2).
    #[allow(unused_variables)]
    pub(crate) fn handshake_done(&self, status: u16, protocol: Option<&str>) {
        #[cfg(feature = "tracing")]
        self.span.in_scope(|| {
            tracing::debug!(status, protocol, "websocket handshake done");
        });
    }

    /// The opening handshake failed.
    #[allow(unused_variables)]
    pub(crate) fn handshake_failed(&self, error: &Error) {
        #[cfg(feature = "tracing")]
        self.span.in_scope(|| {
            tracing::debug!(error = %error, "websocket handshake failed");
        });
    }

    /// What a receive call returned: the peer's Close and our echo of it, a protocol error
    /// and the Close sent for it, the end.
    pub(crate) fn received(&mut self, conn: &Connection, result: &Result<Option<Event>, Error>) {
        match result {
            Ok(Some(event)) => self.event(conn, event),
            Ok(None) => self.ended(None),
            Err(error) => self.ended(Some(error)),
        }
    }

    /// An event a receive call took from the core, handed out or not (`recv` takes a Close
    /// on its way to the next message).
    #[allow(unused_variables)]
    pub(crate) fn event(&mut self, conn: &Connection, event: &Event) {
        #[cfg(feature = "tracing")]
        if let Event::Close(frame) = event {
            let _entered = self.span.enter();
            close_received(frame);
            // The core echoes the peer's Close unless ours went first (RFC 6455 §5.5.1).
            if !self.close_noted && conn.close_sent() {
                self.close_noted = true;
                tracing::debug!(code = frame.code.as_u16(), by = "echo", "close sent");
            }
        }
    }

    /// A receive call found the end: `None` after a clean closing handshake, else why. A read
    /// that timed out or would block is no outcome of the connection and is not reported.
    #[allow(unused_variables)]
    pub(crate) fn ended(&mut self, error: Option<&Error>) {
        #[cfg(feature = "tracing")]
        {
            let _entered = self.span.enter();
            match error {
                None => tracing::debug!("closed"),
                Some(Error::Protocol(error)) => {
                    let code = error.close_code().as_u16();
                    tracing::debug!(error = %error, code, "protocol error");
                    if !self.close_noted && code != CloseCode::ABNORMAL.as_u16() {
                        self.close_noted = true;
                        tracing::debug!(code, by = "failure", "close sent");
                    }
                }
                Some(Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Some(error) => tracing::debug!(error = %error, "transport error"),
            }
        }
    }
}

/// The application queued a Close with `code`; emitted in the current span (the adapters
/// enter the connection's while queueing).
#[allow(unused_variables)]
pub(crate) fn close_sent(code: CloseCode, reason: &str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        code = code.as_u16(),
        reason_len = reason.len(),
        by = "application",
        "close sent"
    );
}

#[cfg(feature = "tracing")]
fn close_received(frame: &CloseFrame) {
    tracing::debug!(
        code = frame.code.as_u16(),
        reason_len = frame.reason.len(),
        "close received"
    );
}
