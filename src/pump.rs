//! The one interface the adapters drive: the two handshake types and [`Connection`] all
//! implement [`Pump`], and each runtime has one driver loop over it (`sync/driver.rs`,
//! `tokio/driver.rs`). Every protocol decision stays behind these verbs: when to shut down
//! the write half, when the transport may be dropped, what an I/O error while closing means,
//! and every deadline.
//!
//! A driver's loop, in words: write what [`Pump::pending_transmit`] holds; shut down the
//! write half once [`Pump::wants_shutdown`]; stop once [`Pump::is_terminated`]; otherwise
//! read into [`Pump::read_buf`] (or [`Pump::read_space`]) and commit, or report end-of-file,
//! waiting no longer than [`Pump::poll_timeout`], and call [`Pump::handle_timeout`] when it
//! passes.

use crate::connection::Connection;
use crate::error::{HandshakeError, ProtocolError};
use crate::handshake::{ClientHandshake, ServerHandshake};
use bytes::BytesMut;
use bytes::buf::Limit;
use core::time::Duration;

/// A sans-IO state machine that turns transport input into output, driven by an adapter.
///
/// Two zero-copy input pairs exist because readers need different memory: `read_buf` hands
/// out initialised room for `std::io::Read` (the blocking driver), `read_space` hands out
/// spare capacity to append to without zeroing it first (tokio's `poll_read_buf`).
pub trait Pump {
    /// What the pump fails with.
    type Error: Copy;

    /// Room to read into; report what was read with [`commit_read`](Self::commit_read).
    fn read_buf(&mut self) -> &mut [u8];
    /// Accepts `n` bytes read into [`read_buf`](Self::read_buf).
    ///
    /// # Errors
    /// The sticky error, once the pump has failed.
    fn commit_read(&mut self, n: usize) -> Result<(), Self::Error>;
    /// Spare capacity to append to in place; report with
    /// [`commit_space`](Self::commit_space).
    fn read_space(&mut self) -> Limit<&mut BytesMut>;
    /// Accepts what was appended to [`read_space`](Self::read_space).
    ///
    /// # Errors
    /// The sticky error, once the pump has failed.
    fn commit_space(&mut self) -> Result<(), Self::Error>;
    /// The transport reached end-of-file.
    ///
    /// # Errors
    /// The sticky error, once the pump has failed (end-of-file may be what fails it).
    fn receive_eof(&mut self) -> Result<(), Self::Error>;
    /// The transport failed with an I/O error; `true` if that settles nothing (the outcome
    /// is already known, and the failure counts as end-of-file), `false` if the driver must
    /// report the error.
    fn transport_failed(&mut self) -> bool;

    /// The front of the output waiting to be written.
    fn pending_transmit(&self) -> &[u8];
    /// Every chunk of output waiting, in order, for vectored writes.
    fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]>;
    /// How many bytes of output wait.
    fn transmit_len(&self) -> u64;
    /// `n` bytes of the output were written.
    fn advance_transmit(&mut self, n: usize);

    /// When [`handle_timeout`](Self::handle_timeout) is next due (`Duration::ZERO`: now).
    fn poll_timeout(&self) -> Option<Duration>;
    /// The time, on the driver's monotonic clock.
    fn handle_timeout(&mut self, now: Duration);

    /// Whether the driver should shut down the transport's write half now (after writing
    /// everything pending).
    fn wants_shutdown(&self) -> bool;
    /// Whether the pump is done with the transport: the driver stops and drops it.
    fn is_terminated(&self) -> bool;
    /// The error the pump failed with, if any.
    fn error(&self) -> Option<Self::Error>;
}

/// The verbs every pump implements by calling its own inherent method of the same name.
macro_rules! delegate {
    ($error:ty) => {
        fn receive_eof(&mut self) -> Result<(), $error> {
            Self::receive_eof(self)
        }
        fn pending_transmit(&self) -> &[u8] {
            Self::pending_transmit(self)
        }
        fn advance_transmit(&mut self, n: usize) {
            Self::advance_transmit(self, n);
        }
        fn poll_timeout(&self) -> Option<Duration> {
            Self::poll_timeout(self)
        }
        fn handle_timeout(&mut self, now: Duration) {
            Self::handle_timeout(self, now);
        }
        fn wants_shutdown(&self) -> bool {
            Self::wants_shutdown(self)
        }
        fn is_terminated(&self) -> bool {
            Self::is_terminated(self)
        }
        fn error(&self) -> Option<$error> {
            Self::error(self)
        }
    };
}

