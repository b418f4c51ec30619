//! Where Rust web servers live (feature `http`): the handshake in the `http` 1.x crate's types.
//!
//! * **Servers.** [`Upgrade`] runs the byte parser's RFC 6455 §4.2.1 checks, the origin
//!   policy included, over a request another HTTP server parsed (hyper, axum, anything built
//!   on `http::Request`), with the same errors and statuses: 400; 405 with `Allow`; 426
//!   with `Sec-WebSocket-Version`; 431; 403 for a refused origin. It also understands an
//!   HTTP/2 extended CONNECT (RFC 8441). Its answer is the `http::Response` to send plus
//!   [`Accepted`], which makes the [`Connection`](crate::Connection) for the upgraded
//!   stream. The `hyper` and `axum08` features wrap it for those servers.
//! * **Clients.** `http::Uri` and `http::Request<()>` implement
//!   [`IntoClientRequest`](crate::handshake::IntoClientRequest), so the adapters'
//!   `connect` takes them as it takes `&str`.
//! * **Conversions.** [`Request::to_http`](crate::handshake::Request::to_http) (what the
//!   server saw), [`Response::to_http`](crate::handshake::Response::to_http) (what the
//!   client got), [`ClientRequest::to_http`](crate::handshake::ClientRequest::to_http) (what
//!   the client will send, without its nonce), and `header_map()` on each.
//!
//! ```
//! use rfc6455::web::Upgrade;
//! use rfc6455::handshake::Accept;
//! use rfc6455::Config;
//!
//! // As hyper or axum would hand it over.
//! let request = http::Request::get("/chat")
//!     .header("host", "example.com")
//!     .header("upgrade", "websocket")
//!     .header("connection", "Upgrade")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-protocol", "chat")
//!     .body(())?;
//!
//! let upgrade = Upgrade::from_request(&request, Config::default())?;
//! assert_eq!(upgrade.request().path(), "/chat");
//! let (response, accepted) = upgrade.accept(Accept::new().protocol("chat"))?;
//! assert_eq!(response.status(), 101);
//! assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! let connection = accepted.into_connection(); // run it over the upgraded stream
//! # let _ = connection;
//!
//! // A request that is no upgrade gets the byte parser's answer.
//! let plain = http::Request::post("/chat").header("host", "example.com").body(())?;
//! let refused = Upgrade::from_request(&plain, Config::default()).unwrap_err();
//! let response: http::Response<String> = refused.into_response();
//! assert_eq!(response.status(), 405);
//! assert_eq!(response.headers()["allow"], "GET");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
mod upgrade;

pub use upgrade::{Accepted, Refused, Upgrade};
