//! Shared harness for the core's integration tests. Nothing here opens a socket.
//!
//! * [`Rng`]: a tiny seeded generator (SplitMix64), so every chaotic run can be replayed.
//! * [`fixed_entropy`] / [`seeded_entropy`]: injected masking keys for clients.
//! * [`frame`], [`to_server`], [`to_client`], [`parse_frames`]: hand-built wire bytes and a
//!   reader for what a connection transmits.
//! * [`drain_events`], [`drain_transmit`], [`peek_transmit`]: empty a connection's outputs.
//! * [`Pair`]: a client and a server joined by a "chaos pipe" that writes short (advances the
//!   transmit queue by less than it offered), reads in random chunk sizes, alternates between
//!   `receive` and `read_buf`/`commit_read`, and delivers EOF once a side shuts down.
//! * [`Clock`]: a fake monotonic clock that drives `handle_timeout`.
#![allow(dead_code, unreachable_pub)]

use bytes::BufMut;
use std::time::Duration;

use rfc6455::frame::{FrameHeader, Opcode, decode_header};
use rfc6455::{CloseCode, Config, Connection, Entropy, Event, Message, ProtocolError};

/// The masking key of RFC 6455 §5.7's examples.
pub const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ------------------------------------------------------------------------------ randomness

/// SplitMix64: deterministic, seedable, good enough to pick chunk sizes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// A size in `1..=max`, log-uniform, so tiny and large chunks both show up often.
    pub fn size(&mut self, max: usize) -> usize {
        let max = max.max(1);
        let bits = usize::BITS - max.leading_zeros();
        let cap = 1usize << self.below(bits as usize + 1).min(bits as usize);
        self.range(1, cap.min(max))
    }

    pub fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// Entropy that always yields `key` as the masking key (the RFC §5.7 vectors need this).
pub fn fixed_entropy(key: [u8; 4]) -> Box<dyn Entropy> {
    Box::new(move |dest: &mut [u8]| {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = key[i % 4];
        }
    })
}

/// Entropy that yields a different, reproducible key for every frame.
pub fn seeded_entropy(seed: u64) -> Box<dyn Entropy> {
    let mut rng = Rng::new(seed ^ 0xE17_0E17);
    Box::new(move |dest: &mut [u8]| rng.fill(dest))
}

pub fn server(config: Config) -> Connection {
    Connection::server(config)
}

/// A client whose every masking key is [`RFC_KEY`].
pub fn client(config: Config) -> Connection {
    Connection::client(config, fixed_entropy(RFC_KEY))
}

// ------------------------------------------------------------------------------ wire bytes

/// Raw opcodes, so reserved ones can be written too.
pub mod op {
    pub const CONT: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// One frame with any first-byte bits: `b0_extra` is OR-ed into the first byte (RSV bits).
/// The length is always in its minimal form.
pub fn frame_raw(
    fin: bool,
    b0_extra: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | b0_extra | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
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
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

pub fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    frame_raw(fin, 0, opcode, payload, mask)
}

/// A frame as a client sends it to a server: masked with [`RFC_KEY`].
pub fn to_server(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some(RFC_KEY))
}

/// A frame as a server sends it to a client: unmasked.
pub fn to_client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, None)
}

/// A Close payload: the code big-endian, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Just a header, for frames whose payload never arrives.
pub fn header_only(fin: bool, opcode: u8, declared_len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if declared_len < 126 {
        out.push(mask_bit | declared_len as u8);
    } else if declared_len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(declared_len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&declared_len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A frame read back from a connection's output, payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: Opcode,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// `(code, reason)` of a Close frame; `None` for an empty body.
    pub fn close(&self) -> Option<(u16, &[u8])> {
        assert_eq!(self.opcode, Opcode::Close, "not a close frame: {self:?}");
        match self.payload.len() {
            0 => None,
            1 => panic!("1-byte close payload on the wire"),
            _ => Some((
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                &self.payload[2..],
            )),
        }
    }

    pub fn close_code(&self) -> Option<u16> {
        self.close().map(|(c, _)| c)
    }
}

/// Splits well-formed output into frames; panics on anything a correct sender cannot emit.
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n): (FrameHeader, usize) = decode_header(bytes)
            .unwrap_or_else(|e| panic!("output is not a valid frame: {e}"))
            .unwrap_or_else(|| panic!("output ends inside a frame header: {bytes:02x?}"));
        let len = usize::try_from(h.payload_len).unwrap();
        assert!(bytes.len() >= n + len, "output ends inside a frame payload");
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            rfc6455::frame::apply_mask(&mut payload, key, 0);
        }
        out.push(WireFrame {
            fin: h.fin,
            rsv: h.rsv,
            opcode: h.opcode,
            mask: h.mask,
            payload,
        });
        bytes = &bytes[n + len..];
    }
    out
}

