//! The hostile-input catalogue: what a malicious or broken peer can send, each case with its
//! exact expected outcome (close code or HTTP status, events), run through the public sans-IO
//! API only (`ServerHandshake`, `ClientHandshake`, `Connection`).
//!
//! Every case runs its input whole, one byte at a time and at three seeded random cuts (odd
//! seeds through the zero-copy `read_buf` path); all runs must agree exactly.
//!
//! Memory: a counting global allocator (per-thread counters, see `harness::measure`) checks
//! that peak allocation per connection stays under the bound each resource test names:
//!
//! | case | bound |
//! |---|---|
//! | 20 MB header line / 1 MB response head, 1 KiB reads | 2 × `max_handshake_size` + 4 KiB |
//! | frame declaring 2 GiB (fails 1009) | 4 KiB |
//! | frame declaring 2^62 with limits off | 2 × (bytes received + 1 MiB) |
//! | 10^6 one-byte continuations | 3 × payload + 2 × read size + 64 KiB |
//! | 10^7 empty continuations | 256 KiB + 2 × read size |
//! | 10 000 Pings, application writes nothing | 64 KiB + 2 × read size; ≤ 8 KiB + one Pong queued |
//! | frame declaring 16 MiB, 1 byte received, through `read_buf` and `read_space` | 64 KiB (was 1 MiB before the room followed bytes received); 100 KiB later, 2 × bytes received + 64 KiB |
//! | 1 MiB of DEFLATE inflating to 1 GiB, one frame or 1024 fragments (fails 1009) | the 8 MiB limit + 3 MiB + 256 KiB |
//!
//! Timings are printed with `-- --nocapture`; nothing asserts on time.

#[path = "hostile/harness.rs"]
mod harness;

#[path = "hostile/close.rs"]
mod close;
#[path = "hostile/deflate.rs"]
mod deflate;
#[path = "hostile/fragments.rs"]
mod fragments;
#[path = "hostile/frames.rs"]
mod frames;
#[path = "hostile/handshake.rs"]
mod handshake;
#[path = "hostile/resources.rs"]
mod resources;

#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;
