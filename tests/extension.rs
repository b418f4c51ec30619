//! The extension seam (RFC 6455 §9, used by permessage-deflate on RSV1): a connection with
//! an extension accepts the RSV bits it claims on a message's first frame and routes those
//! messages through it; without one, the same frames fail with 1002.

mod common;

use common::{op, parse_frames, server, to_server};
use rfc6455::frame::{Opcode, RSV1};
use rfc6455::{Config, Event, Extension, Message, ProtocolError};

/// A toy per-message transform on RSV1: payloads travel reversed. Reversing needs the whole
/// message, so it gathers the pieces the connection hands over and produces its output at the
/// message's end: the seam works for extensions that buffer as well as for streaming ones.
#[derive(Default)]
struct Reverse {
    pending: Vec<u8>,
    /// The size of each piece handed over, to show that decoding starts before the message
    /// ends.
    pieces: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Extension for Reverse {
    fn reserved_bits(&self) -> u8 {
        RSV1
    }
    fn decode(
        &mut self,
        rsv: u8,
        input: &[u8],
        end: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        assert_eq!(rsv, RSV1);
        self.pieces.lock().unwrap().push(input.len());
        self.pending.extend_from_slice(input);
        if end {
            if out.len() + self.pending.len() > limit {
                return Err(ProtocolError::MessageTooLarge {
                    size: (out.len() + self.pending.len()) as u64,
                    limit: limit as u64,
                });
            }
            out.extend(self.pending.drain(..).rev());
        }
        Ok(())
    }
    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> u8 {
        out.extend(payload.iter().rev());
        RSV1
    }
}

fn reverse() -> Box<Reverse> {
    Box::default()
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
    let mut conn = server(Config::default()).with_extension(reverse());
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
    let mut conn = server(Config::default()).with_extension(reverse());
    let mut wire = to_server(false, op::TEXT, b"a");
    wire.extend(with_rsv1(to_server(true, op::CONT, b"b")));
    assert_eq!(
        conn.receive(&wire),
        Err(ProtocolError::ReservedBits(RSV1 >> 4))
    );
    let mut conn = server(Config::default()).with_extension(reverse());
    assert_eq!(
        conn.receive(&with_rsv1(to_server(true, op::PING, b""))),
        Err(ProtocolError::ReservedBits(RSV1 >> 4))
    );
}

#[test]
fn rfc6455_8_1_extension_output_is_still_utf8_checked() {
    let mut conn = server(Config::default()).with_extension(reverse());
    // Reversing a two-byte code point makes it invalid.
    conn.receive(&with_rsv1(to_server(true, op::TEXT, "é".as_bytes())))
        .unwrap_or(());
    assert_eq!(conn.poll_event(), None);
    assert_eq!(conn.error(), Some(ProtocolError::InvalidUtf8));
}

#[test]
fn rfc6455_9_extension_encodes_outgoing_messages_with_its_bit() {
    let mut conn = server(Config::default()).with_extension(reverse());
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

#[test]
fn rfc7692_7_2_2_extension_decodes_each_piece_as_it_arrives() {
    let ext = reverse();
    let pieces = std::sync::Arc::clone(&ext.pieces);
    let mut conn = server(Config::default()).with_extension(ext);
    let first = with_rsv1(to_server(false, op::TEXT, b"ol"));
    conn.receive(&first).unwrap();
    // The first fragment was handed over before the message ended.
    assert_eq!(*pieces.lock().unwrap(), [2]);
    assert_eq!(conn.poll_event(), None);
    let last = to_server(true, op::CONT, b"leh");
    // The last fragment arrives a byte at a time: each piece goes through as it comes.
    for byte in &last {
        conn.receive(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(
        conn.poll_event(),
        Some(Event::Message(Message::from("hello")))
    );
    let seen = pieces.lock().unwrap().clone();
    assert_eq!(seen.iter().sum::<usize>(), 5);
    assert!(seen.len() >= 4, "pieces as they arrived: {seen:?}");
}

#[test]
fn rfc6455_7_4_1_extension_output_over_the_message_limit_fails_1009() {
    let mut conn = server(Config::default().max_message_size(4)).with_extension(reverse());
    let r = conn.receive(&with_rsv1(to_server(true, op::BINARY, b"hello")));
    assert!(
        matches!(r, Err(ProtocolError::MessageTooLarge { .. })),
        "{r:?}"
    );
    assert_eq!(conn.error().map(|e| e.close_code().as_u16()), Some(1009));
}

/// An extension that asks to be released 5 s after its last message, and counts releases.
struct Releasing {
    released: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Extension for Releasing {
    fn reserved_bits(&self) -> u8 {
        RSV1
    }
    fn decode(
        &mut self,
        _: u8,
        input: &[u8],
        _: bool,
        out: &mut Vec<u8>,
        _: usize,
    ) -> Result<(), ProtocolError> {
        out.extend_from_slice(input);
        Ok(())
    }
    fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) -> u8 {
        out.extend_from_slice(payload);
        RSV1
    }
    fn release_after(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(5))
    }
    fn release(&mut self) {
        self.released
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn an_extension_is_released_once_the_connection_is_idle_as_long_as_it_asks() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::Duration;
    let released = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ext = Releasing {
        released: std::sync::Arc::clone(&released),
    };
    let mut conn = server(Config::default()).with_extension(Box::new(ext));
    conn.handle_timeout(Duration::from_secs(100));
    assert_eq!(conn.poll_timeout(), None, "nothing held yet");
    // A message the extension decoded: release 5 s after the next clock reading.
    conn.receive(&with_rsv1(to_server(true, op::BINARY, b"x")))
        .unwrap();
    assert!(conn.poll_event().is_some());
    assert_eq!(conn.poll_timeout(), Some(Duration::ZERO));
    conn.handle_timeout(Duration::from_secs(101));
    assert_eq!(conn.poll_timeout(), Some(Duration::from_secs(106)));
    // A message it encoded at 104 s postpones it.
    conn.send_binary(b"y").unwrap();
    conn.handle_timeout(Duration::from_secs(104));
    assert_eq!(conn.poll_timeout(), Some(Duration::from_secs(109)));
    conn.handle_timeout(Duration::from_secs(108));
    assert_eq!(released.load(SeqCst), 0);
    conn.handle_timeout(Duration::from_secs(109));
    assert_eq!(released.load(SeqCst), 1);
    assert_eq!(conn.poll_timeout(), None);
}
