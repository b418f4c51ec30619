//! Property tests: the frame codec, split invariance of the receive path in both roles,
//! robustness against arbitrary bytes, the streaming UTF-8 validator and masking.
//!
//! DESIGN.md §5.3: "results never depend on how the input was split. Prove it with a proptest
//! that cuts the same stream at random points".

mod common;

use bytes::Bytes;
use common::{
    drain_events, drain_transmit, frame_raw, parse_frames, peek_transmit, seeded_entropy,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use rfc6455::frame::{
    FrameHeader, MAX_HEADER_LEN, Opcode, apply_mask, decode_header, encode_header,
};
use rfc6455::utf8::Utf8Validator;
use rfc6455::{
    CloseCode, CloseFrame, Config, Connection, Event, Message, MessageKind, ProtocolError, Role,
    State, UsageError,
};
use std::time::Duration;

// ------------------------------------------------------------------------------ frame codec

fn opcode() -> impl Strategy<Value = Opcode> {
    prop_oneof![
        Just(Opcode::Continuation),
        Just(Opcode::Text),
        Just(Opcode::Binary),
        Just(Opcode::Close),
        Just(Opcode::Ping),
        Just(Opcode::Pong),
    ]
}

fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..126,
        126u64..=0xFFFF,
        0x1_0000u64..=(u64::MAX >> 1),
        prop::sample::select(vec![0u64, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1]),
    ]
}

/// Any header the decoder must accept: control frames have FIN and at most 125 bytes.
fn valid_header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0u8..8,
        opcode(),
        any::<Option<[u8; 4]>>(),
        payload_len(),
    )
        .prop_map(|(fin, rsv, opcode, mask, len)| {
            let control = opcode.is_control();
            FrameHeader {
                fin: fin || control,
                rsv: rsv << 4,
                opcode,
                mask,
                payload_len: if control { len % 126 } else { len },
            }
        })
}