impl Pump for Connection {
    type Error = ProtocolError;

    delegate!(ProtocolError);

    fn read_buf(&mut self) -> &mut [u8] {
        Self::read_buf(self)
    }
    fn commit_read(&mut self, n: usize) -> Result<(), ProtocolError> {
        Self::commit_read(self, n)
    }
    fn read_space(&mut self) -> Limit<&mut BytesMut> {
        Self::read_space(self)
    }
    fn commit_space(&mut self) -> Result<(), ProtocolError> {
        Self::commit_space(self)
    }
    fn transport_failed(&mut self) -> bool {
        Self::transport_failed(self)
    }
    fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
        Self::transmit_chunks(self)
    }
    fn transmit_len(&self) -> u64 {
        Self::transmit_len(self)
    }
}

/// The pump verbs of the two handshake types, which share their shape (`$transport_failed`:
/// what an I/O error settles, see [`Pump::transport_failed`]).
macro_rules! handshake_pump {
    ($type:ty, $transport_failed:expr) => {
        impl Pump for $type {
            type Error = HandshakeError;

            delegate!(HandshakeError);

            fn read_buf(&mut self) -> &mut [u8] {
                self.inbox.read_buf()
            }
            fn commit_read(&mut self, n: usize) -> Result<(), HandshakeError> {
                let inbox = core::mem::take(&mut self.inbox);
                let result = self.receive(inbox.read(n));
                self.inbox = inbox;
                result
            }
            fn read_space(&mut self) -> Limit<&mut BytesMut> {
                self.inbox.read_space()
            }
            fn commit_space(&mut self) -> Result<(), HandshakeError> {
                let mut inbox = core::mem::take(&mut self.inbox);
                let result = self.receive(inbox.appended());
                inbox.clear();
                self.inbox = inbox;
                result
            }
            fn transport_failed(&mut self) -> bool {
                $transport_failed(self)
            }
            fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
                core::iter::once(Self::pending_transmit(self)).filter(|c| !c.is_empty())
            }
            fn transmit_len(&self) -> u64 {
                Self::pending_transmit(self).len() as u64
            }
        }
    };
}

// A client reading a rejection's body ends it on an I/O error (the status is the answer).
handshake_pump!(ClientHandshake, ClientHandshake::transport_failed);
handshake_pump!(ServerHandshake, |_: &mut ServerHandshake| false);

/// Where a handshake's reads land before they are scanned: a few KiB, allocated when a read
/// is first offered and dropped with the handshake. The head itself is capped by
/// `Config::max_handshake_size`.
#[derive(Debug, Default)]
pub(crate) struct Inbox(Option<BytesMut>);

impl Inbox {
    pub(crate) const fn new() -> Self {
        Self(None)
    }

    fn buf(&mut self) -> &mut BytesMut {
        self.0.get_or_insert_with(BytesMut::new)
    }

    fn read_buf(&mut self) -> &mut [u8] {
        let buf = self.buf();
        if buf.len() < INBOX {
            buf.resize(INBOX, 0);
        }
        &mut buf[..INBOX]
    }

    fn read(&self, n: usize) -> &[u8] {
        self.0.as_ref().map_or(&[], |buf| &buf[..n.min(buf.len())])
    }

    fn read_space(&mut self) -> Limit<&mut BytesMut> {
        use bytes::BufMut;
        let buf = self.buf();
        buf.clear();
        buf.reserve(INBOX);
        buf.limit(INBOX)
    }

    fn appended(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }

    fn clear(&mut self) {
        if let Some(buf) = self.0.as_mut() {
            buf.clear();
        }
    }
}

/// Bytes a handshake offers to read at once: a request or response head fits, and little
/// past it is read before the connection takes over.
const INBOX: usize = 4096;
