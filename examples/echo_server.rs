//! Echo server: every message a client sends comes back to it.
//!
//! `cargo run --release --example echo_server -- [ADDR]` (default `127.0.0.1:9001`).
//! Accepts the first subprotocol a client offers. One thread per connection.

use rfc6455::handshake::Accept;
use rfc6455::{Config, sync};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr)?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let accepted = sync::accept_with(stream, Config::default(), |request| {
                let mut accept = Accept::new();
                if let Some(first) = request.protocols().next() {
                    accept = accept.protocol(first);
                }
                Ok(accept)
            });
            let Ok(mut ws) = accepted else { return };
            while let Ok(Some(message)) = ws.recv() {
                if ws.send(message).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
