//! In-memory transports and frame builders shared by the benches.
//!
//! Every library under test reads from the same [`Replay`] source and writes into the same
//! [`Sink`], so each pays the same "kernel copy" per read and write and nothing else differs
//! but the WebSocket code.
#![allow(dead_code)] // each bench binary uses a different subset

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Most bytes one read or write moves, like a socket's buffer.
pub const IO_CHUNK: usize = 256 << 10;

/// A fixed masking key for frames "from a client".
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Replays `data` forever: a socket with a peer that always has the same frames ready.
/// Reads copy up to [`IO_CHUNK`] bytes, wrapping around; writes are swallowed (copied into
/// a scratch buffer, as a kernel would).
pub struct Replay {
    data: Vec<u8>,
    pos: usize,
    sink: Sink,
}

impl Replay {
    pub fn new(data: Vec<u8>) -> Self {
        assert!(!data.is_empty());
        Self {
            data,
            pos: 0,
            sink: Sink::new(),
        }
    }

    /// Fills `buf` as far as [`IO_CHUNK`] allows.
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let want = buf.len().min(IO_CHUNK);
        let mut done = 0;
        while done < want {
            let n = (want - done).min(self.data.len() - self.pos);
            buf[done..done + n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            done += n;
            self.pos += n;
            if self.pos == self.data.len() {
                self.pos = 0;
            }
        }
        done
    }
}

impl Replay {
    /// Appends to `buf` as far as [`IO_CHUNK`] and `buf`'s remaining room allow, the way a
    /// reader into uninitialised spare capacity does (tokio's `read_buf`).
    pub fn fill_buf_mut(&mut self, buf: &mut impl bytes::BufMut) -> usize {
        let want = buf.remaining_mut().min(IO_CHUNK);
        let mut done = 0;
        while done < want {
            let n = (want - done).min(self.data.len() - self.pos);
            buf.put_slice(&self.data[self.pos..self.pos + n]);
            done += n;
            self.pos += n;
            if self.pos == self.data.len() {
                self.pos = 0;
            }
        }
        done
    }
}

impl Replay {
    /// The next bytes, up to [`IO_CHUNK`] and never across the wrap-around, borrowed rather
    /// than copied: what a transport that already holds the bytes hands to
    /// `Connection::receive`.
    pub fn next_slice(&mut self) -> &[u8] {
        let start = self.pos;
        let n = IO_CHUNK.min(self.data.len() - start);
        self.pos = if start + n == self.data.len() {
            0
        } else {
            start + n
        };
        &self.data[start..start + n]
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Accepts writes of up to [`IO_CHUNK`] bytes, copying them into scratch space.
pub struct Sink {
    scratch: Vec<u8>,
    pub written: u64,
}

impl Sink {
    pub fn new() -> Self {
        Self {
            scratch: vec![0; IO_CHUNK],
            written: 0,
        }
    }

    /// A `writev`: copies the slices in order, up to [`IO_CHUNK`] bytes in all.
    pub fn write_vectored_slices(&mut self, bufs: &[&[u8]]) -> usize {
        let mut at = 0;
        for buf in bufs {
            let n = buf.len().min(IO_CHUNK - at);
            self.scratch[at..at + n].copy_from_slice(&buf[..n]);
            at += n;
            if at == IO_CHUNK {
                break;
            }
        }
        std::hint::black_box(&self.scratch);
        self.written += at as u64;
        at
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.write_vectored_slices(&[buf]))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut slices = [&[][..]; 16];
        let n = bufs.len().min(16);
        for (slot, b) in slices.iter_mut().zip(bufs) {
            *slot = b;
        }
        Ok(self.write_vectored_slices(&slices[..n]))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Copied straight into the unfilled part, initialised or not, as the kernel does:
        // `initialize_unfilled` would zero the whole room (up to 1 MiB) first.
        let this = self.get_mut();
        let want = buf.remaining().min(IO_CHUNK);
        let mut done = 0;
        while done < want {
            let n = (want - done).min(this.data.len() - this.pos);
            buf.put_slice(&this.data[this.pos..this.pos + n]);
            done += n;
            this.pos += n;
            if this.pos == this.data.len() {
                this.pos = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Replay {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().sink.write(b))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().sink.write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncRead for Sink {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write(b))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().write_vectored(bufs))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Criterion's measurement for these benches: this thread's CPU time
/// (`CLOCK_THREAD_CPUTIME_ID`), so that time the scheduler gives to other processes on a
/// shared machine is not counted; `BENCH_WALL=1` switches to wall-clock time. The benches are
/// single-threaded and never block, so on an idle machine the two agree.
pub struct CpuTime {
    wall: bool,
}

impl CpuTime {
    pub fn from_env() -> Self {
        Self {
            wall: std::env::var_os("BENCH_WALL").is_some_and(|v| v != "0"),
        }
    }

    /// This thread's CPU time so far (or wall-clock time since the first call with
    /// `BENCH_WALL=1`).
    pub fn now(&self) -> Duration {
        if self.wall {
            static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            return ORIGIN.get_or_init(std::time::Instant::now).elapsed();
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        self.now()
    }
    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly as for wall-clock time.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// The criterion configuration every bench binary uses.
pub fn criterion() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime::from_env())
}

/// Runs a future over the in-memory transports, which are always ready: one poll finishes it.
pub fn ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("in-memory transport returned Pending"),
    }
}

/// Appends one frame; masks the payload with [`KEY`] when `masked`.
pub fn push_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
    out.push(u8::from(fin) << 7 | opcode);
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len() + if masked { 4 } else { 0 };
    if masked {
        out.extend_from_slice(&KEY);
    }
    out.extend_from_slice(payload);
    if masked {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= KEY[i & 3];
        }
    }
}

/// `count` binary messages of `size` bytes, each one frame.
pub fn binary_stream(size: usize, count: usize, masked: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let mut out = Vec::new();
    for _ in 0..count {
        push_frame(&mut out, true, 0x2, &payload, masked);
    }
    out
}

/// One text message of `text`, cut into `fragments` frames of equal size (cut points may
/// fall inside a code point, as they do on the wire).
pub fn fragmented_text(text: &[u8], fragments: usize, masked: bool) -> Vec<u8> {
    let step = text.len().div_ceil(fragments);
    let mut out = Vec::new();
    for (i, chunk) in text.chunks(step).enumerate() {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        let fin = (i + 1) * step >= text.len();
        push_frame(&mut out, fin, opcode, chunk, masked);
    }
    out
}

/// `len` bytes of ASCII text.
pub fn ascii_text(len: usize) -> Vec<u8> {
    let words = b"the quick brown fox jumps over the lazy dog; ";
    words.iter().copied().cycle().take(len).collect()
}

/// About `len` bytes of text mixing 1-, 2-, 3- and 4-byte code points (a chat message in
/// several scripts with emoji); exactly `len` bytes, padded with ASCII at the end.
pub fn mixed_text(len: usize) -> Vec<u8> {
    let sample = "Hello, world! Grüße aus Köln. Привет, мир! 你好，世界。こんにちは 🎉🚀 ";
    let mut out = String::with_capacity(len);
    while out.len() + sample.len() <= len {
        out.push_str(sample);
    }
    while out.len() < len {
        out.push('.');
    }
    out.into_bytes()
}
