//! Clients through proxies, over 127.0.0.1, for both adapters.
//!
//! * Hostile proxies written here (each on `127.0.0.1:0`, one thread per connection): a huge
//!   answer head, refusals, 407, a proxy that never answers (the handshake timeout), garbage
//!   and truncated SOCKS5 replies, end of stream, an unreachable proxy. Each must end in its
//!   own error, never a hang.
//! * Relays written here (HTTP CONNECT and SOCKS5) in front of our echo server: what the
//!   client sends them (authority, credentials, address type), and that the bytes a proxy
//!   sends after its answer reach the layer above instead of being dropped.
//! * Real proxies: Debian's `tinyproxy` (HTTP CONNECT) and `pproxy` from PyPI (SOCKS5),
//!   with and without credentials, each started on a free loopback port with a generated
//!   configuration and killed after: `ws://` and `wss://` (TLS inside the tunnel, to a
//!   certificate made here with rcgen), blocking and tokio clients, against our echo server
//!   started in-process. The proxy's own log must show each tunnel. A missing program prints
//!   `SKIPPED ...` unless `RFC6455_INTEROP=required` (then it fails);
//!   `scripts/setup-peers.sh` installs both.
//!
//! Every wait is bounded by `WATCHDOG`, which only turns a hang into a failure.
#![cfg(feature = "tokio-rustls")]

#[allow(dead_code)]
mod interop_support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rfc6455::handshake::ClientRequest;
use rfc6455::proxy::Proxy;
use rfc6455::tls::rustls::pki_types::PrivateKeyDer;
use rfc6455::tls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use rfc6455::{CloseCode, Config, Error, HandshakeError, Message, ProxyError, sync, tls};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(30);
/// The handshake timeout of the tests that wait for it.
const SHORT: Duration = Duration::from_millis(300);

// ------------------------------------------------------------------------------ TLS

/// A CA and a server certificate it signed for `127.0.0.1` and `localhost`, as rustls
/// configs.
struct Pki {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rfc6455 proxy test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = tls::server_config(vec![leaf.der().clone()], key).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    Pki {
        server,
        client: tls::client_config(roots),
    }
}

// ------------------------------------------------------------------------------ echo server

/// Our blocking server on an ephemeral port (TLS if `tls` is given), echoing every message
/// on every connection, each on its own thread. The accepting thread outlives the test
/// harmlessly.
fn echo_server(tls: Option<Arc<ServerConfig>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let tls = tls.clone();
            thread::spawn(move || match tls {
                Some(tls) => {
                    if let Ok(ws) = sync::accept_tls(tcp, tls, Config::default(), |_| {
                        Ok(rfc6455::handshake::Accept::new())
                    }) {
                        echo(ws);
                    }
                }
                None => {
                    if let Ok(ws) = sync::accept(tcp) {
                        echo(ws);
                    }
                }
            });
        }
    });
    port
}

fn echo<S: sync::Transport>(mut ws: sync::WebSocket<S>) {
    while let Ok(Some(message)) = ws.recv() {
        if ws.send(message).is_err() {
            return;
        }
    }
}

// ------------------------------------------------------------------------------ clients

