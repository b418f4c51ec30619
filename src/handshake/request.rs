//! The client's request as the server sees it, and its validation (RFC 6455 §4.2.1).

use super::http::{self, Head};
use super::origin::OriginPolicy;
use super::uri;
use crate::error::HandshakeError;
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// A valid WebSocket upgrade request (RFC 6455 §4.2.1), as the application sees it to decide.
///
/// Also the view of an HTTP/2 extended CONNECT (RFC 8441 §4) that another server parsed
/// (feature `http`, `web::Upgrade`); [`is_extended_connect`](Self::is_extended_connect)
/// tells them apart.
#[derive(Clone)]
pub struct Request {
    head: Head,
    method: Range<usize>,
    path: String,
    host: Range<usize>,
    key: Range<usize>,
    origin: Option<Range<usize>>,
    protocols: Vec<Range<usize>>,
    extensions: Vec<Range<usize>>,
    extended_connect: bool,
}

impl Request {
    /// The method: `GET`, or `CONNECT` for an HTTP/2 extended CONNECT.
    #[must_use]
    pub fn method(&self) -> &str {
        self.head.str(self.method.clone())
    }

    /// The resource name: path and query. An absolute-form target
    /// (`GET http://host/chat HTTP/1.1`) is reduced to its path and query.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of header `name` (ASCII case-insensitive), if it is UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// Every header in order, names as sent, values as raw bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.head.headers()
    }

    /// The `Origin` header (at most one is accepted). Browsers always send it; check it to
    /// stop cross-site WebSocket hijacking (RFC 6455 §10.2).
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        self.origin.clone().map(|r| self.head.str(r))
    }

    /// The `Host` header (`:authority` over HTTP/2): the authority the client asked for.
    #[must_use]
    pub fn host(&self) -> &str {
        self.head.str(self.host.clone())
    }

    /// Every offered subprotocol, across repeated `Sec-WebSocket-Protocol` headers, in the
    /// client's order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> {
        self.protocols.iter().map(|r| self.head.str(r.clone()))
    }

    /// Every extension offer, across repeated `Sec-WebSocket-Extensions` headers, as sent
    /// (name and parameters, e.g. `permessage-deflate; client_max_window_bits`).
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.extensions.iter().map(|r| self.head.str(r.clone()))
    }

    /// The `Sec-WebSocket-Key` (already checked: base64 of 16 bytes); empty for an HTTP/2
    /// extended CONNECT, which has no key (RFC 8441 §5).
    #[must_use]
    pub fn key(&self) -> &str {
        self.head.str(self.key.clone())
    }

    /// Whether this is an HTTP/2 extended CONNECT with `:protocol` `websocket` (RFC 8441
    /// §4), answered 200 rather than 101. Only the `http` path produces these.
    #[must_use]
    pub const fn is_extended_connect(&self) -> bool {
        self.extended_connect
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("path", &self.path)
            .field("headers", &self.head)
            .finish_non_exhaustive()
    }
}

/// The extension name of an offer (its first token).
pub(crate) fn offer_name(offer: &str) -> &[u8] {
    let b = offer.as_bytes();
    &b[..b
        .iter()
        .position(|&c| !http::is_tchar(c))
        .unwrap_or(b.len())]
}

/// RFC 6455 §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded ...
/// value that, when decoded, is 16 bytes in length": 22 base64 characters and "==".
///
/// The unused low bits of the last character are not required to be zero: the RFC's own
/// example key (§4.1, `AQIDBAUGBwgJCgsMDQ4PEC==`) has them set, and the server never needs
/// to decode the key (§4.2.2: "It is not necessary for the server to base64-decode").
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key[22..] == *b"=="
        && key[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Parses and validates a complete request head (RFC 6455 §4.2.1): httparse, then
/// [`check_http1`].
pub(crate) fn parse_request(
    buf: Vec<u8>,
    header_lines: usize,
    policy: &OriginPolicy,
) -> Result<Request, HandshakeError> {
    // Sized by the header lines actually received, never by a configured maximum.
    let mut slots = vec![httparse::EMPTY_HEADER; header_lines];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(&buf) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(HandshakeError::BadRequest(
                "malformed request line or header",
            ));
        }
    }
    let method = http::range_in(&buf, parsed.method.unwrap_or("").as_bytes());
    let target = http::range_in(&buf, parsed.path.unwrap_or("").as_bytes());
    let version = parsed.version;
    let positions = Head::positions(&buf, parsed.headers);
    check_http1(Head::new(buf, positions), method, target, version, policy)
}

