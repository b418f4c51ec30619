//! The smallest useful tokio server: echoes every message, a task per connection.
//!
//! ```text
//! cargo run --example tokio_echo -- [ADDR]      # default 127.0.0.1:9001
//! ```
//!
//! It prints `tokio echo server listening on ws://ADDR` once it listens, then one line on
//! stderr per connection that ends, saying how. `echo_server` is the same server with an
//! adapter switch; this one is the version to copy from.

use rfc6455::tokio::{self as ws, WebSocket};
use rfc6455::{Error, Event};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "tokio echo server listening on ws://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let outcome = match ws::accept(stream).await {
                Ok(socket) => echo(socket).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(close) => eprintln!("{peer}: closed, {close}"),
                Err(e) => eprintln!("{peer}: {e}"),
            }
        });
    }
}

/// Echoes until the client closes; returns how it closed.
async fn echo(mut socket: WebSocket<TcpStream>) -> Result<String, Error> {
    let mut close = "without a Close frame".to_owned();
    // `recv_event` shows the control frames too. Pings are already answered and the peer's
    // Close already echoed by the connection itself: only messages need our attention.
    // `Ok(None)` means the closing handshake is complete and the socket shut down.
    while let Some(event) = socket.recv_event().await? {
        match event {
            Event::Message(message) => socket.send(message).await?,
            Event::Close(frame) => {
                close = format!("code {} {:?}", frame.code, frame.reason.as_str())
            }
            _ => {}
        }
    }
    Ok(close)
}
