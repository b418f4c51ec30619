#![no_main]
//! The permessage-deflate inflater gives the same outcome whole and cut at input-derived
//! points, never produces more than the limit, and round-trips what our deflater makes.
//! Input: control byte (policy, context takeover, window, limit, round-trip mode), cut seed
//! byte, then messages as `len` byte + `len` bytes (compressed payloads, or plain text to
//! compress first in round-trip mode).
use libfuzzer_sys::fuzz_target;
use rfc6455::Role;
use rfc6455::deflate::{
    DeflateConfig, Deflater, InflateError, Inflater, MemoryPolicy, accept_offer,
};

#[path = "common.rs"]
mod common;

fn messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let n = (len as usize).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// Inflates every message, each cut per `seed` (0: whole); the outputs and the first error.
fn run(
    inflater: &mut Inflater,
    msgs: &[Vec<u8>],
    seed: u64,
    limit: usize,
) -> (Vec<Vec<u8>>, Option<InflateError>) {
    let mut outs = Vec::new();
    for m in msgs {
        let mut out = Vec::new();
        let mut result = Ok(());
        for range in common::cuts(seed, m.len()) {
            result = inflater.inflate(&m[range], &mut out, limit);
            assert!(out.len() <= limit, "{} > {limit}", out.len());
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = inflater.finish_message(&mut out, limit);
            assert!(out.len() <= limit);
        }
        if let Err(e) = result {
            return (outs, Some(e));
        }
        outs.push(out);
    }
    (outs, None)
}

fn code(e: InflateError) -> u16 {
    rfc6455::ProtocolError::from(e).close_code().0
}

fuzz_target!(|data: &[u8]| {
    let [ctrl, seed, rest @ ..] = data else {
        return;
    };
    let bits = 8 + (ctrl & 7);
    let takeover = ctrl & 0x08 == 0;
    let retain = ctrl & 0x10 != 0;
    let limit = [64usize, 1000, 1 << 16, 1 << 20][usize::from((ctrl >> 5) & 3)];
    let round_trip = ctrl & 0x80 != 0;

    let mut offer = format!("permessage-deflate; server_max_window_bits={bits}");
    if !takeover {
        offer.push_str("; server_no_context_takeover");
    }
    let wide = DeflateConfig::default()
        .server_max_window_bits(15)
        .client_max_window_bits(15);
    let (params, _) = accept_offer(&wide, [&offer]).unwrap();
    let policy = if retain {
        MemoryPolicy::Retain
    } else {
        MemoryPolicy::PerMessage
    };
    let config = DeflateConfig::default()
        .memory_policy(policy)
        .compression_threshold(0);

    let plain: Vec<&[u8]> = messages(rest);
    let msgs: Vec<Vec<u8>> = if round_trip {
        let mut d = Deflater::new(
            &params,
            Role::Server,
            &config.clone().compression_level(*seed % 10),
        );
        plain
            .iter()
            .map(|m| {
                let mut p = Vec::new();
                d.compress(m, &mut p);
                p
            })
            .collect()
    } else {
        plain.iter().map(|m| m.to_vec()).collect()
    };

    // Whole against cut, same policy: identical messages and the same failure (by close
    // code: zlib's reason text may name the first bad field it happened to look at).
    let mut whole = Inflater::new(&params, Role::Client, &config);
    let mut split = Inflater::new(&params, Role::Client, &config);
    let a = run(&mut whole, &msgs, 0, limit);
    let b = run(&mut split, &msgs, u64::from(*seed) + 1, limit);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1.map(code), b.1.map(code));

    // The other policy, cut too. On valid streams it must agree (checked below against the
    // plain text); on corrupt ones it may not: a retained stream continues mid-block where a
    // fresh, primed one starts at a block header, and both fail or decode garbage differently.
    let other = config.clone().memory_policy(if retain {
        MemoryPolicy::PerMessage
    } else {
        MemoryPolicy::Retain
    });
    let mut cross = Inflater::new(&params, Role::Client, &other);
    let c = run(&mut cross, &msgs, u64::from(*seed) + 1, limit);

    if round_trip {
        let fits = plain.iter().all(|m| m.len() <= limit);
        if fits {
            for r in [&a, &c] {
                assert_eq!(r.1, None);
                assert_eq!(r.0.len(), plain.len());
                for (got, want) in r.0.iter().zip(&plain) {
                    assert_eq!(got, want);
                }
            }
        }
    }
});
