//! `wss://` over 127.0.0.1: our TLS server against our TLS client, for both adapters and the
//! cross pairs, plus the failures that must end in an error rather than a hang.
//!
//! Certificates are made at test time with `rcgen`: a CA, and a server certificate it signs
//! for `127.0.0.1` (an IP subjectAltName) and `localhost`. The clients trust that CA through
//! `connect_tls`; `connect` (which trusts only the webpki roots) must refuse it.
//!
//! Every server runs the line protocol of `tests/interop/README.md` (echo, `please-fragment`,
//! `please-ping`, `close-me`) and reports what it saw per connection through a channel; every
//! wait is bounded by `WATCHDOG`, which only turns a hang into a failure. The other
//! implementations over `wss://` (python-websockets, Node `ws`) are in `tests/interop.rs`.
#![cfg(feature = "rustls")]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rfc6455::handshake::{Accept, ClientRequest};
use rfc6455::sync::{self, Transport};
use rfc6455::tls::rustls::pki_types::PrivateKeyDer;
use rfc6455::tls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use rfc6455::{CloseCode, Config, Error, Event, HandshakeError, Message, MessageKind, tls};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(20);
/// The handshake timeout of the tests that wait for it.
const SHORT: Duration = Duration::from_millis(300);

// ------------------------------------------------------------------------------ certificates

/// A test CA and a server certificate it signed, as rustls configs.
struct Pki {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn pki() -> Pki {
    pki_named("rfc6455 test CA")
}

/// A PKI whose CA has the common name `ca_name` (two PKIs with different names do not
/// recognise each other's certificates at all).
fn pki_named(ca_name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    // rcgen turns "127.0.0.1" into an IP subjectAltName and "localhost" into a DNS one.
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let mut leaf_params = CertificateParams::new(names).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let key = PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = tls::server_config(vec![leaf.der().clone()], key).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    Pki {
        server,
        client: tls::client_config(roots),
    }
}

// ------------------------------------------------------------------------------ helpers

/// The 1 MiB binary message of the scripts: byte `i` is `i % 251`.
fn blob() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8).collect()
}

fn describe_binary(data: &[u8]) -> String {
    let intact = data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8);
    format!(
        "BINARY {} {}",
        data.len(),
        if intact { "i%251" } else { "CORRUPT" }
    )
}

fn text_of(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

/// Runs `f` on a thread and waits at most `WATCHDOG` for it; a panic inside is re-raised.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what}: not done within {WATCHDOG:?}"),
    }
}

/// What a server saw on one connection: the request path and one line per event, ending
/// with `END clean` or `ERROR <error>`.
#[derive(Debug)]
struct Report {
    path: String,
    seen: Vec<String>,
}

/// Waits for `n` reports and returns them sorted by path.
fn reports(rx: &Receiver<Report>, n: usize) -> Vec<Report> {
    let mut out: Vec<Report> = (0..n)
        .map(|i| {
            rx.recv_timeout(WATCHDOG)
                .unwrap_or_else(|e| panic!("server report {i} of {n}: {e}"))
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What the server must have seen for our client's script (`client_script_*`).
fn check_script_reports(rx: &Receiver<Report>) {
    let got = reports(rx, 2);
    assert_eq!(got[0].path, "/interop", "{got:?}");
    assert_eq!(
        got[0].seen,
        [
            "TEXT hello",
            "BINARY 1048576 i%251",
            "TEXT please-fragment",
            "PING client-ping",
            "TEXT please-ping",
            "PONG server-ping",
            "CLOSE 4000 client-bye",
            "END clean",
        ],
        "what the server saw on /interop"
    );
    assert_eq!(got[1].path, "/server-close", "{got:?}");
    assert_eq!(
        got[1].seen,
        ["TEXT close-me", "CLOSE-ECHO 4000", "END clean"],
        "what the server saw on /server-close"
    );
}

// ------------------------------------------------------------------------------ blocking server

/// A blocking TLS server on an ephemeral port running the README's script on every
/// connection, each on its own thread. The accepting thread outlives the test harmlessly.
fn sync_server(tls: Arc<ServerConfig>, config: Config) -> (u16, Receiver<Report>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (tls, config, tx) = (Arc::clone(&tls), config.clone(), tx.clone());
            thread::spawn(move || sync_serve(tcp, tls, config, &tx));
        }
    });
    (port, rx)
}

