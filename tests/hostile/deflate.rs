//! permessage-deflate (RFC 7692) from a hostile peer: decompression bombs, RSV1 where it may
//! not be, DEFLATE data that is not, and text that stops being UTF-8 once inflated. Each
//! case runs whole, byte by byte and at random cuts, and the bombs count their allocations.

use super::harness::*;
use rfc6455::deflate::{DeflateConfig, Deflater, PerMessageDeflate, accept_offer};
use rfc6455::{Config, Connection, Event, Message, ProtocolError, Role};

/// RSV1 on the first byte: "Per-Message Compressed" (RFC 7692 §6).
const RSV1: u8 = 0x40;

fn deflate_config() -> DeflateConfig {
    DeflateConfig::default()
}

/// A server connection with permessage-deflate agreed on the browsers' offer.
fn server_with(config: Config) -> Connection {
    let deflate = deflate_config();
    let (params, _) = accept_offer(&deflate, ["permessage-deflate; client_max_window_bits"])
        .expect("the offer is accepted");
    Connection::server(config).with_extension(Box::new(PerMessageDeflate::new(
        &params,
        Role::Server,
        &deflate,
    )))
}

fn deflate_server() -> Connection {
    server_with(Config::default())
}

/// `text` compressed as the client would send it (the tail removed, RFC 7692 §7.2.1).
fn compressed(text: &[u8]) -> Vec<u8> {
    let deflate = deflate_config();
    let (params, _) =
        accept_offer(&deflate, ["permessage-deflate; client_max_window_bits"]).unwrap();
    let mut deflater = Deflater::new(&params, Role::Client, &deflate);
    let mut out = Vec::new();
    deflater.compress(text, &mut out);
    out
}

/// About `segments` MiB of zeros, each MiB one byte-aligned sync-flushed block of about a
/// kilobyte: the densest bomb DEFLATE allows (ratio near 1030:1).
fn bomb(segments: usize) -> Vec<u8> {
    let mut s = zlib_rs::Deflate::new(9, false, 12);
    let zeros = vec![0u8; MIB];
    let mut segment = vec![0u8; 8 * KIB];
    s.compress(&zeros, &mut segment, zlib_rs::DeflateFlush::SyncFlush)
        .unwrap();
    segment.truncate(s.total_out() as usize);
    assert!(segment.ends_with(&[0, 0, 0xff, 0xff]));
    segment.repeat(segments)
}

#[test]
fn rfc7692_7_2_2_compressed_text_round_trips_however_it_is_cut() {
    let text = "{\"nick\":\"ada\",\"text\":\"é€😀 hello hello hello hello\"}".repeat(40);
    let payload = compressed(text.as_bytes());
    assert!(payload.len() < text.len() / 4, "it compressed");
    let mut input = frame_b0(0x80 | RSV1 | TEXT, &payload, Some(KEY));
    // Fragmented too: RSV1 on the first frame only.
    let (a, b) = payload.split_at(payload.len() / 3);
    input.extend(frame_b0(RSV1 | TEXT, a, Some(KEY)));
    input.extend(c2s(true, CONT, b));
    let got = run("compressed text", deflate_server, &input, false);
    assert_eq!(got.error, None);
    assert_eq!(
        got.events,
        [
            Event::Message(Message::from(text.as_str())),
            Event::Message(Message::from(text.as_str()))
        ]
    );
}

#[test]
fn rfc7692_6_1_rsv1_on_a_continuation_fails_1002() {
    let payload = compressed(b"hello hello hello hello hello hello hello hello hello hello");
    let (a, b) = payload.split_at(4);
    let mut input = frame_b0(RSV1 | TEXT, a, Some(KEY));
    input.extend(frame_b0(0x80 | RSV1 | CONT, b, Some(KEY)));
    let got = run("rsv1 on a continuation", deflate_server, &input, false);
    got.assert_failed(1002);
    assert_eq!(got.error, Some(ProtocolError::ReservedBits(RSV1 >> 4)));
    assert!(got.events.is_empty());
}

