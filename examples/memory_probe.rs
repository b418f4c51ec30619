//! The processes `scripts/measure-memory.sh` runs to measure a tokio server's memory per
//! connection. Needs the `tokio` feature:
//!
//! ```text
//! cargo run --release --features tokio --example memory_probe -- server [ADDR]
//! cargo run --release --features tokio --example memory_probe -- idle ADDR N[,N2,...] [SOURCES [deflate]]
//! cargo run --release --features tokio --example memory_probe -- slow ADDR N BYTES
//! ```
//!
//! * `server`: a tokio echo server (the adapter's `accept`, then `recv` / `send`); prints
//!   `listening ADDR` once bound.
//! * `idle`: opens WebSocket connections (full handshake, through the adapter) and holds
//!   them open without sending anything, in stages: N in all, prints `ready N`, then waits
//!   for a line on standard input before opening more, up to N2 in all, and so on. The
//!   client sockets are bound in turn to the source addresses 127.0.0.1 .. 127.0.0.SOURCES
//!   (one by default), so that tens of thousands of connections to one server port do not
//!   run out of ephemeral ports. The clients offer permessage-deflate only with `deflate`
//!   (the server accepts it when offered).
//! * `slow`: opens N connections over raw TCP, sends the handshake and the header of a masked
//!   binary frame declaring 16 MiB (the default `max_frame_size`, so it is accepted), then
//!   BYTES of its payload, then one more byte per second per connection; prints `ready N`
//!   once every connection has sent its first BYTES.
//!
//! The clients run until killed.

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

    pub async fn server(addr: &str) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        println!("listening {}", listener.local_addr()?);
        let _ = std::io::stdout().flush();
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let Ok(mut socket) = ws::accept(stream).await else {
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

    /// The clients' configuration: permessage-deflate offered only when asked for.
    fn client_config(deflate: bool) -> Config {
        #[cfg(feature = "deflate")]
        {
            Config::default().deflate(rfc6455::deflate::DeflateConfig::default().enabled(deflate))
        }
        #[cfg(not(feature = "deflate"))]
        {
            assert!(!deflate, "deflate needs the `deflate` feature");
            Config::default()
        }
    }

    pub async fn idle(
        addr: &str,
        stages: &[usize],
        sources: usize,
        deflate: bool,
    ) -> Result<(), rfc6455::Error> {
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
                tasks.push(tokio::spawn(async move {
                    let stream = connect_from(&addr, i, sources).await?;
                    let request = ClientRequest::new(&format!("ws://{addr}/"))?;
                    let (socket, _) = ws::client(stream, request, client_config(deflate)).await?;
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
            Some("server") => probe::server(arg(1).unwrap_or("127.0.0.1:0")).await?,
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
                probe::idle(arg(1).unwrap_or_else(|| usage()), &stages, sources, deflate).await?;
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
        "usage: memory_probe server [ADDR] | idle ADDR N[,N2,...] [SOURCES [plain|deflate]] \
         | slow ADDR N BYTES"
    );
    std::process::exit(2);
}

#[cfg(not(feature = "tokio"))]
fn main() {
    eprintln!("memory_probe needs the tokio feature: --features tokio");
    std::process::exit(2);
}