fn sync_serve(tcp: TcpStream, tls: Arc<ServerConfig>, config: Config, tx: &Sender<Report>) {
    let mut path = String::new();
    let accepted = sync::accept_tls(tcp, tls, config, |request| {
        request.path().clone_into(&mut path);
        Ok(Accept::new())
    });
    let mut seen = Vec::new();
    match accepted {
        Ok(mut ws) => {
            if let Err(e) = sync_script(&mut ws, &path, &mut seen) {
                seen.push(format!("ERROR {e}"));
            }
        }
        Err(e) => seen.push(format!("HANDSHAKE {e:?}")),
    }
    let _ = tx.send(Report { path, seen });
}

/// The server side of the README's line protocol, recording every event.
fn sync_script<S: Transport>(
    ws: &mut sync::WebSocket<S>,
    path: &str,
    seen: &mut Vec<String>,
) -> Result<(), Error> {
    let mut closing = false;
    loop {
        let Some(event) = ws.recv_event()? else {
            seen.push("END clean".into());
            return Ok(());
        };
        match event {
            Event::Message(Message::Text(text)) => {
                seen.push(format!("TEXT {text}"));
                match text.as_str() {
                    "please-fragment" => {
                        for (part, fin) in [
                            ("server-", false),
                            ("fragmented-", false),
                            ("message", true),
                        ] {
                            ws.send_fragment(MessageKind::Text, part.as_bytes(), fin)?;
                        }
                    }
                    "please-ping" => ws.send_ping(b"server-ping")?,
                    "close-me" if path == "/server-close" => {
                        closing = true;
                        ws.send_close(CloseCode(4000), "server-bye")?;
                    }
                    _ => ws.send(Message::Text(text))?,
                }
            }
            Event::Message(Message::Binary(data)) => {
                seen.push(describe_binary(&data));
                ws.send(Message::Binary(data))?;
            }
            Event::Ping(payload) => seen.push(format!("PING {}", text_of(&payload))),
            Event::Pong(payload) => {
                seen.push(format!("PONG {}", text_of(&payload)));
                if payload == "server-ping".as_bytes() {
                    ws.send_text("got-pong:server-ping")?;
                }
            }
            Event::Close(frame) => {
                let what = if closing { "CLOSE-ECHO" } else { "CLOSE" };
                let line = format!("{what} {} {}", frame.code, frame.reason);
                seen.push(line.trim_end().to_owned());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

// ------------------------------------------------------------------------------ blocking client

fn expect_message<S: Transport>(ws: &mut sync::WebSocket<S>, want: Message) {
    let got = ws.recv().expect("recv");
    assert_eq!(got.as_ref().map(Message::as_bytes), Some(want.as_bytes()));
    assert_eq!(got.map(|m| m.kind()), Some(want.kind()));
}

/// Our blocking client's half of the script: `/interop` (echoes, fragments, pings, a close
/// from our side) then `/server-close` (a close from the server's side).
fn sync_client_script(base: &str, tls: &Arc<ClientConfig>) {
    let request = ClientRequest::new(&format!("{base}/interop")).unwrap();
    let (mut ws, response) =
        sync::connect_tls(request, Config::default(), Arc::clone(tls)).expect("connect /interop");
    assert_eq!(response.status(), 101);
    assert!(matches!(ws.get_ref(), sync::MaybeTlsStream::Tls(_)));

    ws.send_text("hello").unwrap();
    expect_message(&mut ws, Message::from("hello"));
    ws.send_binary(&blob()).unwrap();
    let echo = ws.recv().unwrap().expect("binary echo");
    assert_eq!(describe_binary(echo.as_bytes()), "BINARY 1048576 i%251");
    ws.send_text("please-fragment").unwrap();
    expect_message(&mut ws, Message::from("server-fragmented-message"));
    ws.send_ping(b"client-ping").unwrap();
    match ws.recv_event().unwrap() {
        Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"client-ping"),
        other => panic!("expected the pong, got {other:?}"),
    }
    ws.send_text("please-ping").unwrap();
    match ws.recv_event().unwrap() {
        Some(Event::Ping(payload)) => assert_eq!(&payload[..], b"server-ping"),
        other => panic!("expected the server's ping, got {other:?}"),
    }
    expect_message(&mut ws, Message::from("got-pong:server-ping"));
    ws.send_close(CloseCode(4000), "client-bye").unwrap();
    match ws.recv_event().unwrap() {
        Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode(4000)),
        other => panic!("expected the close echo, got {other:?}"),
    }
    assert!(ws.recv().unwrap().is_none(), "a clean close ends with None");

    let request = ClientRequest::new(&format!("{base}/server-close")).unwrap();
    let (mut ws, _) = sync::connect_tls(request, Config::default(), Arc::clone(tls))
        .expect("connect /server-close");
    ws.send_text("close-me").unwrap();
    match ws.recv_event().unwrap() {
        Some(Event::Close(frame)) => {
            assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode(4000), "server-bye")
            );
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
    assert!(ws.recv().unwrap().is_none(), "a clean close ends with None");
}

// ------------------------------------------------------------------------------ tokio

#[cfg(feature = "tokio-rustls")]
mod async_side {
    use super::*;
    use rfc6455::tokio as ws;
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;
    use tokio::io::{AsyncRead, AsyncWrite};

    /// Queues a Close without waiting for the peer's (the tokio adapter has no `send_close`):
    /// `close` queues its frame at the first poll and may be dropped after it.
    pub async fn start_close<S: AsyncRead + AsyncWrite + Unpin>(
        ws: &mut ws::WebSocket<S>,
        code: CloseCode,
        reason: &str,
    ) {
        let mut close = pin!(ws.close(code, reason));
        poll_fn(|cx| {
            if let Poll::Ready(result) = close.as_mut().poll(cx) {
                result.expect("close");
            }
            Poll::Ready(())
        })
        .await;
    }

    /// A tokio TLS server on an ephemeral port running the README's script per connection.
    pub async fn tokio_server(tls: Arc<ServerConfig>, config: Config) -> (u16, Receiver<Report>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (tls, config, tx) = (Arc::clone(&tls), config.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut path = String::new();
                    let accepted = ws::accept_tls(tcp, tls, config, |request| {
                        request.path().clone_into(&mut path);
                        Ok(Accept::new())
                    })
                    .await;
                    let mut seen = Vec::new();
                    match accepted {
                        Ok(mut ws) => {
                            if let Err(e) = tokio_script(&mut ws, &path, &mut seen).await {
                                seen.push(format!("ERROR {e}"));
                            }
                        }
                        Err(e) => seen.push(format!("HANDSHAKE {e:?}")),
                    }
                    let _ = tx.send(Report { path, seen });
                });
            }
        });
        (port, rx)
    }

    async fn tokio_script<S: AsyncRead + AsyncWrite + Unpin>(
        ws: &mut ws::WebSocket<S>,
        path: &str,
        seen: &mut Vec<String>,
    ) -> Result<(), Error> {
        let mut closing = false;
        loop {
            let Some(event) = ws.recv_event().await? else {
                seen.push("END clean".into());
                return Ok(());
            };
            match event {
                Event::Message(Message::Text(text)) => {
                    seen.push(format!("TEXT {text}"));
                    match text.as_str() {
                        "please-fragment" => {
                            let parts = [
                                ("server-", false),
                                ("fragmented-", false),
                                ("message", true),
                            ];
                            for (part, fin) in parts {
                                ws.send_fragment(MessageKind::Text, part.as_bytes(), fin)
                                    .await?;
                            }
                        }
                        "please-ping" => ws.send_ping(b"server-ping").await?,
                        "close-me" if path == "/server-close" => {
                            closing = true;
                            start_close(ws, CloseCode(4000), "server-bye").await;
                        }
                        _ => ws.send(Message::Text(text)).await?,
                    }
                }
                Event::Message(Message::Binary(data)) => {
                    seen.push(describe_binary(&data));
                    ws.send(Message::Binary(data)).await?;
                }
                Event::Ping(payload) => seen.push(format!("PING {}", text_of(&payload))),
                Event::Pong(payload) => {
                    seen.push(format!("PONG {}", text_of(&payload)));
                    if payload == "server-ping".as_bytes() {
                        ws.send_text("got-pong:server-ping").await?;
                    }
                }
                Event::Close(frame) => {
                    let what = if closing { "CLOSE-ECHO" } else { "CLOSE" };
                    let line = format!("{what} {} {}", frame.code, frame.reason);
                    seen.push(line.trim_end().to_owned());
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    async fn expect_message<S: AsyncRead + AsyncWrite + Unpin>(
        ws: &mut ws::WebSocket<S>,
        want: Message,
    ) {
        let got = ws.recv().await.expect("recv");
        assert_eq!(got.as_ref().map(Message::as_bytes), Some(want.as_bytes()));
        assert_eq!(got.map(|m| m.kind()), Some(want.kind()));
    }

    /// Our tokio client's half of the script, as `sync_client_script`.
    pub async fn tokio_client_script(base: &str, tls: &Arc<ClientConfig>) {
        let request = ClientRequest::new(&format!("{base}/interop")).unwrap();
        let (mut ws, response) = ws::connect_tls(request, Config::default(), Arc::clone(tls))
            .await
            .expect("connect /interop");
        assert_eq!(response.status(), 101);
        assert!(matches!(ws.get_ref(), ws::MaybeTlsStream::Tls(_)));

        ws.send_text("hello").await.unwrap();
        expect_message(&mut ws, Message::from("hello")).await;
        ws.send_binary(&blob()).await.unwrap();
        let echo = ws.recv().await.unwrap().expect("binary echo");
        assert_eq!(describe_binary(echo.as_bytes()), "BINARY 1048576 i%251");
        ws.send_text("please-fragment").await.unwrap();
        expect_message(&mut ws, Message::from("server-fragmented-message")).await;
        ws.send_ping(b"client-ping").await.unwrap();
        match ws.recv_event().await.unwrap() {
            Some(Event::Pong(payload)) => assert_eq!(&payload[..], b"client-ping"),
            other => panic!("expected the pong, got {other:?}"),
        }
        ws.send_text("please-ping").await.unwrap();
        match ws.recv_event().await.unwrap() {
            Some(Event::Ping(payload)) => assert_eq!(&payload[..], b"server-ping"),
            other => panic!("expected the server's ping, got {other:?}"),
        }
        expect_message(&mut ws, Message::from("got-pong:server-ping")).await;
        start_close(&mut ws, CloseCode(4000), "client-bye").await;
        match ws.recv_event().await.unwrap() {
            Some(Event::Close(frame)) => assert_eq!(frame.code, CloseCode(4000)),
            other => panic!("expected the close echo, got {other:?}"),
        }
        assert!(
            ws.recv().await.unwrap().is_none(),
            "a clean close ends with None"
        );

        let request = ClientRequest::new(&format!("{base}/server-close")).unwrap();
        let (mut ws, _) = ws::connect_tls(request, Config::default(), Arc::clone(tls))
            .await
            .expect("connect /server-close");
        ws.send_text("close-me").await.unwrap();
        match ws.recv_event().await.unwrap() {
            Some(Event::Close(frame)) => {
                assert_eq!(
                    (frame.code, frame.reason.as_str()),
                    (CloseCode(4000), "server-bye")
                );
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert!(
            ws.recv().await.unwrap().is_none(),
            "a clean close ends with None"
        );
    }
}

#[cfg(feature = "tokio-rustls")]
use async_side::{tokio_client_script, tokio_server};

/// The rustls error inside an adapter error, if it is one.
fn rustls_error(error: &Error) -> Option<&rustls::Error> {
    match error {
        Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            e.get_ref()?.downcast_ref::<rustls::Error>()
        }
        _ => None,
    }
}

fn is_unknown_issuer(error: &Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    )
}

// ------------------------------------------------------------------------------ pairs

#[test]
fn blocking_client_blocking_server_over_tls() {
    let pki = pki();
    let (port, rx) = sync_server(Arc::clone(&pki.server), Config::default());
    let client = Arc::clone(&pki.client);
    bounded("client script", move || {
        sync_client_script(&format!("wss://127.0.0.1:{port}"), &client);
    });
    check_script_reports(&rx);
}

#[test]
fn blocking_client_verifies_the_dns_name_localhost() {
    let pki = pki();
    let (port, rx) = sync_server(Arc::clone(&pki.server), Config::default());
    let client = Arc::clone(&pki.client);
    bounded("client script", move || {
        sync_client_script(&format!("wss://localhost:{port}"), &client);
    });
    check_script_reports(&rx);
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_client_tokio_server_over_tls() {
    let pki = pki();
    let (port, rx) = tokio_server(Arc::clone(&pki.server), Config::default()).await;
    let base = format!("wss://localhost:{port}");
    let script = tokio_client_script(&base, &pki.client);
    tokio::time::timeout(WATCHDOG, script)
        .await
        .expect("client script");
    tokio::task::spawn_blocking(move || check_script_reports(&rx))
        .await
        .unwrap();
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_tokio_server_over_tls() {
    let pki = pki();
    let (port, rx) = tokio_server(Arc::clone(&pki.server), Config::default()).await;
    let client = Arc::clone(&pki.client);
    tokio::task::spawn_blocking(move || {
        bounded("client script", move || {
            sync_client_script(&format!("wss://127.0.0.1:{port}"), &client);
        });
        check_script_reports(&rx);
    })
    .await
    .unwrap();
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_client_blocking_server_over_tls() {
    let pki = pki();
    let (port, rx) = sync_server(Arc::clone(&pki.server), Config::default());
    let base = format!("wss://127.0.0.1:{port}");
    let script = tokio_client_script(&base, &pki.client);
    tokio::time::timeout(WATCHDOG, script)
        .await
        .expect("client script");
    tokio::task::spawn_blocking(move || check_script_reports(&rx))
        .await
        .unwrap();
}

// ------------------------------------------------------------------------------ failures

#[test]
fn blocking_connect_refuses_a_certificate_outside_the_webpki_roots() {
    let pki = pki();
    let (port, rx) = sync_server(Arc::clone(&pki.server), Config::default());
    let result = bounded("connect", move || {
        sync::connect(format!("wss://127.0.0.1:{port}/")).map(|_| ())
    });
    let error = result.expect_err("an untrusted certificate must fail the handshake");
    assert!(is_unknown_issuer(&error), "{error:?}");
    let report = reports(&rx, 1).remove(0);
    assert_eq!(report.seen.len(), 1, "{report:?}");
    assert!(
        report.seen[0].contains("AlertReceived(UnknownCA)"),
        "the server hears why: {report:?}"
    );
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_connect_refuses_a_certificate_outside_the_webpki_roots() {
    let pki = pki();
    let (port, rx) = tokio_server(Arc::clone(&pki.server), Config::default()).await;
    let url = format!("wss://localhost:{port}/");
    let connect = rfc6455::tokio::connect(&url);
    let result = tokio::time::timeout(WATCHDOG, connect)
        .await
        .expect("bounded");
    let error = result
        .map(|_| ())
        .expect_err("an untrusted certificate must fail");
    assert!(is_unknown_issuer(&error), "{error:?}");
    let report = tokio::task::spawn_blocking(move || reports(&rx, 1).remove(0))
        .await
        .unwrap();
    assert!(
        report.seen[0].contains("AlertReceived(UnknownCA)"),
        "the server hears why: {report:?}"
    );
}

#[test]
fn blocking_client_with_the_wrong_ca_fails_and_the_server_is_told() {
    let (ours, other) = (pki(), pki_named("another test CA"));
    let (port, rx) = sync_server(Arc::clone(&ours.server), Config::default());
    let client = Arc::clone(&other.client);
    let result = bounded("connect", move || {
        let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/")).unwrap();
        sync::connect_tls(request, Config::default(), client).map(|_| ())
    });
    let error = result.expect_err("a certificate from another CA must fail");
    assert!(is_unknown_issuer(&error), "{error:?}");
    assert!(reports(&rx, 1)[0].seen[0].contains("AlertReceived(UnknownCA)"));
}

/// A raw TCP peer that sends `bytes` (e.g. half a ClientHello) and then stalls.
fn stalling_peer(port: u16, bytes: &'static [u8]) -> TcpStream {
    use std::io::Write;
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.write_all(bytes).unwrap();
    peer
}

/// The first bytes of a TLS record carrying a ClientHello: the header and a few body bytes.
const HALF_A_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00];

#[test]
fn blocking_tls_server_drops_a_stalled_tls_handshake_at_the_handshake_timeout() {
    let pki = pki();
    let config = Config::default().handshake_timeout(SHORT);
    let (port, rx) = sync_server(Arc::clone(&pki.server), config);
    for bytes in [&[][..], HALF_A_CLIENT_HELLO] {
        let started = Instant::now();
        let _peer = stalling_peer(port, bytes);
        let report = reports(&rx, 1).remove(0);
        assert_eq!(
            report.seen,
            [format!(
                "HANDSHAKE {:?}",
                Error::Handshake(HandshakeError::Timeout)
            )]
        );
        assert!(
            started.elapsed() < SHORT * 10,
            "cut at {:?}",
            started.elapsed()
        );
    }
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_tls_server_drops_a_stalled_tls_handshake_at_the_handshake_timeout() {
    let pki = pki();
    let config = Config::default().handshake_timeout(SHORT);
    let (port, rx) = tokio_server(Arc::clone(&pki.server), config).await;
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for bytes in [&[][..], HALF_A_CLIENT_HELLO] {
        let started = Instant::now();
        let _peer = stalling_peer(port, bytes);
        let rx = Arc::clone(&rx);
        let report = tokio::task::spawn_blocking(move || reports(&rx.lock().unwrap(), 1).remove(0))
            .await
            .unwrap();
        assert_eq!(
            report.seen,
            [format!(
                "HANDSHAKE {:?}",
                Error::Handshake(HandshakeError::Timeout)
            )]
        );
        assert!(
            started.elapsed() < SHORT * 10,
            "cut at {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn blocking_tls_server_cuts_a_trickling_tls_handshake_at_the_handshake_timeout() {
    // A slowloris: a TLS record header announcing 512 bytes, then one byte every 20 ms. Every
    // read brings progress but no data; the deadline must still hold.
    let pki = pki();
    let config = Config::default().handshake_timeout(SHORT);
    let (port, rx) = sync_server(Arc::clone(&pki.server), config);
    let started = Instant::now();
    let mut peer = stalling_peer(port, &[0x16, 0x03, 0x01, 0x02, 0x00]);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let trickle = thread::spawn(move || {
        use std::io::Write;
        // Pacing, not synchronisation: the peer's speed is what is under test.
        while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(Duration::from_millis(20)) {
            if peer.write_all(&[0x01]).is_err() {
                break;
            }
        }
    });
    let report = reports(&rx, 1).remove(0);
    let took = started.elapsed();
    drop(stop_tx);
    trickle.join().unwrap();
    assert_eq!(
        report.seen,
        [format!(
            "HANDSHAKE {:?}",
            Error::Handshake(HandshakeError::Timeout)
        )]
    );
    assert!(took < SHORT * 5, "cut at {took:?}");
}

/// A TCP server that accepts and then says nothing (holding the sockets until dropped).
fn silent_server() -> (u16, Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            if tx.send(tcp).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

#[test]
fn blocking_client_gives_up_on_a_silent_tls_server_at_the_handshake_timeout() {
    let pki = pki();
    let (port, _held) = silent_server();
    let client = Arc::clone(&pki.client);
    let started = Instant::now();
    let result = bounded("connect", move || {
        let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/")).unwrap();
        let config = Config::default().handshake_timeout(SHORT);
        sync::connect_tls(request, config, client).map(|_| ())
    });
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < SHORT * 10,
        "gave up after {:?}",
        started.elapsed()
    );
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_client_gives_up_on_a_silent_tls_server_at_the_handshake_timeout() {
    let pki = pki();
    let (port, _held) = silent_server();
    let started = Instant::now();
    let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/")).unwrap();
    let config = Config::default().handshake_timeout(SHORT);
    let connect = rfc6455::tokio::connect_tls(request, config, Arc::clone(&pki.client));
    let result = tokio::time::timeout(WATCHDOG, connect)
        .await
        .expect("bounded");
    assert!(
        matches!(result, Err(Error::Handshake(HandshakeError::Timeout))),
        "{:?}",
        result.map(|_| ())
    );
    assert!(
        started.elapsed() < SHORT * 10,
        "gave up after {:?}",
        started.elapsed()
    );
}

#[test]
fn blocking_tls_eof_without_close_is_1006_not_an_io_error() {
    let pki = pki();
    let (port, rx) = sync_server(Arc::clone(&pki.server), Config::default());
    let client = Arc::clone(&pki.client);
    bounded("client", move || {
        let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/drop")).unwrap();
        let (mut ws, _) = sync::connect_tls(request, Config::default(), client).unwrap();
        ws.send_text("hello").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from("hello")));
        // Dropped: TCP ends without a Close frame and without TLS close_notify.
    });
    let report = reports(&rx, 1).remove(0);
    assert_eq!(
        report.seen,
        [
            "TEXT hello",
            "ERROR connection closed without a close frame"
        ],
        "a cut TLS stream is an abnormal closure (1006) at the WebSocket level"
    );
}

#[cfg(feature = "tokio-rustls")]
#[tokio::test]
async fn tokio_tls_eof_without_close_is_1006_not_an_io_error() {
    let pki = pki();
    let (port, rx) = tokio_server(Arc::clone(&pki.server), Config::default()).await;
    let request = ClientRequest::new(&format!("wss://127.0.0.1:{port}/drop")).unwrap();
    let (mut ws, _) =
        rfc6455::tokio::connect_tls(request, Config::default(), Arc::clone(&pki.client))
            .await
            .unwrap();
    ws.send_text("hello").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::from("hello")));
    drop(ws);
    let report = tokio::task::spawn_blocking(move || reports(&rx, 1).remove(0))
        .await
        .unwrap();
    assert_eq!(
        report.seen,
        [
            "TEXT hello",
            "ERROR connection closed without a close frame"
        ]
    );
}
