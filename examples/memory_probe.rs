//! The processes `scripts/measure-memory.sh` runs to measure a tokio server's memory per
//! connection. Needs the `tokio` feature:
//!
//! ```text
//! cargo run --release --features tokio --example memory_probe -- server [ADDR [DEFLATE [POLICY]]]
//! cargo run --release --features tokio --example memory_probe -- idle ADDR N[,N2,...] [SOURCES [deflate [MSGS]]]
//! cargo run --release --features tokio --example memory_probe -- slow ADDR N BYTES
//! ```
//!
//! * `server`: a tokio echo server (the adapter's `accept`, then `recv` / `send`); prints
//!   `listening ADDR` once bound. DEFLATE picks its permessage-deflate settings: `default`
//!   (the library's defaults), `cheap` (no context takeover either way and 9-bit windows:
//!   the least state a connection can hold) or `off`; POLICY its memory policy: `idle` (the
//!   default, `ReleaseWhenIdle` after `DEFAULT_RELEASE_AFTER`), `idle:SECS` (after SECS
//!   seconds; a long delay keeps every connection's streams, as a busy connection holds
//!   them), `retain` or `permessage`.
//! * `idle`: opens WebSocket connections (full handshake, through the adapter) and holds
//!   them open without sending anything, in stages: N in all, prints `ready N`, then waits
//!   for a line on standard input before opening more, up to N2 in all, and so on. The
//!   client sockets are bound in turn to the source addresses 127.0.0.1 .. 127.0.0.SOURCES
//!   (one by default), so that tens of thousands of connections to one server port do not
//!   run out of ephemeral ports. The clients offer permessage-deflate only with `deflate`
//!   (the server accepts it when offered), and then, with MSGS, each connection sends MSGS
//!   messages of the JSON chat corpus (`tests/deflate_support/chat.rs`) right after its
//!   handshake and waits for their echoes, so the server has compressed and decompressed on
//!   every connection. The clients use `MemoryPolicy::PerMessage`: their own memory is not
//!   what is measured, and it keeps 10,000 client connections small.
//! * `slow`: opens N connections over raw TCP, sends the handshake and the header of a masked
//!   binary frame declaring 16 MiB (the default `max_frame_size`, so it is accepted), then
//!   BYTES of its payload, then one more byte per second per connection; prints `ready N`
//!   once every connection has sent its first BYTES.
//!
//! The clients run until killed.

#[cfg(feature = "tokio")]
#[path = "../tests/deflate_support/chat.rs"]
mod chat;