/// The bytes of the binary message: large enough to take many TCP segments.
fn payload() -> Vec<u8> {
    (0..100_000usize).map(|i| (i % 251) as u8).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adapter {
    Blocking,
    Tokio,
}

const ADAPTERS: [Adapter; 2] = [Adapter::Blocking, Adapter::Tokio];

/// Connects with `adapter` (through `connect_tls`, trusting `roots`, for both schemes) and
/// runs a text echo, a 100 kB binary echo and a clean close.
fn round_trip(
    adapter: Adapter,
    request: ClientRequest,
    config: Config,
    roots: &Arc<ClientConfig>,
) -> Result<(), Error> {
    let roots = Arc::clone(roots);
    let what = format!("{adapter:?} client");
    bounded(&what, move || match adapter {
        Adapter::Blocking => {
            let (mut ws, _) = sync::connect_tls(request, config, roots)?;
            ws.send_text("hello through the proxy")?;
            check_echo(ws.recv()?, Message::Text("hello through the proxy".into()));
            ws.send_binary(&payload())?;
            check_echo(ws.recv()?, Message::Binary(payload().into()));
            ws.close(CloseCode::NORMAL, "bye")
        }
        Adapter::Tokio => runtime().block_on(async move {
            let (mut ws, _) = rfc6455::tokio::connect_tls(request, config, roots).await?;
            ws.send_text("hello through the proxy").await?;
            check_echo(
                ws.recv().await?,
                Message::Text("hello through the proxy".into()),
            );
            ws.send_binary(&payload()).await?;
            check_echo(ws.recv().await?, Message::Binary(payload().into()));
            ws.close(CloseCode::NORMAL, "bye").await
        }),
    })
}

fn check_echo(got: Option<Message>, want: Message) {
    assert!(got.as_ref() == Some(&want), "echo: got {got:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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

/// The proxy error inside `result`, for assertions.
fn proxy_error(result: &Result<(), Error>) -> Option<ProxyError> {
    match result {
        Err(Error::Handshake(HandshakeError::Proxy(e))) => Some(*e),
        _ => None,
    }
}

/// Connects to `ws://127.0.0.1:1/` (nothing is reached past the proxy) through `proxy`
/// with each adapter and returns each one's proxy error.
fn failures(proxy: &str, config: &Config) -> Vec<(Adapter, Result<(), Error>)> {
    let roots = pki().client;
    ADAPTERS
        .iter()
        .map(|&adapter| {
            let request = ClientRequest::new("ws://127.0.0.1:1/")
                .unwrap()
                .proxy(Proxy::parse(proxy).unwrap());
            (
                adapter,
                round_trip(adapter, request, config.clone(), &roots),
            )
        })
        .collect()
}

fn assert_fails_with(proxy: &str, config: &Config, want: ProxyError) {
    for (adapter, result) in failures(proxy, config) {
        assert_eq!(proxy_error(&result), Some(want), "{adapter:?}: {result:?}");
    }
}

// ------------------------------------------------------------------------------ scripted proxies

/// A proxy on `127.0.0.1:0` that runs `script` on every connection, each on its own
/// thread; returns its port. The accepting thread outlives the test harmlessly.
fn scripted(script: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = Arc::new(script);
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let script = Arc::clone(&script);
            thread::spawn(move || script(tcp));
        }
    });
    port
}

/// Reads an HTTP head (up to the blank line) one byte at a time, so nothing after it is
/// taken; `None` if the stream ends first.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Reads a SOCKS5 greeting (VER NMETHODS METHODS) and returns the methods.
fn read_greeting(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    let mut methods = vec![0u8; usize::from(head[1])];
    stream.read_exact(&mut methods).ok()?;
    Some(methods)
}

/// Reads a SOCKS5 request and returns it whole.
fn read_socks_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = vec![0u8; 4];
    stream.read_exact(&mut request).ok()?;
    let address = match request[3] {
        1 => 4,
        4 => 16,
        _ => {
            let mut len = [0u8];
            stream.read_exact(&mut len).ok()?;
            request.push(len[0]);
            usize::from(len[0])
        }
    };
    let mut rest = vec![0u8; address + 2];
    stream.read_exact(&mut rest).ok()?;
    request.extend_from_slice(&rest);
    Some(request)
}

/// Holds the connection without answering until the client goes away.
fn stall(mut stream: TcpStream) {
    let mut sink = [0u8; 256];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Copies bytes both ways between `a` and `b` until either side ends.
fn relay(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let one_way = |mut from: TcpStream, mut to: TcpStream| {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    };
    let back = thread::spawn(move || one_way(b2, a2));
    one_way(a, b);
    let _ = back.join();
}

// ------------------------------------------------------------------------------ hostile proxies

#[test]
fn http_connect_answer_head_over_the_limit_fails_head_too_large() {
    let port = scripted(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Filler: ");
        let _ = s.write_all(&[b'a'; 64 << 10]);
        stall(s);
    });
    let config = Config::default().max_handshake_size(4096);
    let proxy = format!("http://127.0.0.1:{port}");
    assert_fails_with(&proxy, &config, ProxyError::HeadTooLarge(4096));
}

#[test]
fn http_connect_too_many_headers_fails() {
    let port = scripted(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        let _ = s.write_all(&b"X: y\r\n".repeat(100));
        stall(s);
    });
    let config = Config::default().max_headers(8);
    let proxy = format!("http://127.0.0.1:{port}");
    assert_fails_with(&proxy, &config, ProxyError::TooManyHeaders(8));
}

