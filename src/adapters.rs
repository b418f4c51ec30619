//! What the two adapters share, written once: the stream that is TLS or not, and the send
//! family of methods (each adapter supplies the one method they all go through).

use crate::error::{Error, HandshakeError};
use crate::handshake::ClientHandshake;
use std::io::{self, IoSlice, Read, Write};

/// What a client handshake that ended without completing reports: a rejection with the
/// server's response (status, headers, body), or the handshake's error.
pub(crate) fn client_handshake_failed(mut hs: ClientHandshake) -> Error {
    match hs.error() {
        Some(HandshakeError::UnexpectedStatus(status)) => hs.take_response().map_or_else(
            || HandshakeError::UnexpectedStatus(status).into(),
            |response| Error::Rejected(Box::new(response)),
        ),
        Some(e) => e.into(),
        None => HandshakeError::Timeout.into(),
    }
}

/// A `ws://` stream or a `wss://` one: what `connect` returns in both adapters, as
/// `sync::MaybeTlsStream` and `tokio::MaybeTlsStream`.
///
/// Without a TLS feature the `Tls` variant holds [`NoTls`], which has no values.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTls<P, T> {
    /// A `ws://` connection.
    Plain(P),
    /// A `wss://` connection.
    Tls(T),
}

/// The TLS stream of an adapter built without a TLS feature: it has no values, so
/// [`MaybeTls::Tls`] cannot occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoTls {}

/// Runs `$e` on whichever stream `$self` holds.
macro_rules! either {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            MaybeTls::Plain($s) => $e,
            MaybeTls::Tls($s) => $e,
        }
    };
}
pub(crate) use either;

impl<P: Read, T: Read> Read for MaybeTls<P, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        either!(self, s => s.read(buf))
    }
}

impl<P: Write, T: Write> Write for MaybeTls<P, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        either!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        either!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        either!(self, s => s.flush())
    }
}

impl Read for NoTls {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

impl Write for NoTls {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}

#[cfg(feature = "tokio")]
mod tokio_io {
    use super::{MaybeTls, NoTls};
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    impl<P: AsyncRead + Unpin, T: AsyncRead + Unpin> AsyncRead for MaybeTls<P, T> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
        }
    }

    impl<P: AsyncWrite + Unpin, T: AsyncWrite + Unpin> AsyncWrite for MaybeTls<P, T> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            either!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            either!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
        }
        fn is_write_vectored(&self) -> bool {
            either!(self, s => s.is_write_vectored())
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            either!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
        }
    }

    impl AsyncRead for NoTls {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match *self {}
        }
    }

    impl AsyncWrite for NoTls {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match *self {}
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
    }
}

/// An adapter's `TlsHalf` and `MaybeTlsStream` over its runtime's `TcpStream`, with
/// `tcp()`: written once for both adapters (`$tls` is the boxed TLS stream type, present
/// with the feature `$feature`).
macro_rules! maybe_tls_stream {
    ($tcp:ty, $tls:ty, $feature:literal) => {
        /// The TLS half of [`MaybeTlsStream`]: a boxed TLS stream (the TLS state is large), or
        /// nothing without the TLS feature.
        #[cfg(feature = $feature)]
        pub type TlsHalf = Box<$tls>;
        /// The TLS half of [`MaybeTlsStream`]: a boxed TLS stream (the TLS state is large), or
        /// nothing without the TLS feature.
        #[cfg(not(feature = $feature))]
        pub type TlsHalf = crate::adapters::NoTls;

        /// The stream of a connection opened by `connect`: TCP for `ws://`, TLS over TCP
        /// for `wss://` (with the TLS feature).
        pub type MaybeTlsStream = crate::adapters::MaybeTls<$tcp, TlsHalf>;

        impl MaybeTlsStream {
            /// The TCP stream underneath (for its addresses or socket options; reading or
            /// writing it directly corrupts the connection).
            #[must_use]
            pub fn tcp(&self) -> &$tcp {
                match self {
                    Self::Plain(tcp) => tcp,
                    #[cfg(feature = $feature)]
                    Self::Tls(tls) => tls.get_ref(),
                    #[cfg(not(feature = $feature))]
                    Self::Tls(never) => match *never {},
                }
            }
        }
    };
}

pub(crate) use maybe_tls_stream;

