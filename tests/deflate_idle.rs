//! What a connection with permessage-deflate holds once it goes idle, through the public
//! sans-IO API and a counting global allocator (its own test binary, counters per thread):
//! under the default `MemoryPolicy::ReleaseWhenIdle` the streams stay while messages flow and
//! are freed by the connection's timer once it has been idle for `DEFAULT_RELEASE_AFTER`.
#![cfg(feature = "deflate")]

#[path = "deflate_support/chat.rs"]
mod chat;
mod common;

use common::fixed_entropy;
use rfc6455::deflate::{DEFAULT_RELEASE_AFTER, DeflateConfig, MemoryPolicy};
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
use rfc6455::{Config, Connection, Event, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    /// Bytes this thread has allocated and not freed.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: every call forwards to `System` with the caller's arguments; the counter is a
// const-initialised thread-local, which neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// The heap `conn` holds: what dropping it gives back.
fn held_by(conn: Connection) -> isize {
    let before = live();
    drop(conn);
    before - live()
}

/// Both handshakes in memory; (client, server).
fn pair(client: Config, server: Config) -> (Connection, Connection) {
    let request = ClientRequest::new("ws://example.com/chat").unwrap();
    let mut hs = ClientHandshake::new(request, client, fixed_entropy(common::RFC_KEY)).unwrap();
    let mut server_hs = ServerHandshake::new(server);
    server_hs.receive(hs.pending_transmit()).unwrap();
    let mut server_conn = server_hs.accept(Accept::new()).unwrap();
    let response = common::drain_transmit(&mut server_conn);
    hs.receive(&response).unwrap();
    let (client_conn, _) = hs.into_connection().unwrap();
    (client_conn, server_conn)
}

/// `n` chat messages each way (the client sends, the server echoes), each answered before
/// the next; the clock stands at `now` (the adapters' reading after each one).
fn exchange(client: &mut Connection, server: &mut Connection, n: usize, now: Duration) {
    for text in chat::corpus(n) {
        client.send_text(text.as_str()).unwrap();
        server.receive(&common::drain_transmit(client)).unwrap();
        let Some(Event::Message(m)) = server.poll_event() else {
            panic!("the server got no message");
        };
        assert_eq!(m, Message::from(text.as_str()));
        server.send(m).unwrap();
        client.receive(&common::drain_transmit(server)).unwrap();
        assert_eq!(
            client.poll_event(),
            Some(Event::Message(Message::from(text)))
        );
        for conn in [&mut *client, &mut *server] {
            if conn.poll_timeout() == Some(Duration::ZERO) {
                conn.handle_timeout(now);
            }
        }
    }
}

/// The server's heap after `n` messages each way and the clock moved `idle` past them.
fn server_heap(config: Config, n: usize, idle: Duration) -> isize {
    let (mut client, mut server) = pair(config.clone(), config);
    let t0 = Duration::from_secs(100);
    exchange(&mut client, &mut server, n, t0);
    server.handle_timeout(t0 + idle);
    held_by(server)
}

#[test]
fn rfc7692_idle_server_connection_at_the_defaults_holds_at_most_16_kib() {
    let deflate = Config::default();
    let plain = Config::default().deflate(DeflateConfig::default().enabled(false));
    // Busy: the compressor and decompressor are kept between messages.
    let busy = server_heap(deflate.clone(), 300, Duration::ZERO);
    assert!(busy > 128 << 10, "busy server connection {busy} bytes");
    // Idle for less than the policy's delay: still kept.
    let early = server_heap(deflate.clone(), 300, DEFAULT_RELEASE_AFTER / 2);
    assert!(early > 128 << 10, "server connection {early} bytes");
    // Idle for the delay: freed, the two 4 KiB windows (12 bits both ways) stay.
    let idle = server_heap(deflate, 300, DEFAULT_RELEASE_AFTER);
    let without = server_heap(plain, 300, DEFAULT_RELEASE_AFTER);
    assert!(
        idle <= 16 << 10,
        "idle server connection with deflate {idle} bytes ({without} without)"
    );
    // What it still holds beyond a connection without deflate is the windows (the plain one
    // keeps a larger read buffer for the uncompressed messages it received).
    assert!(idle > without, "{idle} against {without}");
}

#[test]
fn rfc7692_a_connection_released_when_idle_keeps_its_context() {
    // Release after every message: each message is compressed by a stream primed from the
    // window, and decompressed by one, on both sides; the peer decodes them all the same.
    let config = Config::default().deflate(
        DeflateConfig::default().memory_policy(MemoryPolicy::ReleaseWhenIdle(Duration::ZERO)),
    );
    let (mut client, mut server) = pair(config.clone(), Config::default());
    for (k, text) in chat::corpus(200).into_iter().enumerate() {
        let now = Duration::from_secs(k as u64);
        client.send_text(text.as_str()).unwrap();
        client.handle_timeout(now);
        client.handle_timeout(now);
        server
            .receive(&common::drain_transmit(&mut client))
            .unwrap();
        let Some(Event::Message(m)) = server.poll_event() else {
            panic!("the server got no message");
        };
        server.send(m).unwrap();
        client
            .receive(&common::drain_transmit(&mut server))
            .unwrap();
        assert_eq!(
            client.poll_event(),
            Some(Event::Message(Message::from(text)))
        );
        client.handle_timeout(now);
        client.handle_timeout(now);
    }
    // And nothing is held, bar the windows.
    assert!(held_by(client) <= 16 << 10);
}

#[test]
fn rfc7692_retain_and_per_message_arm_no_release_timer() {
    for policy in [MemoryPolicy::Retain, MemoryPolicy::PerMessage] {
        let config = Config::default().deflate(DeflateConfig::default().memory_policy(policy));
        let (mut client, mut server) = pair(config.clone(), config);
        exchange(&mut client, &mut server, 5, Duration::from_secs(1));
        assert_eq!(server.poll_timeout(), None, "{policy:?}");
        assert_eq!(client.poll_timeout(), None, "{policy:?}");
    }
}
