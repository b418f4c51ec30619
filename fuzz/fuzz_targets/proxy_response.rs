#![no_main]
//! A proxy `Tunnel` fed arbitrary answer bytes. The first input byte picks the proxy (bits
//! 0-1: HTTP CONNECT, HTTP with Basic credentials, SOCKS5, SOCKS5 with username/password),
//! asks for EOF at the end (bit 2) and seeds where the input is cut (bits 3-7). Invariants:
//! no panic; the same outcome whole, byte by byte and cut; errors are sticky; a ready tunnel
//! keeps exactly the bytes after the answer (a suffix of the input, and for HTTP the answer
//! ends with a blank line); what we send is bounded and only grows by whole messages.
use libfuzzer_sys::fuzz_target;
use rfc6455::proxy::{Proxy, Tunnel};
use rfc6455::{Config, ProxyError};

const PROXIES: [&str; 4] = [
    "http://proxy.example:3128",
    "http://alice:s3cret@proxy.example:3128",
    "socks5h://proxy.example:1080",
    "socks5h://bob:pw@proxy.example:1080",
];

#[derive(Debug, PartialEq)]
struct Outcome {
    error: Option<ProxyError>,
    ready: bool,
    leftover: Vec<u8>,
    sent: Vec<u8>,
}

fn run(proxy: &Proxy, answer: &[u8], cuts: &[usize], eof: bool) -> Outcome {
    let config = Config::default().max_handshake_size(1024).max_headers(16);
    let mut tunnel = Tunnel::new(proxy, "server.example", 443, &config).expect("valid target");
    let mut sent = Vec::new();
    let mut flush = |t: &mut Tunnel| {
        let out = t.pending_transmit().to_vec();
        t.advance_transmit(out.len());
        sent.extend_from_slice(&out);
    };
    flush(&mut tunnel);
    let mut error = None;
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&answer.len())) {
        let cut = cut.clamp(at, answer.len());
        if let Err(e) = tunnel.receive(&answer[at..cut]) {
            assert!(error.is_none_or(|first| first == e), "the error is sticky");
            error = Some(e);
        }
        at = cut;
        flush(&mut tunnel);
    }
    if eof {
        if let Err(e) = tunnel.receive_eof() {
            assert!(error.is_none_or(|first| first == e), "the error is sticky");
            error = Some(e);
        }
    }
    assert_eq!(tunnel.error(), error);
    assert!(!(tunnel.is_ready() && error.is_some()));
    if let Some(e) = error {
        assert_eq!(tunnel.receive(b"more"), Err(e), "still failed after more input");
        assert_eq!(tunnel.poll_timeout(), None);
    }
    if let Some(ProxyError::Refused(status)) = error {
        assert!(!(200..=299).contains(&status) && status != 407);
    }
    Outcome {
        error,
        ready: tunnel.is_ready(),
        leftover: tunnel.leftover().to_vec(),
        sent,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, answer)) = data.split_first() else {
        return;
    };
    let proxy = Proxy::parse(PROXIES[usize::from(ctl & 3)]).expect("valid proxy url");
    let eof = ctl & 4 != 0;
    let whole = run(&proxy, answer, &[], eof);

    let every: Vec<usize> = (0..answer.len()).collect();
    assert_eq!(run(&proxy, answer, &every, eof), whole, "byte by byte");
    let step = usize::from(ctl >> 3) + 1;
    let cuts: Vec<usize> = (step..answer.len()).step_by(step).collect();
    assert_eq!(run(&proxy, answer, &cuts, eof), whole, "cut every {step} bytes");

    if whole.ready {
        assert!(answer.ends_with(&whole.leftover), "leftover is the input's tail");
        let consumed = &answer[..answer.len() - whole.leftover.len()];
        if ctl & 2 == 0 {
            assert!(consumed.ends_with(b"\r\n\r\n"), "an http answer ends with a blank line");
            assert!(consumed.len() <= 1024);
        } else {
            // Method choice, optional auth status, and a reply of at most 4 + 1 + 255 + 2.
            assert!(consumed.len() <= 2 + 2 + 262);
        }
    }
    // Our side: one request for HTTP; greeting, auth and request for SOCKS5.
    assert!(whole.sent.len() <= 512);
});