#[cfg(feature = "tokio")]
mod probe {
    use rfc6455::handshake::ClientRequest;
    use rfc6455::{Config, tokio as ws};
    use std::io::Write as _;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};
    use tokio::sync::Semaphore;

    /// Connections being set up at once.
    const PARALLEL: usize = 64;
    /// The declared length of the slow frame: exactly the default `max_frame_size`.
    const DECLARED: u64 = 16 << 20;
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn ready(n: usize) {
        println!("ready {n}");
        let _ = std::io::stdout().flush();
    }

    pub async fn server(addr: &str, config: Config) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        println!("listening {}", listener.local_addr()?);
        let _ = std::io::stdout().flush();
        loop {
            let (stream, _) = listener.accept().await?;
            let config = config.clone();
            tokio::spawn(async move {
                let Ok(mut socket) =
                    ws::accept_with(stream, config, |_| Ok(Default::default())).await
                else {
                    return;
                };
                while let Ok(Some(message)) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    /// Connection `i` to `addr`, from source address 127.0.0.(1 + i % sources).
    async fn connect_from(addr: &str, i: usize, sources: usize) -> std::io::Result<TcpStream> {
        let server: SocketAddr = addr
            .parse()
            .map_err(|_| std::io::Error::other(format!("not an IP:PORT address: {addr}")))?;
        let socket = TcpSocket::new_v4()?;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i % sources) as u8);
        socket.bind(SocketAddr::from((source, 0)))?;
        socket.connect(server).await
    }

    /// The clients' configuration: permessage-deflate offered only when asked for (and then
    /// with streams freed after every message: the clients' memory is not measured).
    fn client_config(deflate: bool) -> Config {
        #[cfg(feature = "deflate")]
        {
            use rfc6455::deflate::{DeflateConfig, MemoryPolicy};
            Config::default().deflate(
                DeflateConfig::default()
                    .enabled(deflate)
                    .memory_policy(MemoryPolicy::PerMessage),
            )
        }
        #[cfg(not(feature = "deflate"))]
        {
            assert!(!deflate, "deflate needs the `deflate` feature");
            Config::default()
        }
    }

    /// The server's configuration from the `server` arguments (see the top of the file).
    #[cfg(feature = "deflate")]
    pub fn server_config(deflate: &str, policy: &str) -> Option<Config> {
        use rfc6455::deflate::{DeflateConfig, MemoryPolicy};
        let config = match deflate {
            "default" => DeflateConfig::default(),
            "cheap" => DeflateConfig::default()
                .server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(9)
                .client_max_window_bits(9),
            "off" => DeflateConfig::default().enabled(false),
            _ => return None,
        };
        let policy = match policy {
            "idle" => MemoryPolicy::default(),
            "retain" => MemoryPolicy::Retain,
            "permessage" => MemoryPolicy::PerMessage,
            other => {
                let secs = other.strip_prefix("idle:")?.parse().ok()?;
                MemoryPolicy::ReleaseWhenIdle(Duration::from_secs(secs))
            }
        };
        Some(Config::default().deflate(config.memory_policy(policy)))
    }

    #[cfg(not(feature = "deflate"))]
    pub fn server_config(deflate: &str, _policy: &str) -> Option<Config> {
        (deflate == "off").then(Config::default)
    }

    pub async fn idle(
        addr: &str,
        stages: &[usize],
        sources: usize,
        deflate: bool,
        msgs: usize,
    ) -> Result<(), rfc6455::Error> {
        let corpus: Arc<Vec<String>> = Arc::new(super::chat::corpus(msgs.min(10_000)));
        let gate = Arc::new(Semaphore::new(PARALLEL));
        let mut sockets = Vec::with_capacity(stages.iter().copied().max().unwrap_or(0));
        let mut control = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        for (k, &total) in stages.iter().enumerate() {
            if k > 0 {
                // The next stage starts when the script says so (it has read the memory).
                let _ = control.next_line().await;
            }
            let mut tasks = Vec::with_capacity(total.saturating_sub(sockets.len()));
            for i in sockets.len()..total {
                let permit = Arc::clone(&gate)
                    .acquire_owned()
                    .await
                    .expect("open semaphore");
                let addr = addr.to_owned();
                let corpus = Arc::clone(&corpus);
                tasks.push(tokio::spawn(async move {
                    let stream = connect_from(&addr, i, sources).await?;
                    let request = ClientRequest::new(&format!("ws://{addr}/"))?;
                    let (mut socket, _) =
                        ws::client(stream, request, client_config(deflate)).await?;
                    // Each connection its own stretch of the corpus.
                    for k in 0..msgs {
                        let text = &corpus[(i * 7 + k) % corpus.len()];
                        socket.send_text(text).await?;
                        let echo = socket.recv().await?;
                        assert_eq!(echo.map(|m| m.len()), Some(text.len()), "echo");
                    }
                    drop(permit);
                    Ok::<_, rfc6455::Error>(socket)
                }));
            }
            for task in tasks {
                sockets.push(task.await.expect("task")?);
            }
            ready(sockets.len());
        }
        std::future::pending::<()>().await;
        Ok(())
    }

    /// The handshake by hand (the adapter would own the stream), then the frame's start.
    async fn slow_one(addr: &str, bytes: usize) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101 ") {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&head).into_owned(),
            ));
        }
        let mut frame = vec![0x82, 0xff];
        frame.extend_from_slice(&DECLARED.to_be_bytes());
        frame.extend_from_slice(&KEY);
        frame.extend((0..bytes).map(|i| 0x55 ^ KEY[i % 4]));
        stream.write_all(&frame).await?;
        Ok(stream)
    }

    pub async fn slow(addr: &str, n: usize, bytes: usize) -> std::io::Result<()> {
        let gate = Arc::new(Semaphore::new(PARALLEL));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let permit = Arc::clone(&gate)
                .acquire_owned()
                .await
                .expect("open semaphore");
            let addr = addr.to_owned();
            tasks.push(tokio::spawn(async move {
                let stream = slow_one(&addr, bytes).await;
                drop(permit);
                stream
            }));
        }
        let mut streams = Vec::with_capacity(n);
        for task in tasks {
            streams.push(task.await.expect("task")?);
        }
        ready(streams.len());
        // One more payload byte per second per connection (the mask index is irrelevant).
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            for stream in &mut streams {
                stream.write_all(&[0x55]).await?;
            }
        }
    }
}

#[cfg(feature = "tokio")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let number = |i: usize| -> usize {
        arg(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let result: Result<(), Box<dyn std::error::Error>> = runtime.block_on(async {
        match arg(0) {
            Some("server") => {
                let config =
                    probe::server_config(arg(2).unwrap_or("default"), arg(3).unwrap_or("idle"))
                        .unwrap_or_else(|| usage());
                probe::server(arg(1).unwrap_or("127.0.0.1:0"), config).await?;
            }
            Some("idle") => {
                let stages: Vec<usize> = arg(2)
                    .unwrap_or_else(|| usage())
                    .split(',')
                    .map(|n| n.trim().parse().unwrap_or_else(|_| usage()))
                    .collect();
                let sources = arg(3).map_or(1, |_| number(3)).clamp(1, 254);
                let deflate = match arg(4) {
                    None | Some("plain") => false,
                    Some("deflate") => true,
                    Some(_) => usage(),
                };
                let msgs = arg(5).map_or(0, |_| number(5));
                if msgs > 0 && !deflate {
                    usage();
                }
                probe::idle(
                    arg(1).unwrap_or_else(|| usage()),
                    &stages,
                    sources,
                    deflate,
                    msgs,
                )
                .await?;
            }
            Some("slow") => {
                probe::slow(arg(1).unwrap_or_else(|| usage()), number(2), number(3)).await?;
            }
            _ => usage(),
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("memory_probe: {e}");
        std::process::exit(1);
    }
}

#[cfg(feature = "tokio")]
fn usage() -> ! {
    eprintln!(
        "usage: memory_probe server [ADDR [default|cheap|off [idle|idle:SECS|retain|permessage]]] \
         | idle ADDR N[,N2,...] [SOURCES [plain|deflate [MSGS]]] | slow ADDR N BYTES"
    );
    std::process::exit(2);
}

#[cfg(not(feature = "tokio"))]
fn main() {
    eprintln!("memory_probe needs the tokio feature: --features tokio");
    std::process::exit(2);
}
