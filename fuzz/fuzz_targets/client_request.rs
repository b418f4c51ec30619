#![no_main]
//! A `ClientRequest` built from arbitrary parts, then the whole opening handshake against our
//! own server. The input is fields separated by NUL bytes: the first is the URI, each later
//! one starts with `P` (a subprotocol), `E` (an extension offer) or `H` (a header,
//! `name:value`); other fields are skipped. Invariants: no panic; `ClientHandshake::new`
//! refuses (with a usage error) or writes a request that our server takes, seeing the same
//! resource name, the same subprotocols in order, and every extra header with its value
//! (minus the optional whitespace HTTP strips); accepting it completes our client's
//! handshake; a value with CR or LF is always refused (no header injection). Requests our
//! server refuses by policy (a non-ASCII or repeated `Origin`) are not taken further.
use libfuzzer_sys::fuzz_target;
use rfc6455::Config;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, OriginPolicy, ServerHandshake};

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0);
    let Some(uri) = fields.next().and_then(|f| core::str::from_utf8(f).ok()) else {
        return;
    };
    let Ok(mut request) = ClientRequest::new(uri) else {
        return;
    };
    let mut protocols = Vec::new();
    let mut headers = Vec::new();
    let mut injected = false;
    for field in fields {
        let Some((&kind, rest)) = field.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'P' => {
                request = request.protocol(&text);
                protocols.push(text);
            }
            b'E' => request = request.extension(&text),
            b'H' => {
                let (name, value) = text.split_once(':').unwrap_or((&text, ""));
                injected |= value.contains(['\r', '\n']) || name.contains(['\r', '\n']);
                request = request.header(name, value);
                headers.push((name.to_owned(), value.to_owned()));
            }
            _ => {}
        }
    }
    let path = request.path().to_owned();
    let Ok(mut client) =
        ClientHandshake::new(request, Config::default(), Box::new(|d: &mut [u8]| d.fill(9)))
    else {
        return;
    };
    assert!(!injected, "a CR or LF reached the request: {data:?}");

    // Our server's Origin policy (RFC 6454 §7: one header, an ASCII serialization) refuses
    // what the client lets through as an ordinary header value.
    let origins: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("origin"))
        .map(|(_, v)| v.as_str())
        .collect();
    if origins.len() > 1 || origins.iter().any(|v| !v.is_ascii()) {
        return;
    }

    // Any Origin: which origins a server admits is its own policy (same host by default,
    // fuzzed by `http_request`), not part of what our client builds.
    let config = Config::default()
        .max_handshake_size(1 << 20)
        .max_headers(1 << 14)
        .origin_policy(OriginPolicy::Any);
    let mut server = ServerHandshake::new(config);
    server.receive(client.pending_transmit()).unwrap_or_else(|e| {
        panic!(
            "our server refuses our request ({e}): {:?}",
            String::from_utf8_lossy(client.pending_transmit())
        )
    });
    let n = client.pending_transmit().len();
    client.advance_transmit(n);
    let seen = server.request().expect("a whole request");
    assert_eq!(seen.path(), path);
    assert!(
        seen.protocols().eq(protocols.iter().map(String::as_str)),
        "subprotocols {:?} arrived as {:?}",
        protocols,
        seen.protocols().collect::<Vec<_>>()
    );
    for (i, (name, value)) in headers.iter().enumerate() {
        // The first header of a name is the first one we added of it (the handshake's own
        // are refused by name).
        if headers[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let ows: &[char] = &[' ', '\t'];
        assert_eq!(
            seen.header(name),
            Some(value.trim_matches(ows)),
            "header {name:?}"
        );
    }
    // The 101 is the connection's first output.
    let conn = server
        .accept(Accept::new())
        .unwrap_or_else(|e| panic!("cannot accept: {e}"));
    let response: Vec<u8> = conn.transmit_chunks().flatten().copied().collect();
    client
        .receive(&response)
        .unwrap_or_else(|e| panic!("our client refuses our 101: {e}"));
    assert!(client.is_complete());
});
