//! Echo server: every message a client sends comes back to it. Accepts the first subprotocol
//! a client offers.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDR] [--adapter tokio|blocking]
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:9001`. Once it listens it prints exactly one line,
//! `echo server listening on ws://ADDR`, whichever the adapter.
//!
//! * `tokio` (the default): a task per connection on a multi-threaded runtime, so thousands
//!   of connections cost a few KiB each and no thread.
//! * `blocking`: the blocking adapter, a thread per connection; simple, but each connection
//!   holds a thread (and its stack) for as long as it stays open.

use rfc6455::Config;
use rfc6455::handshake::{Accept, OriginPolicy, Reject, Request};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut adapter = "tokio".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--adapter" => adapter = args.next().unwrap_or_default(),
            other => addr = other.to_owned(),
        }
    }
    match adapter.as_str() {
        "tokio" => tokio_server(&addr),
        "blocking" => blocking_server(&addr),
        other => {
            eprintln!("echo_server: unknown adapter {other:?} (tokio or blocking)");
            std::process::exit(2);
        }
    }
}

/// The echo server keeps no per-user state (no cookies, no accounts), so a page from any
/// origin may use it: a browser console on another site, or a `file:` page. A server that
/// does hold such state keeps the default, `OriginPolicy::SameHost`.
fn config() -> Config {
    Config::default().origin_policy(OriginPolicy::Any)
}

/// Accepts the handshake, choosing the first subprotocol the client offers.
fn first_protocol(request: &Request) -> Result<Accept, Reject> {
    let mut accept = Accept::new();
    if let Some(first) = request.protocols().next() {
        accept = accept.protocol(first);
    }
    Ok(accept)
}

fn tokio_server(addr: &str) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("echo server listening on ws://{}", listener.local_addr()?);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: accepting again at once would
                    // spin, so give connections a moment to close.
                    eprintln!("echo_server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let accepted = rfc6455::tokio::accept_with(stream, config(), first_protocol).await;
                let Ok(mut ws) = accepted else { return };
                // `recv` answers Pings and completes the closing handshake by itself; it
                // returns `Ok(None)` once the client has closed cleanly.
                while let Ok(Some(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}

fn blocking_server(addr: &str) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let accepted = rfc6455::sync::accept_with(stream, config(), first_protocol);
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
