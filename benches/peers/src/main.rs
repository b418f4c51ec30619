//! Echo servers for the echo benchmark, one per peer library, each written the way the
//! library's own documentation and examples write one, all on the same tokio runtime as
//! `examples/autobahn_server --adapter tokio` (multi-threaded, default worker count,
//! TCP_NODELAY). Every server echoes whole messages (fragments reassembled), never frames.
//!
//! `bench-echo-peers KIND ADDR` with KIND one of `tungstenite` (tokio-tungstenite 0.30),
//! `fastwebsockets` (0.10, through its `FragmentCollector`), `tokio-websockets` (0.13),
//! `yawc` (0.5), `sockudo` (sockudo-ws 3.1) or `tcp` (a plain TCP echo, the floor).

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KINDS: &[&str] = &[
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
    "sockudo",
    "tcp",
];

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    if !KINDS.contains(&kind.as_str()) {
        eprintln!("unknown server kind {kind:?}; one of {KINDS:?}");
        std::process::exit(2);
    }
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
                // Its echo example runs each connection unconstrained by tokio's
                // cooperative budget.
                "tokio-websockets" => {
                    tokio::spawn(tokio::task::unconstrained(tokio_websockets_echo(stream)))
                }
                "yawc" => tokio::spawn(yawc_echo(stream)),
                "sockudo" => tokio::spawn(sockudo_echo(stream)),
                _ => tokio::spawn(tcp_echo(stream)),
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
        let data = match frame.opcode {
            fastwebsockets::OpCode::Close => break,
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => true,
            _ => false,
        };
        if data && ws.write_frame(frame).await.is_err() {
            break;
        }
    }
}

/// tokio-websockets' echo example: `ServerBuilder::accept`, then the `Stream` / `Sink` of
/// whole messages, with its example's settings (outgoing messages never split into frames,
/// no size limits).
async fn tokio_websockets_echo(stream: TcpStream) {
    let Ok((_request, mut ws)) = tokio_websockets::ServerBuilder::new()
        .config(tokio_websockets::Config::default().frame_size(usize::MAX))
        .limits(tokio_websockets::Limits::unlimited())
        .accept(stream)
        .await
    else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

/// yawc's documented loop (its `WebSocket` reassembles fragments, answers Pings and Close),
/// on a stream upgraded by hand: `WebSocket::from_stream` is its entry point for a handshake
/// made elsewhere (its own server upgrade goes through hyper).
async fn yawc_echo(mut stream: TcpStream) {
    if upgrade_by_hand(&mut stream).await.is_err() {
        return;
    }
    let Ok(mut ws) =
        yawc::WebSocket::from_stream(stream, yawc::Role::Server, yawc::Options::default())
    else {
        return;
    };
    while let Some(frame) = ws.next().await {
        let data = match frame.opcode() {
            yawc::OpCode::Text | yawc::OpCode::Binary => true,
            yawc::OpCode::Close => break,
            _ => false,
        };
        if data && ws.send(frame).await.is_err() {
            break;
        }
    }
}

/// sockudo-ws's `simple_echo` example: its handshake helpers, then `WebSocketStream` as a
/// `Stream` / `Sink` of whole messages.
async fn sockudo_echo(mut stream: TcpStream) {
    let mut buf = bytes::BytesMut::with_capacity(4096);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match sockudo_ws::handshake::parse_request(&buf) {
            Ok(Some((request, _))) => {
                let accept = sockudo_ws::handshake::generate_accept_key(request.key);
                let response = sockudo_ws::handshake::build_response(&accept, None, None);
                if stream.write_all(&response).await.is_err() {
                    return;
                }
                break;
            }
            Ok(None) if buf.len() <= 16 << 10 => {}
            _ => return,
        }
    }
    let mut ws = sockudo_ws::WebSocketStream::server(stream, sockudo_ws::Config::default());
    while let Some(Ok(msg)) = ws.next().await {
        use sockudo_ws::protocol::Message;
        let data = match msg {
            Message::Text(_) | Message::Binary(_) => true,
            Message::Close(_) => break,
            _ => false,
        };
        if data && ws.send(msg).await.is_err() {
            break;
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
