//! The crate's one module with `unsafe` code: payload bytes masked as they are copied into
//! memory not yet initialised, the AVX2 build of the masking loop (RFC 6455 §5.3; eight bytes
//! at a time in safe code otherwise), and the `&str` view of bytes validated as UTF-8 once.
//! Each kind pays for itself in a benchmark (`benches/README.md`):
//! - the AVX2 build of the loop, called after the CPU was checked for AVX2: masking is the
//!   one pass over a payload the server side makes beyond the copy in;
//! - `BytesMut::set_len` / `Vec::set_len` after [`extend_masked`], [`masked_vec`] or
//!   [`extend_vec_masked`] has written the masked copy of a caller's bytes into spare
//!   capacity: one pass instead of a copy and an unmask;
//! - [`Utf8Str`]: text checked once, as it arrived, is read back as `&str` in O(1), where
//!   `str::from_utf8` would check a 1 MiB message again on every access.
//!
//! `scripts/miri.sh` runs this module's tests under Miri both ways (with AVX2 enabled at
//! compile time, so the AVX2 calls are taken).
#![allow(unsafe_code)]

use alloc::vec::Vec;
use bytes::BytesMut;
use core::mem::MaybeUninit;

/// Below this length the AVX2 build is not worth the check that picks it.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const AVX2_MIN: usize = 256;

/// XORs `buf` with the masking key, as the bytes at `offset..offset + buf.len()` of a payload.
///
/// RFC 6455 §5.3: "Octet i of the transformed data ("transformed-octet-i") is the XOR of octet
/// i of the original data ("original-octet-i") with octet at index i modulo 4 of the masking
/// key". The `offset` lets a payload be unmasked piece by piece as it arrives. Masking twice
/// with the same key and offset restores the input.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if buf.len() >= AVX2_MIN && std::is_x86_feature_detected!("avx2") {
        // The bytes up to a 32-byte boundary first, so that no 32-byte store of the main
        // loop straddles two cache lines.
        let head = buf.as_ptr().align_offset(32).min(buf.len());
        let (front, body) = buf.split_at_mut(head);
        mask_words(front, rotate(key, offset));
        // SAFETY: `mask_avx2` is safe code compiled with AVX2 enabled; its one requirement is
        // a CPU that executes AVX2 instructions, which was checked above.
        unsafe { mask_avx2(body, rotate(key, offset + head)) };
        return;
    }
    mask_words(buf, rotate(key, offset));
}

/// [`apply_mask`] for bytes that were just written (a read has copied them in): the last
/// piece first, so the pass starts on what is still in the L1 cache instead of on the
/// oldest bytes, which the copy has already pushed out to L2.
#[inline(never)]
pub(crate) fn unmask_fresh(buf: &mut [u8], key: [u8; 4], offset: usize) {
    const PIECE: usize = 4 << 10;
    if buf.len() <= PIECE {
        return apply_mask(buf, key, offset);
    }
    let mut end = buf.len();
    while end > PIECE {
        let start = end - PIECE;
        apply_mask(&mut buf[start..end], key, offset + start);
        end = start;
    }
    apply_mask(&mut buf[..end], key, offset);
}

/// Appends `src` to `dst` masked with `key` (as the payload bytes at `offset..`): the copy
/// and the XOR in one pass, for bytes the caller holds (`Connection::receive`), where copying
/// them in and then unmasking them in place would read and write the payload twice.
pub(crate) fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4], offset: usize) {
    dst.reserve(src.len());
    write_masked(&mut dst.spare_capacity_mut()[..src.len()], src, key, offset);
    // SAFETY: `write_masked` wrote each of the first `src.len()` bytes of the spare capacity
    // (the slice it was given is exactly that long), and `reserve` made sure they are within
    // the capacity.
    unsafe { dst.set_len(dst.len() + src.len()) };
}

/// [`extend_masked`] for a `Vec`: a fragment unmasked as it is copied into the message being
/// assembled.
pub(crate) fn extend_vec_masked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    dst.reserve(src.len());
    write_masked(&mut dst.spare_capacity_mut()[..src.len()], src, key, offset);
    // SAFETY: as in `extend_masked`: the first `src.len()` bytes of the spare capacity were
    // written, and `reserve` made sure they are within the capacity.
    unsafe { dst.set_len(dst.len() + src.len()) };
}

