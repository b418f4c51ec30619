//! A tunnel through a SOCKS5 proxy (RFC 1928): method selection, the username/password
//! method when credentials are given (RFC 1929), then a CONNECT request.
//!
//! The proxy's answers are read one byte at a time against their fixed layouts: each field is
//! checked as soon as it arrives, in wire order, so the outcome never depends on how the
//! input was split. Nothing the proxy sends is buffered or sized by it (the bound address
//! of the final reply is counted and skipped): the longest answer is 262 bytes and costs no
//! allocation.

use super::{Credentials, Exchange, TargetHost};
use crate::error::{ProxyError, UsageError};
use alloc::vec::Vec;
use core::net::IpAddr;

const VERSION: u8 = 0x05;
const NO_AUTH: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHODS: u8 = 0xff;
const CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the METHOD selection message (RFC 1928 §3).
    Method,
    /// Waiting for the username/password status (RFC 1929 §2).
    Auth,
    /// Waiting for the reply to CONNECT (RFC 1928 §6), `tail` bytes of address and port left
    /// once the address type is known.
    Reply {
        tail: Option<usize>,
    },
    Ready,
}

pub(super) struct Socks5 {
    tx: Vec<u8>,
    sent: usize,
    stage: Stage,
    /// Position of the next byte within the current answer.
    at: usize,
    offered_password: bool,
    /// The RFC 1929 request, queued once the proxy picks that method.
    auth: Vec<u8>,
    /// The CONNECT request, queued once authentication is done.
    request: Vec<u8>,
    leftover: Vec<u8>,
}

