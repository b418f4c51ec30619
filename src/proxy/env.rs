//! The proxy the environment names, by curl's conventions (which reqwest, python-websockets
//! and aiohttp share in the main).
//!
//! For `ws://` the variables are read in the order `ws_proxy`, `WS_PROXY`, `http_proxy`,
//! `all_proxy`, `ALL_PROXY`; for `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`,
//! `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY`. The first one that is set decides; set but empty
//! means "no proxy". Lowercase comes first everywhere, and the uppercase `HTTP_PROXY` is
//! never read: a CGI server puts a request's `Proxy:` header in the environment as
//! `HTTP_PROXY` ("httpoxy", CVE-2016-5385), so an attacker could choose it. (reqwest reads
//! `HTTP_PROXY` outside CGI; curl never does; we follow curl.)
//!
//! `no_proxy`, else `NO_PROXY`, lists the hosts to reach directly: see
//! [`no_proxy_matches`]. A value without a scheme (`proxy.example:3128`) is an `http://`
//! proxy, as in curl and reqwest.

use super::Proxy;
use crate::error::UsageError;
use alloc::format;
use alloc::string::String;
use core::net::IpAddr;

const WS_VARIABLES: &[&str] = &[
    "ws_proxy",
    "WS_PROXY",
    "http_proxy",
    "all_proxy",
    "ALL_PROXY",
];
const WSS_VARIABLES: &[&str] = &[
    "wss_proxy",
    "WSS_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];
const NO_PROXY_VARIABLES: &[&str] = &["no_proxy", "NO_PROXY"];

impl Proxy {
    /// The proxy the process environment names for a connection to `host:port`, `tls` being
    /// whether the URI is `wss://`; `None` for no proxy. See
    /// [`from_env_with`](Self::from_env_with) for the variables read.
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] if the variable that applies holds a URL that
    /// [`Proxy::parse`] refuses.
    #[cfg(feature = "std")]
    pub fn from_env(tls: bool, host: &str, port: u16) -> Result<Option<Self>, UsageError> {
        Self::from_env_with(tls, host, port, |name| {
            // A value that is not Unicode becomes one that `parse` refuses, not "unset".
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// `from_env` (feature `std`) over `lookup` (a variable's value, `None` when unset)
    /// instead of the process environment: testable, and usable without `std`.
    ///
    /// For `ws://` the variables are read in the order `ws_proxy`, `WS_PROXY`, `http_proxy`,
    /// `all_proxy`, `ALL_PROXY`; for `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`,
    /// `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` (curl's order). The first one set decides; an
    /// empty value means no proxy. Uppercase `HTTP_PROXY` is never read: under CGI it carries
    /// a request's `Proxy:` header (CVE-2016-5385, "httpoxy"). A value without a scheme is
    /// an `http://` proxy. `no_proxy` (else `NO_PROXY`) is checked first: a host it lists
    /// gets no proxy (see [`no_proxy_matches`]).
    ///
    /// ```
    /// use rfc6455::proxy::{Proxy, Scheme};
    ///
    /// let env = |name: &str| match name {
    ///     "https_proxy" => Some("socks5h://127.0.0.1:9050".to_owned()),
    ///     "HTTP_PROXY" => Some("http://attacker.example".to_owned()), // never read
    ///     "NO_PROXY" => Some("localhost,.internal.example".to_owned()),
    ///     _ => None,
    /// };
    /// let proxy = Proxy::from_env_with(true, "echo.example", 443, env)?.unwrap();
    /// assert_eq!(proxy.scheme(), Scheme::Socks5h);
    /// assert_eq!(Proxy::from_env_with(true, "db.internal.example", 443, env)?, None);
    /// assert_eq!(Proxy::from_env_with(false, "echo.example", 80, env)?, None);
    /// # Ok::<(), rfc6455::UsageError>(())
    /// ```
    ///
    /// # Errors
    /// [`UsageError::InvalidProxy`] if the variable that applies holds a URL that
    /// [`Proxy::parse`] refuses.
    pub fn from_env_with(
        tls: bool,
        host: &str,
        port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, UsageError> {
        let first = |names: &[&str]| names.iter().find_map(|name| lookup(name));
        if first(NO_PROXY_VARIABLES).is_some_and(|list| no_proxy_matches(&list, host, port)) {
            return Ok(None);
        }
        let names = if tls { WSS_VARIABLES } else { WS_VARIABLES };
        match first(names) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) if value.contains("://") => Self::parse(&value).map(Some),
            Some(value) => Self::parse(&format!("http://{value}")).map(Some),
        }
    }
}

/// Whether a `NO_PROXY` list exempts `host:port` from the proxy.
///
/// The list is separated by commas and/or whitespace. An entry is:
///
/// * `*`: every host;
/// * a domain name, with or without a leading `.` (or `*.`): that name and every name under
///   it (`example.com` and `.example.com` both match `example.com` and `a.example.com`, not
///   `badexample.com`), ASCII case-insensitive, a trailing dot ignored (curl's rules);
/// * an IP address or a CIDR block (`10.0.0.0/8`, `fd00::/8`), which matches IP hosts only;
/// * any of those with `:port` (an IPv6 address then in brackets: `[::1]:8080`), which
///   matches that port only.
///
/// Entries that are none of these match nothing.
///
/// ```
/// use rfc6455::proxy::no_proxy_matches;
///
/// let list = "localhost, .corp.example 10.0.0.0/8,[::1]:8080";
/// assert!(no_proxy_matches(list, "git.corp.example", 443));
/// assert!(no_proxy_matches(list, "corp.example", 443));
/// assert!(!no_proxy_matches(list, "notcorp.example", 443));
/// assert!(no_proxy_matches(list, "10.1.2.3", 80));
/// assert!(no_proxy_matches(list, "::1", 8080));
/// assert!(!no_proxy_matches(list, "::1", 8081));
/// assert!(no_proxy_matches("*", "anything", 1));
/// ```
#[must_use]
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host_ip = host.parse::<IpAddr>().ok();
    let host = host.strip_suffix('.').unwrap_or(host);
    list.split([',', ' ', '\t', '\n', '\r'])
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let Some((pattern, entry_port)) = split_port(entry) else {
                return false;
            };
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            match (host_ip, parse_cidr(pattern)) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                (None, None) => domain_matches(host, pattern),
                _ => false,
            }
        })
}