#[test]
fn rfc9110_9_3_6_non_2xx_refuses_with_its_status() {
    for (answer, status) in [
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"[..],
            403,
        ),
        (
            b"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nnope!",
            502,
        ),
        (
            b"HTTP/1.1 500 Unable to connect\r\nConnection: close\r\n\r\n<html>",
            500,
        ),
    ] {
        let port = scripted(move |mut s| {
            let _ = read_head(&mut s);
            let _ = s.write_all(answer);
        });
        let proxy = format!("http://127.0.0.1:{port}");
        assert_fails_with(&proxy, &Config::default(), ProxyError::Refused(status));
    }
}

#[test]
fn rfc9110_15_5_8_407_is_auth_required_or_failed_and_basic_credentials_are_sent() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let port = scripted(move |mut s| {
        let head = read_head(&mut s).unwrap_or_default();
        let _ = tx.lock().unwrap().send(head);
        let _ = s.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let proxy = format!("http://127.0.0.1:{port}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::AuthRequired);
    for _ in ADAPTERS {
        let head = rx.recv_timeout(WATCHDOG).unwrap();
        assert_eq!(
            head,
            "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
        );
    }
    // RFC 7617 §2's example credentials; the ':' in the password is percent-encoded.
    let proxy = format!("http://Aladdin:open%20sesame@127.0.0.1:{port}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::AuthFailed);
    for _ in ADAPTERS {
        let head = rx.recv_timeout(WATCHDOG).unwrap();
        assert!(
            head.contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            "{head}"
        );
    }
}

#[test]
fn silent_http_proxy_fails_with_the_proxy_timeout() {
    let port = scripted(stall);
    let config = Config::default().handshake_timeout(SHORT);
    let started = Instant::now();
    assert_fails_with(
        &format!("http://127.0.0.1:{port}"),
        &config,
        ProxyError::Timeout,
    );
    // Two connects, each bounded by the handshake timeout (WATCHDOG would be 30 s).
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn trickling_proxy_cannot_extend_the_deadline() {
    // One byte of the answer, then nothing: the deadline set at the start still holds.
    let port = scripted(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"H");
        stall(s);
    });
    let config = Config::default().handshake_timeout(SHORT);
    assert_fails_with(
        &format!("http://127.0.0.1:{port}"),
        &config,
        ProxyError::Timeout,
    );
    let port = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(&[5, 0]);
        let _ = read_socks_request(&mut s);
        let _ = s.write_all(&[5, 0, 0]);
        stall(s);
    });
    assert_fails_with(
        &format!("socks5h://127.0.0.1:{port}"),
        &config,
        ProxyError::Timeout,
    );
}

#[test]
fn eof_before_the_answer_fails_unexpected_eof() {
    // The request is read before closing: closing with unread data would send a reset, an
    // I/O error rather than an end of stream.
    let port = scripted(|mut s| drop(read_head(&mut s)));
    assert_fails_with(
        &format!("http://127.0.0.1:{port}"),
        &Config::default(),
        ProxyError::UnexpectedEof,
    );
    let port = scripted(|mut s| drop(read_greeting(&mut s)));
    assert_fails_with(
        &format!("socks5h://127.0.0.1:{port}"),
        &Config::default(),
        ProxyError::UnexpectedEof,
    );
    let port = scripted(|mut s| {
        let _ = read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 Connection established\r\nVia: x\r\n");
    });
    assert_fails_with(
        &format!("http://127.0.0.1:{port}"),
        &Config::default(),
        ProxyError::UnexpectedEof,
    );
}

#[test]
fn rfc1928_6_truncated_socks5_reply_fails_unexpected_eof() {
    let port = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(&[5, 0]);
        let _ = read_socks_request(&mut s);
        let _ = s.write_all(&[5, 0, 0, 1, 127, 0]);
    });
    let proxy = format!("socks5h://127.0.0.1:{port}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::UnexpectedEof);
}

#[test]
fn garbage_socks5_replies_fail_invalid_response() {
    let http_answer = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let why = "not a socks5 answer (version is not 5)";
    let proxy = format!("socks5h://127.0.0.1:{http_answer}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::InvalidResponse(why));

    let bad_address = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(&[5, 0]);
        let _ = read_socks_request(&mut s);
        let _ = s.write_all(&[5, 0, 0, 9, 1, 2, 3, 4, 0, 80]);
        stall(s);
    });
    let why = "unknown address type in socks5 reply";
    let proxy = format!("socks5h://127.0.0.1:{bad_address}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::InvalidResponse(why));

    let unoffered = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(&[5, 2]);
        stall(s);
    });
    let why = "socks5 proxy chose a method that was not offered";
    let proxy = format!("socks5h://127.0.0.1:{unoffered}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::InvalidResponse(why));
}

