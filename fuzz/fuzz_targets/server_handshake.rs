#![no_main]
//! A `ServerHandshake` fed arbitrary request bytes: whole, byte by byte and cut where the
//! first input byte says (its low bit also asks for EOF after the bytes). Invariants: no
//! panic; the same outcome however the bytes were split; on an error the only output is one
//! complete HTTP response whose status is the error's `http_status()` (nothing for EOF); a
//! valid request can be accepted, and the 101 carries the right accept key.
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{Accept, ServerHandshake, accept_key};
use rfc6455::{Config, HandshakeError};

#[path = "common.rs"]
mod common;

#[derive(Debug, PartialEq)]
struct Outcome {
    error: Option<HandshakeError>,
    request: String,
    output: Vec<u8>,
    connection: Option<common::Outcome>,
}

/// Checks that `out` is exactly one HTTP/1.1 response with `status`, sized by Content-Length.
fn check_response(out: &[u8], status: u16) {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head ends")
        + 4;
    let head = core::str::from_utf8(&out[..end]).expect("response head is ASCII");
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{head:?} for {status}"
    );
    let length: usize = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .expect("numeric Content-Length");
    assert_eq!(out.len(), end + length, "one response and nothing else");
}

fn run(request: &[u8], chunks: Vec<std::ops::Range<usize>>, eof: bool) -> Outcome {
    let config = Config::default().max_handshake_size(2048).max_headers(16);
    let mut hs = ServerHandshake::new(config);
    let mut error = None;
    for range in chunks {
        if let Err(e) = hs.receive(&request[range]) {
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
    let output = hs.pending_transmit().to_vec();
    let description = format!("{:?}", hs.request());
    let connection = match error {
        Some(HandshakeError::UnexpectedEof) => {
            assert!(
                output.is_empty(),
                "nothing is written to a client that left"
            );
            None
        }
        Some(e) => {
            check_response(&output, e.http_status());
            None
        }
        None => {
            assert!(output.is_empty());
            let Some(request) = hs.request() else {
                return Outcome {
                    error,
                    request: description,
                    output,
                    connection: None,
                };
            };
            assert_eq!(request.method(), "GET");
            let key = request.key().to_owned();
            let mut accept = Accept::new();
            if let Some(first) = request.protocols().next() {
                accept = accept.protocol(&first.to_owned());
            }
            let mut conn = hs.accept(accept).expect("a valid request can be accepted");
            let head = conn.pending_transmit().to_vec();
            let text = String::from_utf8_lossy(&head);
            assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(text.contains(&format!(
                "\r\nSec-WebSocket-Accept: {}\r\n",
                accept_key(key.as_bytes())
            )));
            let events = core::iter::from_fn(|| conn.poll_event()).collect();
            Some(common::Outcome {
                events,
                error: conn.error(),
                output: conn.transmit_chunks().flatten().copied().collect(),
            })
        }
    };
    Outcome {
        error,
        request: description,
        output,
        connection,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, request)) = data.split_first() else {
        return;
    };
    let eof = ctl & 1 == 1;
    let whole = run(request, common::cuts(0, request.len()), eof);
    let bytes = run(request, common::bytewise(request.len()), eof);
    let cut = run(
        request,
        common::cuts(u64::from(ctl) + 1, request.len()),
        eof,
    );
    assert_eq!(whole, bytes, "whole vs one byte at a time");
    assert_eq!(whole, cut, "whole vs cut");
});