// ------------------------------------------------------------------------------ draining

/// Polls events until `None`.
pub fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Writes out everything pending, one `pending_transmit` chunk at a time.
pub fn drain_transmit(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let chunk = conn.pending_transmit();
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(chunk);
        let n = chunk.len();
        conn.advance_transmit(n);
    }
    assert_eq!(
        conn.transmit_len(),
        0,
        "pending_transmit empty but transmit_len is not"
    );
    out
}

/// Everything pending, without consuming it.
pub fn peek_transmit(conn: &Connection) -> Vec<u8> {
    let out: Vec<u8> = conn.transmit_chunks().flatten().copied().collect();
    assert_eq!(
        out.len() as u64,
        conn.transmit_len(),
        "transmit_chunks disagrees with transmit_len"
    );
    out
}

/// Drains output and parses it into frames.
pub fn drain_frames(conn: &mut Connection) -> Vec<WireFrame> {
    parse_frames(&drain_transmit(conn))
}

pub fn text(s: &str) -> Event {
    Event::Message(Message::Text(s.into()))
}

pub fn binary(b: &[u8]) -> Event {
    Event::Message(Message::Binary(b.to_vec().into()))
}

pub fn close_event(code: u16, reason: &str) -> Event {
    Event::Close(rfc6455::CloseFrame::new(CloseCode(code), reason))
}

/// Feeds `data` in one call and returns (result, events, output).
pub fn feed(
    conn: &mut Connection,
    data: &[u8],
) -> (Result<(), ProtocolError>, Vec<Event>, Vec<WireFrame>) {
    let r = conn.receive(data);
    let events = drain_events(conn);
    // An error behind undelivered events takes effect once they are drained.
    let r = conn.error().map_or(r, Err);
    let frames = drain_frames(conn);
    (r, events, frames)
}

// ------------------------------------------------------------------------------ the clock

/// A fake monotonic clock for `poll_timeout` / `handle_timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub now: Duration,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells `conn` the current time before anything else, as an adapter does when it
    /// creates a connection: the first `handle_timeout` fixes the origin of the connection's
    /// clock (deadlines computed before it are shifted by it).
    pub fn attach(&self, conn: &mut Connection) {
        conn.handle_timeout(self.now);
    }

    /// Moves time forward by `d` and tells `conn`.
    pub fn advance(&mut self, conn: &mut Connection, d: Duration) {
        self.now += d;
        conn.handle_timeout(self.now);
    }

    /// Moves time to `t` (never backwards) and tells `conn`.
    pub fn set(&mut self, conn: &mut Connection, t: Duration) {
        self.now = self.now.max(t);
        conn.handle_timeout(self.now);
    }

    /// Tells `conn` the time without moving it, as an adapter does when `poll_timeout` says
    /// `Duration::ZERO` (a timer was armed since the last reading and counts from this one).
    pub fn tick(&self, conn: &mut Connection) {
        conn.handle_timeout(self.now);
    }

    /// Jumps to the connection's next deadline and fires it, as an adapter's timer would:
    /// first pinning a timer armed since the last reading (`poll_timeout` says
    /// `Duration::ZERO`) to the current time.
    pub fn fire_next(&mut self, conn: &mut Connection) -> Option<Duration> {
        if conn.poll_timeout()? == Duration::ZERO {
            self.tick(conn);
        }
        let deadline = conn.poll_timeout()?;
        self.set(conn, deadline);
        Some(deadline)
    }
}