#[test]
fn rfc1928_6_each_failure_reply_is_reported_with_its_code() {
    for code in [1u8, 2, 3, 4, 5, 6, 7, 8, 0x42] {
        let port = scripted(move |mut s| {
            let _ = read_greeting(&mut s);
            let _ = s.write_all(&[5, 0]);
            let _ = read_socks_request(&mut s);
            // RFC 1928 §6: after a failure reply the server closes the connection.
            let _ = s.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
        });
        let proxy = format!("socks5h://127.0.0.1:{port}");
        assert_fails_with(&proxy, &Config::default(), ProxyError::Socks5Reply(code));
    }
}

#[test]
fn rfc1928_3_and_rfc1929_2_socks5_authentication_failures() {
    let no_method = scripted(|mut s| {
        let _ = read_greeting(&mut s);
        let _ = s.write_all(&[5, 0xff]);
    });
    let proxy = format!("socks5h://127.0.0.1:{no_method}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::AuthRequired);
    let proxy = format!("socks5h://u:p@127.0.0.1:{no_method}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::NoAcceptableMethod);

    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let rejecting = scripted(move |mut s| {
        let methods = read_greeting(&mut s).unwrap_or_default();
        let _ = s.write_all(&[5, 2]);
        let mut auth = vec![0u8; 2];
        let _ = s.read_exact(&mut auth);
        let mut rest = vec![0u8; usize::from(auth[1]) + 1];
        let _ = s.read_exact(&mut rest);
        let mut password = vec![0u8; usize::from(*rest.last().unwrap_or(&0))];
        let _ = s.read_exact(&mut password);
        auth.extend_from_slice(&rest);
        auth.extend_from_slice(&password);
        let _ = tx.lock().unwrap().send((methods, auth));
        // RFC 1929 §2: a failure status, then the server closes the connection.
        let _ = s.write_all(&[1, 1]);
    });
    let proxy = format!("socks5h://bob:s%3Acret@127.0.0.1:{rejecting}");
    assert_fails_with(&proxy, &Config::default(), ProxyError::AuthFailed);
    for _ in ADAPTERS {
        let (methods, auth) = rx.recv_timeout(WATCHDOG).unwrap();
        assert_eq!(methods, [0, 2], "no auth and username/password offered");
        assert_eq!(auth, b"\x01\x03bob\x06s:cret");
    }
}

#[test]
fn unreachable_proxy_is_an_io_error_naming_it() {
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (adapter, result) in failures(
        &format!("http://u:secret@127.0.0.1:{port}"),
        &Config::default(),
    ) {
        let Err(Error::Io(e)) = &result else {
            panic!("{adapter:?}: {result:?}")
        };
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{adapter:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("cannot reach proxy http://127.0.0.1:{port}")),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}

// ------------------------------------------------------------------------------ relays

/// An HTTP CONNECT proxy in front of `127.0.0.1:<upstream>` whatever the target, sending
/// `extra` right after its answer; reports each request head it got.
fn connect_relay(upstream: u16, extra: &'static [u8]) -> (u16, Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let port = scripted(move |mut client| {
        let Some(head) = read_head(&mut client) else {
            return;
        };
        let _ = tx.lock().unwrap().send(head);
        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let answer = [&b"HTTP/1.1 200 Connection established\r\n\r\n"[..], extra].concat();
        // One write: the answer and the extra bytes arrive together.
        if client.write_all(&answer).is_ok() {
            relay(client, server);
        }
    });
    (port, rx)
}

/// A SOCKS5 proxy (no authentication) in front of `127.0.0.1:<upstream>` whatever the
/// target; reports each CONNECT request it got.
fn socks_relay(upstream: u16) -> (u16, Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let port = scripted(move |mut client| {
        if read_greeting(&mut client).is_none() || client.write_all(&[5, 0]).is_err() {
            return;
        }
        let Some(request) = read_socks_request(&mut client) else {
            return;
        };
        let _ = tx.lock().unwrap().send(request);
        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        if client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).is_ok() {
            relay(client, server);
        }
    });
    (port, rx)
}

