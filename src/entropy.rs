//! Injected randomness for masking keys and handshake nonces.
//!
//! RFC 6455 §5.3: "The masking key needs to be unpredictable; thus, the masking key MUST be
//! derived from a strong source of entropy". The core never picks a generator itself: the
//! caller hands one in. [`OsEntropy`] (feature `std`) is the default, drawing from the OS
//! CSPRNG in batches; tests inject fixed bytes so the RFC's examples reproduce exactly.

use alloc::boxed::Box;

/// A source of random bytes.
pub trait Entropy: Send {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8]) + Send> Entropy for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest);
    }
}

impl Entropy for Box<dyn Entropy> {
    fn fill(&mut self, dest: &mut [u8]) {
        (**self).fill(dest);
    }
}

/// The operating system's CSPRNG, read 1 KiB at a time so a client does not make one system
/// call per frame (256 masking keys per read).
#[cfg(feature = "std")]
pub struct OsEntropy {
    buf: [u8; 1024],
    pos: usize,
}

#[cfg(feature = "std")]
impl OsEntropy {
    /// A new source; the first draw reads from the OS.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; 1024],
            pos: 1024,
        }
    }
}

#[cfg(feature = "std")]
impl Default for OsEntropy {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl core::fmt::Debug for OsEntropy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OsEntropy")
    }
}

#[cfg(feature = "std")]
impl Entropy for OsEntropy {
    /// # Panics
    /// If the operating system cannot provide random bytes at all: continuing with
    /// predictable masking keys would break RFC 6455 §10.3's defence.
    fn fill(&mut self, mut dest: &mut [u8]) {
        while !dest.is_empty() {
            if self.pos == self.buf.len() {
                getrandom::fill(&mut self.buf).expect("the OS random number generator failed");
                self.pos = 0;
            }
            let n = dest.len().min(self.buf.len() - self.pos);
            dest[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            // Never hand out the same bytes twice.
            self.buf[self.pos..self.pos + n].fill(0);
            self.pos += n;
            dest = &mut dest[n..];
        }
    }
}

/// The default entropy source: [`OsEntropy`] with `std`.
#[cfg(feature = "std")]
#[must_use]
pub fn default_entropy() -> Box<dyn Entropy> {
    Box::new(OsEntropy::new())
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn os_entropy_crosses_batches_without_repeating() {
        let mut e = OsEntropy::new();
        let mut a = [0u8; 1000];
        let mut b = [0u8; 1000];
        e.fill(&mut a);
        e.fill(&mut b);
        assert_ne!(a, b);
        assert!(a.iter().any(|&x| x != 0));
    }
}
