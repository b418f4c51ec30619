//! The server's handshake over a request another HTTP server parsed.

use crate::config::Config;
use crate::connection::Connection;
use crate::error::{HandshakeError, UsageError};
use crate::handshake::http::{self as wire, Head};
use crate::handshake::request::{self, ConnectLine};
use crate::handshake::{Accept, REJECT_OWNED_HEADERS, Refusal, Reject, Request};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use std::fmt;

/// A valid WebSocket upgrade request that another HTTP server parsed, awaiting the
/// application's decision.
///
/// Made by [`from_parts`](Self::from_parts) / [`from_request`](Self::from_request), which
/// run the byte parser's checks (RFC 6455 §4.2.1 for HTTP/1.1, RFC 8441 §4-§5 for an HTTP/2
/// extended CONNECT, then the origin policy); answered by [`accept`](Self::accept),
/// [`reject`](Self::reject) or [`respond`](Self::respond), which return the
/// `http::Response` to send. The server then upgrades the stream (hyper:
/// `hyper::upgrade::on`) and runs [`Accepted::into_connection`] over it.
///
/// See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct Upgrade {
    request: Request,
    config: Config,
}

/// Why a request could not be upgraded, with the response that says so
/// ([`into_response`](Self::into_response)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    error: HandshakeError,
    http2: bool,
}

/// An accepted upgrade: what the [`Connection`] over the upgraded stream needs.
#[derive(Debug, Clone)]
pub struct Accepted {
    config: Config,
    protocol: Option<String>,
    http2: bool,
}

impl Upgrade {
    /// Checks the request head `parts` under `config` (limits and origin policy).
    ///
    /// An HTTP/2 (or HTTP/3) CONNECT is checked as an RFC 8441 extended CONNECT; its
    /// `:protocol` is taken from the request's extensions (`hyper::ext::Protocol` with the
    /// `hyper` feature, `h2::ext::Protocol` with `h2`); other servers pass it to
    /// [`with_protocol`](Self::with_protocol).
    ///
    /// # Errors
    /// [`Refused`], whose [`error`](Refused::error) is the byte parser's for the same
    /// request: [`HandshakeError::BadRequest`] (400), `MethodNotAllowed` (405),
    /// `UnsupportedVersion` (426), `HeadTooLarge` / `TooManyHeaders` (431),
    /// `OriginNotAllowed` (403).
    pub fn from_parts(parts: &http::request::Parts, config: Config) -> Result<Self, Refused> {
        let protocol = protocol_extension(&parts.extensions);
        Self::with_protocol(parts, protocol.as_deref(), config)
    }

    /// [`from_parts`](Self::from_parts) for a whole request (its body is not looked at).
    ///
    /// # Errors
    /// As [`from_parts`](Self::from_parts).
    pub fn from_request<B>(request: &http::Request<B>, config: Config) -> Result<Self, Refused> {
        let protocol = protocol_extension(request.extensions());
        let (method, uri, version) = (request.method(), request.uri(), request.version());
        check(
            method,
            uri,
            version,
            request.headers(),
            protocol.as_deref(),
            config,
        )
    }

    /// [`from_parts`](Self::from_parts) with the HTTP/2 `:protocol` pseudo-header given
    /// (`None`: the request had none).
    ///
    /// # Errors
    /// As [`from_parts`](Self::from_parts).
    pub fn with_protocol(
        parts: &http::request::Parts,
        protocol: Option<&str>,
        config: Config,
    ) -> Result<Self, Refused> {
        check(
            &parts.method,
            &parts.uri,
            parts.version,
            &parts.headers,
            protocol,
            config,
        )
    }

    /// The request: path, headers, origin, offered subprotocols and extensions.
    #[must_use]
    pub const fn request(&self) -> &Request {
        &self.request
    }