#[test]
fn through_a_connect_relay_both_adapters_both_schemes() {
    let pki = pki();
    let (ws_port, wss_port) = (echo_server(None), echo_server(Some(pki.server)));
    for (scheme, upstream) in [("ws", ws_port), ("wss", wss_port)] {
        let (proxy, heads) = connect_relay(upstream, b"");
        for adapter in ADAPTERS {
            // The URI names the server by a name only the relay "resolves".
            let uri = format!("{scheme}://localhost:{upstream}/");
            let proxy = Proxy::parse(&format!("http://127.0.0.1:{proxy}")).unwrap();
            let request = ClientRequest::new(&uri).unwrap().proxy(proxy);
            let result = round_trip(adapter, request, Config::default(), &pki.client);
            assert!(result.is_ok(), "{scheme} {adapter:?}: {result:?}");
            let head = heads.recv_timeout(WATCHDOG).unwrap();
            let authority = format!("localhost:{upstream}");
            assert_eq!(
                head,
                format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n")
            );
        }
    }
}

#[test]
fn bytes_after_the_proxy_answer_reach_the_layer_above() {
    // The relay sends "JUNK" with its 200, before the server's first byte. Were it dropped
    // with the answer, the connection would succeed; kept (as it must be: RFC 9110 §9.3.6,
    // "data received after that header section is from the server"), it is what the
    // WebSocket handshake (ws://) or TLS (wss://) reads first, and fails on.
    let pki = pki();
    let (ws_port, wss_port) = (echo_server(None), echo_server(Some(pki.server)));
    for (scheme, upstream) in [("ws", ws_port), ("wss", wss_port)] {
        let (proxy, _heads) = connect_relay(upstream, b"JUNK");
        for adapter in ADAPTERS {
            let uri = format!("{scheme}://127.0.0.1:{upstream}/");
            let proxy = Proxy::parse(&format!("http://127.0.0.1:{proxy}")).unwrap();
            let request = ClientRequest::new(&uri).unwrap().proxy(proxy);
            let result = round_trip(adapter, request, Config::default(), &pki.client);
            match (scheme, &result) {
                ("ws", Err(Error::Handshake(HandshakeError::InvalidResponse(why)))) => {
                    assert_eq!(*why, "malformed status line or header");
                }
                ("wss", Err(Error::Io(e))) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
                }
                _ => panic!("{scheme} {adapter:?}: {result:?}"),
            }
        }
    }
}

#[test]
fn rfc1928_5_socks5_resolves_locally_and_socks5h_sends_the_name() {
    let port = echo_server(None);
    let (proxy, requests) = socks_relay(port);
    let roots = pki().client;
    let mut localhost = b"\x05\x01\x00\x03\x09localhost".to_vec();
    localhost.extend_from_slice(&port.to_be_bytes());
    let mut loopback = b"\x05\x01\x00\x01\x7f\x00\x00\x01".to_vec();
    loopback.extend_from_slice(&port.to_be_bytes());
    for (scheme, host, want) in [
        ("socks5h", "localhost", &localhost),
        // `localhost` resolves to 127.0.0.1 here (see `getent ahosts localhost`).
        ("socks5", "localhost", &loopback),
        ("socks5h", "127.0.0.1", &loopback),
    ] {
        for adapter in ADAPTERS {
            let uri = format!("ws://{host}:{port}/");
            let proxy = Proxy::parse(&format!("{scheme}://127.0.0.1:{proxy}")).unwrap();
            let request = ClientRequest::new(&uri).unwrap().proxy(proxy);
            let result = round_trip(adapter, request, Config::default(), &roots);
            assert!(result.is_ok(), "{scheme} {host} {adapter:?}: {result:?}");
            assert_eq!(
                &requests.recv_timeout(WATCHDOG).unwrap(),
                want,
                "{scheme} {host}"
            );
        }
    }
}

// ------------------------------------------------------------------------------ real proxies

/// A proxy program running as a subprocess, its stdout and stderr lines merged into one
/// channel. Dropping it kills it and removes its directory.
struct Daemon {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    dir: PathBuf,
}

impl Daemon {
    fn spawn(name: &str, dir: PathBuf, program: &Path, args: &[String]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        let (tx, lines) = mpsc::channel();
        forward(child.stdout.take().unwrap(), tx.clone());
        forward(child.stderr.take().unwrap(), tx);
        Self {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            dir,
        }
    }

