//! An independent, deliberately plain DEFLATE decoder (RFC 1951) for tests: it decodes a raw
//! stream and reports the farthest back-reference it met, so a test can check that our
//! compressor never reaches past the negotiated window. Slow (bit-by-bit Huffman decoding)
//! and strict (errors on anything odd); never used outside tests.
#![allow(dead_code)]

struct Bits<'a> {
    data: &'a [u8],
    pos: usize, // in bits
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, &'static str> {
        let byte = *self.data.get(self.pos / 8).ok_or("truncated stream")?;
        let b = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Result<u32, &'static str> {
        let mut v = 0;
        for i in 0..n {
            v |= self.bit()? << i;
        }
        Ok(v)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }

    fn at_end(&self) -> bool {
        self.pos.div_ceil(8) >= self.data.len()
    }
}

/// Canonical Huffman code: counts per length and symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Self {
        let mut counts = [0u16; 16];
        for &l in lengths {
            counts[l as usize] += 1;
        }
        counts[0] = 0;
        let mut offs = [0u16; 16];
        for l in 1..16 {
            offs[l] = offs[l - 1] + counts[l - 1];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (s, &l) in lengths.iter().enumerate() {
            if l != 0 {
                symbols[offs[l as usize] as usize] = s as u16;
                offs[l as usize] += 1;
            }
        }
        Self { counts, symbols }
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, &'static str> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.bit()? as i32;
            let count = i32::from(self.counts[len]);
            if code - count < first {
                return Ok(self.symbols[(index + (code - first)) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err("invalid huffman code")
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub output: Vec<u8>,
    /// The farthest distance of any back-reference.
    pub max_distance: usize,
}

/// Decodes a raw DEFLATE stream made of one or more runs of blocks (a block with BFINAL set
/// is followed, after byte padding, by more blocks, RFC 7692 §7.2.1). `history` is data the
/// decoder already holds (earlier messages); distances may reach into it.
pub fn walk(stream: &[u8], history: &[u8]) -> Result<Walk, &'static str> {
    let mut out: Vec<u8> = history.to_vec();
    let start = out.len();
    let mut max_distance = 0;
    let mut bits = Bits {
        data: stream,
        pos: 0,
    };
    while !bits.at_end() {
        let last = bits.bit()?;
        let kind = bits.bits(2)?;
        match kind {
            0 => {
                bits.align();
                let len = bits.bits(16)?;
                let nlen = bits.bits(16)?;
                if len != !nlen & 0xffff {
                    return Err("stored block length check");
                }
                for _ in 0..len {
                    out.push(bits.bits(8)? as u8);
                }
            }
            1 | 2 => {
                let (lit, dist) =
                    if kind == 1 {
                        let mut l = [8u8; 288];
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        (Huffman::new(&l), Huffman::new(&[5u8; 30]))
                    } else {
                        let hlit = bits.bits(5)? as usize + 257;
                        let hdist = bits.bits(5)? as usize + 1;
                        let hclen = bits.bits(4)? as usize + 4;
                        const ORDER: [usize; 19] = [
                            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                        ];
                        let mut cl = [0u8; 19];
                        for &o in &ORDER[..hclen] {
                            cl[o] = bits.bits(3)? as u8;
                        }
                        let clh = Huffman::new(&cl);
                        let mut lengths = Vec::new();
                        while lengths.len() < hlit + hdist {
                            let sym = clh.decode(&mut bits)?;
                            match sym {
                                0..=15 => lengths.push(sym as u8),
                                16 => {
                                    let prev = *lengths.last().ok_or("repeat with no length")?;
                                    for _ in 0..3 + bits.bits(2)? {
                                        lengths.push(prev);
                                    }
                                }
                                17 => lengths
                                    .extend(std::iter::repeat_n(0, 3 + bits.bits(3)? as usize)),
                                _ => lengths
                                    .extend(std::iter::repeat_n(0, 11 + bits.bits(7)? as usize)),
                            }
                        }
                        if lengths.len() != hlit + hdist {
                            return Err("code lengths overrun");
                        }
                        (
                            Huffman::new(&lengths[..hlit]),
                            Huffman::new(&lengths[hlit..]),
                        )
                    };
                loop {
                    let sym = lit.decode(&mut bits)? as usize;
                    if sym < 256 {
                        out.push(sym as u8);
                    } else if sym == 256 {
                        break;
                    } else {
                        let i = sym - 257;
                        if i >= 29 {
                            return Err("bad length symbol");
                        }
                        let len =
                            LEN_BASE[i] as usize + bits.bits(u32::from(LEN_EXTRA[i]))? as usize;
                        let d = dist.decode(&mut bits)? as usize;
                        if d >= 30 {
                            return Err("bad distance symbol");
                        }
                        let distance =
                            DIST_BASE[d] as usize + bits.bits(u32::from(DIST_EXTRA[d]))? as usize;
                        if distance > out.len() {
                            return Err("distance before the start of data");
                        }
                        max_distance = max_distance.max(distance);
                        for _ in 0..len {
                            out.push(out[out.len() - distance]);
                        }
                    }
                }
            }
            _ => return Err("reserved block type"),
        }
        if last == 1 {
            bits.align();
        }
    }
    Ok(Walk {
        output: out.split_off(start),
        max_distance,
    })
}