    /// The config the request was checked with, which the connection will use.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Accepts: the response to send (`101 Switching Protocols` with
    /// `Sec-WebSocket-Accept`, or `200` for an HTTP/2 extended CONNECT, RFC 8441 §5), the
    /// chosen subprotocol and `accept`'s headers; and what the connection needs.
    ///
    /// # Errors
    /// As [`ServerHandshake::accept`](crate::handshake::ServerHandshake::accept), nothing
    /// sent: [`UsageError::ProtocolNotOffered`], [`UsageError::InvalidHeader`].
    pub fn accept(&self, accept: Accept) -> Result<(http::Response<()>, Accepted), UsageError> {
        let request = &self.request;
        crate::handshake::check_accept(request, &accept)?;

        let http2 = request.is_extended_connect();
        let mut response = http::Response::new(());
        // RFC 8441 §5: "the server ... sends a 200 response"; Upgrade, Connection and
        // Sec-WebSocket-Accept are absent: "The Sec-WebSocket-Key and Sec-WebSocket-Accept
        // header fields are not used". RFC 6455 §4.2.2: "A Status-Line with a 101 response
        // code", "An |Upgrade| header field with value "websocket"", "A |Connection| header
        // field with value "Upgrade"", "A |Sec-WebSocket-Accept| header field".
        *response.status_mut() = if http2 {
            StatusCode::OK
        } else {
            StatusCode::SWITCHING_PROTOCOLS
        };
        let headers = response.headers_mut();
        if !http2 {
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            let accept_key = crate::handshake::accept_key(request.key().as_bytes());
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value(&accept_key)?);
        }
        if let Some(chosen) = &accept.protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value(chosen)?);
        }
        // ----------------------------------------------------------------------------------
        // EXTENSION HOOK (permessage-deflate, the lead's): negotiate `request.extensions()`
        // here as `ServerHandshake::accept` does, append the agreed
        // `Sec-WebSocket-Extensions` response header to `headers`, and keep the agreed
        // extension in `Accepted` for `into_connection` (`Connection::with_extension`).
        // ----------------------------------------------------------------------------------
        for (name, text) in &accept.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UsageError::InvalidHeader("header name is not a token"))?;
            headers.append(name, value(text)?);
        }
        Ok((
            response,
            Accepted {
                config: self.config.clone(),
                protocol: accept.protocol,
                http2,
            },
        ))
    }

    /// Refuses with the application's response (e.g. 401 with `WWW-Authenticate`), its body
    /// text sent as `text/plain; charset=utf-8` unless a `Content-Type` is given.
    ///
    /// # Errors
    /// As [`ServerHandshake::reject`](crate::handshake::ServerHandshake::reject):
    /// [`UsageError::InvalidStatus`] (neither 200 nor 300-599),
    /// [`UsageError::InvalidHeader`].
    pub fn reject(&self, reject: Reject) -> Result<http::Response<String>, UsageError> {
        let status = reject.status();
        if status != 200 && !(300..=599).contains(&status) {
            return Err(UsageError::InvalidStatus(status));
        }
        let mut response = http::Response::new(String::new());
        *response.status_mut() =
            StatusCode::from_u16(status).map_err(|_| UsageError::InvalidStatus(status))?;
        for (name, text) in &reject.headers {
            wire::check_header(name, text)?;
            if wire::is_owned(name, REJECT_OWNED_HEADERS) {
                return Err(UsageError::InvalidHeader(
                    "header is set by the handshake itself",
                ));
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UsageError::InvalidHeader("header name is not a token"))?;
            response.headers_mut().append(name, value(text)?);
        }
        if !reject.body.is_empty() && !response.headers().contains_key(header::CONTENT_TYPE) {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        *response.body_mut() = reject.body;
        Ok(response)
    }

    /// Answers with the application's decision, as `ServerHandshake::respond` does: `Ok`
    /// accepts, `Err` rejects; a decision that cannot be carried out (a subprotocol the
    /// client did not offer, a bad header or status) is answered `500` instead.
    ///
    /// Returns the response to send (with an empty body when accepted) and the outcome:
    /// [`Accepted`], or why there is no connection: [`Refusal::Rejected`] for a rejection,
    /// [`Refusal::Invalid`] for a decision answered 500.
    pub fn respond(
        &self,
        decision: Result<Accept, Reject>,
    ) -> (http::Response<String>, Result<Accepted, Refusal>) {
        let invalid = match decision {
            Ok(accept) => match self.accept(accept) {
                Ok((response, accepted)) => {
                    return (response.map(|()| String::new()), Ok(accepted));
                }
                Err(e) => e,
            },
            Err(reject) => {
                let status = reject.status();
                match self.reject(reject) {
                    Ok(response) => return (response, Err(Refusal::Rejected(status))),
                    Err(e) => e,
                }
            }
        };
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        (response, Err(Refusal::Invalid(invalid)))
    }
}

impl Accepted {
    /// The chosen subprotocol, if any.
    #[must_use]
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Whether the stream is an HTTP/2 stream (RFC 8441) rather than an upgraded HTTP/1.1
    /// connection.
    #[must_use]
    pub const fn is_http2(&self) -> bool {
        self.http2
    }

