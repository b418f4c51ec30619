//! Echo servers for the echo benchmark, one per peer library, each written the way the
//! library's own documentation and examples write one, all on the same tokio runtime as
//! `examples/autobahn_server --adapter tokio` (multi-threaded, default worker count,
//! TCP_NODELAY). Every server echoes whole messages (fragments reassembled), never frames.
//!
//! `bench-echo-peers KIND ADDR` with KIND one of `tungstenite` (tokio-tungstenite 0.30),
//! `fastwebsockets` (0.10, through its `FragmentCollector`), `tokio-websockets` (0.13),
//! `yawc` (0.5), `sockudo` (sockudo-ws 3.1) or `tcp` (a plain TCP echo, the floor); and
//! ours: `rfc6455` (`recv`, then `feed`: the loop our docs recommend for a server that
//! answers every message), `rfc6455-send` (`recv`, then `send`: one write per reply, as every
//! peer above writes).
//!
//! `KIND-batched` (for `rfc6455`, `tungstenite`, `tokio-websockets`, `yawc`, `sockudo`: the
//! libraries with a `Stream` + `Sink`): the same echo through the library's `Stream` and
//! `Sink`, written once for all of them: replies are fed while the stream has a message
//! ready and flushed before it waits, which is what `StreamExt::forward` does (and what
//! tokio-tungstenite's own echo-server example uses). fastwebsockets has no `Stream` and
//! its `read_frame` may not be polled and dropped, so it has no batched variant.
//!
//! `yawc-deflate` and `sockudo-deflate` are the same servers with permessage-deflate (RFC 7692)
//! accepted when offered, at the parameters our own server agrees to a browser's offer: level
//! 6, 12-bit windows both ways, context takeover, messages under 64 bytes uncompressed. Both
//! libraries compress with zlib-rs (through flate2), our backend, so the deflate rows compare
//! the WebSocket code around the same compressor.

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KINDS: &[&str] = &[
    "rfc6455",
    "rfc6455-send",
    "rfc6455-batched",
    "tungstenite",
    "tungstenite-batched",
    "fastwebsockets",
    "tokio-websockets",
    "tokio-websockets-batched",
    "yawc",
    "yawc-batched",
    "sockudo",
    "sockudo-batched",
    "tcp",
    "yawc-deflate",
    "sockudo-deflate",
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
                "rfc6455" => tokio::spawn(rfc6455_echo(stream, false)),
                "rfc6455-send" => tokio::spawn(rfc6455_echo(stream, true)),
                "rfc6455-batched" => tokio::spawn(rfc6455_batched(stream)),
                "tungstenite" => tokio::spawn(tungstenite_echo(stream)),
                "tungstenite-batched" => tokio::spawn(tungstenite_batched(stream)),
                "fastwebsockets" => tokio::spawn(fastwebsockets_echo(stream)),
                // Its echo example runs each connection unconstrained by tokio's
                // cooperative budget.
                "tokio-websockets" => {
                    tokio::spawn(tokio::task::unconstrained(tokio_websockets_echo(stream)))
                }
                "tokio-websockets-batched" => tokio::spawn(tokio::task::unconstrained(
                    tokio_websockets_batched(stream),
                )),
                "yawc" => tokio::spawn(yawc_echo(stream)),
                "yawc-batched" => tokio::spawn(yawc_batched(stream)),
                "sockudo" => tokio::spawn(sockudo_echo(stream)),
                "sockudo-batched" => tokio::spawn(sockudo_batched(stream)),
                "yawc-deflate" => tokio::spawn(deflate::yawc_echo(stream)),
                "sockudo-deflate" => tokio::spawn(deflate::sockudo_echo(stream)),
                _ => tokio::spawn(tcp_echo(stream)),
            };
        }
    })
}

/// Ours, as the tokio adapter's docs recommend ("Batching replies"): `recv`, then `feed`
/// (written by the `recv` that would wait); or, with `send`, `recv`, then `send` (written
/// before it returns).
async fn rfc6455_echo(stream: TcpStream, send: bool) {
    let Ok(mut ws) = rfc6455::tokio::accept(stream).await else {
        return;
    };
    while let Ok(Some(message)) = ws.recv().await {
        let sent = if send {
            ws.send(message).await
        } else {
            ws.feed(message).await
        };
        if sent.is_err() {
            break;
        }
    }
}

