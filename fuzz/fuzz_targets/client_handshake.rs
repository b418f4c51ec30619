#![no_main]
//! A `ClientHandshake` (fixed nonce "the sample nonce", offering subprotocols `chat` and
//! `superchat` and extension `x-test`) fed arbitrary response bytes: whole, byte by byte and
//! cut where the first input byte says (its low bit also asks for EOF). Invariants: no panic;
//! the same outcome however the bytes were split; a completed handshake saw a 101, a non-101
//! is reported with its status; the connection handed over gets the bytes after the head.
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{ClientHandshake, ClientRequest};
use rfc6455::{Config, HandshakeError};

#[path = "common.rs"]
mod common;

const NONCE: &[u8; 16] = b"the sample nonce";

#[derive(Debug, PartialEq)]
struct Outcome {
    error: Option<HandshakeError>,
    complete: bool,
    response: String,
    connection: Option<common::Outcome>,
}

fn run(response: &[u8], chunks: Vec<std::ops::Range<usize>>, eof: bool) -> Outcome {
    let request = ClientRequest::new("ws://server.example.com/chat")
        .expect("valid uri")
        .protocol("chat")
        .protocol("superchat")
        .extension("x-test; a=1");
    let config = Config::default().max_handshake_size(2048).max_headers(16);
    let mut at = 0;
    let entropy = Box::new(move |dest: &mut [u8]| {
        for b in dest {
            *b = NONCE[at % NONCE.len()];
            at += 1;
        }
    });
    let mut hs = ClientHandshake::new(request, config, entropy).expect("valid request");
    let mut error = None;
    for range in chunks {
        if let Err(e) = hs.receive(&response[range]) {
            assert!(error.is_none_or(|first| first == e), "the error is sticky");
            error = Some(e);
        }
    }
    if eof {
        if let Err(e) = hs.receive_eof() {
            error.get_or_insert(e);
        }
    }
    assert_eq!(hs.error(), error);
    assert!(!(hs.is_complete() && error.is_some()));
    if let Some(HandshakeError::UnexpectedStatus(status)) = error {
        assert_eq!(hs.response().map(|r| r.status()), Some(status));
        assert_ne!(status, 101);
    }
    let complete = hs.is_complete();
    let description = format!("{:?}", hs.response());
    let connection = if complete {
        let (mut conn, response) = hs.into_connection().expect("complete");
        assert_eq!(response.status(), 101);
        if let Some(p) = response.protocol() {
            assert!(
                p == "chat" || p == "superchat",
                "unoffered subprotocol {p:?} accepted"
            );
        }
        let events = core::iter::from_fn(|| conn.poll_event()).collect();
        Some(common::Outcome {
            events,
            error: conn.error(),
            output: conn.transmit_chunks().flatten().copied().collect(),
        })
    } else {
        None
    };
    Outcome {
        error,
        complete,
        response: description,
        connection,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, response)) = data.split_first() else {
        return;
    };
    let eof = ctl & 1 == 1;
    let whole = run(response, common::cuts(0, response.len()), eof);
    let bytes = run(response, common::bytewise(response.len()), eof);
    let cut = run(
        response,
        common::cuts(u64::from(ctl) + 1, response.len()),
        eof,
    );
    assert_eq!(whole, bytes, "whole vs one byte at a time");
    assert_eq!(whole, cut, "whole vs cut");
});
