//! [`Proxy`]: where a proxy is and how to speak to it, parsed from a URL.

use super::{Scheme, TargetHost, target_host};
use crate::error::UsageError;
use crate::handshake::uri;
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

/// A username and password, for Basic authentication or RFC 1929.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Credentials {
    pub(super) username: String,
    pub(super) password: String,
}

/// A proxy: its scheme, host, port and optional credentials.
///
/// `Debug` and `Display` never show the password.
///
/// ```
/// use rfc6455::proxy::{Proxy, Scheme};
///
/// let proxy = Proxy::parse("socks5h://bob:p%40ss@[::1]:9050")?;
/// assert_eq!(proxy.scheme(), Scheme::Socks5h);
/// assert_eq!((proxy.host(), proxy.port()), ("::1", 9050));
/// assert_eq!((proxy.username(), proxy.password()), (Some("bob"), Some("p@ss")));
/// assert_eq!(proxy.to_string(), "socks5h://[::1]:9050");
///
/// assert_eq!(Proxy::parse("http://proxy.example")?.port(), 80);
/// assert!(Proxy::parse("https://proxy.example").is_err()); // TLS to the proxy: not supported
/// # Ok::<(), rfc6455::UsageError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    scheme: Scheme,
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl Proxy {
    /// A proxy at `host` (a name, an IPv4 address or an IPv6 address, with or without
    /// brackets) and `port`, without credentials.
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] for an empty or malformed host, or port 0.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Result<Self, UsageError> {
        let host = match target_host(host)? {
            TargetHost::Ip(_) => host.trim_start_matches('[').trim_end_matches(']'),
            TargetHost::Name(name) => name,
        };
        if port == 0 {
            return Err(UsageError::InvalidProxy("port 0"));
        }
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            credentials: None,
        })
    }

    /// Parses `scheme://[user[:password]@]host[:port][/]`, the scheme being `http`, `socks5` or
    /// `socks5h` (ASCII case-insensitive). The user and password are percent-decoded (a `:` or
    /// `@` in them must be written `%3A` / `%40`); a missing port is the scheme's
    /// [`default_port`](Scheme::default_port).
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] naming the problem: another scheme (`https` and `socks4`
    /// proxies are not supported), a path, query or fragment, whitespace or control bytes, a
    /// bad host or port, bad percent-encoding, credentials that are not UTF-8, or credentials
    /// the scheme cannot carry (see [`with_credentials`](Self::with_credentials)).
    pub fn parse(url: &str) -> Result<Self, UsageError> {
        let invalid = UsageError::InvalidProxy;
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid("whitespace or control character in proxy url"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(invalid("expected http://, socks5:// or socks5h://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            "https" => {
                return Err(invalid(
                    "https proxies (tls to the proxy) are not supported",
                ));
            }
            "socks4" | "socks4a" => return Err(invalid("socks4 is not supported; use socks5")),
            _ => return Err(invalid("scheme must be http, socks5 or socks5h")),
        };
        // Environment variables often end in "/"; anything more names a resource, which a
        // proxy URL has no use for.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(invalid("a proxy url has no path, query or fragment"));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let parsed = uri::parse_authority(host_port).map_err(UsageError::InvalidProxy)?;
        let port = parsed.port.unwrap_or(scheme.default_port());
        let proxy = Self::new(scheme, parsed.host, port)?;
        match userinfo {
            None => Ok(proxy),
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                proxy.with_credentials(&percent_decode(user)?, &percent_decode(password)?)
            }
        }
    }

    /// Adds credentials: Basic authentication (RFC 7617) for `http`, the username/password
    /// method (RFC 1929) for SOCKS5.
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`]: for `http`, a username containing `:` (RFC 7617 §2: "a
    /// user-id containing a colon character is invalid") or a control character; for SOCKS5,
    /// a username or password that is empty or longer than 255 bytes (RFC 1929 §2: each is
    /// "1 to 255" octets).
    pub fn with_credentials(mut self, username: &str, password: &str) -> Result<Self, UsageError> {
        let invalid = UsageError::InvalidProxy;
        match self.scheme {
            Scheme::Http => {
                if username.contains(':') {
                    return Err(invalid("a basic-auth username may not contain ':'"));
                }
                if username
                    .chars()
                    .chain(password.chars())
                    .any(char::is_control)
                {
                    return Err(invalid("control character in proxy credentials"));
                }
            }
            Scheme::Socks5 | Scheme::Socks5h => {
                for field in [username, password] {
                    if !(1..=255).contains(&field.len()) {
                        return Err(invalid(
                            "socks5 username and password must be 1 to 255 bytes each",
                        ));
                    }
                }
            }
        }
        self.credentials = Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
        Ok(self)
    }

    /// The scheme.
    #[must_use]
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The proxy's host, without the brackets of an IPv6 literal.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The username, if credentials were given.
    #[must_use]
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The password, if credentials were given.
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    pub(super) const fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Whether the client resolves the server's name itself (`socks5://`) and hands the proxy
    /// an IP address; for `http://` and `socks5h://` the proxy gets the name.
    #[must_use]
    pub const fn resolves_locally(&self) -> bool {
        matches!(self.scheme, Scheme::Socks5)
    }
}