/// Validates an HTTP/1.x request (RFC 6455 §4.2.1) whose method and request-target sit in
/// `head` at `method` and `target`; `version` is the minor version of HTTP/1 (`None` for
/// any other major version). The byte parser and the `http` path both end here.
///
/// The checks run in this order, so a request with several faults gets the first status:
/// method (405), HTTP version (400), Host (400), request-target (400), a body announced by
/// `Transfer-Encoding` or a non-zero `Content-Length` (400), Upgrade and Connection (400),
/// Sec-WebSocket-Version (426), Sec-WebSocket-Key (400), then Origin,
/// Sec-WebSocket-Protocol and Sec-WebSocket-Extensions syntax (400), and last the origin
/// policy (403). The version comes before the key so that a client speaking an older draft
/// learns which version to use.
pub(crate) fn check_http1(
    head: Head,
    method: Range<usize>,
    target: Range<usize>,
    version: Option<u8>,
    policy: &OriginPolicy,
) -> Result<Request, HandshakeError> {
    use HandshakeError::BadRequest;
    let target = head.str(target);

    // RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if head.str(method.clone()) != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if version != Some(1) {
        return Err(BadRequest("http/1.1 or higher required"));
    }
    // RFC 6455 §4.2.1 item 2: "A |Host| header field containing the server's authority."
    // RFC 7230 §5.4: "A server MUST respond with a 400 (Bad Request) status code to any
    // HTTP/1.1 request message that lacks a Host header field and to any request message that
    // contains more than one Host header field or a Host header field with an invalid
    // field-value."
    let host = match head.single("host") {
        Ok(range) => range,
        Err(0) => return Err(BadRequest("missing host header")),
        Err(_) => return Err(BadRequest("more than one host header")),
    };
    let host_authority = uri::parse_authority(head.str(host.clone()))
        .map_err(|_| BadRequest("invalid host header"))?;
    let path = request_path(target, &host_authority).map_err(BadRequest)?;
    // RFC 6455 §4.2.1 describes a request without a body: what follows the head is frames.
    if head.announces_body() {
        return Err(BadRequest("handshake request must not have a body"));
    }
    // RFC 6455 §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket",
    // treated as an ASCII case-insensitive value."
    if !head.list_contains("upgrade", "websocket") {
        return Err(BadRequest("upgrade header does not name websocket"));
    }
    // RFC 6455 §4.2.1 item 4: "A |Connection| header field that includes the token
    // "Upgrade", treated as an ASCII case-insensitive value."
    if !head.list_contains("connection", "upgrade") {
        return Err(BadRequest("connection header lacks the upgrade token"));
    }
    check_version(&head)?;
    let key = match head.single("sec-websocket-key") {
        Ok(range) if is_valid_key(&head.bytes()[range.clone()]) => range,
        Ok(_) => return Err(BadRequest("sec-websocket-key is not base64 of 16 bytes")),
        Err(0) => return Err(BadRequest("missing sec-websocket-key")),
        Err(_) => return Err(BadRequest("more than one sec-websocket-key")),
    };
    let offers = check_offers(&head, host.clone(), policy)?;
    Ok(Request {
        head,
        method,
        path,
        host,
        key,
        origin: offers.origin,
        protocols: offers.protocols,
        extensions: offers.extensions,
        extended_connect: false,
    })
}

/// Where the pieces of an HTTP/2 (or HTTP/3) CONNECT request sit in its [`Head`]: the
/// pseudo-header fields another server parsed.
#[cfg(feature = "http")]
pub(crate) struct ConnectLine {
    pub(crate) method: Range<usize>,
    /// `:protocol` (RFC 8441 §4), if the request had one.
    pub(crate) protocol: Option<Range<usize>>,
    /// `:authority`, if the request had one.
    pub(crate) authority: Option<Range<usize>>,
    /// `:path`: path and query.
    pub(crate) path: Range<usize>,
}

