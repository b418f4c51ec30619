//! Incremental UTF-8 validation that fails as soon as an invalid sequence is detectable.
//!
//! RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
//! byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
//! Connection_." Autobahn calls late detection NON-STRICT, so the validator is fed each chunk
//! of payload as it arrives, carries at most three bytes of an unfinished code point, and
//! rejects a prefix as soon as no continuation could make it valid (e.g. `F4 90`).

/// The input is not UTF-8 (no continuation of it can be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// A streaming UTF-8 validator.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Checks the next chunk of the stream.
    ///
    /// # Errors
    /// [`Utf8Error`] as soon as the bytes seen so far cannot begin a valid UTF-8 stream.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            // Finish the carried code point with at most the bytes it can still need.
            let have = usize::from(self.partial_len);
            let take = data.len().min(4 - have);
            let mut tmp = self.partial;
            tmp[have..have + take].copy_from_slice(&data[..take]);
            match core::str::from_utf8(&tmp[..have + take]) {
                Ok(_) => {
                    self.partial_len = 0;
                    data = &data[take..];
                }
                Err(e) if e.error_len().is_some() => return Err(Utf8Error),
                Err(e) if e.valid_up_to() == 0 => {
                    // Still a valid prefix of one code point, and `data` is used up.
                    self.partial = tmp;
                    self.partial_len = (have + take) as u8;
                    return Ok(());
                }
                Err(e) => {
                    // The carried code point completed; rescan from the byte after it.
                    self.partial_len = 0;
                    data = &data[e.valid_up_to() - have..];
                }
            }
        }
        // Fast path: everything up to the last code point boundary goes through a SIMD
        // validator in one call; only the unfinished code point at the end (at most three
        // bytes) takes the byte-exact path below.
        let cut = boundary(data);
        if !fast_valid(&data[..cut]) {
            // `data[..cut]` ends on a boundary whenever `data` is a valid stream prefix, so
            // an error in it is an error in the stream.
            return Err(Utf8Error);
        }
        let rest = &data[cut..];
        match core::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error),
            Err(e) => {
                let rest = &rest[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the stream so far ends on a code point boundary.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    /// How many bytes at the end of the stream so far belong to an unfinished code point
    /// (0 to 3): a text stream cut just before them is valid UTF-8 on its own.
    #[must_use]
    pub(crate) const fn incomplete_len(&self) -> usize {
        self.partial_len as usize
    }

    /// Checks that the stream ended on a code point boundary, and resets the validator.
    ///
    /// # Errors
    /// [`Utf8Error`] if the stream ended inside a code point.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.is_complete();
        *self = Self::new();
        if complete { Ok(()) } else { Err(Utf8Error) }
    }
}

/// Where `data` would end its last complete code point if it is a valid stream prefix: its
/// length, or the index of a trailing lead byte whose sequence is unfinished.
fn boundary(data: &[u8]) -> usize {
    let len = data.len();
    // The last byte that is not a continuation byte (0b10xx_xxxx), among the last four.
    let Some(lead) = (len.saturating_sub(4)..len)
        .rev()
        .find(|&i| data[i] & 0xC0 != 0x80)
    else {
        return len;
    };
    let need = match data[lead] {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    };
    if len - lead < need { lead } else { len }
}

/// Whether `data` is UTF-8, with a SIMD validator where the CPU has one.
pub(crate) fn fast_valid(data: &[u8]) -> bool {
    simdutf8::basic::from_utf8(data).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(data: &[u8], split: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut at = 0;
        for &s in split {
            v.feed(&data[at..s])?;
            at = s;
        }
        v.feed(&data[at..])?;
        v.finish()
    }

    #[test]
    fn code_point_split_across_three_chunks() {
        let s = "a\u{1F600}b".as_bytes();
        assert_eq!(chunked(s, &[2, 3]), Ok(()));
        assert_eq!(chunked(s, &[1, 2, 3, 4]), Ok(()));
    }

    #[test]
    fn fails_fast_on_impossible_prefix() {
        let mut v = Utf8Validator::new();
        v.feed(&[b'a', 0xF4]).unwrap();
        // F4 90 would be above U+10FFFF: invalid before any further byte arrives.
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xED, 0xA0]), Err(Utf8Error)); // surrogate
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xC0]), Err(Utf8Error)); // overlong lead byte
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xF5]), Err(Utf8Error));
    }

    #[test]
    fn unfinished_code_point_fails_at_finish() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xE2, 0x82]).unwrap();
        assert!(!v.is_complete());
        assert_eq!(v.finish(), Err(Utf8Error));
    }

    /// Whether `bytes` can begin a valid UTF-8 stream.
    fn valid_prefix(bytes: &[u8]) -> bool {
        match core::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    #[test]
    fn fails_exactly_when_the_prefix_stops_being_valid() {
        // Bytes around every boundary of the UTF-8 tables, in pseudo-random strings cut into
        // pseudo-random chunks (long enough to reach the SIMD paths).
        let alphabet = [
            b'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
            0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = "aé€😀".as_bytes();
        for _ in 0..5_000 {
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = Vec::with_capacity(len);
            while bytes.len() < len {
                // Mostly valid text, so that errors come late and at every position.
                if next() % 8 == 0 {
                    bytes.push(alphabet[(next() % alphabet.len() as u64) as usize]);
                } else {
                    let at = (next() % 4) as usize;
                    let cp = [0..1, 1..3, 3..6, 6..10][at].clone();
                    bytes.extend_from_slice(&valid[cp]);
                }
            }
            let mut v = Utf8Validator::new();
            let mut at = 0;
            while at < bytes.len() {
                let end = (at + 1 + (next() % 150) as usize).min(bytes.len());
                let got = v.feed(&bytes[at..end]);
                assert_eq!(
                    got.is_ok(),
                    valid_prefix(&bytes[..end]),
                    "{bytes:x?} up to {end}"
                );
                if got.is_err() {
                    break;
                }
                at = end;
            }
            if at == bytes.len() {
                assert_eq!(v.finish().is_ok(), core::str::from_utf8(&bytes).is_ok());
            }
        }
    }

    #[test]
    fn agrees_with_core_at_every_split() {
        let samples: [&[u8]; 5] = [
            "κόσμε".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
            b"\xf8\x88\x80\x80\x80",
            b"ab\xe0\x80\xaf",
        ];
        for s in samples {
            let expect = core::str::from_utf8(s).is_ok();
            for a in 0..=s.len() {
                for b in a..=s.len() {
                    assert_eq!(chunked(s, &[a, b]).is_ok(), expect, "{s:?} at {a},{b}");
                }
            }
        }
    }
}
