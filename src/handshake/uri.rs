//! The URI grammar the handshake needs (RFC 6455 §3, RFC 3986): `ws://` and `wss://` URIs for
//! the client, and authorities and request-targets for the server.

use alloc::string::String;

/// A parsed `host [ ":" port ]` (RFC 3986 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    /// The host without IPv6 brackets.
    pub(crate) host: &'a str,
    /// The host as written (with brackets for an IPv6 literal).
    pub(crate) host_text: &'a str,
    /// The port; `None` when absent or empty (RFC 3986 §3.2.3: `port = *DIGIT`).
    pub(crate) port: Option<u16>,
}

/// Parses `host [ ":" port ]`: an `[IPv6]` literal, or a reg-name (which covers IPv4).
/// Userinfo is refused: RFC 7230 §2.7.1 deprecates it and it leaks credentials.
pub(crate) fn parse_authority(s: &str) -> Result<Authority<'_>, &'static str> {
    if s.contains('@') {
        return Err("userinfo is not allowed");
    }
    let (host_text, rest) = if s.starts_with('[') {
        let close = s.find(']').ok_or("unterminated ipv6 literal")?;
        let inner = &s[1..close];
        // RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]". Zone identifiers
        // (RFC 6874) and IPvFuture name nothing a client can connect to portably.
        if inner.parse::<core::net::Ipv6Addr>().is_err() {
            return Err("invalid ipv6 literal");
        }
        (&s[..=close], &s[close + 1..])
    } else {
        let end = s.find(':').unwrap_or(s.len());
        let host = &s[..end];
        if !is_reg_name(host) {
            return Err("invalid character in host");
        }
        (host, &s[end..])
    };
    if host_text.is_empty() {
        return Err("empty host");
    }
    let port = match rest.strip_prefix(':') {
        None if rest.is_empty() => None,
        None => return Err("unexpected text after host"),
        Some("") => None,
        Some(digits) => Some(parse_port(digits)?),
    };
    let host = host_text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host_text);
    Ok(Authority {
        host,
        host_text,
        port,
    })
}

fn parse_port(digits: &str) -> Result<u16, &'static str> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("port is not a number");
    }
    // Leading zeros are allowed by `*DIGIT`; skip them so a long run cannot overflow.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 5 {
        return Err("port out of range");
    }
    let value: u32 = significant
        .bytes()
        .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'));
    u16::try_from(value).map_err(|_| "port out of range")
}

/// RFC 3986 §2.3: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §2.2: `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`.
const fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Checks `s` byte by byte: `allowed` bytes, or `%` followed by two hex digits.
fn all_pct_or(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// RFC 3986 §3.2.2: `reg-name = *( unreserved / pct-encoded / sub-delims )` (IPv4 included).
pub(crate) fn is_reg_name(s: &str) -> bool {
    all_pct_or(s, |b| is_unreserved(b) || is_sub_delim(b))
}

/// RFC 3986 §3.3, §3.4: a path-abempty with an optional query, i.e. `pchar`, `/` and `?`.
/// The input is either empty or starts with `/` or `?`.
pub(crate) fn is_path_and_query(s: &str) -> bool {
    all_pct_or(s, |b| {
        is_unreserved(b) || is_sub_delim(b) || matches!(b, b':' | b'@' | b'/' | b'?')
    })
}

/// RFC 6455 §3: the resource name is "/" if the path component is empty, then the path, then
/// "?" and the query if the query is non-empty.
pub(crate) fn resource_name(path_and_query: &str) -> String {
    let mut out = String::with_capacity(path_and_query.len() + 1);
    if !path_and_query.starts_with('/') {
        out.push('/');
    }
    // "?" only "if the query component is non-empty": a bare trailing "?" is dropped.
    out.push_str(
        path_and_query
            .strip_suffix('?')
            .filter(|p| !p.contains('?'))
            .unwrap_or(path_and_query),
    );
    out
}

/// A `ws://` or `wss://` URI, split (RFC 6455 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsUri<'a> {
    pub(crate) tls: bool,
    pub(crate) authority: Authority<'a>,
    pub(crate) resource: String,
}

