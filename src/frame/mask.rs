//! Payload masking (RFC 6455 §5.3), eight bytes at a time in safe code, and the same loop
//! compiled for AVX2 where the CPU has it.
//!
//! This is the crate's only `unsafe`: the call into the AVX2 build of the loop, made after the
//! CPU was checked for AVX2. It pays for itself on these machines (see `benches/README.md`):
//! 1.2–2.2× fastwebsockets' masking speed on 1–16 KiB, which sits in L1 (from 64 KiB up the L2
//! cache bounds both), and 8–15% off frame decode and encode at 1 and 64 KiB; masking is the
//! one pass over a payload the server side makes beyond the copy in. `scripts/miri.sh` runs
//! this module's tests under Miri both ways (with AVX2 enabled at compile time, so the
//! `unsafe` call is taken).
#![allow(unsafe_code)]

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
    let key = rotate(key, offset);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if buf.len() >= AVX2_MIN && std::is_x86_feature_detected!("avx2") {
        // SAFETY: `mask_avx2` is safe code compiled with AVX2 enabled; its one requirement is
        // a CPU that executes AVX2 instructions, which was checked on the line above.
        unsafe { mask_avx2(buf, key) };
        return;
    }
    mask_words(buf, key);
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
