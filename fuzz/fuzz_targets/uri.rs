#![no_main]
//! `ClientRequest::new` over arbitrary strings (RFC 6455 §3 URIs). Invariants: no panic; an
//! accepted URI has a non-empty host, a non-zero port and a resource name that starts with
//! `/` and holds no fragment, whitespace, control or non-ASCII byte; formatted back (with its
//! port, and without it when the port is the scheme's default) it re-parses to the same
//! scheme, host, port and resource name; and the request our client writes for it is taken
//! by our server with that resource name and the Host header RFC 6455 §4.1 asks for.
use libfuzzer_sys::fuzz_target;
use rfc6455::Config;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};

/// What a parsed URI means to the handshake.
#[derive(Debug, PartialEq)]
struct Parts {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn parts(request: &ClientRequest) -> Parts {
    Parts {
        tls: request.is_tls(),
        host: request.host().to_owned(),
        port: request.port(),
        path: request.path().to_owned(),
    }
}

fn reparse(uri: &str, expected: &Parts) {
    let again = ClientRequest::new(uri)
        .unwrap_or_else(|e| panic!("{uri:?} formatted from an accepted URI fails: {e}"));
    assert_eq!(&parts(&again), expected, "{uri:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = ClientRequest::new(uri) else {
        return;
    };
    let p = parts(&request);
    assert!(!p.host.is_empty(), "{uri:?}: empty host");
    assert_ne!(p.port, 0, "{uri:?}: port 0");
    assert!(p.path.starts_with('/'), "{uri:?}: resource {:?}", p.path);
    // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs
    // and MUST NOT be used on these URIs."
    assert!(!uri.contains('#') && !p.path.contains('#'), "{uri:?}: fragment");
    assert!(
        p.path.bytes().all(|b| b > b' ' && b < 0x7f),
        "{uri:?}: resource {:?}",
        p.path
    );

    let scheme = if p.tls { "wss" } else { "ws" };
    let default_port = if p.tls { 443 } else { 80 };
    // Only an IPv6 literal holds a colon; it goes back into brackets.
    let host = if p.host.contains(':') {
        format!("[{}]", p.host)
    } else {
        p.host.clone()
    };
    reparse(&format!("{scheme}://{host}:{}{}", p.port, p.path), &p);
    if p.port == default_port {
        reparse(&format!("{scheme}://{host}{}", p.path), &p);
    }

    // The wire: our client's request, read by our server.
    let hs = ClientHandshake::new(request, Config::default(), Box::new(|d: &mut [u8]| d.fill(7)))
        .expect("a URI alone makes a valid request");
    let mut server = ServerHandshake::new(Config::default());
    server
        .receive(hs.pending_transmit())
        .unwrap_or_else(|e| panic!("{uri:?}: our server refuses our request: {e}"));
    let seen = server.request().expect("a whole request");
    assert_eq!(seen.path(), p.path, "{uri:?}");
    // RFC 6455 §4.1: Host is /host/, plus ":" /port/ when not the default port.
    let host_header = if p.port == default_port {
        host
    } else {
        format!("{host}:{}", p.port)
    };
    assert_eq!(seen.host(), host_header, "{uri:?}");
    server
        .accept(Accept::new())
        .unwrap_or_else(|e| panic!("{uri:?}: cannot accept: {e}"));
});
