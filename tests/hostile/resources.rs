//! Memory per connection under floods, measured with the counting allocator (per thread, so
//! these tests may run in parallel with others). Each case states its bound in its name and
//! runs whole, byte by byte and in random or fixed-size reads; all must agree on the events.
//! CPU cost is printed (`cargo test --test hostile -- --nocapture`), never asserted.

use super::harness::*;
use bytes::BufMut;
use rfc6455::{Config, Connection, Event, Message, ProtocolError};

/// What a flood produced, without keeping the events (they would be counted too).
#[derive(Debug, Default, PartialEq)]
struct Summary {
    /// (is_text, length) of each message.
    messages: Vec<(bool, usize)>,
    pings: usize,
    error: Option<ProtocolError>,
    pending: u64,
}

/// Makes a connection and feeds it `input` under `cut` inside one measurement; `write` says
/// whether the application writes its output out between reads (a ping flood's victim does
/// not). Returns what happened and the peak bytes allocated, connection included.
fn measured(
    what: &str,
    make: impl Fn() -> Connection,
    input: &[u8],
    cut: Cut,
    zero_copy: bool,
    write: bool,
) -> (Summary, usize) {
    let (summary, peak) = timed(&format!("{what} {cut:?}"), || {
        measure(|| {
            let mut conn = make();
            let mut s = Summary::default();
            for chunk in chunks(what, input, cut) {
                if zero_copy {
                    let mut rest = chunk;
                    while !rest.is_empty() {
                        let buf = conn.read_buf();
                        let n = buf.len().min(rest.len());
                        buf[..n].copy_from_slice(&rest[..n]);
                        let _ = conn.commit_read(n);
                        rest = &rest[n..];
                    }
                } else {
                    let _ = conn.receive(chunk);
                }
                while let Some(event) = conn.poll_event() {
                    match event {
                        Event::Message(Message::Text(t)) => s.messages.push((true, t.len())),
                        Event::Message(Message::Binary(b)) => s.messages.push((false, b.len())),
                        Event::Ping(_) => s.pings += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                if write {
                    let n = usize::try_from(conn.transmit_len()).unwrap();
                    conn.advance_transmit(n);
                }
            }
            s.error = conn.error();
            s.pending = conn.transmit_len();
            s
        })
    });
    println!(
        "{what} {cut:?}: peak allocation {peak} bytes for {} input bytes",
        input.len()
    );
    (summary, peak)
}

#[test]
fn declared_2gib_frame_fails_1009_peak_alloc_under_4kib() {
    let mut input = header(0x82, 2 << 30, Some(KEY));
    input.extend_from_slice(&[0x55; 1024]); // the first payload bytes are never looked at
    for cut in CUTS {
        let (s, peak) = measured("declared 2 GiB", server, &input, cut, false, true);
        assert_eq!(
            s.error,
            Some(ProtocolError::FrameTooLarge {
                size: 2 << 30,
                limit: 16 << 20
            })
        );
        assert_peak("declared 2 GiB", peak, 4 * KIB);
    }
}

#[test]
fn declared_2pow62_frame_with_limits_off_allocates_by_bytes_received_under_2x_plus_1mib() {
    // Limits off (u64::MAX): a frame declaring 2^62 bytes is accepted and awaited, but memory
    // follows the bytes that actually arrive (4 MiB here), never the declared length.
    let config = Config::default()
        .max_frame_size(u64::MAX)
        .max_message_size(u64::MAX);
    let make = || Connection::server(config.clone());
    let mut input = header(0x82, 1 << 62, Some(KEY));
    input.resize(input.len() + 4 * MIB, 0x55);
    for (cut, zero_copy) in [
        (Cut::Every(64 * KIB), false),
        (Cut::Every(64 * KIB), true),
        (Cut::Random(2), false),
    ] {
        let (s, peak) = measured(
            "limits off, 2^62 declared",
            make,
            &input,
            cut,
            zero_copy,
            true,
        );
        assert_eq!(s, Summary::default());
        assert_peak("limits off, 2^62 declared", peak, 2 * (input.len() + MIB));
    }
}

#[test]
fn fragment_flood_1e6_one_byte_continuations_peak_alloc_under_3x_payload_plus_2x_read() {
    const N: usize = 1_000_000;
    let mut input = c2s(false, TEXT, b"a");
    let cont = c2s(false, CONT, b"a");
    input.reserve(N * cont.len());
    for _ in 2..N {
        input.extend_from_slice(&cont);
    }
    input.extend(c2s(true, CONT, b"a"));
    let expected = Summary {
        messages: vec![(true, N)],
        ..Summary::default()
    };
    for (cut, read) in [
        (Cut::Every(64 * KIB), 64 * KIB),
        (Cut::Random(1), 64 * KIB),
        (Cut::Bytewise, 1),
        (Cut::Whole, input.len()),
    ] {
        let (s, peak) = measured(
            "1e6 one-byte continuations",
            server,
            &input,
            cut,
            false,
            true,
        );
        assert_eq!(s, expected);
        assert_peak(
            "1e6 one-byte continuations",
            peak,
            3 * N + 2 * read + 64 * KIB,
        );
    }
}

/// Byte by byte runs over 10^6 fragments of the same shape: the parser's state repeats every
/// 6 bytes, so ten times more of it shows nothing new and costs a minute in a debug build.
#[test]
fn fragment_flood_1e7_empty_continuations_peak_alloc_under_256kib_plus_2x_read() {
    let flood = |n: usize| {
        let mut input = c2s(false, TEXT, b"x");
        let cont = c2s(false, CONT, b"");
        input.reserve(n * cont.len() + 16);
        for _ in 0..n {
            input.extend_from_slice(&cont);
        }
        input.extend(c2s(true, CONT, b"y"));
        input
    };
    let expected = Summary {
        messages: vec![(true, 2)],
        ..Summary::default()
    };
    let big = flood(10_000_000);
    let small = flood(1_000_000);
    for (input, cut, read) in [
        (&big, Cut::Every(64 * KIB), 64 * KIB),
        (&big, Cut::Random(3), 64 * KIB),
        (&big, Cut::Whole, big.len()),
        (&small, Cut::Bytewise, 1),
    ] {
        let what = format!("{} empty continuations", (input.len() - 14) / 6);
        let (s, peak) = measured(&what, server, input, cut, false, true);
        assert_eq!(s, expected);
        assert_peak(&what, peak, 256 * KIB + 2 * read);
    }
}

#[test]
fn ping_flood_10000_unwritten_peak_alloc_under_64kib_plus_2x_read() {
    const PINGS: usize = 10_000;
    let input: Vec<u8> = (0..PINGS)
        .flat_map(|_| c2s(true, PING, &[7; 125]))
        .collect();
    for (cut, read) in [
        (Cut::Whole, input.len()),
        (Cut::Every(4 * KIB), 4 * KIB),
        (Cut::Bytewise, 1),
        (Cut::Random(1), 64 * KIB),
    ] {
        let (s, peak) = measured(
            "10 000 pings, nothing written",
            server,
            &input,
            cut,
            false,
            false,
        );
        assert_eq!((s.pings, s.error), (PINGS, None));
        assert!(s.pending <= (8 << 10) + 127, "{} bytes pending", s.pending);
        assert_peak("10 000 pings, nothing written", peak, 64 * KIB + 2 * read);
    }
}

/// An adapter reads through `read_buf` (zero-filled room) or `read_space` (reserved, not
/// touched). Sized from the declared length of the frame in progress, a 14-byte header
/// declaring 16 MiB (the default limit, so it is accepted) and one payload byte once cost
/// 1 MiB of touched memory per connection. The room now follows the bytes received, with a
/// 64 KiB floor inside a frame (a stalled peer costs at most that); past the floor it grows
/// only as bytes arrive (the room offered is at most what is buffered): after 100 KiB more
/// in 1 KiB pieces, the peak is under twice the bytes received plus 64 KiB.
#[test]
fn declared_16mib_frame_reserves_by_bytes_received_with_a_64kib_floor() {
    let mut input = header(0x82, 16 << 20, Some(KEY));
    input.push(0x55);
    for through_space in [false, true] {
        let feed = |conn: &mut rfc6455::Connection, bytes: &[u8]| {
            if through_space {
                conn.read_space().put_slice(bytes);
                conn.commit_space().unwrap();
            } else {
                conn.read_buf()[..bytes.len()].copy_from_slice(bytes);
                conn.commit_read(bytes.len()).unwrap();
            }
        };
        let mut conn = None;
        let ((), peak) = measure(|| {
            let c = conn.insert(server());
            feed(c, &input);
            // The adapter asks for room for its next read.
            let room = if through_space {
                c.read_space().remaining_mut()
            } else {
                c.read_buf().len()
            };
            println!("offered {room} bytes after {} received", input.len());
        });
        assert_peak("16 MiB declared, 15 bytes received", peak, 64 * KIB + 256);
        let ((), peak) = measure(|| {
            let c = conn.as_mut().unwrap();
            for _ in 0..100 {
                feed(c, &[0x55; KIB]);
            }
        });
        assert_peak(
            "16 MiB declared, 100 KiB more received",
            peak,
            2 * (input.len() + 100 * KIB) + 64 * KIB + 256,
        );
    }
}
