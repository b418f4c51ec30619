//! WebSocket upgrades in a hyper 1.x server (feature `hyper`), over HTTP/1.1 (`101`) and over
//! HTTP/2 extended CONNECT (RFC 8441, `200`) alike.
//!
//! [`upgrade`] checks the request as the byte parser would (see [`crate::web`]); the
//! application looks at [`Upgrade::request`] and answers with [`Upgrade::respond`], which
//! returns the response for hyper to send and a [`Pending`] future of the
//! [`WebSocket`], or with [`Upgrade::on_upgrade`], which runs a
//! callback on the WebSocket in a new tokio task.
//!
//! Serve with upgrades on: `hyper::server::conn::http1::Builder::serve_connection(..)
//! .with_upgrades()`, or hyper-util's `auto::Builder::serve_connection_with_upgrades`. For
//! WebSocket over HTTP/2, the server must advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL`
//! (RFC 8441 §3): `http2().enable_connect_protocol()` on either builder.
//!
//! ```
//! use hyper::body::Incoming;
//! use rfc6455::handshake::Accept;
//! use rfc6455::Config;
//!
//! // Any body type made from a String does: String itself, http_body_util::Full<Bytes>,
//! // axum's Body.
//! async fn handle(mut request: http::Request<Incoming>) -> http::Response<String> {
//!     let upgrade = match rfc6455::hyper::upgrade(&mut request, Config::default()) {
//!         Ok(upgrade) => upgrade,
//!         Err(refused) => return refused.into_response(), // 400, 403, 405, 426, 431
//!     };
//!     upgrade.on_upgrade(Ok(Accept::new()), |mut socket| async move {
//!         while let Ok(Some(message)) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//! # let _ = handle;
//! ```
//!
//! (`tests/hyper_axum.rs` serves this over TCP, and over TLS with ALPN `h2`.)

use crate::config::Config;
use crate::connection::Role;
use crate::error::{Error, UsageError};
use crate::handshake::{Accept, Refusal, Reject, Request};
use crate::tokio::WebSocket;
use crate::trace::Trace;
use crate::web::{self, Accepted, Refused};
use ::hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// The stream of an upgraded connection: hyper's `Upgraded` (an HTTP/1.1 connection, or
/// one HTTP/2 stream) as a tokio `AsyncRead + AsyncWrite`.
pub type Upgraded = TokioIo<::hyper::upgrade::Upgraded>;

/// A checked upgrade request in a hyper service, awaiting the application's decision.
#[derive(Debug)]
pub struct Upgrade {
    checked: web::Upgrade,
    on_upgrade: Option<OnUpgrade>,
    peer: Option<SocketAddr>,
}

/// Checks `request` (RFC 6455 §4.2.1, or RFC 8441 for an HTTP/2 extended CONNECT, then the
/// origin policy of `config`) and takes hyper's pending upgrade out of it.
///
/// # Errors
/// [`Refused`]: answer with [`Refused::into_response`] (400, 403, 405 with `Allow`, 426
/// with `Sec-WebSocket-Version`, 431).
pub fn upgrade<B>(request: &mut http::Request<B>, config: Config) -> Result<Upgrade, Refused> {
    let peer = request.extensions().get::<SocketAddr>().copied();
    let checked = web::Upgrade::from_request(request, config).inspect_err(|refused| {
        Trace::new(Role::Server, peer).handshake_failed(&Error::Handshake(refused.error()));
    })?;
    Ok(Upgrade {
        checked,
        on_upgrade: request.extensions_mut().remove::<OnUpgrade>(),
        peer,
    })
}

/// [`upgrade`] for a request already split into its head (as axum extractors see it).
///
/// # Errors
/// As [`upgrade`].
pub fn upgrade_parts(parts: &mut http::request::Parts, config: Config) -> Result<Upgrade, Refused> {
    let peer = parts.extensions.get::<SocketAddr>().copied();
    let checked = web::Upgrade::from_parts(parts, config).inspect_err(|refused| {
        Trace::new(Role::Server, peer).handshake_failed(&Error::Handshake(refused.error()));
    })?;
    Ok(Upgrade {
        checked,
        on_upgrade: parts.extensions.remove::<OnUpgrade>(),
        peer,
    })
}

