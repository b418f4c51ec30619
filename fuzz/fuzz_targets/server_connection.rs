#![no_main]
//! A server `Connection` run by a script of received chunks, commands, partial writes, timer
//! ticks and EOF (see `common::drive` for the invariants checked after every step), then the
//! received bytes alone fed whole, byte by byte and cut at input-derived points: same events,
//! same error, same output.
use libfuzzer_sys::fuzz_target;
use rfc6455::{Config, Connection};
use std::time::Duration;

#[path = "common.rs"]
mod common;

fn new_conn() -> Connection {
    let config = Config::default()
        .max_frame_size(1 << 12)
        .max_message_size(1 << 14)
        .max_send_frame_size(100)
        .keepalive_interval(Some(Duration::from_secs(5)))
        .keepalive_timeout(Duration::from_secs(5));
    Connection::server(config)
}

fuzz_target!(|data: &[u8]| common::check_splits(new_conn, data));