fn expected_header_len(h: &FrameHeader) -> usize {
    let ext = match h.payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + ext + if h.mask.is_some() { 4 } else { 0 }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc6455_5_2_encode_then_decode_is_identity(h in valid_header(), tail in vec(any::<u8>(), 0..8)) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut buf, &h);
        prop_assert_eq!(n, expected_header_len(&h));
        prop_assert_eq!(decode_header(&buf[..n]), Ok(Some((h, n))));
        // Bytes after the header (the payload) do not change the result.
        let mut longer = buf[..n].to_vec();
        longer.extend_from_slice(&tail);
        prop_assert_eq!(decode_header(&longer), Ok(Some((h, n))));
        // Every proper prefix is "need more", never an error or a guess.
        for k in 0..n {
            prop_assert_eq!(decode_header(&buf[..k]), Ok(None), "prefix of {} bytes", k);
        }
    }

    #[test]
    fn rfc6455_5_2_decode_of_arbitrary_bytes_is_canonical_and_prefix_stable(bytes in vec(any::<u8>(), 0..16)) {
        match decode_header(&bytes) {
            Ok(Some((h, n))) => {
                // The decoder accepts only the minimal encoding, so re-encoding gives the
                // same bytes back.
                let mut buf = [0u8; MAX_HEADER_LEN];
                let m = encode_header(&mut buf, &h);
                prop_assert_eq!(&buf[..m], &bytes[..n]);
                for k in 0..n {
                    prop_assert_eq!(decode_header(&bytes[..k]), Ok(None));
                }
            }
            Ok(None) => {
                for k in 0..bytes.len() {
                    prop_assert_eq!(decode_header(&bytes[..k]), Ok(None));
                }
            }
            Err(e) => {
                // A prefix either needs more bytes or already fails the same way.
                for k in 0..bytes.len() {
                    let r = decode_header(&bytes[..k]);
                    prop_assert!(r == Ok(None) || r == Err(e), "prefix {}: {:?} vs {:?}", k, r, e);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ split invariance

#[derive(Debug, Clone)]
enum Act {
    Text(String),
    Binary(Vec<u8>),
    /// A message sent with `send_fragment`, cut at the given byte offsets, a Ping after the
    /// fragments whose flag is set.
    Fragmented {
        kind: MessageKind,
        data: Vec<u8>,
        cuts: Vec<Index>,
        pings: Vec<bool>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => vec(any::<u8>(), 0..64),
        3 => vec(any::<u8>(), 64..400),
        1 => (126usize..70_000).prop_map(|n| (0..n).map(|i| (i * 7) as u8).collect()),
    ]
}

fn text_data() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "\\PC{0,40}",
        1 => (1usize..20_000).prop_map(|n| "é✓🚀a".repeat(n / 10 + 1)),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => text_data().prop_map(Act::Text),
        4 => data().prop_map(Act::Binary),
        3 => (
            prop_oneof![Just(MessageKind::Text), Just(MessageKind::Binary)],
            data(),
            text_data(),
            vec(any::<Index>(), 0..5),
            vec(any::<bool>(), 0..5),
        )
            .prop_map(|(kind, bin, txt, cuts, pings)| {
                let data = if kind == MessageKind::Text { txt.into_bytes() } else { bin };
                Act::Fragmented { kind, data, cuts, pings }
            }),
        2 => vec(any::<u8>(), 0..=125).prop_map(Act::Ping),
        1 => vec(any::<u8>(), 0..=125).prop_map(Act::Pong),
    ]
}

fn wire_close() -> impl Strategy<Value = Option<(u16, String)>> {
    let code = prop::sample::select(vec![
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014, 3000, 4999, 1005,
    ]);
    prop::option::of((code, "\\PC{0,20}").prop_map(|(code, mut reason)| {
        while reason.len() > 123 {
            reason.pop();
        }
        if code == 1005 {
            reason.clear();
        }
        (code, reason)
    }))
}

/// The sending side: encodes `acts` with a real `Connection` of the opposite role, returns
/// the wire bytes and the events the receiver must report for them.
fn encode(
    receiver: Role,
    acts: &[Act],
    close: &Option<(u16, String)>,
    max_send: u64,
    seed: u64,
) -> (Vec<u8>, Vec<Event>) {
    let config = Config::default().max_send_frame_size(max_send);
    let mut tx = match receiver {
        Role::Server => Connection::client(config, seeded_entropy(seed)),
        Role::Client => Connection::server(config),
    };
    let mut expect = Vec::new();
    for act in acts {
        match act {
            Act::Text(t) => {
                tx.send_text(t).unwrap();
                expect.push(Event::Message(Message::Text(t.as_str().into())));
            }
            Act::Binary(b) => {
                tx.send_binary(b).unwrap();
                expect.push(Event::Message(Message::Binary(Bytes::copy_from_slice(b))));
            }
            Act::Fragmented {
                kind,
                data,
                cuts,
                pings,
            } => {
                let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
                bounds.push(data.len());
                bounds.sort_unstable();
                let mut at = 0;
                for (i, &end) in bounds.iter().enumerate() {
                    let fin = i + 1 == bounds.len();
                    // Pieces are kept within max_send_frame_size here: an oversized
                    // `send_fragment` is split by the core, and that split is tested in
                    // tests/fragmentation.rs (rfc6455_5_4_oversized_send_fragment_...).
                    let piece = &data[at..end];
                    let step = usize::try_from(max_send).unwrap_or(usize::MAX).max(1);
                    let mut sub: Vec<&[u8]> = piece.chunks(step).collect();
                    if sub.is_empty() {
                        sub.push(&[]);
                    }
                    let last = sub.len() - 1;
                    for (j, part) in sub.into_iter().enumerate() {
                        tx.send_fragment(*kind, part, fin && j == last).unwrap();
                    }
                    at = end;
                    if !fin && pings.get(i).copied().unwrap_or(false) {
                        tx.send_ping(&[i as u8]).unwrap();
                        expect.push(Event::Ping(Bytes::copy_from_slice(&[i as u8])));
                    }
                }
                let message = match kind {
                    MessageKind::Text => {
                        Message::Text(String::from_utf8(data.clone()).unwrap().into())
                    }
                    MessageKind::Binary => Message::Binary(Bytes::copy_from_slice(data)),
                };
                expect.push(Event::Message(message));
            }
            Act::Ping(p) => {
                tx.send_ping(p).unwrap();
                expect.push(Event::Ping(Bytes::copy_from_slice(p)));
            }
            Act::Pong(p) => {
                tx.send_pong(p).unwrap();
                expect.push(Event::Pong(Bytes::copy_from_slice(p)));
            }
        }
    }
    if let Some((code, reason)) = close {
        tx.send_close(CloseCode(*code), reason).unwrap();
        expect.push(Event::Close(CloseFrame::new(
            CloseCode(*code),
            reason.as_str(),
        )));
    }
    (drain_transmit(&mut tx), expect)
}

fn receiver(role: Role, seed: u64) -> Connection {
    let config = Config::default().max_message_size(1 << 20);
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client(config, seeded_entropy(seed ^ 1)),
    }
}

/// Everything observable after feeding a stream: events, the error, the output (never
/// advanced, so the Pong coalescing is the same in every run), the state.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    error: Option<ProtocolError>,
    output: Vec<u8>,
    state: State,
}

