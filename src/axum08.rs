//! An axum 0.8 extractor (feature `axum08`): [`WebSocketUpgrade`], shaped like axum's own,
//! with this crate's checks, origin policy and WebSocket.
//!
//! ```
//! # extern crate axum08 as axum; // `axum` in your project
//! use axum::{Router, response::Response, routing::any};
//! use rfc6455::axum08::WebSocketUpgrade;
//! use rfc6455::handshake::Accept;
//!
//! async fn echo(ws: WebSocketUpgrade) -> Response {
//!     // Take the client's first subprotocol, if it offered any.
//!     let accept = match ws.request().protocols().next() {
//!         Some(first) => Accept::new().protocol(first),
//!         None => Accept::new(),
//!     };
//!     ws.accept(accept).on_upgrade(|mut socket| async move {
//!         while let Ok(Some(message)) = socket.recv().await {
//!             if socket.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! // `any`, not `get`: over HTTP/2 a WebSocket opens with CONNECT (RFC 8441).
//! let app: Router = Router::new().route("/ws", any(echo));
//! # let _ = app;
//! ```
//!
//! A request the checks refuse never reaches the handler: the extractor answers it (400;
//! 403 for a foreign `Origin`; 405 with `Allow`; 426 with `Sec-WebSocket-Version`; 431).
//! The [`Config`] (limits, origin policy, timeouts) comes from the request's extensions, so
//! set it for a router with `.layer(axum::Extension(config))`; without one it is
//! `Config::default()`, whose origin policy lets only pages of the request's own host in.
//! The peer address in the tracing span (feature `tracing`) comes from
//! `ConnectInfo<SocketAddr>` when the app is served with
//! `into_make_service_with_connect_info::<SocketAddr>()`.
//!
//! Serving it with `axum::serve` gives HTTP/1.1 and h2c; for WebSocket over HTTP/2 the
//! server must advertise extended CONNECT (RFC 8441 §3), which `axum::serve` does.
//!
//! # Why the version is in the feature's name
//!
//! axum breaks its API about once a year (0.6, 0.7, 0.8). An extractor is tied to one
//! axum's traits, so a plain `axum` feature would turn each axum release into a breaking
//! release of this crate. With `axum08`, support for the next axum is a new feature and
//! module in a minor release, and code on 0.8 keeps compiling.

use crate::config::Config;
use crate::handshake::{Accept, Reject, Request};
use crate::hyper::{Upgrade, Upgraded};
use crate::tokio::WebSocket;
use axum08::extract::{ConnectInfo, FromRequestParts};
use axum08::response::Response;
use std::future::Future;
use std::net::SocketAddr;

/// Extracts a WebSocket upgrade request (HTTP/1.1 `GET` with `Upgrade: websocket`, or an
/// HTTP/2 extended CONNECT), checked; see the [module docs](self).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    upgrade: Upgrade,
}

/// An accepting [`WebSocketUpgrade`]: [`on_upgrade`](Self::on_upgrade) gives the response.
#[derive(Debug)]
#[must_use = "the upgrade happens only once `on_upgrade` gives the response"]
pub struct Accepting {
    upgrade: Upgrade,
    decision: Result<Accept, Reject>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    /// The refusal for a request that is no valid upgrade (see [`crate::web::Refused`]).
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Response> {
        let config = parts
            .extensions
            .get::<Config>()
            .cloned()
            .unwrap_or_default();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let mut upgrade = crate::hyper::upgrade_parts(parts, config)
            .map_err(|refused| refused.into_response::<axum08::body::Body>())?;
        if let Some(peer) = peer {
            upgrade = upgrade.peer_addr(peer);
        }
        Ok(Self { upgrade })
    }
}

impl WebSocketUpgrade {
    /// The request: path, headers, `Origin`, offered subprotocols (in the client's order of
    /// preference) and extensions.
    #[must_use]
    pub const fn request(&self) -> &Request {
        self.upgrade.request()
    }

    /// Accepts with `accept` (a subprotocol the client offered, extra headers); the
    /// response comes from [`Accepting::on_upgrade`].
    pub fn accept(self, accept: Accept) -> Accepting {
        Accepting {
            upgrade: self.upgrade,
            decision: Ok(accept),
        }
    }

    /// Accepts with no subprotocol and runs `callback` on the WebSocket in a new task once
    /// the response is sent; returns the response (101, or 200 over HTTP/2).
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.accept(Accept::new()).on_upgrade(callback)
    }

    /// Refuses with the application's status, headers and text body (a status a refusal
    /// cannot use is answered 500).
    pub fn reject(self, reject: Reject) -> Response {
        let (response, _) = self.upgrade.respond(Err(reject));
        response
    }
}

impl Accepting {
    /// Runs `callback` on the WebSocket in a new task once the response is sent, and
    /// returns the response. A decision the handshake cannot carry out (a subprotocol the
    /// client did not offer, a header it may not set) is answered 500 and the callback
    /// never runs.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<Upgraded>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.upgrade.on_upgrade(self.decision, callback)
    }
}