// ------------------------------------------------------------------------------ the pair

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    fn idx(self) -> usize {
        self as usize
    }
    pub fn other(self) -> Self {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// One end of a [`Pair`].
pub struct End {
    pub conn: Connection,
    /// Every event polled so far, in order.
    pub events: Vec<Event>,
    /// Bytes written by the peer; `inbox[inbox_pos..]` is not read yet.
    inbox: Vec<u8>,
    inbox_pos: usize,
    /// The peer shut down its write half; EOF follows the inbox.
    peer_shut: bool,
    /// This end shut down its write half.
    pub shut: bool,
    /// `receive_eof` was called on this end.
    pub eof_delivered: bool,
    /// Every byte this end wrote, in order.
    pub wrote: Vec<u8>,
}

impl End {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            events: Vec::new(),
            inbox: Vec::new(),
            inbox_pos: 0,
            peer_shut: false,
            shut: false,
            eof_delivered: false,
            wrote: Vec::new(),
        }
    }

    /// Events polled since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn unread(&self) -> usize {
        self.inbox.len() - self.inbox_pos
    }

    /// Marks `n` inbox bytes read, compacting now and then.
    fn consume(&mut self, n: usize) {
        self.inbox_pos += n;
        if self.inbox_pos == self.inbox.len() {
            self.inbox.clear();
            self.inbox_pos = 0;
        } else if self.inbox_pos > (1 << 20) {
            self.inbox.drain(..self.inbox_pos);
            self.inbox_pos = 0;
        }
    }
}

/// Counters, to show a run really was chaotic.
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeStats {
    pub writes: u64,
    pub short_writes: u64,
    pub vectored_writes: u64,
    pub reads: u64,
    pub zero_copy_reads: u64,
}

/// A client and a server joined by a seeded chaos pipe.
pub struct Pair {
    ends: [End; 2],
    rng: Rng,
    /// Largest single write or read.
    pub max_io: usize,
    /// Shut down a side's write half once it `wants_shutdown` and has nothing left to write,
    /// as an adapter does.
    pub auto_shutdown: bool,
    pub stats: PipeStats,
    /// Which sides shut down their write half, in order.
    pub shutdown_order: Vec<Side>,
}

impl Pair {
    /// A pair with the given configs; the client's masking keys come from `seed` too.
    pub fn with_configs(seed: u64, client: Config, server: Config) -> Self {
        let client = Connection::client(client, seeded_entropy(seed));
        Self::from_connections(seed, client, Connection::server(server))
    }

    pub fn new(seed: u64) -> Self {
        Self::with_configs(seed, Config::default(), Config::default())
    }

    /// A pair from connections built elsewhere (e.g. a client with [`fixed_entropy`]); `seed`
    /// drives the pipe.
    pub fn from_connections(seed: u64, client: Connection, server: Connection) -> Self {
        assert_eq!(client.role(), rfc6455::Role::Client);
        assert_eq!(server.role(), rfc6455::Role::Server);
        Self {
            ends: [End::new(client), End::new(server)],
            rng: Rng::new(seed),
            max_io: 64 << 10,
            auto_shutdown: true,
            stats: PipeStats::default(),
            shutdown_order: Vec::new(),
        }
    }

    pub fn end(&mut self, side: Side) -> &mut End {
        &mut self.ends[side.idx()]
    }

    pub fn client(&mut self) -> &mut Connection {
        &mut self.ends[0].conn
    }

    pub fn server(&mut self) -> &mut Connection {
        &mut self.ends[1].conn
    }

    pub fn client_end(&mut self) -> &mut End {
        &mut self.ends[0]
    }

    pub fn server_end(&mut self) -> &mut End {
        &mut self.ends[1]
    }

    /// Bytes in flight towards `side`.
    pub fn in_flight(&self, side: Side) -> usize {
        self.ends[side.idx()].unread()
    }

    /// Shuts down `side`'s write half now (the peer reads EOF after what is in flight).
    pub fn shutdown(&mut self, side: Side) {
        assert!(!self.ends[side.idx()].shut, "{side:?} shut down twice");
        self.shutdown_order.push(side);
        self.ends[side.idx()].shut = true;
        self.ends[side.other().idx()].peer_shut = true;
    }

    fn can_write(&self, side: Side) -> bool {
        let end = &self.ends[side.idx()];
        !end.shut && end.conn.transmit_len() > 0
    }

    fn can_read(&self, side: Side) -> bool {
        let end = &self.ends[side.idx()];
        end.unread() > 0 || (end.peer_shut && !end.eof_delivered)
    }

