#![no_main]
//! Frame header decoding: never panics; a header that decodes re-encodes to the same bytes
//! (only minimal length forms are accepted); every shorter prefix asks for more input; and an
//! error is reported the same (or "need more") on every prefix, so it never depends on how
//! the bytes were split.
use libfuzzer_sys::fuzz_target;
use rfc6455::frame::{MAX_HEADER_LEN, decode_header, encode_header};

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(64)];
    match decode_header(data) {
        Ok(Some((header, len))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&len));
            assert!(header.payload_len >> 63 == 0);
            let mut buf = [0; MAX_HEADER_LEN];
            let n = encode_header(&mut buf, &header);
            assert_eq!(&buf[..n], &data[..len]);
            for short in 0..len {
                assert_eq!(decode_header(&data[..short]), Ok(None));
            }
            assert_eq!(decode_header(&data[..len]), Ok(Some((header, len))));
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN),
        Err(e) => {
            for short in 0..data.len() {
                let r = decode_header(&data[..short]);
                assert!(
                    r == Ok(None) || r == Err(e),
                    "prefix {short}: {r:?} vs {e:?}"
                );
            }
            assert_eq!(e.close_code().as_u16(), 1002);
        }
    }
});