/// Splits `host:port`, `[v6]:port`, `[v6]`; an unbracketed entry with several colons is an
/// IPv6 address (or block) without a port. `None` for a port that is not a number.
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return match after {
            "" => Some((inside, None)),
            _ => Some((inside, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match entry.split_once(':') {
        Some((name, port)) if !port.contains(':') => Some((name, Some(port.parse().ok()?))),
        _ => Some((entry, None)),
    }
}

/// An address, or a block `address/bits`.
fn parse_cidr(pattern: &str) -> Option<(IpAddr, u32)> {
    let (address, bits) = match pattern.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
        None => (pattern, None),
    };
    let address = address.parse::<IpAddr>().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((address, bits))
}

fn cidr_contains(net: IpAddr, bits: u32, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

fn domain_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern
        .strip_prefix("*.")
        .or_else(|| pattern.strip_prefix('.'))
        .unwrap_or(pattern);
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if pattern.is_empty() {
        return false;
    }
    // `host` equals the pattern, or ends with "." + pattern: a label boundary.
    host.len() >= pattern.len()
        && host.as_bytes()[host.len() - pattern.len()..].eq_ignore_ascii_case(pattern.as_bytes())
        && (host.len() == pattern.len() || host.as_bytes()[host.len() - pattern.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Scheme;
    use alloc::borrow::ToOwned;
    use alloc::vec::Vec;

    #[test]
    fn no_proxy_table() {
        let table: &[(&str, &str, u16, bool)] = &[
            ("*", "example.com", 443, true),
            ("a.example, *", "example.com", 443, true),
            ("", "example.com", 443, false),
            (" , ,", "example.com", 443, false),
            ("example.com", "example.com", 443, true),
            ("example.com", "EXAMPLE.com.", 443, true),
            ("example.com", "www.example.com", 443, true),
            ("example.com", "badexample.com", 443, false),
            ("example.com", "example.com.evil", 443, false),
            ("example.com", "com", 443, false),
            (".example.com", "example.com", 443, true),
            (".example.com", "a.b.example.com", 443, true),
            ("*.example.com", "a.example.com", 443, true),
            ("Example.COM.", "www.example.com", 443, true),
            (".", "example.com", 443, false),
            ("localhost", "localhost", 80, true),
            ("localhost", "127.0.0.1", 80, false),
            ("127.0.0.1", "127.0.0.1", 80, true),
            ("127.0.0.1", "127.0.0.2", 80, false),
            ("10.0.0.0/8", "10.255.0.1", 80, true),
            ("10.0.0.0/8", "11.0.0.1", 80, false),
            ("0.0.0.0/0", "192.0.2.1", 80, true),
            ("10.0.0.0/33", "10.0.0.1", 80, false),
            ("::1", "::1", 80, true),
            ("::1", "[::1]", 80, true),
            ("[::1]", "::1", 80, true),
            ("fd00::/8", "fd12::1", 80, true),
            ("fd00::/8", "fe80::1", 80, false),
            ("::/0", "127.0.0.1", 80, false),
            ("127.0.0.1", "localhost", 80, false),
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            ("10.0.0.1:80", "10.0.0.1", 80, true),
            ("10.0.0.1:80", "10.0.0.1", 81, false),
            ("[::1]:8080", "::1", 8080, true),
            ("[::1]:8080", "::1", 80, false),
            ("example.com:http", "example.com", 80, false),
            ("[::1", "::1", 80, false),
            ("a.example\tb.example  c.example", "b.example", 1, true),
        ];
        for &(list, host, port, expected) in table {
            assert_eq!(
                no_proxy_matches(list, host, port),
                expected,
                "no_proxy={list:?} host={host:?} port={port}"
            );
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<alloc::string::String> {
        let vars: Vec<(alloc::string::String, alloc::string::String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// The host of the proxy chosen for ws:// (false) or wss:// (true), or "-" for none.
    fn chosen(vars: &[(&str, &str)], tls: bool) -> alloc::string::String {
        Proxy::from_env_with(tls, "server.example", 443, env(vars))
            .unwrap()
            .map_or("-".to_owned(), |p| p.host().to_owned())
    }

    #[test]
    fn environment_follows_curl() {
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let table: &[(Vars, &str, &str)] = &[
            // (variables, proxy for ws://, proxy for wss://)
            (&[], "-", "-"),
            (&[("http_proxy", "h")], "h", "-"),
            (&[("HTTP_PROXY", "H")], "-", "-"), // httpoxy: never read
            (&[("https_proxy", "s"), ("HTTPS_PROXY", "S")], "-", "s"),
            (&[("HTTPS_PROXY", "S")], "-", "S"),
            (&[("all_proxy", "a"), ("ALL_PROXY", "A")], "a", "a"),
            (&[("ALL_PROXY", "A")], "A", "A"),
            (&[("http_proxy", "h"), ("all_proxy", "a")], "h", "a"),
            (&[("ws_proxy", "w"), ("http_proxy", "h")], "w", "-"),
            (&[("WS_PROXY", "W"), ("http_proxy", "h")], "W", "-"),
            (
                &[("wss_proxy", "w"), ("WSS_PROXY", "W"), ("https_proxy", "s")],
                "-",
                "w",
            ),
            (&[("WSS_PROXY", "W"), ("https_proxy", "s")], "-", "W"),
            // Set but empty: no proxy, and the fallbacks are not consulted.
            (&[("https_proxy", ""), ("all_proxy", "a")], "a", "-"),
            (&[("http_proxy", "h"), ("no_proxy", "*")], "-", "-"),
            (
                &[("all_proxy", "a"), ("NO_PROXY", "server.example")],
                "-",
                "-",
            ),
            // Lowercase no_proxy wins over uppercase, even when empty.
            (
                &[("all_proxy", "a"), ("no_proxy", ""), ("NO_PROXY", "*")],
                "a",
                "a",
            ),
            (
                &[("all_proxy", "a"), ("no_proxy", "other.example")],
                "a",
                "a",
            ),
        ];
        for &(vars, ws, wss) in table {
            assert_eq!(chosen(vars, false), ws, "ws:// with {vars:?}");
            assert_eq!(chosen(vars, true), wss, "wss:// with {vars:?}");
        }
    }

    #[test]
    fn environment_values_are_urls() {
        let get = |value: &str| Proxy::from_env_with(false, "s", 80, env(&[("http_proxy", value)]));
        let p = get("proxy.example:3128").unwrap().unwrap();
        assert_eq!(
            (p.scheme(), p.host(), p.port()),
            (Scheme::Http, "proxy.example", 3128)
        );
        let p = get("socks5h://u:p@proxy.example/").unwrap().unwrap();
        assert_eq!((p.scheme(), p.username()), (Scheme::Socks5h, Some("u")));
        assert_eq!(
            get("ftp://proxy.example"),
            Err(UsageError::InvalidProxy(
                "scheme must be http, socks5 or socks5h"
            ))
        );
        // An excluded host does not even parse the proxy variable.
        let vars = env(&[("http_proxy", "ftp://bad"), ("no_proxy", "s")]);
        assert_eq!(Proxy::from_env_with(false, "s", 80, vars), Ok(None));
    }
}