/// Parses `ws-URI = "ws:" "//" host [ ":" port ] path [ "?" query ]` (and `wss-URI`).
pub(crate) fn parse_ws_uri(uri: &str) -> Result<WsUri<'_>, &'static str> {
    if uri.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err("whitespace, control or non-ascii character (percent-encode it)");
    }
    // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs and
    // MUST NOT be used on these URIs."
    if uri.contains('#') {
        return Err("fragment identifiers are not allowed");
    }
    let (scheme, rest) = uri.split_once("://").ok_or("expected ws:// or wss://")?;
    // RFC 6455 §3: the URI is secure "if the scheme component matches "wss"
    // case-insensitively".
    let tls = if scheme.eq_ignore_ascii_case("ws") {
        false
    } else if scheme.eq_ignore_ascii_case("wss") {
        true
    } else {
        return Err("scheme must be ws or wss");
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    let authority = parse_authority(authority)?;
    if authority.port == Some(0) {
        return Err("port 0");
    }
    if !is_path_and_query(path_and_query) {
        return Err("invalid character in path or query");
    }
    Ok(WsUri {
        tls,
        authority,
        resource: resource_name(path_and_query),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_3_uris() {
        let u = parse_ws_uri("ws://example.com").unwrap();
        assert_eq!(
            (
                u.tls,
                u.authority.host,
                u.authority.port,
                u.resource.as_str()
            ),
            (false, "example.com", None, "/")
        );
        let u = parse_ws_uri("WSS://Example.com:8443/chat?x=1&y=%20").unwrap();
        assert_eq!(
            (
                u.tls,
                u.authority.host,
                u.authority.port,
                u.resource.as_str()
            ),
            (true, "Example.com", Some(8443), "/chat?x=1&y=%20")
        );
        let u = parse_ws_uri("ws://[::1]:9001?q").unwrap();
        assert_eq!(
            (
                u.authority.host,
                u.authority.host_text,
                u.authority.port,
                u.resource.as_str()
            ),
            ("::1", "[::1]", Some(9001), "/?q")
        );
        let u = parse_ws_uri("ws://127.0.0.1:/a?").unwrap();
        assert_eq!(
            (u.authority.host, u.authority.port, u.resource.as_str()),
            ("127.0.0.1", None, "/a")
        );
    }

    #[test]
    fn rfc6455_3_bad_uris() {
        for bad in [
            "http://a/",
            "ws:/a",
            "ws//a",
            "ws://",
            "ws:///x",
            "ws://a/#f",
            "ws://a#",
            "ws://u@a/",
            "ws://u:p@a/",
            "ws://a:x/",
            "ws://a:65536/",
            "ws://a:0/",
            "ws://a:1:2/",
            "ws://[::1/",
            "ws://[zz]/",
            "ws://[fe80::1%25eth0]/",
            "ws://a b/",
            "ws://a/\r\n",
            "ws://a/é",
            "ws://a/<x>",
            "ws://a/%zz",
            "ws://a/%2",
            "ws://a%/",
            "ws://[::1]x/",
            "ws://a\0/",
        ] {
            assert!(parse_ws_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("00080"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("000000000000000000000000065535").is_ok());
        assert!(parse_port("99999999999999999999").is_err());
        assert!(parse_port("+1").is_err());
    }

    #[test]
    fn authorities() {
        let a = parse_authority("example.com:80").unwrap();
        assert_eq!((a.host, a.port), ("example.com", Some(80)));
        assert!(parse_authority("").is_err());
        assert!(parse_authority(":80").is_err());
        assert!(parse_authority("a,b").is_ok()); // sub-delims are legal in a reg-name
        assert!(parse_authority("a b").is_err());
    }
}