/// The send family, written once for the blocking `WebSocket`, the tokio `WebSocket` and the
/// tokio `WriteHalf`: each method runs one core command through the adapter's `$submit`
/// (`fn $submit(&mut self, command: impl FnOnce(&mut Connection) -> Result<(), UsageError>)`),
/// which queues it and writes, and the `feed` methods through `$enqueue` (same signature),
/// which queues it without writing (after waiting, or refusing, while the queue is over
/// `Config::write_buffer_high_water`). `$kw` is `async` and `$aw` is `.await` for the tokio
/// ones; `$note` is the adapter's sentence on what happens to a queued message (cancel safety,
/// back-pressure), `$feed_note` the same for a fed one.
macro_rules! send_family {
    ($submit:ident, $enqueue:ident; $($kw:ident)?; [$($aw:tt)*]; $note:literal; $feed_note:literal) => {
        /// Queues a message without writing it. Fed messages go out together, in as few
        /// writes as the transport allows, with the next [`flush`](Self::flush) or `send*`,
        /// or when a receive call has taken every message already received and is about to
        /// wait for more (or has 64 KiB queued): a server that answers each message it
        /// receives with `feed` writes once per batch of requests instead of once per reply.
        /// See "Batching replies" in the module docs.
        ///
        /// A server queues large payloads by reference, as [`send`](Self::send) does.
        ///
        #[doc = $feed_note]
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub $($kw)? fn feed(
            &mut self,
            message: impl Into<crate::Message>,
        ) -> Result<(), crate::Error> {
            let message = message.into();
            self.$enqueue(move |c| c.send(message)) $($aw)*
        }

        /// Queues a text message without writing it (see [`feed`](Self::feed)).
        ///
        #[doc = $feed_note]
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub $($kw)? fn feed_text(&mut self, text: &str) -> Result<(), crate::Error> {
            self.$enqueue(|c| c.send_text(text)) $($aw)*
        }

        /// Queues a binary message without writing it (see [`feed`](Self::feed)).
        ///
        #[doc = $feed_note]
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub $($kw)? fn feed_binary(&mut self, data: &[u8]) -> Result<(), crate::Error> {
            self.$enqueue(|c| c.send_binary(data)) $($aw)*
        }

        /// Sends a message: queued, then written out. A server queues large payloads by
        /// reference, without copying them.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// [`Error::Usage`](crate::Error::Usage) after our Close
        /// ([`UsageError::Closed`](crate::UsageError::Closed)) or after a failure
        /// ([`UsageError::Failed`](crate::UsageError::Failed) with the reason), nothing
        /// queued; [`Error::Io`](crate::Error::Io) on transport failure.
        pub $($kw)? fn send(
            &mut self,
            message: impl Into<crate::Message>,
        ) -> Result<(), crate::Error> {
            let message = message.into();
            self.$submit(move |c| c.send(message)) $($aw)*
        }

        /// Sends a text message.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub $($kw)? fn send_text(&mut self, text: &str) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_text(text)) $($aw)*
        }

        /// Sends a binary message.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send).
        pub $($kw)? fn send_binary(&mut self, data: &[u8]) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_binary(data)) $($aw)*
        }

        /// Sends a message encoded once for many connections (server only).
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send);
        /// [`UsageError::PreparedForServerOnly`](crate::UsageError::PreparedForServerOnly) on
        /// a client.
        pub $($kw)? fn send_prepared(
            &mut self,
            prepared: &crate::PreparedMessage,
        ) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_prepared(prepared)) $($aw)*
        }

        /// Sends one fragment of a message (see
        /// [`Connection::send_fragment`](crate::Connection::send_fragment)).
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send), plus the fragment rules of `Connection::send_fragment`.
        pub $($kw)? fn send_fragment(
            &mut self,
            kind: crate::MessageKind,
            data: &[u8],
            fin: bool,
        ) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_fragment(kind, data, fin)) $($aw)*
        }

        /// Sends a Ping. The peer's Pong arrives as `Event::Pong` from `recv_event`.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send); payloads over 125 bytes are a usage error.
        pub $($kw)? fn send_ping(&mut self, payload: &[u8]) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_ping(payload)) $($aw)*
        }

        /// Sends an unsolicited Pong, a one-way heartbeat (RFC 6455 §5.5.3). Pongs owed to
        /// the peer's Pings are sent automatically.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// As [`send`](Self::send); payloads over 125 bytes are a usage error.
        pub $($kw)? fn send_pong(&mut self, payload: &[u8]) -> Result<(), crate::Error> {
            self.$submit(|c| c.send_pong(payload)) $($aw)*
        }

        /// Sends our Close frame without waiting for the peer's: keep receiving until the
        /// receive methods return `Ok(None)`, which completes the closing handshake.
        ///
        #[doc = $note]
        ///
        /// # Errors
        /// [`Error::Usage`](crate::Error::Usage) for an invalid code or reason, or if a Close
        /// was already sent; [`Error::Io`](crate::Error::Io) on transport failure.
        pub $($kw)? fn send_close(
            &mut self,
            code: crate::CloseCode,
            reason: &str,
        ) -> Result<(), crate::Error> {
            self.$submit(|c| {
                c.send_close(code, reason)?;
                $crate::trace::close_sent(code, reason);
                Ok(())
            }) $($aw)*
        }
    };
}

pub(crate) use send_family;