#[test]
fn rfc7692_6_1_rsv1_on_a_control_frame_fails_1002() {
    for opcode in [PING, PONG, CLOSE] {
        let input = frame_b0(0x80 | RSV1 | opcode, b"", Some(KEY));
        let got = run("rsv1 on a control frame", deflate_server, &input, false);
        got.assert_failed(1002);
        assert_eq!(got.error, Some(ProtocolError::ReservedBits(RSV1 >> 4)));
    }
}

#[test]
fn rfc7692_7_2_2_invalid_deflate_data_fails_1007() {
    // BTYPE 11 is reserved: no DEFLATE stream may use it.
    let input = frame_b0(0x80 | RSV1 | BINARY, &[0xff, 0xff, 0xff, 0x07], Some(KEY));
    let got = run("garbage deflate", deflate_server, &input, false);
    got.assert_failed(1007);
    assert!(got.events.is_empty());
    // A message delivered before the garbage still arrives.
    let mut input = frame_b0(
        0x80 | RSV1 | TEXT,
        &compressed(b"before the garbage"),
        Some(KEY),
    );
    input.extend(frame_b0(
        0x80 | RSV1 | BINARY,
        &[0x07, 0x00, 0xff],
        Some(KEY),
    ));
    let got = run("garbage after a message", deflate_server, &input, false);
    got.assert_failed(1007);
    assert_eq!(
        got.events,
        [Event::Message(Message::from("before the garbage"))]
    );
}

#[test]
fn rfc6455_8_1_text_that_is_not_utf8_once_inflated_fails_1007() {
    let mut bad = "valid at first, ".repeat(20).into_bytes();
    bad.extend_from_slice(b"\xff then not");
    let input = frame_b0(0x80 | RSV1 | TEXT, &compressed(&bad), Some(KEY));
    let got = run("inflated text not utf-8", deflate_server, &input, false);
    got.assert_failed(1007);
    assert_eq!(got.error, Some(ProtocolError::InvalidUtf8));
    assert!(got.events.is_empty());
}

/// The two bombs: about 1 MiB that inflates to 1 GiB, sent as one frame and as 1024
/// fragments. Each fails with 1009 at the limit, and the connection's peak allocation stays
/// within the limit, the compressed input and a constant: never near the inflated size.
#[test]
fn rfc7692_7_2_2_decompression_bombs_fail_1009_with_memory_bounded_by_the_limit() {
    let limit = 8 * MIB;
    let config = Config::default()
        .max_message_size(limit as u64)
        .max_frame_size(limit as u64);
    let make = || server_with(config.clone());
    let bomb = bomb(1024);
    assert!(bomb.len() < 2 * MIB, "{} bytes compressed", bomb.len());

    let whole = frame_b0(0x80 | RSV1 | BINARY, &bomb, Some(KEY));
    let per = bomb.len().div_ceil(1024);
    let mut fragmented = Vec::new();
    for (i, piece) in bomb.chunks(per).enumerate() {
        let first = i == 0;
        let last = (i + 1) * per >= bomb.len();
        let b0 = (u8::from(last) << 7) | if first { RSV1 | BINARY } else { CONT };
        fragmented.extend(frame_b0(b0, piece, Some(KEY)));
    }

    for (name, input) in [
        ("bomb in one frame", &whole),
        ("bomb in 1024 fragments", &fragmented),
    ] {
        for cut in [Cut::Whole, Cut::Every(4096), Cut::Random(1), Cut::Random(2)] {
            let zero_copy = matches!(cut, Cut::Random(seed) if seed % 2 == 1);
            let (got, peak) = timed(&format!("{name} {cut:?}"), || {
                measure(|| feed(make(), chunks(name, input, cut), zero_copy, false))
            });
            got.assert_failed(1009);
            assert!(
                matches!(
                    got.error,
                    Some(
                        ProtocolError::MessageTooLarge { .. } | ProtocolError::FrameTooLarge { .. }
                    )
                ),
                "{:?}",
                got.error
            );
            assert!(got.events.is_empty());
            // The inflated message up to the limit, the compressed input (the test's own
            // read buffer may hold a whole 1 MiB frame), and the codec's state and window.
            assert_peak(
                &format!("{name} {cut:?}"),
                peak,
                limit + 3 * MIB + 256 * KIB,
            );
        }
    }
}