    /// Waits (at most `WATCHDOG`) until `count` lines so far satisfy `matches`.
    fn wait_for(&mut self, what: &str, count: usize, matches: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WATCHDOG;
        while self.seen.iter().filter(|l| matches(l)).count() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "{}: no {what} ({e:?}); its output:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn forward(pipe: impl Read + Send + 'static, tx: Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// A port free right now (bound, then released: the program started next binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rfc6455-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tinyproxy_program(test: &str) -> Option<PathBuf> {
    let runs = Command::new("tinyproxy")
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        Some(PathBuf::from("tinyproxy"))
    } else {
        interop_support::skip(
            test,
            "`tinyproxy` is not on PATH (apt-get install tinyproxy)",
        )
    }
}

fn pproxy_program(test: &str) -> Option<PathBuf> {
    let path = interop_support::interop_dir().join(".venv/bin/pproxy");
    if path.exists() {
        Some(path)
    } else {
        interop_support::skip(test, "tests/interop/.venv has no pproxy")
    }
}

/// tinyproxy on a free port, with Basic credentials `alice` / `s3cret` if `auth`.
fn start_tinyproxy(program: &Path, auth: bool) -> (Daemon, u16) {
    let port = free_port();
    let name = format!("tinyproxy-{}", if auth { "auth" } else { "open" });
    let dir = scratch_dir(&name);
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\n\
         LogLevel Info\n"
    );
    if auth {
        config.push_str("BasicAuth alice s3cret\n");
    }
    let file = dir.join("tinyproxy.conf");
    std::fs::write(&file, config).unwrap();
    let args = ["-d".to_owned(), "-c".to_owned(), file.display().to_string()];
    let mut daemon = Daemon::spawn(&name, dir, program, &args);
    daemon.wait_for("start", 1, |l| l.contains("Accepting connections"));
    (daemon, port)
}

/// pproxy serving SOCKS5 on a free port, with credentials `bob` / `p@ss:w0rd` if `auth`
/// (`--auth 0`: no per-IP cache of past authentications, so every connection authenticates).
fn start_pproxy(program: &Path, auth: bool) -> (Daemon, u16) {
    let port = free_port();
    let name = format!("pproxy-{}", if auth { "auth" } else { "open" });
    let dir = scratch_dir(&name);
    let credentials = if auth { "#bob:p@ss:w0rd" } else { "" };
    let args = [
        "-l".to_owned(),
        format!("socks5://127.0.0.1:{port}{credentials}"),
        "--auth".to_owned(),
        "0".to_owned(),
        "-v".to_owned(),
    ];
    let mut daemon = Daemon::spawn(&name, dir, program, &args);
    daemon.wait_for("start", 1, |l| l.contains("Serving on"));
    (daemon, port)
}

/// One line of the matrix.
struct Outcome {
    proxy: &'static str,
    auth: bool,
    scheme: &'static str,
    adapter: Adapter,
    result: Result<(), Error>,
}

/// Runs ws:// and wss:// with both adapters through `proxy` (a URL whose port is `PORT`),
/// checking after each that `daemon`'s log shows one more tunnel to the echo server.
#[allow(clippy::too_many_arguments)]
fn run_matrix(
    label: &'static str,
    auth: bool,
    daemon: &mut Daemon,
    proxy: &Proxy,
    host: &str,
    tunnel_line: fn(&str, u16) -> bool,
    pki: &Pki,
    ports: (u16, u16),
    out: &mut Vec<Outcome>,
) {
    let mut tunnels = [0usize, 0];
    for (i, (scheme, port)) in [("ws", ports.0), ("wss", ports.1)].into_iter().enumerate() {
        for adapter in ADAPTERS {
            let uri = format!("{scheme}://{host}:{port}/");
            let request = ClientRequest::new(&uri).unwrap().proxy(proxy.clone());
            let result = round_trip(adapter, request, Config::default(), &pki.client);
            if result.is_ok() {
                tunnels[i] += 1;
                daemon.wait_for("tunnel log line", tunnels[i], |l| tunnel_line(l, port));
            }
            out.push(Outcome {
                proxy: label,
                auth,
                scheme,
                adapter,
                result,
            });
        }
    }
}

