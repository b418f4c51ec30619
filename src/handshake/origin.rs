//! Which `Origin`s a server lets upgrade: the defence against cross-site WebSocket hijacking.
//!
//! A browser lets any page open a WebSocket to any server, and sends that server the
//! cookies and HTTP credentials it holds for it. Unlike `fetch`, a WebSocket is not bound by
//! the same-origin policy: nothing in the browser stops `evil.example` from opening
//! `wss://bank.example/feed` with the user's session cookie and reading what comes back.
//! The only trace is the `Origin` header the browser adds, which a script cannot forge
//! (RFC 6455 §10.2: "The |Origin| header field [RFC6454] is used to protect against
//! unauthorized cross-origin use of a WebSocket server by scripts using the WebSocket API in
//! a web browser"). Checking it is the server's job; [`OriginPolicy`] does it before the
//! application sees the request.

use super::uri;
use alloc::string::String;
use alloc::vec::Vec;

/// Which browser origins may open a WebSocket (`Config::origin_policy`).
///
/// Checked after every other RFC 6455 §4.2.1 check, by the byte parser
/// ([`ServerHandshake`](super::ServerHandshake), hence both adapters) and by the `http`
/// path (`web::Upgrade`) alike. A refused request is answered `403 Forbidden` and reported
/// as [`HandshakeError::OriginNotAllowed`](crate::HandshakeError::OriginNotAllowed); the
/// application's callback never sees it.
///
/// A request **without** an `Origin` header is always accepted: browsers send one with every
/// WebSocket request, so its absence means a client that is not a browser (a CLI, another
/// server), which carries no victim's cookies and could fake any header anyway.
///
/// ```
/// use rfc6455::handshake::OriginPolicy;
/// let same = OriginPolicy::default(); // SameHost
/// assert!(same.allows(Some("https://chat.example"), "chat.example"));
/// assert!(same.allows(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"));
/// assert!(!same.allows(Some("https://evil.example"), "chat.example"));
/// assert!(same.allows(None, "chat.example")); // not a browser
///
/// let list = OriginPolicy::allow_list(["https://app.example", "http://localhost:3000"]);
/// assert!(list.allows(Some("https://APP.example:443"), "api.example"));
/// assert!(!list.allows(Some("https://api.example"), "api.example"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Every origin. Only for servers that hold no per-user state a page could abuse
    /// (no cookies, no HTTP authentication, no address-based trust), or that check the
    /// origin themselves.
    Any,
    /// The default, as in gorilla/websocket: the origin's host and port must be those of the
    /// request's `Host` (`:authority` over HTTP/2), the page and the WebSocket server being
    /// one site. Host names compare ASCII case-insensitively; a missing port is the origin
    /// scheme's default (80 for `http`/`ws`, 443 for `https`/`wss`) on both sides. The
    /// opaque origin `null` (sandboxed frames, `file:` pages) is refused. Behind a reverse
    /// proxy that rewrites `Host`, use an allow-list.
    #[default]
    SameHost,
    /// Exactly these origins (`scheme://host[:port]`, as browsers serialize them), compared
    /// with scheme and host ASCII case-insensitive and default ports made explicit, so
    /// `https://App.example` matches `https://app.example:443`. An entry that is not a valid
    /// origin matches nothing.
    AllowList(Vec<String>),
}

impl OriginPolicy {
    /// An [`AllowList`](Self::AllowList) of `origins`.
    #[must_use]
    pub fn allow_list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::AllowList(origins.into_iter().map(Into::into).collect())
    }

    /// Whether a request with this `Origin` header value (`None`: no header) sent to `host`
    /// (the `Host` header, or HTTP/2's `:authority`) may upgrade.
    #[must_use]
    pub fn allows(&self, origin: Option<&str>, host: &str) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        match self {
            Self::Any => true,
            Self::SameHost => {
                let (Some(origin), Ok(host)) = (Origin::parse(origin), uri::parse_authority(host))
                else {
                    return false;
                };
                // Only web origins name a host and port a page was served from.
                default_port(origin.scheme).is_some()
                    && origin.host.eq_ignore_ascii_case(host.host_text)
                    && origin.port == host.port.or(default_port(origin.scheme))
            }
            Self::AllowList(allowed) => Origin::parse(origin).is_some_and(|origin| {
                allowed
                    .iter()
                    .filter_map(|entry| Origin::parse(entry))
                    .any(|entry| entry.same_as(&origin))
            }),
        }
    }
}