/// What the batched echo does with an item of a library's `Stream`.
enum Take<M> {
    Echo(M),
    Skip,
    Stop,
}

/// The echo through a `Stream` + `Sink`: replies are fed while the stream has an item ready
/// and flushed before it waits (as `StreamExt::forward` does).
async fn batched_echo<S, I, M>(mut ws: S, take: impl Fn(I) -> Take<M>)
where
    S: Stream<Item = I> + Sink<M> + Unpin,
{
    loop {
        let item = match ws.next().now_or_never() {
            Some(item) => item,
            None => {
                if ws.flush().await.is_err() {
                    return;
                }
                ws.next().await
            }
        };
        let Some(item) = item else { return };
        match take(item) {
            Take::Echo(message) => {
                if ws.feed(message).await.is_err() {
                    return;
                }
            }
            Take::Skip => {}
            Take::Stop => {
                let _ = ws.flush().await;
                return;
            }
        }
    }
}

async fn rfc6455_batched(stream: TcpStream) {
    let Ok(ws) = rfc6455::tokio::accept(stream).await else {
        return;
    };
    // The `Stream` yields messages only (Pings are answered, the Close echoed, inside).
    batched_echo(ws, |item| match item {
        Ok(message) => Take::Echo(message),
        Err(_) => Take::Stop,
    })
    .await;
}

async fn tungstenite_batched(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    batched_echo(ws, |item| match item {
        Ok(msg) if msg.is_binary() || msg.is_text() => Take::Echo(msg),
        Ok(msg) if msg.is_close() => Take::Stop,
        Ok(_) => Take::Skip,
        Err(_) => Take::Stop,
    })
    .await;
}

async fn tokio_websockets_batched(stream: TcpStream) {
    let Ok((_request, ws)) = tokio_websockets::ServerBuilder::new()
        .config(tokio_websockets::Config::default().frame_size(usize::MAX))
        .limits(tokio_websockets::Limits::unlimited())
        .accept(stream)
        .await
    else {
        return;
    };
    batched_echo(ws, |item| match item {
        Ok(msg) if msg.is_text() || msg.is_binary() => Take::Echo(msg),
        Ok(_) => Take::Skip,
        Err(_) => Take::Stop,
    })
    .await;
}

async fn yawc_batched(mut stream: TcpStream) {
    if upgrade_by_hand(&mut stream).await.is_err() {
        return;
    }
    let Ok(ws) =
        yawc::WebSocket::from_stream(stream, yawc::Role::Server, yawc::Options::default())
    else {
        return;
    };
    batched_echo(ws, |frame: yawc::Frame| match frame.opcode() {
        yawc::OpCode::Text | yawc::OpCode::Binary => Take::Echo(frame),
        yawc::OpCode::Close => Take::Stop,
        _ => Take::Skip,
    })
    .await;
}