fn finish(mut conn: Connection, mut events: Vec<Event>) -> Outcome {
    events.extend(drain_events(&mut conn));
    Outcome {
        events,
        error: conn.error(),
        output: peek_transmit(&conn),
        state: conn.state(),
    }
}

fn feed_whole(role: Role, seed: u64, wire: &[u8]) -> Outcome {
    let mut conn = receiver(role, seed);
    let r = conn.receive(wire);
    let events = drain_events(&mut conn);
    // `receive` may stop at a batch of events, so it can return Ok while a later frame is bad;
    // but an error it does return is the sticky one.
    if let Err(e) = r {
        assert_eq!(conn.error(), Some(e));
    }
    finish(conn, events)
}

/// Piece ends for `wire` cut at `cuts`: sorted, the last one `wire.len()`.
fn bounds(cuts: &[Index], len: usize) -> Vec<usize> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    bounds.push(len);
    bounds.sort_unstable();
    bounds
}

/// Feeds `wire` cut at `bounds`, by `receive` or by `read_buf`/`commit_read`, polling events
/// after the pieces whose flag is set.
fn feed_split(
    role: Role,
    seed: u64,
    wire: &[u8],
    bounds: &[usize],
    poll: &[bool],
    zero_copy: bool,
) -> Outcome {
    let mut conn = receiver(role, seed);
    let mut events = Vec::new();
    let mut at = 0;
    for (i, &end) in bounds.iter().enumerate() {
        let mut piece = &wire[at..end];
        if zero_copy {
            // read_buf may offer less room than the piece: loop.
            loop {
                let buf = conn.read_buf();
                let n = buf.len().min(piece.len());
                buf[..n].copy_from_slice(&piece[..n]);
                let _ = conn.commit_read(n);
                piece = &piece[n..];
                if piece.is_empty() {
                    break;
                }
            }
        } else {
            let _ = conn.receive(piece);
        }
        at = end;
        if poll.get(i).copied().unwrap_or(false) {
            events.extend(drain_events(&mut conn));
        }
    }
    finish(conn, events)
}