/// A masked copy of `src` (as the payload bytes at `offset..`) in an allocation of its own,
/// exactly as long: for small messages, which are copied out of the read buffer anyway, so
/// that the copy and the unmask are one pass.
pub(crate) fn masked_vec(src: &[u8], key: [u8; 4], offset: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    // The word loop alone: going through `extend_vec_masked` (a `reserve` and the AVX2
    // check) made 16 B frames slower to decode (benches/README.md).
    copy_masked(
        &mut out.spare_capacity_mut()[..src.len()],
        src,
        rotate(key, offset),
    );
    // SAFETY: `copy_masked` wrote each of the first `src.len()` bytes of the spare capacity
    // (the slice it was given is exactly that long), and `with_capacity` reserved them.
    unsafe { out.set_len(src.len()) };
    out
}

/// Writes `src` masked with `key` into every byte of `room` (exactly as long): the word loop,
/// or from `AVX2_MIN` bytes on a CPU with AVX2, the word loop up to a 32-byte boundary and
/// the same loop compiled for AVX2 after it (the two parts together are all of `room`).
#[inline(always)]
fn write_masked(room: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4], offset: usize) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if src.len() >= AVX2_MIN && std::is_x86_feature_detected!("avx2") {
        // Up to a 32-byte boundary of the destination first, as in `apply_mask`.
        let head = room.as_ptr().align_offset(32).min(src.len());
        let (room_front, room_body) = room.split_at_mut(head);
        let (src_front, src_body) = src.split_at(head);
        copy_masked(room_front, src_front, rotate(key, offset));
        // SAFETY: `copy_masked_avx2` is safe code compiled with AVX2 enabled; its one
        // requirement is a CPU that executes AVX2 instructions, checked above.
        unsafe { copy_masked_avx2(room_body, src_body, rotate(key, offset + head)) };
        return;
    }
    copy_masked(room, src, rotate(key, offset));
}

/// [`copy_masked`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn copy_masked_avx2(dst: &mut [MaybeUninit<u8>], src: &[u8], key: u32) {
    copy_masked(dst, src, key);
}

/// Writes `src` XOR the rotated `key` into every byte of `dst` (which is as long as `src`).
#[inline(always)]
fn copy_masked(dst: &mut [MaybeUninit<u8>], src: &[u8], key: u32) {
    assert_eq!(dst.len(), src.len());
    let wide = u64::from(key) | u64::from(key) << 32;
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (to, from) in (&mut d).zip(&mut s) {
        let mut word = [0; 8];
        word.copy_from_slice(from);
        let word = (u64::from_ne_bytes(word) ^ wide).to_ne_bytes();
        for (slot, byte) in to.iter_mut().zip(word) {
            slot.write(byte);
        }
    }
    let key = key.to_ne_bytes();
    for ((slot, byte), k) in d
        .into_remainder()
        .iter_mut()
        .zip(s.remainder())
        .zip(key.into_iter().cycle())
    {
        slot.write(byte ^ k);
    }
}

/// [`mask_words`] compiled for AVX2, so the vectorised loop moves 32 bytes per instruction
/// instead of 16.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn mask_avx2(buf: &mut [u8], key: u32) {
    mask_words(buf, key);
}

/// Masks `buf` with `key`: the masking key, already rotated for the offset, as the
/// native-endian `u32` of its four bytes.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: u32) {
    // Eight bytes at a time: LLVM turns this into wide unaligned loads and stores (and
    // vectorises the loop), with no `unsafe` alignment tricks. The key's bytes repeat in
    // memory order whichever half of the word comes first.
    let wide = u64::from(key) | u64::from(key) << 32;
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    let key = key.to_ne_bytes();
    if rest.len() >= 4 {
        let (four, tail) = rest.split_at_mut(4);
        let mut word = [0; 4];
        word.copy_from_slice(four);
        four.copy_from_slice(&(u32::from_ne_bytes(word) ^ u32::from_ne_bytes(key)).to_ne_bytes());
        xor_bytes(tail, key);
    } else {
        xor_bytes(rest, key);
    }
}