fn report(outcomes: &[Outcome]) {
    println!("proxy matrix (echo round trip + clean close):");
    for o in outcomes {
        let auth = if o.auth { "auth" } else { "no auth" };
        let result = match &o.result {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("FAILED: {e}"),
        };
        println!(
            "  {:<16} {:<8} {:<4} {:<9} {result}",
            o.proxy,
            auth,
            o.scheme,
            format!("{:?}", o.adapter)
        );
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed",
        failed.len(),
        outcomes.len()
    );
}

#[test]
fn tinyproxy_connect_matrix() {
    const TEST: &str = "proxy tinyproxy";
    let Some(program) = tinyproxy_program(TEST) else {
        return;
    };
    let pki = pki();
    let ports = (
        echo_server(None),
        echo_server(Some(Arc::clone(&pki.server))),
    );
    // tinyproxy logs "Request (file descriptor N): CONNECT 127.0.0.1:PORT HTTP/1.1".
    let tunnel_line = |line: &str, port: u16| line.contains(&format!("CONNECT 127.0.0.1:{port} "));
    let mut outcomes = Vec::new();
    for auth in [false, true] {
        let (mut daemon, port) = start_tinyproxy(&program, auth);
        let url = if auth {
            format!("http://alice:s3cr%65t@127.0.0.1:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        let proxy = Proxy::parse(&url).unwrap();
        let pki_ref = &pki;
        run_matrix(
            "tinyproxy CONNECT",
            auth,
            &mut daemon,
            &proxy,
            "127.0.0.1",
            tunnel_line,
            pki_ref,
            ports,
            &mut outcomes,
        );
        if auth {
            // Wrong and missing credentials: tinyproxy answers 407 to both.
            let wrong = Proxy::parse(&format!("http://alice:nope@127.0.0.1:{port}")).unwrap();
            let none = Proxy::parse(&format!("http://127.0.0.1:{port}")).unwrap();
            for (proxy, want) in [
                (wrong, ProxyError::AuthFailed),
                (none, ProxyError::AuthRequired),
            ] {
                for adapter in ADAPTERS {
                    let uri = format!("ws://127.0.0.1:{}/", ports.0);
                    let request = ClientRequest::new(&uri).unwrap().proxy(proxy.clone());
                    let result = round_trip(adapter, request, Config::default(), &pki.client);
                    assert_eq!(proxy_error(&result), Some(want), "{adapter:?}: {result:?}");
                }
            }
        }
    }
    report(&outcomes);
}

#[test]
fn pproxy_socks5_matrix() {
    const TEST: &str = "proxy pproxy";
    let Some(program) = pproxy_program(TEST) else {
        return;
    };
    let pki = pki();
    let ports = (
        echo_server(None),
        echo_server(Some(Arc::clone(&pki.server))),
    );
    // pproxy -v logs "socks5 127.0.0.1:CLIENTPORT -> localhost:PORT" per tunnel.
    let tunnel_line = |line: &str, port: u16| {
        line.starts_with("socks5 ") && line.ends_with(&format!(" -> localhost:{port}"))
    };
    let mut outcomes = Vec::new();
    for auth in [false, true] {
        let (mut daemon, port) = start_pproxy(&program, auth);
        let url = if auth {
            format!("socks5h://bob:p%40ss%3Aw0rd@127.0.0.1:{port}")
        } else {
            format!("socks5h://127.0.0.1:{port}")
        };
        let proxy = Proxy::parse(&url).unwrap();
        // socks5h with a name: the proxy resolves `localhost` (remote DNS).
        run_matrix(
            "pproxy SOCKS5",
            auth,
            &mut daemon,
            &proxy,
            "localhost",
            tunnel_line,
            &pki,
            ports,
            &mut outcomes,
        );
        if auth {
            // pproxy closes the connection on bad credentials without the RFC 1929 status
            // (so this is an end of stream rather than AuthFailed): still a proxy error.
            let wrong = Proxy::parse(&format!("socks5h://bob:nope@127.0.0.1:{port}")).unwrap();
            for adapter in ADAPTERS {
                let uri = format!("ws://localhost:{}/", ports.0);
                let request = ClientRequest::new(&uri).unwrap().proxy(wrong.clone());
                let result = round_trip(adapter, request, Config::default(), &pki.client);
                assert!(proxy_error(&result).is_some(), "{adapter:?}: {result:?}");
            }
        }
    }
    report(&outcomes);
}
