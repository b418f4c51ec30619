//! A sans-IO implementation of the WebSocket protocol (RFC 6455).
//!
//! The core turns bytes into events and commands into bytes; it never touches a socket, a
//! clock or a thread. Adapters (blocking, tokio) are loops that pump it.
//!
//! ```
//! use rfc6455::{CloseCode, Config, Connection, Event, Message};
//!
//! let mut server = Connection::server(Config::default());
//! // A masked "Hello" text frame from a client (RFC 6455 §5.7).
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])?;
//! let Some(Event::Message(Message::Text(text))) = server.poll_event() else { panic!() };
//! assert_eq!(text, "Hello");
//!
//! server.send_text("Hi!").unwrap();
//! server.send_close(CloseCode::NORMAL, "bye").unwrap();
//! let mut wire = Vec::new();
//! while !server.pending_transmit().is_empty() {
//!     let chunk = server.pending_transmit();
//!     wire.extend_from_slice(chunk); // a real adapter writes this to the socket
//!     let n = chunk.len();
//!     server.advance_transmit(n);
//! }
//! assert_eq!(&wire[..5], &[0x81, 0x03, b'H', b'i', b'!']);
//! # Ok::<(), rfc6455::ProtocolError>(())
//! ```
//!
//! # Features
//!
//! * `std` (default): the blocking adapter (module `sync`), the OS entropy source for client
//!   masking keys, and `std::error::Error` impls. Without it the crate is the `no_std + alloc`
//!   core alone.
//! * `deflate` (default): permessage-deflate (RFC 7692) negotiation and codec (module
//!   `deflate`), on the pure-Rust zlib-rs; works without `std`.
//! * `tokio`: the async adapter (module `tokio`).
//! * `rustls`: `wss://` for the blocking adapter, with rustls on its `ring` provider and the
//!   Mozilla roots of `webpki-roots` (module `tls`: `sync::connect` then accepts `wss://`;
//!   `sync::connect_tls` / `sync::accept_tls` take your own rustls configs).
//! * `tokio-rustls`: `wss://` for the tokio adapter as well (`tokio::connect`,
//!   `tokio::connect_tls`, `tokio::accept_tls`); implies `tokio` and `rustls`. It is a feature
//!   of its own because cargo cannot enable a dependency (tokio-rustls) only when two other
//!   features are both on.
//! * `http`: the handshake in the `http` 1.x crate's types (module `web`): the server's
//!   RFC 6455 §4.2.1 checks over a request another HTTP server parsed, with the byte
//!   parser's statuses, and `connect` taking an `http::Uri` or `http::Request<()>`.
//! * `hyper`: upgrades in a hyper 1.x server, over HTTP/1.1 and over HTTP/2 extended CONNECT
//!   (RFC 8441) (module `hyper`); implies `http` and `tokio`.
//! * `axum08`: an axum 0.8 `WebSocketUpgrade` extractor (module `axum08`); implies `hyper`.
//!   The axum version is in the name so that the next axum is a new feature, not a breaking
//!   release of this crate.
//! * `h2`: the RFC 8441 client, WebSocket over an HTTP/2 stream on the `h2` crate (module
//!   `h2`); implies `http` and `tokio`.
//! * `tracing`: a `websocket` span per connection (role, peer address where known) and
//!   DEBUG events for the handshake's outcome, close codes sent and received, and protocol
//!   errors, on the `tracing` crate; never payload bytes.
//!
//! Servers check `Origin` by default ([`handshake::OriginPolicy`], `Config::origin_policy`):
//! a browser page of another host cannot open a WebSocket to them (cross-site WebSocket
//! hijacking, RFC 6455 §10.2).
#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs (nightly, `--cfg docsrs`): mark every feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)] // allowed in `raw` alone
#![deny(missing_docs)]
#![warn(unreachable_pub)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod adapters;
#[cfg(feature = "axum08")]
pub mod axum08;
pub mod close;
pub mod config;
pub mod connection;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod entropy;
pub mod error;
pub mod extension;
pub mod frame;
#[cfg(feature = "h2")]
pub mod h2;
pub mod handshake;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod message;
pub mod proxy;
pub mod pump;
mod raw;
#[cfg(feature = "std")]
pub mod sync;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "std")]
mod trace;
/// The incremental UTF-8 validator the receive path uses: public for the fuzz targets and the
/// property tests, not a supported API.
#[doc(hidden)]
pub mod utf8;
#[cfg(feature = "http")]
pub mod web;

pub use close::{CloseCode, CloseFrame};
pub use config::Config;
pub use connection::{Connection, Event, PreparedMessage, Role, State};
pub use entropy::Entropy;
#[cfg(feature = "std")]
pub use entropy::OsEntropy;
#[cfg(feature = "std")]
pub use error::Error;
pub use error::{HandshakeError, ProtocolError, ProxyError, UsageError};
pub use extension::Extension;
pub use handshake::{ClientHandshake, ClientRequest, ServerHandshake};
pub use message::{Message, MessageKind, Utf8Bytes};
pub use proxy::Proxy;
pub use pump::Pump;

/// The README's example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
