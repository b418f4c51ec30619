//! A command-line client, like `websocat`: each line of stdin is sent as a message, and every
//! message received is printed on stdout. On end of input it closes cleanly and exits.
//!
//! `cargo run --release --example client -- ws://HOST:PORT/PATH [--binary] [--protocol NAME]
//! [-H 'Name: value']... [--proxy URL | --proxy-from-env]`
//!
//! `--proxy` takes `http://[user:pass@]host:port` (CONNECT), `socks5://...` or
//! `socks5h://...`; `--proxy-from-env` reads `wss_proxy` / `https_proxy` / `ws_proxy` /
//! `http_proxy` / `all_proxy` and `no_proxy` as curl does.
//!
//! When the connection closes, the server's close code and reason go to stderr
//! (`client: server closed with 1000 "reason"`). The exit status is 0 only after a closing
//! handshake in which the server's Close carried 1000 (normal) or 1001 (going away), or,
//! answering our own Close, no code at all; any other code and any error exit with 1.

use rfc6455::handshake::ClientRequest;
use rfc6455::{CloseCode, CloseFrame, Config, Event, Message, Proxy, sync};
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut uri = None;
    let mut binary = false;
    let mut protocols = Vec::new();
    let mut headers = Vec::new();
    let mut proxy = None;
    let mut proxy_from_env = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--binary" => binary = true,
            "--protocol" => protocols.push(args.next().ok_or("--protocol needs a name")?),
            "--proxy" => proxy = Some(Proxy::parse(&args.next().ok_or("--proxy needs a URL")?)?),
            "--proxy-from-env" => proxy_from_env = true,
            "-H" => {
                let header = args.next().ok_or("-H needs 'Name: value'")?;
                let (name, value) = header.split_once(':').ok_or("-H needs 'Name: value'")?;
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ if uri.is_none() => uri = Some(arg),
            other => return Err(format!("unexpected argument {other:?}").into()),
        }
    }
    let uri = uri.ok_or(
        "usage: client ws://HOST:PORT/PATH [--binary] [--protocol P] [-H 'N: v'] \
         [--proxy URL | --proxy-from-env]",
    )?;
    let mut request = ClientRequest::new(&uri)?.proxy_from_env(proxy_from_env);
    if let Some(proxy) = proxy {
        request = request.proxy(proxy);
    }
    for protocol in &protocols {
        request = request.protocol(protocol);
    }
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let (mut ws, response) = sync::connect_with(request, Config::default())?;
    if let Some(protocol) = response.protocol() {
        eprintln!("client: subprotocol {protocol}");
    }

    // stdin is read on its own thread; the socket is served here between lines.
    let (lines, input) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines.send(None);
    });

    let stdout = std::io::stdout();
    let mut closing = false;
    let mut server_close = None;
    loop {
        match if closing {
            Err(mpsc::TryRecvError::Empty)
        } else {
            input.try_recv()
        } {
            Ok(Some(line)) => {
                if binary {
                    ws.send_binary(line.as_bytes())?;
                } else {
                    ws.send_text(&line)?;
                }
                continue;
            }
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => {
                // Keep printing what the server still sends until it answers our Close.
                ws.send_close(CloseCode::NORMAL, "")?;
                closing = true;
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        match ws.recv_event_timeout(Duration::from_millis(20)) {
            Ok(Some(Event::Message(message))) => {
                let mut out = stdout.lock();
                match message {
                    Message::Text(text) => writeln!(out, "{text}")?,
                    Message::Binary(data) => {
                        out.write_all(&data)?;
                        writeln!(out)?;
                    }
                }
                out.flush()?;
            }
            Ok(Some(Event::Close(frame))) => server_close = Some(frame),
            // Pings are answered by the connection itself; Pongs need nothing (and without
            // `Config::streaming_threshold` no message arrives in chunks).
            Ok(Some(_)) => {}
            Ok(None) => return closed(server_close, closing),
            Err(rfc6455::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reports how the server closed the connection; an error unless the close was a normal one.
fn closed(
    server_close: Option<CloseFrame>,
    we_closed_first: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    // The closing handshake cannot complete without the server's Close, but say so if it did.
    let frame = server_close.ok_or("the connection ended without the server's Close")?;
    eprintln!(
        "client: server closed with {} {:?}",
        frame.code,
        frame.reason.as_str()
    );
    // RFC 6455 §7.1.5: a Close without a status code reports 1005; as the answer to our
    // Close it is an echo that chose not to repeat the code.
    let normal = matches!(frame.code, CloseCode::NORMAL | CloseCode::GOING_AWAY)
        || (we_closed_first && frame.code == CloseCode::NO_STATUS);
    if normal {
        Ok(())
    } else {
        Err(format!("the server closed the connection with {}", frame.code).into())
    }
}