    /// Writes part of `side`'s pending output into the pipe: a short write, sometimes
    /// gathered over several chunks with `transmit_chunks`.
    fn write(&mut self, side: Side) {
        let max_io = self.max_io;
        let vectored = self.rng.chance(1, 4);
        let full = self.rng.chance(1, 4);
        let size = self.rng.size(max_io);
        let end = &mut self.ends[side.idx()];
        let mut taken = Vec::new();
        if vectored {
            let want = if full { usize::MAX } else { size };
            for chunk in end.conn.transmit_chunks() {
                let n = chunk.len().min(want - taken.len());
                taken.extend_from_slice(&chunk[..n]);
                if taken.len() == want {
                    break;
                }
            }
            self.stats.vectored_writes += 1;
        } else {
            let offered = end.conn.pending_transmit();
            assert!(
                !offered.is_empty(),
                "transmit_len > 0 but pending_transmit is empty"
            );
            let n = if full {
                offered.len()
            } else {
                size.min(offered.len())
            };
            taken.extend_from_slice(&offered[..n]);
            if n < offered.len() {
                self.stats.short_writes += 1;
            }
        }
        let before = end.conn.transmit_len();
        end.conn.advance_transmit(taken.len());
        let after = end.conn.transmit_len();
        // A written byte leaves the queue, though an auto-Pong may join it at once.
        assert!(
            after + taken.len() as u64 >= before,
            "advance_transmit lost bytes"
        );
        end.wrote.extend_from_slice(&taken);
        self.stats.writes += 1;
        self.ends[side.other().idx()]
            .inbox
            .extend_from_slice(&taken);
    }

    /// Delivers part of what is in flight to `side`, by `receive`, by `read_buf` +
    /// `commit_read` or by `read_space` + `commit_space`, then polls its events; delivers EOF once the peer shut down and the
    /// pipe is empty.
    fn read(&mut self, side: Side) {
        let size = self.rng.size(self.max_io);
        let zero_copy = self.rng.chance(1, 2);
        // Half the zero-copy reads append to `read_space` instead (chosen from the size's
        // parity, so the random stream, and with it every other choice, stays as it was).
        let space = zero_copy && size % 2 == 0;
        let end = &mut self.ends[side.idx()];
        if end.unread() == 0 {
            end.eof_delivered = true;
            let _ = end.conn.receive_eof();
        } else {
            let n = size.min(end.unread());
            let at = end.inbox_pos;
            if space {
                let mut room = end.conn.read_space();
                assert!(room.has_remaining_mut(), "read_space must never be empty");
                let n = n.min(room.remaining_mut());
                room.put_slice(&end.inbox[at..at + n]);
                let _ = end.conn.commit_space();
                end.consume(n);
                self.stats.zero_copy_reads += 1;
            } else if zero_copy {
                let buf = end.conn.read_buf();
                assert!(!buf.is_empty(), "read_buf must never be empty");
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&end.inbox[at..at + n]);
                let _ = end.conn.commit_read(n);
                end.consume(n);
                self.stats.zero_copy_reads += 1;
            } else {
                let _ = end.conn.receive(&end.inbox[at..at + n]);
                end.consume(n);
            }
            self.stats.reads += 1;
        }
        while let Some(e) = end.conn.poll_event() {
            end.events.push(e);
        }
    }

    /// One random step; false when nothing can move.
    pub fn step(&mut self) -> bool {
        if self.auto_shutdown {
            for side in [Side::Client, Side::Server] {
                let end = &self.ends[side.idx()];
                if !end.shut && end.conn.wants_shutdown() {
                    self.shutdown(side);
                }
            }
        }
        let mut moves: Vec<(bool, Side)> = Vec::with_capacity(4);
        for side in [Side::Client, Side::Server] {
            if self.can_write(side) {
                moves.push((true, side));
            }
            if self.can_read(side) {
                moves.push((false, side));
            }
        }
        if moves.is_empty() {
            return false;
        }
        let (is_write, side) = moves[self.rng.below(moves.len())];
        if is_write {
            self.write(side)
        } else {
            self.read(side)
        }
        true
    }

    /// Steps until nothing can move.
    pub fn pump(&mut self) {
        for _ in 0..50_000_000u64 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// Steps until nothing can move, but at most `n` steps.
    pub fn pump_steps(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                return;
            }
        }
    }
}
