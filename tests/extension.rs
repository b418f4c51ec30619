//! The extension seam (RFC 6455 §9, used by permessage-deflate on RSV1): a connection with
//! an extension accepts the RSV bits it claims on a message's first frame and routes those
//! messages through it; without one, the same frames fail with 1002.

mod common;

use bytes::BytesMut;
use common::{op, parse_frames, server, to_server};
use rfc6455::frame::{Opcode, RSV1};
use rfc6455::{Config, Event, Extension, Message, ProtocolError};

/// A toy per-message transform on RSV1: payloads travel reversed.
struct Reverse;

impl Extension for Reverse {
    fn reserved_bits(&self) -> u8 {
        RSV1
    }
    fn decode(
        &mut self,
        rsv: u8,
        payload: BytesMut,
        max_size: u64,
    ) -> Result<BytesMut, ProtocolError> {
        assert_eq!(rsv, RSV1);
        if payload.len() as u64 > max_size {
            return Err(ProtocolError::MessageTooLarge {
                size: payload.len() as u64,
                limit: max_size,
            });
        }
        Ok(payload.iter().rev().copied().collect())
    }
    fn encode(&mut self, payload: &[u8]) -> (u8, BytesMut) {
        (RSV1, payload.iter().rev().copied().collect())
    }
}

fn with_rsv1(mut frame: Vec<u8>) -> Vec<u8> {
    frame[0] |= RSV1;
    frame
}

#[test]
fn rfc6455_5_2_rsv1_without_an_extension_fails_1002() {
    let mut conn = server(Config::default());
    assert_eq!(
        conn.receive(&with_rsv1(to_server(true, op::TEXT, b"olleh"))),
        Err(ProtocolError::ReservedBits(RSV1 >> 4))
    );
}

#[test]
fn rfc6455_9_extension_decodes_messages_carrying_its_bit() {
    let mut conn = server(Config::default()).with_extension(Box::new(Reverse));
    // Fragmented: RSV1 on the first frame only, the transform applies to the whole message.
    let mut wire = with_rsv1(to_server(false, op::TEXT, b"ol"));
    wire.extend(to_server(true, op::CONT, b"leh"));
    // A message without the bit passes through untouched.
    wire.extend(to_server(true, op::TEXT, b"plain"));
    conn.receive(&wire).unwrap();
    assert_eq!(
        conn.poll_event(),
        Some(Event::Message(Message::from("hello")))
    );
    assert_eq!(
        conn.poll_event(),
        Some(Event::Message(Message::from("plain")))
    );
}

#[test]
fn rfc6455_9_extension_bits_on_continuations_and_controls_still_fail() {
    let mut conn = server(Config::default()).with_extension(Box::new(Reverse));
    let mut wire = to_server(false, op::TEXT, b"a");
    wire.extend(with_rsv1(to_server(true, op::CONT, b"b")));
    assert_eq!(
        conn.receive(&wire),
        Err(ProtocolError::ReservedBits(RSV1 >> 4))
    );
    let mut conn = server(Config::default()).with_extension(Box::new(Reverse));
    assert_eq!(
        conn.receive(&with_rsv1(to_server(true, op::PING, b""))),
        Err(ProtocolError::ReservedBits(RSV1 >> 4))
    );
}

#[test]
fn rfc6455_8_1_extension_output_is_still_utf8_checked() {
    let mut conn = server(Config::default()).with_extension(Box::new(Reverse));
    // Reversing a two-byte code point makes it invalid.
    conn.receive(&with_rsv1(to_server(true, op::TEXT, "é".as_bytes())))
        .unwrap_or(());
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.error(), Some(ProtocolError::InvalidUtf8));
}

#[test]
fn rfc6455_9_extension_encodes_outgoing_messages_with_its_bit() {
    let mut conn = server(Config::default()).with_extension(Box::new(Reverse));
    conn.send_text("hello").unwrap();
    let mut out = Vec::new();
    while conn.transmit_len() > 0 {
        let chunk = conn.pending_transmit().to_vec();
        conn.advance_transmit(chunk.len());
        out.extend(chunk);
    }
    let frames = parse_frames(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, Opcode::Text);
    assert_eq!(frames[0].rsv, RSV1);
    assert_eq!(frames[0].payload, b"olleh");
}