impl Socks5 {
    pub(super) fn new(
        target: TargetHost<'_>,
        port: u16,
        credentials: Option<&Credentials>,
    ) -> Result<Self, UsageError> {
        // RFC 1928 §4: VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT, with
        // "DST.PORT desired destination port in network octet order".
        let mut request = Vec::with_capacity(262);
        request.extend_from_slice(&[VERSION, CONNECT, 0x00]);
        match target {
            TargetHost::Ip(IpAddr::V4(ip)) => {
                request.push(ATYP_IPV4);
                request.extend_from_slice(&ip.octets());
            }
            TargetHost::Ip(IpAddr::V6(ip)) => {
                request.push(ATYP_IPV6);
                request.extend_from_slice(&ip.octets());
            }
            TargetHost::Name(name) => {
                // RFC 1928 §5: "The first octet of the address field contains the number of
                // octets of name that follow, there is no terminating NUL octet."
                let len = u8::try_from(name.len())
                    .map_err(|_| UsageError::InvalidProxy("host name over 255 bytes for socks5"))?;
                request.push(ATYP_DOMAIN);
                request.push(len);
                request.extend_from_slice(name.as_bytes());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());

        // RFC 1928 §3: VER | NMETHODS | METHODS. "No authentication" is always offered (a
        // proxy that needs none may pick it); username/password too when we have credentials.
        let (tx, auth) = match credentials {
            None => (alloc::vec![VERSION, 1, NO_AUTH], Vec::new()),
            Some(c) => {
                // RFC 1929 §2: VER (X'01') | ULEN | UNAME | PLEN | PASSWD, each field "1 to
                // 255" octets (checked by `Proxy::with_credentials`).
                let (user, pass) = (c.username.as_bytes(), c.password.as_bytes());
                let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len()))
                else {
                    return Err(UsageError::InvalidProxy(
                        "socks5 username and password must be 1 to 255 bytes each",
                    ));
                };
                let mut auth = Vec::with_capacity(3 + user.len() + pass.len());
                auth.extend_from_slice(&[0x01, ulen]);
                auth.extend_from_slice(user);
                auth.push(plen);
                auth.extend_from_slice(pass);
                (alloc::vec![VERSION, 2, NO_AUTH, USERNAME_PASSWORD], auth)
            }
        };
        Ok(Self {
            tx,
            sent: 0,
            stage: Stage::Method,
            at: 0,
            offered_password: credentials.is_some(),
            auth,
            request,
            leftover: Vec::new(),
        })
    }

    /// Moves to `stage`, queueing `message` (taken from `self`).
    fn advance(&mut self, stage: Stage, message: Vec<u8>) {
        // Drop what was written, so the buffer holds only unsent bytes.
        self.tx.drain(..self.sent);
        self.sent = 0;
        self.tx.extend_from_slice(&message);
        self.stage = stage;
        self.at = 0;
    }

    /// Takes the next byte of the current answer.
    fn byte(&mut self, b: u8) -> Result<(), ProxyError> {
        let at = self.at;
        self.at += 1;
        match (self.stage, at) {
            (Stage::Method | Stage::Reply { .. }, 0) if b != VERSION => Err(
                ProxyError::InvalidResponse("not a socks5 answer (version is not 5)"),
            ),
            (Stage::Method | Stage::Reply { .. }, 0) => Ok(()),
            (Stage::Method, _) => match b {
                NO_AUTH => {
                    let request = core::mem::take(&mut self.request);
                    self.advance(Stage::Reply { tail: None }, request);
                    Ok(())
                }
                USERNAME_PASSWORD if self.offered_password => {
                    let auth = core::mem::take(&mut self.auth);
                    self.advance(Stage::Auth, auth);
                    Ok(())
                }
                // RFC 1928 §3: "If the selected METHOD is X'FF', none of the methods listed
                // by the client are acceptable, and the client MUST close the connection."
                NO_ACCEPTABLE_METHODS if self.offered_password => {
                    Err(ProxyError::NoAcceptableMethod)
                }
                NO_ACCEPTABLE_METHODS => Err(ProxyError::AuthRequired),
                _ => Err(ProxyError::InvalidResponse(
                    "socks5 proxy chose a method that was not offered",
                )),
            },
            // RFC 1929 §2 gives the status message's VER as X'01'; some servers echo the
            // SOCKS version there instead. Both are taken: only STATUS carries meaning.
            (Stage::Auth, 0) if b == 0x01 || b == VERSION => Ok(()),
            (Stage::Auth, 0) => Err(ProxyError::InvalidResponse(
                "not a socks5 username/password status (version is not 1)",
            )),
            (Stage::Auth, _) => {
                // RFC 1929 §2: "A STATUS field of X'00' indicates success. If the server
                // returns a `failure' (STATUS value other than X'00') status, it MUST close
                // the connection."
                if b != 0x00 {
                    return Err(ProxyError::AuthFailed);
                }
                let request = core::mem::take(&mut self.request);
                self.advance(Stage::Reply { tail: None }, request);
                Ok(())
            }
            // RFC 1928 §6: VER | REP | RSV | ATYP | BND.ADDR | BND.PORT. "X'00' succeeded";
            // every other REP value is a failure, after which the server "MUST terminate the
            // TCP connection": report it at once, without waiting for the rest.
            (Stage::Reply { .. }, 1) if b != 0x00 => Err(ProxyError::Socks5Reply(b)),
            // RSV "must be set to X'00'"; it carries nothing, so it is not checked (nor is
            // it by curl).
            (Stage::Reply { .. }, 1 | 2) => Ok(()),
            (Stage::Reply { .. }, 3) => {
                // RFC 1928 §5: the address is 4 octets for X'01', 16 for X'04', and for
                // X'03' a length octet then the name; BND.PORT follows (2 octets).
                let tail = match b {
                    ATYP_IPV4 => Some(4 + 2),
                    ATYP_IPV6 => Some(16 + 2),
                    ATYP_DOMAIN => None,
                    _ => {
                        return Err(ProxyError::InvalidResponse(
                            "unknown address type in socks5 reply",
                        ));
                    }
                };
                self.stage = Stage::Reply { tail };
                Ok(())
            }
            (Stage::Reply { tail: None }, _) => {
                // The domain name's length octet (at 4).
                self.stage = Stage::Reply {
                    tail: Some(usize::from(b) + 2),
                };
                Ok(())
            }
            (Stage::Reply { tail: Some(left) }, _) => {
                self.stage = match left - 1 {
                    0 => Stage::Ready,
                    left => Stage::Reply { tail: Some(left) },
                };
                Ok(())
            }
            (Stage::Ready, _) => Ok(()),
        }
    }
}