/// Validates an HTTP/2 extended CONNECT (RFC 8441 §4, §5): the §4.2.1 checks that apply
/// over HTTP/2, with `:authority` for `Host`, and no Upgrade, Connection or key.
///
/// Order: method (405), `:protocol` (400), authority (400), path (400), body (400),
/// Sec-WebSocket-Version (426), Origin, Sec-WebSocket-Protocol and Sec-WebSocket-Extensions
/// syntax (400), origin policy (403).
#[cfg(feature = "http")]
pub(crate) fn check_extended_connect(
    head: Head,
    line: ConnectLine,
    policy: &OriginPolicy,
) -> Result<Request, HandshakeError> {
    use HandshakeError::BadRequest;
    // RFC 8441 §4: "a CONNECT request MAY include a :protocol pseudo-header".
    if head.str(line.method.clone()) != "CONNECT" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    // RFC 8441 §5: "The :protocol pseudo-header field MUST be included in the CONNECT
    // request, and it MUST have a value of "websocket" to initiate a WebSocket connection on
    // an HTTP/2 stream."
    match line.protocol {
        Some(p) if head.str(p.clone()) == "websocket" => {}
        Some(_) => return Err(BadRequest(":protocol is not websocket")),
        None => return Err(BadRequest("connect without :protocol websocket")),
    }
    // RFC 8441 §4: "On requests that contain the :protocol pseudo-header field, the :scheme
    // and :path pseudo-header fields of the target URI MUST also be included." RFC 9113
    // §8.3.1: a server "SHOULD treat a request as malformed if it contains a Host header
    // field that identifies an entity that differs from the entity in the :authority".
    let host = match (line.authority, head.single("host")) {
        (Some(authority), Err(0)) => authority,
        (Some(authority), Ok(host))
            if head
                .str(authority.clone())
                .eq_ignore_ascii_case(head.str(host.clone())) =>
        {
            authority
        }
        (Some(_), _) => return Err(BadRequest("host header differs from :authority")),
        (None, Ok(host)) => host,
        (None, Err(0)) => return Err(BadRequest("missing :authority")),
        (None, Err(_)) => return Err(BadRequest("more than one host header")),
    };
    uri::parse_authority(head.str(host.clone())).map_err(|_| BadRequest("invalid :authority"))?;
    let path = head.str(line.path.clone());
    if !path.starts_with('/') || !uri::is_path_and_query(path) {
        return Err(BadRequest(":path is not an absolute path and query"));
    }
    let path = path.to_owned();
    if head.announces_body() {
        return Err(BadRequest("handshake request must not have a body"));
    }
    check_version(&head)?;
    let offers = check_offers(&head, host.clone(), policy)?;
    Ok(Request {
        head,
        method: line.method,
        path,
        host,
        key: 0..0,
        origin: offers.origin,
        protocols: offers.protocols,
        extensions: offers.extensions,
        extended_connect: true,
    })
}

/// RFC 6455 §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
/// (RFC 8441 §5 keeps it for HTTP/2.)
fn check_version(head: &Head) -> Result<(), HandshakeError> {
    match head.single("sec-websocket-version") {
        Ok(range) if http::trim_ows(&head.bytes()[range.clone()]) == b"13" => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion),
    }
}

/// What a request offers and where it comes from, checked.
struct Offers {
    origin: Option<Range<usize>>,
    protocols: Vec<Range<usize>>,
    extensions: Vec<Range<usize>>,
}