#[allow(clippy::too_many_arguments)]
fn split_invariance(
    role: Role,
    acts: &[Act],
    close: &Option<(u16, String)>,
    junk: &[u8],
    max_send: u64,
    cuts: &[Index],
    poll: &[bool],
    seed: u64,
) -> Result<(), TestCaseError> {
    let (mut wire, expect) = encode(role, acts, close, max_send, seed);
    wire.extend_from_slice(junk);
    let whole = feed_whole(role, seed, &wire);
    // What the sender sent is exactly what arrives (junk can only add after it).
    prop_assert!(
        whole.events.starts_with(&expect),
        "{:?}\nvs expected {:?}",
        whole.events,
        expect
    );
    if junk.is_empty() || close.is_some() {
        prop_assert_eq!(&whole.events, &expect);
        prop_assert_eq!(whole.error, None);
    }
    let b = bounds(cuts, wire.len());
    let split = feed_split(role, seed, &wire, &b, poll, false);
    prop_assert_eq!(&split, &whole, "receive, cut at {:?}", b);
    let zero_copy = feed_split(role, seed, &wire, &b, poll, true);
    prop_assert_eq!(&zero_copy, &whole, "read_buf, cut at {:?}", b);
    // One byte at a time, the extreme split (for streams short enough to be quick).
    if wire.len() <= 4_000 {
        let every: Vec<usize> = (1..=wire.len()).collect();
        let bytewise = feed_split(role, seed, &wire, &every, &[true; 1], false);
        prop_assert_eq!(&bytewise, &whole, "byte by byte");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rfc6455_5_4_server_events_do_not_depend_on_how_input_is_split(
        acts in vec(act(), 0..8),
        close in wire_close(),
        junk in prop_oneof![3 => Just(vec![]), 1 => vec(any::<u8>(), 1..20)],
        max_send in prop_oneof![Just(u64::MAX), 1u64..300],
        cuts in vec(any::<Index>(), 0..12),
        poll in vec(any::<bool>(), 0..13),
        seed in any::<u64>(),
    ) {
        split_invariance(Role::Server, &acts, &close, &junk, max_send, &cuts, &poll, seed)?;
    }

    #[test]
    fn rfc6455_5_4_client_events_do_not_depend_on_how_input_is_split(
        acts in vec(act(), 0..8),
        close in wire_close(),
        junk in prop_oneof![3 => Just(vec![]), 1 => vec(any::<u8>(), 1..20)],
        max_send in prop_oneof![Just(u64::MAX), 1u64..300],
        cuts in vec(any::<Index>(), 0..12),
        poll in vec(any::<bool>(), 0..13),
        seed in any::<u64>(),
    ) {
        split_invariance(Role::Client, &acts, &close, &junk, max_send, &cuts, &poll, seed)?;
    }
}

// ------------------------------------------------------------------------------ hostile bytes

/// Pieces of hostile input: raw bytes, or a plausible frame with random header fields, so
/// the fuzzing gets past the first header.
#[derive(Debug, Clone)]
enum Chunk {
    Raw(Vec<u8>),
    Frame {
        fin: bool,
        rsv: u8,
        opcode: u8,
        right_mask: bool,
        payload: Vec<u8>,
    },
}

fn chunk() -> impl Strategy<Value = Chunk> {
    let opcode = prop_oneof![
        6 => prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        1 => 0u8..16,
    ];
    let rsv = prop_oneof![8 => Just(0u8), 1 => (0u8..8).prop_map(|r| r << 4)];
    let payload = prop_oneof![
        4 => vec(any::<u8>(), 0..40),
        2 => "\\PC{0,20}".prop_map(String::into_bytes),
        2 => (prop::sample::select(vec![1000u16, 1001, 999, 1005, 1006, 4000, 5000, 0]), vec(any::<u8>(), 0..6))
            .prop_map(|(code, reason)| [&code.to_be_bytes()[..], &reason].concat()),
        1 => vec(any::<u8>(), 120..140),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..24).prop_map(Chunk::Raw),
        4 => (prop::bool::weighted(0.8), rsv, opcode, prop::bool::weighted(0.9), payload)
            .prop_map(|(fin, rsv, opcode, right_mask, payload)| Chunk::Frame { fin, rsv, opcode, right_mask, payload }),
    ]
}

fn hostile_bytes(role: Role, chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        match c {
            Chunk::Raw(b) => out.extend_from_slice(b),
            Chunk::Frame {
                fin,
                rsv,
                opcode,
                right_mask,
                payload,
            } => {
                // Mostly the masking the role expects, sometimes the wrong one.
                let masked = (role == Role::Server) == *right_mask;
                let mask = masked.then_some(common::RFC_KEY);
                out.extend(frame_raw(*fin, *rsv, *opcode, payload, mask));
            }
        }
    }
    out
}