impl Exchange for Socks5 {
    fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.sent..]
    }

    fn advance_transmit(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.tx.len());
    }

    fn receive(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        for (i, &b) in data.iter().enumerate() {
            if self.stage == Stage::Ready {
                self.leftover.extend_from_slice(&data[i..]);
                return Ok(());
            }
            self.byte(b)?;
        }
        Ok(())
    }

    fn is_ready(&self) -> bool {
        self.stage == Stage::Ready
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
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Runs a tunnel against a proxy's whole answer stream, cut at `cuts`, writing out every
    /// message as soon as it is queued. Returns the last result, readiness, leftover and
    /// everything we sent.
    fn run(
        proxy: &str,
        host: &str,
        answer: &[u8],
        cuts: &[usize],
    ) -> (Result<(), ProxyError>, bool, Vec<u8>, Vec<u8>) {
        let proxy = Proxy::parse(proxy).unwrap();
        let mut t = Tunnel::new(&proxy, host, 443, &Config::default()).unwrap();
        let mut sent = Vec::new();
        let mut flush = |t: &mut Tunnel| {
            let out = t.pending_transmit().to_vec();
            t.advance_transmit(out.len());
            sent.extend_from_slice(&out);
        };
        flush(&mut t);
        let mut last = Ok(());
        let mut at = 0;
        for &cut in cuts.iter().chain(core::iter::once(&answer.len())) {
            let cut = cut.clamp(at, answer.len());
            last = t.receive(&answer[at..cut]);
            at = cut;
            flush(&mut t);
        }
        (last, t.is_ready(), t.leftover().to_vec(), sent)
    }

    const OK_V4: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90];

    #[test]
    fn rfc1928_no_auth_then_connect_by_name() {
        let answer = [&[5, 0][..], OK_V4, b"data"].concat();
        let (result, ready, leftover, sent) = run("socks5h://p", "echo.example", &answer, &[]);
        assert_eq!((result, ready), (Ok(()), true));
        assert_eq!(leftover, b"data");
        let mut want = vec![5, 1, 0, 5, 1, 0, 3, 12];
        want.extend_from_slice(b"echo.example");
        want.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(sent, want);
    }

    #[test]
    fn rfc1928_5_addresses_by_type() {
        let answer = [&[5, 0][..], OK_V4].concat();
        let (_, ready, _, sent) = run("socks5://p", "192.0.2.7", &answer, &[]);
        assert!(ready);
        assert_eq!(&sent[3..], &[5, 1, 0, 1, 192, 0, 2, 7, 1, 187]);
        let (_, ready, _, sent) = run("socks5://p", "[2001:db8::1]", &answer, &[]);
        assert!(ready);
        assert_eq!(&sent[3..7], &[5, 1, 0, 4]);
        assert_eq!(
            &sent[7..23],
            &"2001:db8::1"
                .parse::<core::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        // socks5h sends an address literal as an address too.
        let (_, _, _, sent) = run("socks5h://p", "192.0.2.7", &answer, &[]);
        assert_eq!(sent[6], 1);
    }

    #[test]
    fn rfc1928_6_reply_address_types_are_skipped_by_length() {
        let v6 = [&[5, 0, 5, 0, 0, 4][..], &[0; 16], &[0, 80], b"x"].concat();
        let name = [&[5, 0, 5, 0, 0, 3, 3][..], b"abc", &[0, 80], b"x"].concat();
        let empty_name = [&[5, 0, 5, 0, 0, 3, 0][..], &[0, 80], b"x"].concat();
        for answer in [v6, name, empty_name] {
            let (result, ready, leftover, _) = run("socks5h://p", "a", &answer, &[]);
            assert_eq!(
                (result, ready, leftover.as_slice()),
                (Ok(()), true, &b"x"[..])
            );
        }
    }

    #[test]
    fn rfc1929_2_username_password_exchange() {
        let answer = [&[5, 2, 1, 0][..], OK_V4].concat();
        let (result, ready, _, sent) = run("socks5h://bob:pw@p", "a", &answer, &[]);
        assert_eq!((result, ready), (Ok(()), true));
        let mut want = vec![5, 2, 0, 2, 1, 3];
        want.extend_from_slice(b"bob");
        want.extend_from_slice(&[2, b'p', b'w']);
        want.extend_from_slice(&[5, 1, 0, 3, 1, b'a', 1, 187]);
        assert_eq!(sent, want);
        // With credentials the proxy may still pick "no authentication".
        let answer = [&[5, 0][..], OK_V4].concat();
        assert!(run("socks5h://bob:pw@p", "a", &answer, &[]).1);
        // A status message versioned 5 instead of 1 is taken (see the code).
        let answer = [&[5, 2, 5, 0][..], OK_V4].concat();
        assert!(run("socks5h://bob:pw@p", "a", &answer, &[]).1);
    }

    #[test]
    fn every_failure_has_its_error() {
        let table: &[(&str, &[u8], ProxyError)] = &[
            ("socks5h://p", &[5, 0xff], ProxyError::AuthRequired),
            (
                "socks5h://u:p@p",
                &[5, 0xff],
                ProxyError::NoAcceptableMethod,
            ),
            ("socks5h://u:p@p", &[5, 2, 1, 1], ProxyError::AuthFailed),
            ("socks5h://u:p@p", &[5, 2, 1, 0xff], ProxyError::AuthFailed),
            (
                "socks5h://u:p@p",
                &[5, 2, 2, 0],
                ProxyError::InvalidResponse(
                    "not a socks5 username/password status (version is not 1)",
                ),
            ),
            (
                "socks5h://p",
                &[5, 2],
                ProxyError::InvalidResponse("socks5 proxy chose a method that was not offered"),
            ),
            (
                "socks5h://p",
                &[5, 1],
                ProxyError::InvalidResponse("socks5 proxy chose a method that was not offered"),
            ),
            (
                "socks5h://p",
                b"HTTP/1.1 400 Bad Request\r\n\r\n",
                ProxyError::InvalidResponse("not a socks5 answer (version is not 5)"),
            ),
            (
                "socks5h://p",
                &[4, 0],
                ProxyError::InvalidResponse("not a socks5 answer (version is not 5)"),
            ),
            (
                "socks5h://p",
                &[5, 0, 4, 0, 0, 1],
                ProxyError::InvalidResponse("not a socks5 answer (version is not 5)"),
            ),
            (
                "socks5h://p",
                &[5, 0, 5, 0, 0, 2, 0, 0],
                ProxyError::InvalidResponse("unknown address type in socks5 reply"),
            ),
        ];
        for (proxy, answer, error) in table {
            let (result, ready, _, _) = run(proxy, "a", answer, &[]);
            assert_eq!(result, Err(*error), "{proxy} {answer:?}");
            assert!(!ready);
        }
        // RFC 1928 §6: each REP failure code, reported as soon as it arrives.
        for code in 1..=255u8 {
            let (result, ..) = run("socks5h://p", "a", &[5, 0, 5, code], &[]);
            assert_eq!(result, Err(ProxyError::Socks5Reply(code)));
        }
    }

    #[test]
    fn truncated_answers_only_ask_for_more() {
        let full = [&[5, 2, 1, 0][..], &[5, 0, 0, 3, 4], b"host", &[0, 80]].concat();
        for n in 0..full.len() {
            let (result, ready, _, _) = run("socks5h://u:p@p", "a", &full[..n], &[]);
            assert_eq!((result, ready), (Ok(()), false), "prefix of {n} bytes");
        }
        assert!(run("socks5h://u:p@p", "a", &full, &[]).1);
    }

    #[test]
    fn host_names_over_255_bytes_are_refused() {
        let proxy = Proxy::parse("socks5h://p").unwrap();
        let name = "a".repeat(256);
        assert!(Tunnel::new(&proxy, &name, 1, &Config::default()).is_err());
        assert!(Tunnel::new(&proxy, &name[1..], 1, &Config::default()).is_ok());
    }

    proptest! {
        #[test]
        fn outcome_does_not_depend_on_the_split(
            with_auth in any::<bool>(),
            answer in prop_oneof![
                Just([&[5, 2, 1, 0][..], OK_V4, b"tail"].concat()),
                Just([&[5, 0][..], &[5, 0, 0, 3, 3], b"abc", &[0, 1, 2]].concat()),
                Just(vec![5, 0, 5, 3, 0, 1]),
                prop::collection::vec(any::<u8>(), 0..40),
                prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 0xff]), 0..40),
            ],
            mut cuts in prop::collection::vec(0usize..48, 0..8),
        ) {
            let proxy = if with_auth { "socks5h://u:p@p" } else { "socks5h://p" };
            cuts.sort_unstable();
            let whole = run(proxy, "a", &answer, &[]);
            prop_assert_eq!(run(proxy, "a", &answer, &cuts), whole.clone());
            let every: Vec<usize> = (0..answer.len()).collect();
            prop_assert_eq!(run(proxy, "a", &answer, &every), whole);
        }
    }
}
