//! Conversions between the handshake's types and the `http` crate's.

use crate::error::UsageError;
use crate::handshake::http::{is_token, list_elements};
use crate::handshake::{ClientRequest, IntoClientRequest, Request, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

impl IntoClientRequest for Uri {
    /// A `ws://` or `wss://` URI.
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        ClientRequest::new(&self.to_string())
    }
}

impl IntoClientRequest for &Uri {
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        ClientRequest::new(&self.to_string())
    }
}

impl IntoClientRequest for http::Request<()> {
    /// A GET to a `ws://` or `wss://` URI. Its headers become the request's:
    /// `Sec-WebSocket-Protocol` values are offered as subprotocols (in order),
    /// `Sec-WebSocket-Extensions` values as extensions, and other headers are sent as they
    /// are (checked by [`ClientHandshake::new`](crate::ClientHandshake::new)).
    ///
    /// Headers the handshake writes itself are accepted when they agree with it (`Host`
    /// naming the URI's authority, `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Version: 13`), as in requests built for other WebSocket clients; a
    /// `Sec-WebSocket-Key` is replaced by a fresh nonce (RFC 6455 §4.1: "The nonce MUST be
    /// selected randomly for each connection"). The HTTP version is the transport's
    /// business and is not looked at.
    ///
    /// ```
    /// use rfc6455::handshake::IntoClientRequest;
    /// let request = http::Request::get("wss://example.com/feed")
    ///     .header("sec-websocket-protocol", "v2.feed, v1.feed")
    ///     .header("authorization", "Bearer abc")
    ///     .body(())?
    ///     .into_client_request()?;
    /// assert_eq!(request.protocols().collect::<Vec<_>>(), ["v2.feed", "v1.feed"]);
    /// assert_eq!(request.headers().next(), Some(("authorization", "Bearer abc")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn into_client_request(self) -> Result<ClientRequest, UsageError> {
        use UsageError::{InvalidHeader, InvalidRequest};
        let (parts, ()) = self.into_parts();
        // RFC 6455 §4.1: "The method of the request MUST be GET".
        if parts.method != Method::GET {
            return Err(InvalidRequest(
                "the method of a websocket request must be GET",
            ));
        }
        let mut request = ClientRequest::new(&parts.uri.to_string())?;
        for (name, value) in &parts.headers {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| InvalidHeader("header value is not utf-8"))?;
            let agrees = |token: &str| {
                list_elements(value.as_bytes()).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
            };
            match name.as_str() {
                "host" if value.eq_ignore_ascii_case(request.host_header()) => {}
                "host" => return Err(InvalidRequest("host header differs from the uri")),
                "upgrade" if agrees("websocket") => {}
                "connection" if agrees("upgrade") => {}
                "sec-websocket-version" if value.trim() == "13" => {}
                "upgrade" | "connection" | "sec-websocket-version" => {
                    return Err(InvalidRequest(
                        "upgrade, connection or sec-websocket-version header disagrees with \
                         the handshake",
                    ));
                }
                "sec-websocket-key" => {}
                "sec-websocket-protocol" => {
                    for token in list_elements(value.as_bytes()) {
                        if !is_token(token) {
                            return Err(InvalidHeader("subprotocol is not a token"));
                        }
                        let token = std::str::from_utf8(token).unwrap_or_default();
                        request = request.protocol(token);
                    }
                }
                "sec-websocket-extensions" => request = request.extension(value),
                other => request = request.header(other, value),
            }
        }
        Ok(request)
    }
}

impl ClientRequest {
    /// The request as an `http::Request<()>` (feature `http`): GET, the `ws://` / `wss://`
    /// URI, `Host`, the offered subprotocols and extensions and the extra headers. The
    /// headers the handshake generates when it starts (`Upgrade`, `Connection`, the key and
    /// the version) are not in it.
    ///
    /// # Errors
    /// [`UsageError::InvalidHeader`] for a header the `http` crate refuses (one
    /// [`ClientHandshake::new`](crate::ClientHandshake::new) would refuse too).
    pub fn to_http(&self) -> Result<http::Request<()>, UsageError> {
        let scheme = if self.is_tls() { "wss" } else { "ws" };
        let uri = format!("{scheme}://{}{}", self.host_header(), self.path());
        let mut request = http::Request::get(
            Uri::try_from(uri).map_err(|_| UsageError::InvalidUri("not a valid http::Uri"))?,
        )
        .body(())
        .map_err(|_| UsageError::InvalidUri("not a valid http::Uri"))?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, value(self.host_header())?);
        let protocols: Vec<&str> = self.protocols().collect();
        if !protocols.is_empty() {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                value(&protocols.join(", "))?,
            );
        }
        for offer in self.extensions() {
            headers.append(header::SEC_WEBSOCKET_EXTENSIONS, value(offer)?);
        }
        for (name, text) in self.headers() {
            headers.append(name_of(name)?, value(text)?);
        }
        Ok(request)
    }
}

impl Request {
    /// The request as the server received it, as an `http::Request<()>` (feature `http`):
    /// method, path and query, HTTP/1.1 (HTTP/2 for an extended CONNECT) and every header.
    #[must_use]
    pub fn to_http(&self) -> http::Request<()> {
        let mut request = http::Request::new(());
        *request.method_mut() = Method::from_bytes(self.method().as_bytes()).unwrap_or_default();
        *request.uri_mut() = Uri::try_from(self.path()).unwrap_or_default();
        *request.version_mut() = if self.is_extended_connect() {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        *request.headers_mut() = self.header_map();
        request
    }

    /// Every header, as an `http::HeaderMap` (feature `http`).
    #[must_use]
    pub fn header_map(&self) -> HeaderMap {
        to_header_map(self.headers())
    }
}

impl Response {
    /// The server's response as an `http::Response<()>` (feature `http`): status and
    /// headers.
    #[must_use]
    pub fn to_http(&self) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = StatusCode::from_u16(self.status()).unwrap_or_default();
        *response.headers_mut() = self.header_map();
        response
    }

    /// Every header, as an `http::HeaderMap` (feature `http`).
    #[must_use]
    pub fn header_map(&self) -> HeaderMap {
        to_header_map(self.headers())
    }
}

/// The headers a parser accepted. httparse and the `http` crate agree on what a name and a
/// value may hold, so nothing is dropped in practice; a pair `http` refuses is skipped.
fn to_header_map<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn name_of(name: &str) -> Result<HeaderName, UsageError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| UsageError::InvalidHeader("header name is not a token"))
}

fn value(text: &str) -> Result<HeaderValue, UsageError> {
    HeaderValue::from_str(text)
        .map_err(|_| UsageError::InvalidHeader("header value contains a control character"))
}