/// The checks every upgrade request ends with: Origin, Sec-WebSocket-Protocol and
/// Sec-WebSocket-Extensions syntax (400), then the origin policy against `host` (403).
fn check_offers(
    head: &Head,
    host: Range<usize>,
    policy: &OriginPolicy,
) -> Result<Offers, HandshakeError> {
    use HandshakeError::BadRequest;
    // RFC 6454 §7.3: "The user agent MUST NOT include more than one Origin header field in
    // any HTTP request." Two would make the origin check ambiguous.
    let origin = match head.single("origin") {
        Ok(range) if head.bytes()[range.clone()].is_ascii() => Some(range),
        Ok(_) => return Err(BadRequest("origin is not ascii")),
        Err(0) => None,
        Err(_) => return Err(BadRequest("more than one origin header")),
    };
    // RFC 6455 §4.3: "Sec-WebSocket-Protocol-Client = 1#token" and
    // "Sec-WebSocket-Extensions = extension-list"; §4.2.1: "any violations of the ABNF
    // grammar" get "an appropriate error code (such as 400 Bad Request)".
    let mut protocols = Vec::new();
    let mut extensions = Vec::new();
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            http::check_token_list(value).map_err(BadRequest)?;
            protocols.extend(http::list_elements(value).map(|e| http::range_in(head.bytes(), e)));
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            http::parse_extension_list(value, |_, offer| {
                extensions.push(http::range_in(head.bytes(), offer))
            })
            .map_err(|_| BadRequest("malformed sec-websocket-extensions"))?;
        }
    }
    // RFC 6455 §10.2: "Servers that are not intended to process input from any web page but
    // only for certain sites SHOULD verify the |Origin| field is an origin they expect. If
    // the origin indicated is unacceptable to the server, then it SHOULD respond to the
    // WebSocket handshake with a reply containing HTTP 403 Forbidden status code."
    let origin_text = origin
        .clone()
        .map(|r| head.str(r).trim_matches([' ', '\t']));
    if !policy.allows(origin_text, head.str(host)) {
        return Err(HandshakeError::OriginNotAllowed);
    }
    Ok(Offers {
        origin,
        protocols,
        extensions,
    })
}

/// The resource name of a request-target.
///
/// Origin-form (`/chat?x`) is the norm. Absolute-form (`http://host/chat`) is accepted too:
/// RFC 6455 §4.2.1 item 1 allows "an absolute HTTP/HTTPS URI containing the /resource name/"
/// and RFC 7230 §5.3.2 says "a server MUST accept the absolute-form in requests". To leave no
/// doubt about which host is meant, its authority must match the Host header (host ASCII
/// case-insensitive, ports compared after applying the scheme's default). Authority-form and
/// asterisk-form, which are for CONNECT and OPTIONS, are refused.
fn request_path(target: &str, host: &uri::Authority<'_>) -> Result<String, &'static str> {
    const BAD_TARGET: &str = "request target must be origin-form or an absolute http(s) uri";
    if target.starts_with('/') {
        return if uri::is_path_and_query(target) {
            Ok(target.to_owned())
        } else {
            Err(BAD_TARGET)
        };
    }
    let (scheme, rest) = target.split_once("://").ok_or(BAD_TARGET)?;
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return Err(BAD_TARGET);
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    let authority = uri::parse_authority(authority).map_err(|_| BAD_TARGET)?;
    if !uri::is_path_and_query(path_and_query) {
        return Err(BAD_TARGET);
    }
    let same_host = authority.host_text.eq_ignore_ascii_case(host.host_text)
        && authority.port.unwrap_or(default_port) == host.port.unwrap_or(default_port);
    if !same_host {
        return Err("request target authority does not match the host header");
    }
    let mut path = String::with_capacity(path_and_query.len() + 1);
    if !path_and_query.starts_with('/') {
        path.push('/');
    }
    path.push_str(path_and_query);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_4_2_1_keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEC=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=A"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j-Q=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(
            b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
        ));
    }

    #[test]
    fn absolute_form_targets() {
        let host = uri::parse_authority("example.com").unwrap();
        assert_eq!(
            request_path("http://EXAMPLE.com:80/chat?x", &host).as_deref(),
            Ok("/chat?x")
        );
        // Host without a port: the target's scheme supplies the default.
        assert_eq!(
            request_path("https://example.com?x", &host).as_deref(),
            Ok("/?x")
        );
        let host = uri::parse_authority("example.com:8080").unwrap();
        assert_eq!(
            request_path("http://example.com/", &host).as_deref(),
            Err(&"request target authority does not match the host header")
        );
        let host = uri::parse_authority("example.com:443").unwrap();
        assert_eq!(
            request_path("https://example.com?x", &host).as_deref(),
            Ok("/?x")
        );
        assert!(request_path("http://other.com/", &host).is_err());
        assert!(request_path("*", &host).is_err());
        assert!(request_path("example.com:443", &host).is_err());
        assert!(request_path("ftp://example.com/", &host).is_err());
        assert!(request_path("/a b", &host).is_err());
        assert!(request_path("/a#b", &host).is_err());
    }
}