/// Feeds `bytes` one at a time without writing anything out, checking at each step that an
/// error adds exactly one Close frame carrying its code (after at most the Pong owed to an
/// earlier Ping) and that nothing follows it.
fn bytewise_checked(role: Role, bytes: &[u8]) -> Result<Outcome, TestCaseError> {
    let mut conn = receiver(role, 7);
    let mut events = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let before_err = conn.error();
        let before_len = conn.transmit_len() as usize;
        let r = conn.receive(std::slice::from_ref(b));
        events.extend(drain_events(&mut conn));
        let out = peek_transmit(&conn);
        let new = &out[before_len..];
        match (before_err, conn.error()) {
            (Some(old), now) => {
                prop_assert_eq!(now, Some(old), "the error changed at byte {}", i);
                prop_assert_eq!(r, Err(old));
                prop_assert!(new.is_empty(), "output after the error at byte {}", i);
            }
            (None, Some(err)) => {
                prop_assert_eq!(r, Err(err));
                // The Close may be preceded by the Pong owed to a Ping that arrived before
                // the error (RFC 6455 §5.5.2); nothing else.
                let mut frames = parse_frames(new);
                if frames.len() == 2 && frames[0].opcode == Opcode::Pong {
                    frames.remove(0);
                }
                prop_assert_eq!(
                    frames.len(),
                    1,
                    "error {:?} at byte {} queued {:?}",
                    err,
                    i,
                    frames
                );
                prop_assert_eq!(frames[0].opcode, Opcode::Close);
                prop_assert_eq!(frames[0].close_code(), Some(err.close_code().as_u16()));
                prop_assert_eq!(frames[0].mask.is_some(), role == Role::Client);
                prop_assert_eq!(conn.state(), State::Closed);
            }
            (None, None) => prop_assert_eq!(r, Ok(())),
        }
    }
    Ok(finish(conn, events))
}