async fn sockudo_batched(stream: TcpStream) {
    let Some(stream) = sockudo_upgrade(stream).await else {
        return;
    };
    let ws = sockudo_ws::WebSocketStream::server(stream, sockudo_ws::Config::default());
    batched_echo(ws, |item| {
        use sockudo_ws::protocol::Message;
        match item {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => Take::Echo(msg),
            Ok(Message::Close(_)) | Err(_) => Take::Stop,
            Ok(_) => Take::Skip,
        }
    })
    .await;
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
async fn sockudo_echo(stream: TcpStream) {
    let Some(stream) = sockudo_upgrade(stream).await else {
        return;
    };
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

/// sockudo-ws' handshake helpers, as its `simple_echo` example uses them.
async fn sockudo_upgrade(mut stream: TcpStream) -> Option<TcpStream> {
    let mut buf = bytes::BytesMut::with_capacity(4096);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match sockudo_ws::handshake::parse_request(&buf) {
            Ok(Some((request, _))) => {
                let accept = sockudo_ws::handshake::generate_accept_key(request.key);
                let response = sockudo_ws::handshake::build_response(&accept, None, None);
                if stream.write_all(&response).await.is_err() {
                    return None;
                }
                return Some(stream);
            }
            Ok(None) if buf.len() <= 16 << 10 => {}
            _ => return None,
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

/// The deflate variants. Each reads the request itself and answers the client's
/// permessage-deflate offer the way its library negotiates (yawc's upgrade goes through
/// hyper, so here the answer our server would give is written by hand and handed to yawc).
mod deflate {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Level, window and threshold: what our server uses with its defaults.
    const LEVEL: u8 = 6;
    const WINDOW_BITS: u8 = 12;
    const THRESHOLD: usize = 64;
    /// The answer to a browser-like offer (`permessage-deflate; client_max_window_bits`).
    const AGREED: &str = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12";

    /// The request head's `Sec-WebSocket-Key` and `Sec-WebSocket-Extensions` values.
    async fn read_request(stream: &mut TcpStream) -> std::io::Result<(String, Option<String>)> {
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
        let header = |wanted: &str| {
            text.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_owned())
            })
        };
        let key = header("sec-websocket-key").ok_or(std::io::ErrorKind::InvalidData)?;
        Ok((key, header("sec-websocket-extensions")))
    }

    fn accept_key(key: &str) -> String {
        use base64::Engine;
        use sha1::{Digest, Sha1};
        let mut sha = Sha1::new();
        sha.update(key.as_bytes());
        sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        base64::engine::general_purpose::STANDARD.encode(sha.finalize())
    }

    /// yawc 0.5 (with its `zlib` feature, so that it honours a window below 15 bits) wrapped
    /// around the stream with the agreed extension, as its `from_stream_with_extensions`
    /// documents for handshakes made elsewhere.
    pub async fn yawc_echo(mut stream: TcpStream) {
        let Ok((key, offer)) = read_request(&mut stream).await else {
            return;
        };
        let offered = offer.is_some_and(|o| o.contains("permessage-deflate"));
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            accept_key(&key)
        );
        if offered {
            response.push_str(&format!("Sec-WebSocket-Extensions: {AGREED}\r\n"));
        }
        response.push_str("\r\n");
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        let options = yawc::Options::default()
            .with_compression_level(yawc::CompressionLevel::new(u32::from(LEVEL)))
            .with_server_max_window_bits(WINDOW_BITS)
            .with_client_max_window_bits(WINDOW_BITS)
            .with_compression_threshold(THRESHOLD);
        let Ok(mut ws) = yawc::WebSocket::from_stream_with_extensions(
            stream,
            yawc::Role::Server,
            offered.then_some(AGREED),
            options,
        ) else {
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

    /// sockudo-ws 3.1: its own negotiation (`negotiate_server_deflate`) against a policy with
    /// our parameters, then its `CompressedWebSocketStream`.
    pub async fn sockudo_echo(mut stream: TcpStream) {
        use sockudo_ws::deflate::{DeflateConfig, DeflateWindowBits, negotiate_server_deflate};
        let Ok((key, offer)) = read_request(&mut stream).await else {
            return;
        };
        let policy = DeflateConfig {
            server_max_window_bits: DeflateWindowBits::Bits12,
            client_max_window_bits: DeflateWindowBits::Bits12,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            compression_level: u32::from(LEVEL),
            compression_threshold: THRESHOLD,
        };
        let negotiated = offer
            .as_deref()
            .and_then(|offer| negotiate_server_deflate(offer, &policy));
        let header = negotiated.as_ref().map(|n| n.to_response_header());
        let accept = accept_key(&key);
        let response = sockudo_ws::handshake::build_response(&accept, None, header.as_deref());
        if stream.write_all(&response).await.is_err() {
            return;
        }
        let config = sockudo_ws::Config::default();
        let Some(negotiated) = negotiated else {
            return;
        };
        let mut ws =
            sockudo_ws::CompressedWebSocketStream::server(stream, config, negotiated.config);
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
}
