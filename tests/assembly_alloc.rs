//! How a fragmented message's assembly buffer allocates, observed through a counting global
//! allocator (its own test binary, so no other test's allocations are counted; the counters
//! are per thread on top of that).
//!
//! * A second message the size of the first assembles without growing its buffer: it
//!   reserves what the previous fragmented message needed.
//! * A smaller message after a large one does not keep the large reservation: what the
//!   application holds is about the size of the message.

mod common;

use common::{server, to_server};
use rfc6455::{Config, Event, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Bytes this thread has allocated and not freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Reallocations to 64 KiB or more on this thread.
    static BIG_REALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call forwards to `System` with the caller's arguments; the counters are
// const-initialised thread-locals, which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + new_size as isize - layout.size() as isize));
        if new_size >= 64 << 10 {
            let _ = BIG_REALLOCS.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn big_reallocs() -> usize {
    BIG_REALLOCS.with(Cell::get)
}

/// A text message of `len` bytes in fragments of `piece` bytes, masked towards a server.
fn fragmented(len: usize, piece: usize) -> (Vec<u8>, String) {
    let text: String = "fragmented text é ü 字 🎉 "
        .chars()
        .cycle()
        .take(len)
        .collect();
    let bytes = text.as_bytes();
    let mut wire = Vec::new();
    let chunks: Vec<&[u8]> = bytes.chunks(piece).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        wire.extend(to_server(i + 1 == chunks.len(), opcode, chunk));
    }
    (wire, text)
}

/// Feeds `wire` 4 KiB at a time (so the read buffer stays small) and returns the message.
fn receive(conn: &mut rfc6455::Connection, wire: &[u8]) -> Message {
    let mut got = None;
    for piece in wire.chunks(4 << 10) {
        conn.receive(piece).unwrap();
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => {
                    assert!(got.is_none(), "one message expected");
                    got = Some(m);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    got.expect("a message")
}

#[test]
fn assembly_reserves_the_last_size_and_gives_back_what_it_does_not_use() {
    let mut conn = server(Config::default());
    let (wire, text) = fragmented(256 << 10, 1 << 10);

    // The first message grows its buffer from the first fragment's size: the counter sees it.
    let before = big_reallocs();
    let first = receive(&mut conn, &wire);
    assert_eq!(first.as_text(), Some(text.as_str()));
    assert!(
        big_reallocs() > before,
        "doubling from 1 KiB to 256 KiB reallocates"
    );
    drop(first);

    // The second, of the same size, does not.
    let before = big_reallocs();
    let second = receive(&mut conn, &wire);
    assert_eq!(second.as_text(), Some(text.as_str()));
    assert_eq!(big_reallocs(), before, "the buffer was reserved in full");
    drop(second);

    // A 2 KiB message reserves 256 KiB while it assembles, but keeps only what it uses.
    let (small_wire, small_text) = fragmented(2 << 10, 1 << 10);
    let base = live();
    let small = receive(&mut conn, &small_wire);
    let held = live() - base;
    assert_eq!(small.as_text(), Some(small_text.as_str()));
    assert!(
        held < 32 << 10,
        "a 2 KiB message holds {held} bytes of heap"
    );
    drop(small);

    // And the one after it reserves only 2 KiB: the next large message grows again.
    let before = big_reallocs();
    let third = receive(&mut conn, &wire);
    assert_eq!(third.as_text(), Some(text.as_str()));
    assert!(big_reallocs() > before);
}
