//! A tunnel through an HTTP proxy: `CONNECT host:port` (RFC 9110 §9.3.6), optionally with
//! Basic credentials (RFC 7617) in `Proxy-Authorization`.
//!
//! The answer's head is found with the handshake's [`HeadScanner`] (each byte looked at once,
//! bounded by `Config::max_handshake_size` and `Config::max_headers`, CRLF only) and parsed
//! once when complete. Its body, if a refusal has one, is never read.

use super::{Credentials, Exchange, TargetHost};
use crate::config::Config;
use crate::error::ProxyError;
use crate::handshake::http::{HeadScanner, ScanError};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use base64::Engine as _;

pub(super) struct HttpConnect {
    tx: Vec<u8>,
    sent: usize,
    scanner: HeadScanner,
    max_size: usize,
    max_headers: usize,
    /// Bytes of interim (1xx) heads already taken: all heads share one size budget.
    used: usize,
    head: Vec<u8>,
    sent_credentials: bool,
    ready: bool,
    leftover: Vec<u8>,
}

impl HttpConnect {
    pub(super) fn new(
        target: TargetHost<'_>,
        port: u16,
        credentials: Option<&Credentials>,
        config: &Config,
    ) -> Self {
        // RFC 9110 §9.3.6: "A client sending a CONNECT request MUST send the authority form
        // of request-target (Section 3.2.3 of [HTTP/1.1]); i.e., the request-target consists
        // of only the host name and port number of the tunnel destination, separated by a
        // colon." An IPv6 address is written in brackets (RFC 3986 §3.2.2).
        let authority = match target {
            TargetHost::Ip(core::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            TargetHost::Ip(ip) => format!("{ip}:{port}"),
            TargetHost::Name(name) => format!("{name}:{port}"),
        };
        let mut tx = Vec::with_capacity(128);
        tx.extend_from_slice(b"CONNECT ");
        tx.extend_from_slice(authority.as_bytes());
        tx.extend_from_slice(b" HTTP/1.1\r\n");
        // RFC 9112 §3.2: "A client MUST send a Host header field in all HTTP/1.1 request
        // messages"; for the authority form it is the same authority (§3.2.3's example).
        crate::handshake::http::write_header(&mut tx, "Host", &authority);
        if let Some(c) = credentials {
            // RFC 7617 §2: the user-id and password joined by a single colon, base64-encoded
            // (as UTF-8, §2.1), after the scheme name "Basic".
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            let value = format!("Basic {token}");
            crate::handshake::http::write_header(&mut tx, "Proxy-Authorization", &value);
        }
        tx.extend_from_slice(b"\r\n");
        Self {
            tx,
            sent: 0,
            scanner: HeadScanner::new(config.max_handshake_size, config.max_headers),
            max_size: config.max_handshake_size,
            max_headers: config.max_headers,
            used: 0,
            head: Vec::new(),
            sent_credentials: credentials.is_some(),
            ready: false,
            leftover: Vec::new(),
        }
    }

    /// Parses the complete head in `self.head`: `Ok(true)` for a 2xx, `Ok(false)` for an
    /// interim answer to skip.
    fn parse_head(&mut self) -> Result<bool, ProxyError> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.scanner.header_lines()];
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(&self.head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                return Err(ProxyError::InvalidResponse(
                    "malformed status line or header",
                ));
            }
        }
        match response.code.unwrap_or(0) {
            // RFC 9110 §9.3.6: "Any 2xx (Successful) response indicates that the sender (and
            // all inbound proxies) will switch to tunnel mode immediately after the response
            // header section; data received after that header section is from the server
            // identified by the request target." And: "A client MUST ignore any
            // Content-Length or Transfer-Encoding header fields received in a successful
            // response to CONNECT."
            200..=299 => Ok(true),
            // RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses
            // received prior to a final response, even if the client does not expect one."
            // (101 would switch protocols, which a CONNECT did not ask for: a refusal.)
            100 | 102..=199 => Ok(false),
            // RFC 9110 §15.5.8: 407 "indicates that the client needs to authenticate itself
            // in order to use a proxy".
            407 if self.sent_credentials => Err(ProxyError::AuthFailed),
            407 => Err(ProxyError::AuthRequired),
            // tinyproxy answers wrong credentials with 401 (its missing ones with 407): after
            // credentials, a 401 from the proxy itself can only mean it rejected them.
            401 if self.sent_credentials => Err(ProxyError::AuthFailed),
            // RFC 9110 §9.3.6: "Any response other than a successful response indicates that
            // the tunnel has not yet been formed."
            status => Err(ProxyError::Refused(status)),
        }
    }
}