/// The last 0–3 bytes, one at a time.
#[inline(always)]
fn xor_bytes(tail: &mut [u8], key: [u8; 4]) {
    for (byte, k) in tail.iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// The key as the `u32` of its bytes in memory order, starting at byte `offset % 4`: a
/// rotation of the native-endian word by whole bytes, with no byte shuffling.
fn rotate(key: [u8; 4], offset: usize) -> u32 {
    let word = u32::from_ne_bytes(key);
    let bits = 8 * (offset as u32 & 3);
    if cfg!(target_endian = "little") {
        word.rotate_right(bits)
    } else {
        word.rotate_left(bits)
    }
}

/// Bytes that are valid UTF-8, read back as `&str` without checking them again.
///
/// Every way in establishes the invariant: [`Utf8Str::checked`] validates (SIMD), and
/// [`Utf8Str::assume_valid`] is for bytes the crate has already validated as they arrived
/// (the receive path's incremental validator accepted exactly these bytes). The latter is
/// crate-internal and re-checks in debug builds and under the fuzzers, which is how every
/// test and fuzz run holds the crate to it.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Utf8Str(bytes::Bytes);

impl Utf8Str {
    /// `bytes`, if they are UTF-8.
    pub(crate) fn checked(bytes: bytes::Bytes) -> Result<Self, bytes::Bytes> {
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            Ok(Self(bytes))
        } else {
            Err(bytes)
        }
    }

    /// Bytes of a `&str` or `String` (UTF-8 by construction).
    pub(crate) const fn from_str_bytes(bytes: bytes::Bytes) -> Self {
        Self(bytes)
    }

    /// Bytes the crate validated as they arrived (see the type's docs).
    pub(crate) fn assume_valid(bytes: bytes::Bytes) -> Self {
        #[cfg(any(debug_assertions, fuzzing))]
        assert!(
            core::str::from_utf8(&bytes).is_ok(),
            "Utf8Str::assume_valid given bytes that are not UTF-8"
        );
        Self(bytes)
    }

    /// The text, in O(1).
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: every constructor establishes that the bytes are UTF-8 (`checked` validates,
        // `from_str_bytes` takes the bytes of a `str`, `assume_valid` takes bytes the receive
        // path validated as they arrived and re-checks them in debug and fuzzing builds), and
        // `Bytes` is immutable, so they stay UTF-8.
        unsafe { core::str::from_utf8_unchecked(&self.0) }
    }

    pub(crate) const fn as_bytes(&self) -> &bytes::Bytes {
        &self.0
    }

    pub(crate) fn into_bytes(self) -> bytes::Bytes {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in (0..70).chain([255, 256, 257, 300, 1027, 4099]) {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let (mut a, mut b) = (data.clone(), data.clone());
                apply_mask(&mut a, key, offset);
                bytewise(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    /// `apply_mask` masks the bytes before the first 32-byte boundary on their own, then the
    /// rest with the key turned on by that many bytes: right from every start alignment, at
    /// every key offset, on lengths that take the AVX2 build where the CPU has it.
    #[test]
    fn matches_bytewise_from_every_start_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let lens: &[usize] = if cfg!(miri) {
            &[256, 301]
        } else {
            &[256, 257, 301, 1027]
        };
        let data: Vec<u8> = (0..1200u32).map(|i| (i * 13 + 5) as u8).collect();
        let base = data.as_ptr().align_offset(64);
        for &len in lens {
            for skew in 0..40 {
                for offset in 0..4 {
                    let start = base + skew;
                    let mut expect = data[start..start + len].to_vec();
                    bytewise(&mut expect, key, offset);
                    let mut got = data.clone();
                    apply_mask(&mut got[start..start + len], key, offset);
                    assert_eq!(got[start..start + len], expect[..], "len {len} skew {skew}");
                    assert_eq!(got[..start], data[..start], "wrote before the slice");
                    assert_eq!(got[start + len..], data[start + len..], "wrote after it");
                }
            }
        }
    }

    /// The AVX2 build, called directly (whatever the length), against the byte-by-byte
    /// definition, at lengths around the vector widths and at every alignment of the data.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[test]
    fn avx2_build_matches_bytewise() {
        // `scripts/miri.sh` builds with AVX2 enabled so that Miri takes the `unsafe` path.
        #[cfg(all(miri, target_feature = "avx2"))]
        assert!(std::is_x86_feature_detected!("avx2"));
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 31, 32, 33, 64, 255, 256, 257, 511, 517] {
            for skew in 0..8 {
                let mut expect = data[skew..skew + len].to_vec();
                bytewise(&mut expect, key, 0);
                let mut wide = data.clone();
                // SAFETY: the CPU supports AVX2, checked above.
                unsafe { mask_avx2(&mut wide[skew..skew + len], rotate(key, 0)) };
                assert_eq!(wide[skew..skew + len], expect[..], "len {len} skew {skew}");
                assert_eq!(wide[..skew], data[..skew], "wrote before the slice");
                assert_eq!(
                    wide[skew + len..],
                    data[skew + len..],
                    "wrote after the slice"
                );
            }
        }
    }

    /// The last-piece-first order gives the same bytes, across piece boundaries and offsets.
    #[test]
    fn unmask_fresh_matches_bytewise() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 5, 4095, 4096, 4097, 8191, 8192, 12_289, 70_000] {
            if cfg!(miri) && len > 9000 {
                continue; // minutes under the interpreter; two pieces show the order
            }
            for offset in [0, 1, 2, 3, 4097] {
                let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
                let (mut a, mut b) = (data.clone(), data);
                unmask_fresh(&mut a, key, offset);
                bytewise(&mut b, key, offset);
                assert!(a == b, "len {len} offset {offset}");
            }
        }
    }

    /// The copy-and-unmask pass, into a `BytesMut` and into a `Vec`, gives the bytes of
    /// copying and then unmasking, appended after what the buffer held, at every length around
    /// the word and vector widths, at every offset, and from several alignments of the source
    /// (both builds, where the CPU has AVX2).
    #[test]
    fn extend_masked_matches_copy_then_unmask() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let data: Vec<u8> = (0..1100u32).map(|i| (i * 13 + 5) as u8).collect();
        let lens: &[usize] = if cfg!(miri) {
            &[0, 1, 3, 7, 8, 9, 255, 256, 263]
        } else {
            &[
                0, 1, 3, 4, 7, 8, 9, 15, 16, 31, 33, 255, 256, 257, 263, 1031,
            ]
        };
        for &len in lens {
            for offset in 0..4 {
                for skew in [0, 1, 5] {
                    let src = &data[skew..skew + len];
                    let mut expect = b"held".to_vec();
                    expect.extend_from_slice(src);
                    apply_mask(&mut expect[4..], key, offset);
                    let mut buf = BytesMut::from(&b"held"[..]);
                    extend_masked(&mut buf, src, key, offset);
                    assert!(
                        buf[..] == expect[..],
                        "len {len} offset {offset} skew {skew}"
                    );
                    let mut vec = b"held".to_vec();
                    extend_vec_masked(&mut vec, src, key, offset);
                    assert!(
                        vec[..] == expect[..],
                        "Vec: len {len} offset {offset} skew {skew}"
                    );
                }
            }
        }
    }

    /// The small-message copy gives the bytes of copying and then unmasking, at every length
    /// up to past the word and vector widths and at every offset.
    #[test]
    fn masked_vec_matches_copy_then_unmask() {
        let key = [0x9c, 0x04, 0x6b, 0xe1];
        let data: Vec<u8> = (0..600u32).map(|i| (i * 29 + 3) as u8).collect();
        let lens: Vec<usize> = if cfg!(miri) {
            vec![0, 1, 3, 4, 7, 8, 9, 16, 17]
        } else {
            (0..=520).collect()
        };
        for len in lens {
            for offset in 0..4 {
                let src = &data[1..1 + len];
                let mut expect = src.to_vec();
                apply_mask(&mut expect, key, offset);
                let got = masked_vec(src, key, offset);
                assert_eq!(got, expect, "len {len} offset {offset}");
            }
        }
    }

    /// The same from every alignment of the destination: the bytes before its first 32-byte
    /// boundary are copied on their own, the rest with the key turned on by that many.
    #[test]
    fn extend_masked_from_every_destination_alignment() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let src: Vec<u8> = (0..301u32).map(|i| (i * 13 + 5) as u8).collect();
        for held in 0..40 {
            for offset in 0..4 {
                let mut buf = BytesMut::with_capacity(held + src.len());
                buf.resize(held, 0xee);
                extend_masked(&mut buf, &src, key, offset);
                let mut expect = src.clone();
                apply_mask(&mut expect, key, offset);
                assert!(buf[..held].iter().all(|&b| b == 0xee), "held {held}");
                assert!(buf[held..] == expect[..], "held {held} offset {offset}");
            }
        }
    }

    #[test]
    fn utf8_str_reads_back_what_was_validated() {
        let text = "é€😀 mixed scripts";
        let checked = Utf8Str::checked(bytes::Bytes::from(text)).unwrap();
        assert_eq!(checked.as_str(), text);
        assert_eq!(
            Utf8Str::checked(bytes::Bytes::from_static(b"\xff"))
                .err()
                .as_deref(),
            Some(&b"\xff"[..])
        );
        let trusted = Utf8Str::assume_valid(bytes::Bytes::from(text).slice(2..));
        assert_eq!(trusted.as_str(), &text[2..]);
        assert_eq!(Utf8Str::default().as_str(), "");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not UTF-8")]
    fn utf8_str_refuses_unvalidated_bytes_in_debug_builds() {
        let _ = Utf8Str::assume_valid(bytes::Bytes::from_static(b"\xc3"));
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [9, 8, 7, 6];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data;
        let (a, b) = pieces.split_at_mut(13);
        apply_mask(a, key, 0);
        apply_mask(b, key, 13);
        assert_eq!(whole, pieces);
    }
}
