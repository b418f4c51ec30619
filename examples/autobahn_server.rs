//! Autobahn|Testsuite testee, server role: echoes every message with default limits.
//!
//! `cargo run --release [--features tokio] --example autobahn_server -- [--adapter blocking|tokio] [ADDR]`

use rfc6455::{Config, sync};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut adapter = "blocking".to_owned();
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--adapter" => adapter = args.next().unwrap_or_default(),
            other => addr = other.to_owned(),
        }
    }
    match adapter.as_str() {
        "blocking" => blocking(&addr),
        #[cfg(feature = "tokio")]
        "tokio" => tokio_server(&addr),
        other => {
            eprintln!("unknown adapter {other:?} (tokio needs --features tokio)");
            std::process::exit(2);
        }
    }
}

fn blocking(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!(
        "autobahn server (blocking) listening on ws://{}",
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) =
                sync::accept_with(stream, Config::default(), |_| Ok(Default::default()))
            else {
                return;
            };
            while let Ok(Some(message)) = ws.recv() {
                if ws.send(message).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

#[cfg(feature = "tokio")]
fn tokio_server(addr: &str) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "autobahn server (tokio) listening on ws://{}",
            listener.local_addr()?
        );
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = rfc6455::tokio::accept(stream).await else {
                    return;
                };
                while let Ok(Some(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}