fn hostile(role: Role, chunks: &[Chunk], cuts: &[Index]) -> Result<(), TestCaseError> {
    let bytes = hostile_bytes(role, chunks);
    let whole = feed_whole(role, 7, &bytes);
    let split = feed_split(
        role,
        7,
        &bytes,
        &bounds(cuts, bytes.len()),
        &[true, false, true],
        false,
    );
    prop_assert_eq!(&split, &whole);
    let bytewise = bytewise_checked(role, &bytes)?;
    prop_assert_eq!(&bytewise, &whole);

    let frames = parse_frames(&whole.output);
    prop_assert!(
        frames
            .iter()
            .all(|f| f.mask.is_some() == (role == Role::Client))
    );
    let closes = frames.iter().filter(|f| f.opcode == Opcode::Close).count();
    prop_assert!(closes <= 1, "{} Close frames", closes);
    if let Some(err) = whole.error {
        // The last (and only) Close carries the error's code.
        let last = frames.last().expect("a failure queues a Close");
        prop_assert_eq!(last.opcode, Opcode::Close);
        prop_assert_eq!(last.close_code(), Some(err.close_code().as_u16()));
        // Afterwards: input ignored, nothing can be sent, the error repeats.
        let mut conn = receiver(role, 7);
        let _ = conn.receive(&bytes);
        drain_events(&mut conn);
        let len = conn.transmit_len();
        prop_assert_eq!(
            conn.receive(&frame_raw(true, 0, 9, b"more", Some(common::RFC_KEY))),
            Err(err)
        );
        prop_assert_eq!(
            conn.receive(&frame_raw(true, 0, 9, b"more", None)),
            Err(err)
        );
        prop_assert_eq!(conn.send_text("x"), Err(UsageError::Failed(err)));
        prop_assert_eq!(conn.send_ping(b"x"), Err(UsageError::Failed(err)));
        prop_assert_eq!(conn.transmit_len(), len);
        prop_assert_eq!(conn.poll_event(), None);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc6455_7_1_7_arbitrary_bytes_to_server_never_panic_and_fail_with_one_close(
        chunks in vec(chunk(), 0..8),
        cuts in vec(any::<Index>(), 0..6),
    ) {
        hostile(Role::Server, &chunks, &cuts)?;
    }

    #[test]
    fn rfc6455_7_1_7_arbitrary_bytes_to_client_never_panic_and_fail_with_one_close(
        chunks in vec(chunk(), 0..8),
        cuts in vec(any::<Index>(), 0..6),
    ) {
        hostile(Role::Client, &chunks, &cuts)?;
    }

    #[test]
    fn rfc6455_7_1_7_pure_noise_never_panics_either_role(bytes in vec(any::<u8>(), 0..256), cut in any::<Index>()) {
        for role in [Role::Server, Role::Client] {
            let whole = feed_whole(role, 3, &bytes);
            let c = cut.index(bytes.len() + 1);
            let split = feed_split(role, 3, &bytes, &[c, bytes.len()], &[], false);
            prop_assert_eq!(&split, &whole);
            let mut conn = receiver(role, 3);
            let _ = conn.receive(&bytes);
            drain_events(&mut conn);
            let _ = conn.receive_eof();
            drain_events(&mut conn);
            prop_assert!(conn.error().is_some() || conn.close_received());
            prop_assert!(conn.is_terminated());
        }
    }
}

// ------------------------------------------------------------------------------ UTF-8

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

/// Bytes that make or break UTF-8: continuation bytes, lead bytes of every width, overlong
/// and out-of-range leads, surrogate prefix.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(vec![0x80u8, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Valid UTF-8 with multi-byte code points, then zero to two mutations.
fn mostly_utf8() -> impl Strategy<Value = Vec<u8>> {
    (
        "[a-z\u{e9}\u{3a9}\u{2713}\u{1F680}\u{10FFFF}\u{FFFF}\u{800}\u{80}]{0,24}",
        vec(mutation(), 0..3),
    )
        .prop_map(|(s, muts)| {
            let mut b = s.into_bytes();
            for m in muts {
                match m {
                    Mutation::Replace(i, v) if !b.is_empty() => {
                        let i = i.index(b.len());
                        b[i] = v;
                    }
                    Mutation::Insert(i, v) => {
                        let i = i.index(b.len() + 1);
                        b.insert(i, v);
                    }
                    Mutation::Delete(i) if !b.is_empty() => {
                        let i = i.index(b.len());
                        b.remove(i);
                    }
                    Mutation::Truncate(i) => {
                        let i = i.index(b.len() + 1);
                        b.truncate(i);
                    }
                    _ => {}
                }
            }
            b
        })
}

/// Feeds `bytes` in pieces: the validator's verdict must equal `from_utf8`'s, and it must
/// fail at the first piece after which no continuation could make the stream valid.
fn utf8_agrees(bytes: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
    let expect = core::str::from_utf8(bytes).is_ok();
    let mut v = Utf8Validator::new();
    let mut at = 0;
    let mut failed = false;
    for end in bounds(cuts, bytes.len()) {
        let r = v.feed(&bytes[at..end]);
        at = end;
        // "Definitely invalid" for std is an error with a known length; a prefix that only
        // lacks bytes at the end reports `error_len() == None`.
        let doomed =
            matches!(core::str::from_utf8(&bytes[..end]), Err(e) if e.error_len().is_some());
        prop_assert_eq!(r.is_err(), doomed, "after {} bytes of {:02x?}", end, bytes);
        if r.is_err() {
            failed = true;
            break;
        }
        prop_assert_eq!(v.is_complete(), core::str::from_utf8(&bytes[..end]).is_ok());
    }
    let got = !failed && v.finish().is_ok();
    prop_assert_eq!(got, expect, "{:02x?} cut at {:?}", bytes, cuts);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn rfc6455_8_1_utf8_validator_agrees_with_std_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..48),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        utf8_agrees(&bytes, &cuts)?;
    }

    #[test]
    fn rfc6455_8_1_utf8_validator_agrees_with_std_on_mutated_utf8(
        bytes in mostly_utf8(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        utf8_agrees(&bytes, &cuts)?;
    }
}

