//! Echo servers for the echo benchmark, one per peer library, each as the library's own
//! examples write one, on the same tokio runtime as `examples/autobahn_server --adapter tokio`
//! (multi-threaded, default worker count, TCP_NODELAY).
//!
//! `bench-echo-peers tungstenite|fastwebsockets|tcp ADDR`

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("{kind} echo server listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            match kind.as_str() {
                "tungstenite" => tokio::spawn(tungstenite_echo(stream)),
                "fastwebsockets" => tokio::spawn(fastwebsockets_echo(stream)),
                "tcp" => tokio::spawn(tcp_echo(stream)),
                other => {
                    eprintln!("unknown server kind {other:?}");
                    std::process::exit(2);
                }
            };
        }
    })
}

/// tokio-tungstenite's echo example: every data message is sent back.
async fn tungstenite_echo(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_binary() || msg.is_text() {
            if ws.send(msg).await.is_err() {
                break;
            }
        } else if msg.is_close() {
            break;
        }
    }
}

/// fastwebsockets' echo example (FragmentCollector, auto Pong and Close), with the HTTP
/// upgrade done by hand instead of through hyper so that only the WebSocket code differs.
async fn fastwebsockets_echo(mut stream: TcpStream) {
    if upgrade_by_hand(&mut stream).await.is_err() {
        return;
    }
    let ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let Ok(frame) = ws.read_frame().await else {
            break;
        };
        match frame.opcode {
            fastwebsockets::OpCode::Close => break,
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                if ws.write_frame(frame).await.is_err() {
                    break;
                }
            }
            _ => {}
        }
    }
}

/// Reads the request head and answers 101 (the client sends nothing before the answer).
async fn upgrade_by_hand(stream: &mut TcpStream) -> std::io::Result<()> {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 << 10 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await
}

/// The baseline: bytes back as they come, through a 64 KiB buffer.
async fn tcp_echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}