impl FromStr for Proxy {
    type Err = UsageError;

    /// [`Proxy::parse`].
    fn from_str(url: &str) -> Result<Self, UsageError> {
        Self::parse(url)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username())
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Proxy {
    /// `scheme://host:port`, credentials left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, UsageError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(UsageError::InvalidProxy(
                    "bad percent-encoding in credentials",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UsageError::InvalidProxy("credentials are not utf-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn proxy_urls() {
        // (url, scheme, host, port, credentials)
        type Row<'a> = (&'a str, Scheme, &'a str, u16, Option<(&'a str, &'a str)>);
        let table: &[Row] = &[
            ("http://proxy:3128", Scheme::Http, "proxy", 3128, None),
            ("HTTP://proxy:3128/", Scheme::Http, "proxy", 3128, None),
            ("http://proxy", Scheme::Http, "proxy", 80, None),
            ("http://10.0.0.1:8080", Scheme::Http, "10.0.0.1", 8080, None),
            ("http://[::1]:8080", Scheme::Http, "::1", 8080, None),
            ("socks5://proxy", Scheme::Socks5, "proxy", 1080, None),
            ("SOCKS5H://proxy:9050", Scheme::Socks5h, "proxy", 9050, None),
            (
                "http://u:p@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("u", "p")),
            ),
            (
                "http://u@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("u", "")),
            ),
            (
                "http://us%65r:p%3A%40%25@proxy:1",
                Scheme::Http,
                "proxy",
                1,
                Some(("user", "p:@%")),
            ),
            // The last '@' ends the userinfo; an '@' in a password may also be written raw.
            (
                "socks5://u:p@ss@proxy",
                Scheme::Socks5,
                "proxy",
                1080,
                Some(("u", "p@ss")),
            ),
            (
                "socks5h://%C3%BC:x@proxy",
                Scheme::Socks5h,
                "proxy",
                1080,
                Some(("ü", "x")),
            ),
        ];
        for &(url, scheme, host, port, credentials) in table {
            let proxy = Proxy::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(proxy.scheme(), scheme, "{url}");
            assert_eq!((proxy.host(), proxy.port()), (host, port), "{url}");
            let got = proxy.username().zip(proxy.password());
            assert_eq!(got, credentials, "{url}");
        }
    }

    #[test]
    fn bad_proxy_urls_say_why() {
        let table: &[(&str, &str)] = &[
            ("proxy:3128", "expected http://, socks5:// or socks5h://"),
            (
                "https://proxy",
                "https proxies (tls to the proxy) are not supported",
            ),
            ("socks4://proxy", "socks4 is not supported; use socks5"),
            ("ftp://proxy", "scheme must be http, socks5 or socks5h"),
            (
                "http://proxy/path",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://proxy?x",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://proxy#x",
                "a proxy url has no path, query or fragment",
            ),
            (
                "http://pro xy",
                "whitespace or control character in proxy url",
            ),
            ("http://proxy:0", "port 0"),
            ("http://proxy:99999", "port out of range"),
            ("http://proxy:x", "port is not a number"),
            ("http://", "empty host"),
            ("http://u:p@", "empty host"),
            ("http://[::1", "unterminated ipv6 literal"),
            ("http://u%zz:p@proxy", "bad percent-encoding in credentials"),
            ("http://u%+f:p@proxy", "bad percent-encoding in credentials"),
            ("http://u%f:p@proxy", "bad percent-encoding in credentials"),
            ("http://u:%ff@proxy", "credentials are not utf-8"),
            (
                "http://a%3Ab:p@proxy",
                "a basic-auth username may not contain ':'",
            ),
            (
                "http://u:%0d%0a@proxy",
                "control character in proxy credentials",
            ),
            (
                "socks5://u@proxy",
                "socks5 username and password must be 1 to 255 bytes each",
            ),
        ];
        for &(url, why) in table {
            assert_eq!(
                Proxy::parse(url),
                Err(UsageError::InvalidProxy(why)),
                "{url}"
            );
        }
        let long = "x".repeat(256);
        assert!(
            Proxy::parse(&format!("socks5h://{long}:p@proxy")).is_err(),
            "rfc1929_2_username_over_255_bytes_is_refused"
        );
        assert!(Proxy::parse(&format!("socks5h://{}:p@proxy", &long[1..])).is_ok());
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let proxy = Proxy::parse("http://alice:hunter2@proxy:3128").unwrap();
        let shown = format!("{proxy:?} {proxy}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        assert_eq!(proxy.to_string(), "http://proxy:3128");
        let v6 = Proxy::new(Scheme::Socks5, "[::1]", 1).unwrap();
        assert_eq!(v6.to_string(), "socks5://[::1]:1");
        assert_eq!("socks5://[::1]:1".parse::<Proxy>(), Ok(v6));
    }
}