/// A serialized origin (RFC 6454 §6.2): `scheme "://" host [ ":" port ]`, no path.
struct Origin<'a> {
    scheme: &'a str,
    /// As written, IPv6 brackets included.
    host: &'a str,
    /// The explicit port, or the scheme's default.
    port: Option<u16>,
}

impl<'a> Origin<'a> {
    /// `None` for `null`, for a list of several origins (RFC 6454 §7.1 allows one after a
    /// redirect; it names more than one site, so no single site can be checked), and for
    /// anything else that is not one serialized origin.
    fn parse(text: &'a str) -> Option<Self> {
        let (scheme, authority) = text.split_once("://")?;
        // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        let mut chars = scheme.bytes();
        if !chars.next()?.is_ascii_alphabetic()
            || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let authority = uri::parse_authority(authority).ok()?;
        Some(Self {
            scheme,
            host: authority.host_text,
            port: authority.port.or(default_port(scheme)),
        })
    }

    fn same_as(&self, other: &Origin<'_>) -> bool {
        self.scheme.eq_ignore_ascii_case(other.scheme)
            && self.host.eq_ignore_ascii_case(other.host)
            && self.port == other.port
    }
}

/// The default port of the schemes a browser page or a WebSocket can have.
fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_10_2_same_host_compares_host_and_effective_port() {
        let p = OriginPolicy::SameHost;
        for (origin, host) in [
            ("http://example.com", "example.com"),
            ("http://example.com", "example.com:80"),
            ("https://example.com", "EXAMPLE.com"),
            ("https://example.com", "example.com:443"),
            ("http://example.com:8080", "example.com:8080"),
            ("http://[::1]:9001", "[::1]:9001"),
            ("http://127.0.0.1:9001", "127.0.0.1:9001"),
        ] {
            assert!(p.allows(Some(origin), host), "{origin} at {host}");
        }
        for (origin, host) in [
            ("http://example.com", "server.example.com"),
            ("http://example.com", "example.com:8080"),
            ("https://example.com", "example.com:80"),
            ("http://example.com:8080", "example.com"),
            ("http://example.com.evil.example", "example.com"),
            ("null", "example.com"),
            ("", "example.com"),
            ("example.com", "example.com"),
            ("http://example.com/", "example.com"),
            ("http://user@example.com", "example.com"),
            ("http://a.example http://example.com", "example.com"),
            ("1http://example.com", "example.com"),
            ("foo://example.com", "example.com"),
        ] {
            assert!(!p.allows(Some(origin), host), "{origin} at {host}");
        }
        assert!(p.allows(None, "example.com"));
        assert!(!p.allows(Some("http://example.com"), "bad host"));
    }

    #[test]
    fn allow_list_normalises_case_and_default_ports() {
        let p = OriginPolicy::allow_list(["https://App.example", "http://localhost:3000", "junk"]);
        assert!(p.allows(Some("https://app.example"), "x"));
        assert!(p.allows(Some("HTTPS://app.EXAMPLE:443"), "x"));
        assert!(p.allows(Some("http://localhost:3000"), "x"));
        assert!(!p.allows(Some("http://app.example"), "app.example"));
        assert!(!p.allows(Some("http://localhost:3001"), "x"));
        assert!(!p.allows(Some("junk"), "x"));
        assert!(!p.allows(Some("null"), "x"));
        assert!(p.allows(None, "x"));
        assert!(!OriginPolicy::allow_list(Vec::<String>::new()).allows(Some("http://a"), "a"));
        assert!(OriginPolicy::Any.allows(Some("null"), "x"));
    }
}