impl Upgrade {
    /// The request: path, headers, origin, offered subprotocols and extensions, and
    /// whether it came as an HTTP/2 extended CONNECT.
    #[must_use]
    pub const fn request(&self) -> &Request {
        self.checked.request()
    }

    /// The client's address, for the connection's tracing span (feature `tracing`). Taken
    /// from a `SocketAddr` in the request's extensions when the service put one there.
    #[must_use]
    pub const fn peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer = Some(addr);
        self
    }

    /// Answers with the application's decision (see [`web::Upgrade::respond`]): the
    /// response for hyper to send, and on acceptance the future of the WebSocket, which
    /// completes once hyper has sent the response and handed over the stream.
    ///
    /// # Errors
    /// The second element is [`Refusal::Rejected`] for a rejection, [`Refusal::Invalid`]
    /// for a decision the handshake cannot carry out (answered 500), or
    /// `Refusal::Invalid(UsageError::HandshakeState)` (answered 500) when hyper offers no
    /// upgrade for this request (a connection served without `with_upgrades()`).
    pub fn respond<B: From<String>>(
        self,
        decision: Result<Accept, Reject>,
    ) -> (http::Response<B>, Result<Pending, Refusal>) {
        let (response, outcome) = self.checked.respond(decision);
        let accepted = match outcome {
            Ok(accepted) => accepted,
            Err(refusal) => return (response.map(B::from), Err(refusal)),
        };
        let Some(on_upgrade) = self.on_upgrade else {
            let mut response = http::Response::new(B::from(
                "the http server cannot upgrade this connection\n".to_owned(),
            ));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            return (response, Err(Refusal::Invalid(UsageError::HandshakeState)));
        };
        let pending = Pending {
            on_upgrade,
            accepted: Some(accepted),
            peer: self.peer,
        };
        (response.map(B::from), Ok(pending))
    }

    /// Answers with `decision` and, when it accepts, runs `callback` on the WebSocket in a
    /// new tokio task once hyper has handed over the stream. A failed handover is dropped
    /// (and, with the `tracing` feature, logged).
    pub fn on_upgrade<B, F, Fut>(
        self,
        decision: Result<Accept, Reject>,
        callback: F,
    ) -> http::Response<B>
    where
        B: From<String>,
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (response, pending) = self.respond(decision);
        if let Ok(pending) = pending {
            ::tokio::spawn(async move {
                // A failed handover is reported to `tracing` by `Pending`.
                if let Ok(socket) = pending.await {
                    callback(socket).await;
                }
            });
        }
        response
    }
}

/// The WebSocket of an accepted upgrade, once hyper has sent the response: a future of
/// `Result<WebSocket<Upgraded>, Error>` (an [`Error::Io`] if the client went away first).
#[derive(Debug)]
#[must_use = "the WebSocket arrives only if this future is polled"]
pub struct Pending {
    on_upgrade: OnUpgrade,
    accepted: Option<Accepted>,
    peer: Option<SocketAddr>,
}

impl Pending {
    /// What was agreed: the subprotocol, and whether the stream is HTTP/2.
    ///
    /// # Panics
    /// After the future completed.
    #[must_use]
    pub fn accepted(&self) -> &Accepted {
        self.accepted
            .as_ref()
            .expect("Pending polled after completion")
    }
}

impl Future for Pending {
    type Output = Result<WebSocket<Upgraded>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let upgraded = ready!(Pin::new(&mut this.on_upgrade).poll(cx));
        let accepted = this
            .accepted
            .take()
            .expect("Pending polled after completion");
        let trace = Trace::new(Role::Server, this.peer);
        let upgraded = match upgraded {
            Ok(upgraded) => upgraded,
            Err(e) => {
                let error = Error::Io(std::io::Error::other(e));
                trace.handshake_failed(&error);
                return Poll::Ready(Err(error));
            }
        };
        let status = if accepted.is_http2() { 200 } else { 101 };
        trace.handshake_done(status, accepted.protocol());
        let socket = WebSocket::from_connection(TokioIo::new(upgraded), accepted.into_connection())
            .with_trace(trace);
        Poll::Ready(Ok(socket))
    }
}