#[test]
fn rfc6455_8_1_mutated_utf8_strategy_exercises_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = mostly_utf8();
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..1000 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        if core::str::from_utf8(&bytes).is_ok() {
            valid += 1
        } else {
            invalid += 1
        }
    }
    assert!(
        valid >= 200 && invalid >= 200,
        "valid {valid}, invalid {invalid}"
    );
}

// ------------------------------------------------------------------------------ masking

fn mask_bytewise(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc6455_5_3_masking_twice_is_identity(data in vec(any::<u8>(), 0..300), key in any::<[u8; 4]>(), offset in 0usize..64) {
        let mut buf = data.clone();
        apply_mask(&mut buf, key, offset);
        let mut reference = data.clone();
        mask_bytewise(&mut reference, key, offset);
        prop_assert_eq!(&buf, &reference);
        apply_mask(&mut buf, key, offset);
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn rfc6455_5_3_piecewise_masking_equals_whole(
        data in vec(any::<u8>(), 0..300),
        key in any::<[u8; 4]>(),
        base in 0usize..1000,
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut whole = data.clone();
        apply_mask(&mut whole, key, base);
        let mut pieces = data;
        let mut at = 0;
        for end in bounds(&cuts, pieces.len()) {
            apply_mask(&mut pieces[at..end], key, base + at);
            at = end;
        }
        prop_assert_eq!(pieces, whole);
    }
}

// ------------------------------------------------------------------------------ time

/// How the connection is made to start its closing handshake.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The application calls `send_close`.
    OurClose,
    /// The peer breaks the protocol (an unmasked frame to a server).
    Failure,
    /// The peer's Close is taken (the close timer then bounds the wait for TCP to end).
    PeersClose,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `Connection`'s "Time" rule: a connection that sat idle for any length of time, with no
    /// clock reading in between, measures its close timeout from the reading after the close
    /// or the failure, never from the last reading before the idle spell.
    #[test]
    fn rfc6455_7_1_1_the_close_timeout_counts_from_the_close_however_long_the_idle(
        start_ms in 0u64..10_000_000,
        idle_ms in 0u64..10_000_000_000,
        timeout_ms in 1u64..600_000,
        keepalive in any::<bool>(),
        ending in prop_oneof![Just(Ending::OurClose), Just(Ending::Failure), Just(Ending::PeersClose)],
    ) {
        let ms = Duration::from_millis;
        let mut config = Config::default().close_timeout(ms(timeout_ms));
        if keepalive {
            // Long enough that it never fires during the idle spell of this test's clock.
            config = config.keepalive_interval(Some(ms(u64::MAX / 4)));
        }
        let mut conn = Connection::server(config);
        conn.handle_timeout(ms(start_ms));
        // Idle: time passes, nobody tells the connection.
        let now = ms(start_ms) + ms(idle_ms);
        match ending {
            Ending::OurClose => conn.send_close(CloseCode::NORMAL, "").unwrap(),
            Ending::Failure => {
                let unmasked = frame_raw(true, 0, 1, b"x", None);
                prop_assert!(conn.receive(&unmasked).is_err());
            }
            Ending::PeersClose => {
                let close = frame_raw(true, 0, 8, b"\x03\xe8", Some(common::RFC_KEY));
                conn.receive(&close).unwrap();
                prop_assert!(matches!(conn.poll_event(), Some(Event::Close(_))));
            }
        }
        // The timer waits for a reading instead of using the stale one.
        prop_assert_eq!(conn.poll_timeout(), Some(Duration::ZERO));
        conn.handle_timeout(now);
        let deadline = now + ms(timeout_ms);
        prop_assert_eq!(conn.poll_timeout(), Some(deadline));
        conn.handle_timeout(deadline - ms(1));
        prop_assert!(!conn.is_terminated(), "fired before the full timeout");
        conn.handle_timeout(deadline);
        prop_assert!(conn.is_terminated());
        prop_assert_eq!(conn.poll_timeout(), None);
    }
}