impl Exchange for HttpConnect {
    fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.sent..]
    }

    fn advance_transmit(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.tx.len());
    }

    fn receive(&mut self, mut data: &[u8]) -> Result<(), ProxyError> {
        while !self.ready && !data.is_empty() {
            let end = self.scanner.scan(data).map_err(|e| match e {
                ScanError::TooLarge => ProxyError::HeadTooLarge(self.max_size),
                ScanError::TooManyHeaders => ProxyError::TooManyHeaders(self.max_headers),
                ScanError::Malformed(why) => ProxyError::InvalidResponse(why),
            })?;
            let Some(n) = end else {
                self.head.extend_from_slice(data);
                return Ok(());
            };
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.parse_head()? {
                self.ready = true;
                self.head = Vec::new();
            } else {
                self.used += self.head.len();
                self.head.clear();
                let room = self.max_size.saturating_sub(self.used);
                self.scanner = HeadScanner::new(room, self.max_headers);
            }
        }
        if self.ready {
            self.leftover.extend_from_slice(data);
        }
        Ok(())
    }

    fn is_ready(&self) -> bool {
        self.ready
    }

    fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    fn take_leftover(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.leftover)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Proxy, Tunnel};
    use crate::config::Config;
    use crate::error::ProxyError;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn tunnel(proxy: &str, config: &Config) -> Tunnel {
        Tunnel::new(&Proxy::parse(proxy).unwrap(), "server.example", 443, config).unwrap()
    }

    /// Feeds `answer` in the given pieces; the result of the last call (errors are sticky),
    /// readiness and leftover.
    fn feed(
        answer: &[u8],
        cuts: &[usize],
        config: &Config,
    ) -> (Result<(), ProxyError>, bool, Vec<u8>) {
        let mut t = tunnel("http://proxy:3128", config);
        let mut last = Ok(());
        let mut at = 0;
        for &cut in cuts.iter().chain(core::iter::once(&answer.len())) {
            let cut = cut.clamp(at, answer.len());
            last = t.receive(&answer[at..cut]);
            at = cut;
        }
        (last, t.is_ready(), t.leftover().to_vec())
    }

    #[test]
    fn rfc9110_9_3_6_request_is_authority_form_with_host() {
        let config = Config::default();
        let t = tunnel("http://proxy:3128", &config);
        assert_eq!(
            t.pending_transmit(),
            b"CONNECT server.example:443 HTTP/1.1\r\nHost: server.example:443\r\n\r\n"
        );
        let proxy = Proxy::parse("http://proxy").unwrap();
        let v6 = Tunnel::new(&proxy, "::1", 8443, &config).unwrap();
        assert_eq!(
            v6.pending_transmit(),
            b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
        );
    }

    #[test]
    fn rfc7617_2_basic_credentials() {
        // RFC 7617 §2's example: "Aladdin" / "open sesame".
        let config = Config::default();
        let t = tunnel("http://Aladdin:open%20sesame@proxy", &config);
        let text = String::from_utf8(t.pending_transmit().to_vec()).unwrap();
        assert!(
            text.contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            "{text}"
        );
    }

    #[test]
    fn rfc9110_9_3_6_any_2xx_opens_the_tunnel_and_keeps_what_follows() {
        let config = Config::default();
        for answer in [
            &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            // RFC 9110 §9.3.6: framing headers in a 2xx to CONNECT are ignored.
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            // RFC 9110 §15.2: interim answers before the final one are skipped.
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
              HTTP/1.1 200 OK\r\n\r\n",
        ] {
            let mut whole = answer.to_vec();
            whole.extend_from_slice(b"\x16\x03\x01tls");
            let (result, ready, leftover) = feed(&whole, &[], &config);
            assert_eq!(result, Ok(()), "{:?}", String::from_utf8_lossy(answer));
            assert!(ready);
            assert_eq!(leftover, b"\x16\x03\x01tls");
        }
    }

    #[test]
    fn rfc9110_9_3_6_other_answers_refuse_with_their_status() {
        let config = Config::default();
        let table: &[(&[u8], ProxyError)] = &[
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", ProxyError::Refused(403)),
            (
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nabc",
                ProxyError::Refused(502),
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                ProxyError::Refused(101),
            ),
            (
                b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n",
                ProxyError::Refused(301),
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                ProxyError::AuthRequired,
            ),
            (
                b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
                ProxyError::InvalidResponse("malformed status line or header"),
            ),
            (
                b"HTTP/1.1 200 OK\nX: y\r\n\r\n",
                ProxyError::InvalidResponse("bare lf line ending in http head"),
            ),
            (
                b"HTTP/1.1 2000 OK\r\n\r\n",
                ProxyError::InvalidResponse("malformed status line or header"),
            ),
        ];
        for (answer, error) in table {
            let (result, ready, leftover) = feed(answer, &[], &config);
            assert_eq!(result, Err(*error), "{:?}", String::from_utf8_lossy(answer));
            assert!(!ready);
            assert!(leftover.is_empty());
        }
    }

    #[test]
    fn rfc9110_15_5_8_407_with_credentials_is_auth_failed() {
        let config = Config::default();
        let mut t = tunnel("http://u:wrong@proxy", &config);
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"p\"\r\n\r\n";
        assert_eq!(t.receive(answer), Err(ProxyError::AuthFailed));
        // tinyproxy's answer to wrong credentials.
        let mut t = tunnel("http://u:wrong@proxy", &config);
        let answer = b"HTTP/1.0 401 Unauthorized\r\n\r\n";
        assert_eq!(t.receive(answer), Err(ProxyError::AuthFailed));
        // Without credentials a 401 is just a refusal.
        let mut t = tunnel("http://proxy", &config);
        assert_eq!(t.receive(answer), Err(ProxyError::Refused(401)));
    }

    #[test]
    fn answer_heads_are_bounded_in_size_and_headers() {
        let config = Config::default().max_handshake_size(64).max_headers(2);
        let big = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 100]].concat();
        assert_eq!(
            feed(&big, &[], &config).0,
            Err(ProxyError::HeadTooLarge(64))
        );
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            feed(many, &[], &config).0,
            Err(ProxyError::TooManyHeaders(2))
        );
        // Interim heads count against the same budget, so endless 100s end too.
        let interims = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(3);
        assert_eq!(
            feed(&interims, &[], &config).0,
            Err(ProxyError::HeadTooLarge(64))
        );
        // A head of exactly the limit is accepted.
        let exact = b"HTTP/1.1 200 OK\r\n\r\n";
        let config = Config::default().max_handshake_size(exact.len());
        assert!(feed(exact, &[], &config).1);
    }

    #[test]
    fn every_prefix_is_only_a_need_for_more() {
        let config = Config::default();
        let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: 1.1 p\r\n\r\nxy";
        let end = answer.len() - 2;
        for n in 0..end {
            let (result, ready, _) = feed(&answer[..n], &[], &config);
            assert_eq!((result, ready), (Ok(()), false), "prefix of {n} bytes");
        }
        assert_eq!(feed(answer, &[], &config), (Ok(()), true, b"xy".to_vec()));
    }

    /// An answer of one of the kinds above, possibly with bytes after it.
    fn answers() -> impl Strategy<Value = Vec<u8>> {
        let heads = prop::sample::select(vec![
            &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nVia: x\r\n\r\n",
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            b"HTTP/1.1 503 Unavailable\r\nContent-Length: 2\r\n\r\nno",
            b"HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n",
            // 89 bytes: under the tests' 96-byte limit alone, over it after a 100 Continue.
            b"HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
              aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"garbage\r\n\r\n",
        ]);
        // One to three heads in a row, then a few arbitrary bytes.
        (
            prop::collection::vec(heads, 1..4),
            prop::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(|(heads, tail)| [heads.concat(), tail].concat())
    }

    proptest! {
        #[test]
        fn outcome_does_not_depend_on_the_split(
            answer in prop_oneof![answers(), prop::collection::vec(any::<u8>(), 0..120)],
            mut cuts in prop::collection::vec(0usize..300, 0..8),
        ) {
            let config = Config::default().max_handshake_size(96).max_headers(4);
            cuts.sort_unstable();
            let whole = feed(&answer, &[], &config);
            prop_assert_eq!(feed(&answer, &cuts, &config), whole.clone());
            let every: Vec<usize> = (0..answer.len()).collect();
            prop_assert_eq!(feed(&answer, &every, &config), whole);
        }
    }
}
