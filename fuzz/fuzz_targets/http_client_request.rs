#![no_main]
//! `http::Request<()>` → `ClientRequest` (`IntoClientRequest`) → the bytes our client sends
//! → our server. Input: a control byte (bit 0: POST instead of GET), then lines: the URI,
//! then `name: value` headers. Invariants: no panic; whatever the conversion and
//! `ClientHandshake::new` accept, our `ServerHandshake` accepts too, with the same path and
//! subprotocols (unless the caller's own headers break the server's rules: two `Origin`s, a
//! non-ASCII one); and `ClientRequest::to_http` converts back to an equal request.
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{ClientHandshake, IntoClientRequest, OriginPolicy, ServerHandshake};
use rfc6455::{Config, HandshakeError};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(uri) = lines.next() else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(if ctl & 1 == 0 { "GET" } else { "POST" })
        .uri(uri);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let Ok(client) = request.into_client_request() else {
        return;
    };
    // Back and forth through the http types changes nothing.
    if let Ok(back) = client.to_http() {
        assert_eq!(back.into_client_request().as_ref(), Ok(&client));
    }
    let entropy = Box::new(|dest: &mut [u8]| dest.fill(0x5a));
    let Ok(mut hs) = ClientHandshake::new(client.clone(), Config::default(), entropy) else {
        return;
    };
    let wire = hs.pending_transmit().to_vec();
    hs.advance_transmit(wire.len());
    let mut server = ServerHandshake::new(
        Config::default()
            .origin_policy(OriginPolicy::Any)
            .max_handshake_size(1 << 20)
            .max_headers(1 << 10),
    );
    match server.receive(&wire) {
        Ok(()) => {}
        // The client lets the caller send any Origin; the server wants one, in ASCII
        // (RFC 6454 §7.3). The caller's headers are the caller's business.
        Err(HandshakeError::BadRequest("more than one origin header" | "origin is not ascii")) => {
            return;
        }
        Err(e) => panic!(
            "our server refuses what our client sent: {e}\n{}",
            String::from_utf8_lossy(&wire)
        ),
    }
    let seen = server.request().expect("a complete request");
    assert_eq!(seen.path(), client.path());
    assert!(seen.protocols().eq(client.protocols()));
});