    /// The config the connection runs with.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The server connection to run over the upgraded stream. The response was sent by the
    /// HTTP server, so its first output is frames.
    #[must_use]
    pub fn into_connection(self) -> Connection {
        // EXTENSION HOOK (the lead's): `.with_extension(..)` with the extension `accept`
        // agreed on.
        Connection::server(self.config)
    }
}

impl Refused {
    /// What was wrong, as the byte parser reports it.
    #[must_use]
    pub const fn error(&self) -> HandshakeError {
        self.error
    }

    /// The status of the response ([`HandshakeError::http_status`]).
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.error.http_status()
    }

    /// The response to send: the status, the headers the RFCs ask for (`Allow` with 405;
    /// `Sec-WebSocket-Version: 13` with 426, plus `Upgrade: websocket` over HTTP/1.1, RFC
    /// 7231 §6.5.15), and the error as a `text/plain` body.
    #[must_use]
    pub fn into_response<B: From<String>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(format!("{}\n", self.error)));
        *response.status_mut() =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let headers = response.headers_mut();
        match self.error {
            // RFC 7231 §6.5.5: a 405 "MUST generate an Allow header field".
            HandshakeError::MethodNotAllowed => {
                let allowed = if self.http2 { "CONNECT" } else { "GET" };
                headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            // RFC 6455 §4.2.2: "a |Sec-WebSocket-Version| header field indicating the
            // version(s) the server is capable of understanding".
            HandshakeError::UnsupportedVersion => {
                headers.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                if !self.http2 {
                    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                }
            }
            _ => {}
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.error, self.status())
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<Refused> for HandshakeError {
    fn from(refused: Refused) -> Self {
        refused.error
    }
}

fn value(text: &str) -> Result<HeaderValue, UsageError> {
    HeaderValue::from_str(text)
        .map_err(|_| UsageError::InvalidHeader("header value contains a control character"))
}

/// The `:protocol` a server put in the request's extensions.
fn protocol_extension(extensions: &http::Extensions) -> Option<String> {
    #[cfg(feature = "hyper")]
    if let Some(p) = extensions.get::<hyper::ext::Protocol>() {
        return Some(p.as_str().to_owned());
    }
    #[cfg(feature = "h2")]
    if let Some(p) = extensions.get::<h2::ext::Protocol>() {
        return Some(p.as_str().to_owned());
    }
    let _ = extensions;
    None
}

/// The checks, in the byte parser's order (see `check_http1` / `check_extended_connect`).
fn check(
    method: &Method,
    uri: &http::Uri,
    version: Version,
    headers: &http::HeaderMap,
    protocol: Option<&str>,
    config: Config,
) -> Result<Upgrade, Refused> {
    let http2 = version >= Version::HTTP_2;
    let refused = |error| Refused { error, http2 };
    // The byte parser's limits (431), on the same measure: the size of the head as HTTP/1.1
    // would carry it, and the number of header lines.
    if headers.len() > config.max_headers {
        return Err(refused(HandshakeError::TooManyHeaders(config.max_headers)));
    }
    let target = uri.to_string();
    let size = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .fold(
            method.as_str().len() + target.len() + 13,
            usize::saturating_add,
        );
    if size >= config.max_handshake_size {
        return Err(refused(HandshakeError::HeadTooLarge(
            config.max_handshake_size,
        )));
    }
    let fields = headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let policy = &config.origin_policy;
    let request = if http2 {
        if method == Method::GET {
            return Err(refused(HandshakeError::BadRequest(
                "over http/2 a websocket opens with an extended connect (rfc 8441)",
            )));
        }
        let authority = uri.authority().map_or("", |a| a.as_str());
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        let lead: [&[u8]; 4] = [
            method.as_str().as_bytes(),
            protocol.unwrap_or("").as_bytes(),
            authority.as_bytes(),
            path.as_bytes(),
        ];
        let (head, at) = Head::assemble(&lead, fields, size);
        let line = ConnectLine {
            method: at[0].clone(),
            protocol: protocol.map(|_| at[1].clone()),
            authority: uri.authority().map(|_| at[2].clone()),
            path: at[3].clone(),
        };
        request::check_extended_connect(head, line, policy)
    } else {
        let minor = match version {
            Version::HTTP_10 => Some(0),
            Version::HTTP_11 => Some(1),
            _ => None,
        };
        let lead: [&[u8]; 2] = [method.as_str().as_bytes(), target.as_bytes()];
        let (head, at) = Head::assemble(&lead, fields, size);
        request::check_http1(head, at[0].clone(), at[1].clone(), minor, policy)
    };
    request
        .map(|request| Upgrade { request, config })
        .map_err(refused)
}
