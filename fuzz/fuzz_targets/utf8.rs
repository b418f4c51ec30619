#![no_main]
//! The incremental validator agrees with `core::str::from_utf8` whole, byte by byte and at
//! input-derived cuts, and fails fast: at the first chunk after which no continuation could
//! be valid, never earlier and never later. Input: one byte seeding the cuts, then the text.
use libfuzzer_sys::fuzz_target;
use rfc6455::utf8::Utf8Validator;

#[path = "common.rs"]
mod common;

fn check(text: &[u8], chunks: Vec<std::ops::Range<usize>>) {
    let mut validator = Utf8Validator::new();
    let mut failed = false;
    for range in chunks {
        let end = range.end;
        let ok = validator.feed(&text[range]).is_ok();
        // `error_len() == None` means the prefix is valid or ends in an unfinished code point.
        let prefix_possible = match core::str::from_utf8(&text[..end]) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        assert_eq!(ok, prefix_possible, "verdict after {end} bytes");
        if !ok {
            failed = true;
            break;
        }
    }
    let valid = !failed && validator.finish().is_ok();
    assert_eq!(valid, core::str::from_utf8(text).is_ok());
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, text)) = data.split_first() else {
        return;
    };
    check(text, common::cuts(0, text.len()));
    check(text, common::bytewise(text.len()));
    check(text, common::cuts(u64::from(seed) + 1, text.len()));
});
