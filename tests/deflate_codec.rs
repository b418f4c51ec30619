//! The permessage-deflate codec (RFC 7692 §7.2): round trips in every mode, split
//! invariance, the size limit, BFINAL handling and the window bound on what we emit.
#![cfg(feature = "deflate")]

#[path = "deflate_support/chat.rs"]
mod chat;
#[path = "deflate_support/walk.rs"]
mod walk;

use proptest::prelude::*;
use rfc6455::Role;
use rfc6455::deflate::{
    DeflateConfig, DeflateParams, Deflater, InflateError, Inflater, MemoryPolicy, accept_offer,
};

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Parameters as a server would agree them for an offer of exactly `offer`.
fn params(offer: &str) -> DeflateParams {
    let wide = DeflateConfig::default()
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    accept_offer(&wide, [offer]).expect("acceptable offer").0
}

fn config(policy: MemoryPolicy, level: u8) -> DeflateConfig {
    DeflateConfig::default()
        .memory_policy(policy)
        .compression_level(level)
        .compression_threshold(0)
}

/// Inflates one message's payload fed in the given pieces.
fn inflate_pieces(
    inflater: &mut Inflater,
    pieces: &[&[u8]],
    limit: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    for piece in pieces {
        inflater.inflate(piece, &mut out, limit)?;
        assert!(out.len() <= limit);
    }
    inflater.finish_message(&mut out, limit)?;
    assert!(out.len() <= limit);
    Ok(out)
}

fn messages(n: usize) -> Vec<Vec<u8>> {
    chat::corpus(n)
        .into_iter()
        .map(String::into_bytes)
        .collect()
}

const POLICIES: [MemoryPolicy; 3] = [
    MemoryPolicy::PerMessage,
    MemoryPolicy::Retain,
    MemoryPolicy::ReleaseWhenIdle(rfc6455::deflate::DEFAULT_RELEASE_AFTER),
];

