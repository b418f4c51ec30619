//! A compressed text message that fails part-way through must fail the same way however its
//! bytes arrive: whatever it inflated to before the failure is UTF-8-checked first, since fed
//! in smaller pieces those bytes would have been checked before the failure was reached.
//! Found by the `deflate_connection` fuzz target (whole: "invalid deflate data", byte by byte:
//! invalid UTF-8).
#![cfg(feature = "deflate")]

mod common;

use common::{RFC_KEY, frame_raw, op};
use rfc6455::deflate::{DeflateConfig, PerMessageDeflate, accept_offer};
use rfc6455::frame::RSV1;
use rfc6455::{Config, Connection, ProtocolError, Role};

fn server(config: Config) -> Connection {
    let deflate = DeflateConfig::default();
    let (params, _) = accept_offer(&deflate, ["permessage-deflate"]).unwrap();
    Connection::server(config).with_extension(Box::new(PerMessageDeflate::new(
        &params,
        Role::Server,
        &deflate,
    )))
}

/// A DEFLATE stored block (not final) holding `data`: RFC 1951 §3.2.4.
fn stored(data: &[u8]) -> Vec<u8> {
    let len = data.len() as u16;
    let mut out = vec![0x00];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// `data` as one message's DEFLATE payload (sync-flushed, the `00 00 ff ff` tail removed).
fn compressed(data: &[u8]) -> Vec<u8> {
    let mut s = zlib_rs::Deflate::new(6, false, 15);
    let mut out = vec![0; data.len() + 64];
    s.compress(data, &mut out, zlib_rs::DeflateFlush::SyncFlush)
        .unwrap();
    out.truncate(s.total_out() as usize - 4);
    out
}

/// (error, output) with `wire` fed in `piece`-byte slices.
fn outcome(config: &Config, wire: &[u8], piece: usize) -> (Option<ProtocolError>, Vec<u8>) {
    let mut conn = server(config.clone());
    for chunk in wire.chunks(piece) {
        let _ = conn.receive(chunk);
        while conn.poll_event().is_some() {}
    }
    let output = conn.transmit_chunks().flatten().copied().collect();
    (conn.error(), output)
}

fn assert_split_invariant(config: &Config, payload: &[u8], want: ProtocolError) {
    let wire = frame_raw(true, RSV1, op::TEXT, payload, Some(RFC_KEY));
    let whole = outcome(config, &wire, wire.len());
    assert_eq!(whole.0, Some(want));
    for piece in 1..wire.len() {
        assert_eq!(outcome(config, &wire, piece), whole, "{piece}-byte pieces");
    }
}

#[test]
fn rfc7692_invalid_utf8_before_corrupt_deflate_data_fails_1007_invalid_utf8_however_cut() {
    // A stored block inflating to 0xff (never valid UTF-8), then a block of the reserved
    // type 11 (RFC 1951 §3.2.3: "11 - reserved (error)").
    let mut payload = stored(b"ok \xff");
    payload.push(0x06);
    assert_split_invariant(&Config::default(), &payload, ProtocolError::InvalidUtf8);
}

#[test]
fn rfc7692_corrupt_deflate_data_after_valid_text_fails_1007_extension_however_cut() {
    let mut payload = stored("caf\u{e9} ".as_bytes());
    payload.push(0x06);
    assert_split_invariant(
        &Config::default(),
        &payload,
        ProtocolError::Extension("invalid deflate data"),
    );
}

#[test]
fn rfc7692_invalid_utf8_before_the_message_limit_fails_invalid_utf8_however_cut() {
    // 0xff is within the 16-byte limit, the rest of the output is not: the limit is reached
    // in the same call that produced the bad byte when the frame arrives whole.
    let mut text = b"a\xff".to_vec();
    text.extend_from_slice(&[b'b'; 200]);
    let payload = compressed(&text);
    assert!(payload.len() < 16);
    let config = Config::default().max_message_size(16);
    assert_split_invariant(&config, &payload, ProtocolError::InvalidUtf8);
}

#[test]
fn rfc7692_inflating_past_the_message_limit_fails_1009_however_cut() {
    let payload = compressed(&[b'b'; 200]);
    assert!(payload.len() < 16);
    let config = Config::default().max_message_size(16);
    let wire = frame_raw(true, RSV1, op::TEXT, &payload, Some(RFC_KEY));
    let (error, output) = outcome(&config, &wire, wire.len());
    assert!(
        matches!(
            error,
            Some(ProtocolError::MessageTooLarge { limit: 16, .. })
        ),
        "{error:?}"
    );
    assert_eq!(output[0], 0x88, "a Close");
    assert_eq!(&output[2..4], &[0x03, 0xf1], "1009");
    for piece in 1..wire.len() {
        assert_eq!(outcome(&config, &wire, piece), (error, output.clone()));
    }
}