#[test]
fn rfc7692_7_2_round_trip_in_every_mode_and_policy_pairing() {
    let msgs = messages(300);
    for offer in [
        "permessage-deflate",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
    ] {
        let p = params(offer);
        for send_policy in POLICIES {
            for recv_policy in POLICIES {
                for (role, peer) in [(Role::Server, Role::Client), (Role::Client, Role::Server)] {
                    let mut d = Deflater::new(&p, role, &config(send_policy, 6));
                    let mut i = Inflater::new(&p, peer, &config(recv_policy, 6));
                    for m in &msgs {
                        let mut payload = Vec::new();
                        d.compress(m, &mut payload);
                        let got = inflate_pieces(&mut i, &[&payload], 1 << 20).unwrap();
                        assert_eq!(&got, m, "{offer} {send_policy:?}->{recv_policy:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn rfc7692_7_1_2_compressor_never_reaches_past_the_negotiated_window() {
    // Repetitive data with long-range repeats: the worst case for a window bound.
    let msgs = messages(400);
    let mut long = Vec::new();
    for m in msgs.iter().take(60) {
        long.extend_from_slice(m);
    }
    for bits in 8..=15u8 {
        let offer = format!(
            "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        );
        let p = params(&offer);
        for level in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] {
            for policy in POLICIES {
                let mut d = Deflater::new(&p, Role::Server, &config(policy, level));
                let mut history = Vec::new();
                let mut max = 0;
                for m in msgs.iter().take(80).chain([&long]) {
                    let mut payload = Vec::new();
                    d.compress(m, &mut payload);
                    payload.extend_from_slice(&TAIL);
                    let w = walk::walk(&payload, &history).unwrap();
                    assert_eq!(&w.output, m);
                    max = max.max(w.max_distance);
                    history.extend_from_slice(m);
                }
                assert!(
                    max <= 1 << bits,
                    "window {bits} level {level} {policy:?}: distance {max}"
                );
                if level > 0 && bits >= 12 {
                    assert!(max > 1 << (bits - 1), "the test data reaches far enough");
                }
            }
        }
    }
}

#[test]
fn rfc7692_7_1_1_no_context_takeover_messages_stand_alone() {
    let p = params("permessage-deflate; server_no_context_takeover");
    let msgs = messages(50);
    for policy in POLICIES {
        let mut d = Deflater::new(&p, Role::Server, &config(policy, 6));
        for m in &msgs {
            let mut payload = Vec::new();
            d.compress(m, &mut payload);
            payload.extend_from_slice(&TAIL);
            // Decodes with no history at all.
            assert_eq!(&walk::walk(&payload, &[]).unwrap().output, m);
        }
    }
}

#[test]
fn rfc7692_7_2_context_takeover_shrinks_repeated_messages() {
    let p = params("permessage-deflate");
    let m = br#"{"type":"message","room":"general","user":{"id":1,"nick":"ada"},"text":"hello"}"#;
    for policy in POLICIES {
        let mut d = Deflater::new(&p, Role::Server, &config(policy, 6));
        let (mut first, mut second) = (Vec::new(), Vec::new());
        d.compress(m, &mut first);
        d.compress(m, &mut second);
        assert!(
            second.len() * 3 < first.len(),
            "{policy:?}: {} vs {}",
            second.len(),
            first.len()
        );
    }
}

#[test]
fn rfc7692_7_2_3_6_empty_message_is_one_zero_octet_and_inflates_to_nothing() {
    let p = params("permessage-deflate");
    for policy in POLICIES {
        let mut d = Deflater::new(&p, Role::Client, &config(policy, 6));
        let mut i = Inflater::new(&p, Role::Server, &config(policy, 6));
        for m in [&b"abcabcabc"[..], b"", b"abcabc", b"", b""] {
            let mut payload = Vec::new();
            d.compress(m, &mut payload);
            if m.is_empty() {
                assert_eq!(payload, [0x00]);
            }
            assert_eq!(inflate_pieces(&mut i, &[&payload], 100).unwrap(), m);
        }
        // An RSV1 message with no payload bytes at all is an empty message too.
        assert_eq!(inflate_pieces(&mut i, &[], 100).unwrap(), b"");
        let mut payload = Vec::new();
        d.compress(b"abcabcabc", &mut payload);
        assert_eq!(
            inflate_pieces(&mut i, &[&payload], 100).unwrap(),
            b"abcabcabc"
        );
    }
}

#[test]
fn rfc7692_7_2_2_output_stops_at_the_limit_exactly() {
    let p = params("permessage-deflate");
    let m = vec![b'x'; 10_000];
    for policy in POLICIES {
        let mut d = Deflater::new(&p, Role::Client, &config(policy, 6));
        let mut payload = Vec::new();
        d.compress(&m, &mut payload);
        let mut i = Inflater::new(&p, Role::Server, &config(policy, 6));
        assert_eq!(inflate_pieces(&mut i, &[&payload], 10_000).unwrap(), m);
        let mut i = Inflater::new(&p, Role::Server, &config(policy, 6));
        assert_eq!(
            inflate_pieces(&mut i, &[&payload], 9_999),
            Err(InflateError::LimitExceeded { limit: 9_999 })
        );
    }
}

#[test]
fn rfc7692_7_2_2_garbage_is_invalid_data_not_a_panic() {
    let p = params("permessage-deflate");
    let mut i = Inflater::new(&p, Role::Server, &config(MemoryPolicy::PerMessage, 6));
    // BTYPE 11 is reserved (RFC 1951 §3.2.3).
    let got = inflate_pieces(&mut i, &[&[0xff, 0xff, 0xff]], 100);
    assert!(matches!(got, Err(InflateError::InvalidData(_))), "{got:?}");
    // A fixed-Huffman block whose first symbol copies from distance 1: before any data.
    let mut i = Inflater::new(&p, Role::Server, &config(MemoryPolicy::PerMessage, 6));
    let got = inflate_pieces(&mut i, &[&[0x02, 0x02, 0x00]], 100);
    assert!(matches!(got, Err(InflateError::InvalidData(_))), "{got:?}");
}

/// zlib-rs directly: a sender that ends some messages with BFINAL (RFC 7692 §7.2.3.4) and
/// keeps its window across them by starting each new stream primed with the history.
fn bfinal_sender(msgs: &[Vec<u8>], final_every: usize) -> Vec<Vec<u8>> {
    let new = |history: &[u8]| {
        let mut s = zlib_rs::Deflate::new(6, false, 15);
        if !history.is_empty() {
            s.set_dictionary(&history[history.len().saturating_sub(32 << 10)..])
                .unwrap();
        }
        s
    };
    let mut history = Vec::new();
    let mut stream = new(&history);
    let mut payloads = Vec::new();
    for (n, m) in msgs.iter().enumerate() {
        let finish = n % final_every == final_every - 1;
        let flush = if finish {
            zlib_rs::DeflateFlush::Finish
        } else {
            zlib_rs::DeflateFlush::SyncFlush
        };
        let mut out = vec![0; m.len() * 2 + 64];
        let before = stream.total_out();
        stream.compress(m, &mut out, flush).unwrap();
        out.truncate((stream.total_out() - before) as usize);
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - 4);
        }
        history.extend_from_slice(m);
        if finish {
            stream = new(&history);
        }
        payloads.push(out);
    }
    payloads
}

#[test]
fn rfc7692_7_2_3_4_bfinal_messages_keep_the_shared_window() {
    let msgs = messages(120);
    let payloads = bfinal_sender(&msgs, 3);
    let p = params("permessage-deflate");
    for policy in POLICIES {
        let mut i = Inflater::new(&p, Role::Server, &config(policy, 6));
        for (m, payload) in msgs.iter().zip(&payloads) {
            let halves = payload.split_at(payload.len() / 2);
            assert_eq!(
                &inflate_pieces(&mut i, &[halves.0, halves.1], 1 << 20).unwrap(),
                m
            );
        }
    }
}

#[test]
fn rfc7692_7_2_1_blocks_after_a_bfinal_block_in_one_message_are_read() {
    // One message: "Hello" in a final block, then (after padding) another run of blocks that
    // refers back into it.
    let mut s = zlib_rs::Deflate::new(6, false, 15);
    let mut first = vec![0; 64];
    s.compress(b"Hello", &mut first, zlib_rs::DeflateFlush::Finish)
        .unwrap();
    first.truncate(s.total_out() as usize);
    let mut s = zlib_rs::Deflate::new(6, false, 15);
    s.set_dictionary(b"Hello").unwrap();
    let mut second = vec![0; 64];
    s.compress(
        b" Hello Hello",
        &mut second,
        zlib_rs::DeflateFlush::SyncFlush,
    )
    .unwrap();
    second.truncate(s.total_out() as usize - 4);
    let payload = [first, second].concat();
    let p = params("permessage-deflate");
    for policy in POLICIES {
        for cut in 0..=payload.len() {
            let mut i = Inflater::new(&p, Role::Server, &config(policy, 6));
            let (a, b) = payload.split_at(cut);
            assert_eq!(
                inflate_pieces(&mut i, &[a, b], 100).unwrap(),
                b"Hello Hello Hello",
                "cut {cut}"
            );
        }
    }
}

/// Cuts `data` at the given fractions.
fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut last = 0;
    for p in points {
        pieces.push(&data[last..p]);
        last = p;
    }
    pieces.push(&data[last..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// RFC 6455 §5.4 / RFC 7692 §6.1: a compressed message may be fragmented anywhere; the
    /// inflated result (or the error) must not depend on where.
    #[test]
    fn rfc7692_6_1_inflate_output_does_not_depend_on_the_split(
        seed in any::<u64>(),
        n in 1usize..12,
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        bits in 8u8..=15,
        takeover in any::<bool>(),
        retain in any::<bool>(),
        limit in 64usize..4096,
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let offer = if takeover {
            format!("permessage-deflate; server_max_window_bits={bits}")
        } else {
            format!("permessage-deflate; server_max_window_bits={bits}; server_no_context_takeover")
        };
        let p = params(&offer);
        let policy = if retain { MemoryPolicy::Retain } else { MemoryPolicy::PerMessage };
        let mut rng = chat::Rng(seed);
        let mut d = Deflater::new(&p, Role::Server, &config(policy, (seed % 10) as u8));
        let mut whole = Inflater::new(&p, Role::Client, &config(policy, 6));
        let mut split = Inflater::new(&p, Role::Client, &config(MemoryPolicy::PerMessage, 6));
        for i in 0..n {
            let mut m = chat::message(&mut rng, i as u64).into_bytes();
            if i == n - 1 { m.extend_from_slice(&noise); }
            let mut payload = Vec::new();
            d.compress(&m, &mut payload);
            // Now and then a corrupted message: both must fail alike.
            if seed % 7 == 0 && i == n - 1 && !payload.is_empty() {
                let at = (seed as usize / 7) % payload.len();
                payload[at] ^= 0x5a;
            }
            let a = inflate_pieces(&mut whole, &[&payload], limit);
            let b = inflate_pieces(&mut split, &cut(&payload, &cuts), limit);
            prop_assert_eq!(&a, &b);
            match a {
                Ok(out) => {
                    if seed % 7 != 0 || i != n - 1 {
                        prop_assert_eq!(&out, &m);
                    }
                }
                Err(_) => break,
            }
        }
    }

    /// Releasing the streams between any two messages (what an idle connection's timer does),
    /// and trying to in the middle of one, changes nothing the peer can see: every message
    /// round-trips, in every mode, whatever the two sides' policies.
    #[test]
    fn rfc7692_7_2_released_streams_are_rebuilt_from_the_window(
        seed in any::<u64>(),
        n in 1usize..24,
        releases in proptest::collection::vec(any::<u8>(), 24),
        bits in 8u8..=15,
        takeover in any::<bool>(),
        policies in (0usize..3, 0usize..3),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let offer = if takeover {
            format!("permessage-deflate; server_max_window_bits={bits}")
        } else {
            format!("permessage-deflate; server_max_window_bits={bits}; server_no_context_takeover")
        };
        let p = params(&offer);
        let mut rng = chat::Rng(seed);
        let mut d = Deflater::new(&p, Role::Server, &config(POLICIES[policies.0], (seed % 10) as u8));
        let mut i = Inflater::new(&p, Role::Client, &config(POLICIES[policies.1], 6));
        for (k, &r) in releases.iter().enumerate().take(n) {
            let m = chat::message(&mut rng, k as u64).into_bytes();
            if r & 1 != 0 {
                d.release();
                prop_assert!(!d.is_allocated());
            }
            if r & 2 != 0 {
                prop_assert!(i.release());
                prop_assert!(!i.is_allocated());
            }
            let mut payload = Vec::new();
            d.compress(&m, &mut payload);
            let pieces = cut(&payload, &cuts);
            let mut out = Vec::new();
            for (j, piece) in pieces.iter().enumerate() {
                i.inflate(piece, &mut out, 1 << 20).unwrap();
                if r & 4 != 0 && j == 0 && !piece.is_empty() {
                    // Half a message in: the stream may be inside a block, so it stays.
                    prop_assert!(!i.release());
                    prop_assert!(i.is_allocated());
                }
            }
            i.finish_message(&mut out, 1 << 20).unwrap();
            prop_assert_eq!(&out, &m);
        }
    }
}
