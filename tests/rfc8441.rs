//! WebSocket over HTTP/2 (RFC 8441): `examples/axum_echo.rs`'s app served by hyper's HTTP/2
//! with extended CONNECT, and our `h2` client, on 127.0.0.1:0 (features `axum08`, `h2`,
//! `tokio-rustls`):
//!
//! | server | transport | client |
//! |---|---|---|
//! | the example's app | h2c (prior knowledge) | our `rfc6455::h2` client, two WebSockets on one connection |
//! | the example's app | TLS, ALPN `h2` | our `rfc6455::h2` client |
//! | the example's app | TLS, ALPN `h2` | headless Chromium: an https page whose WebSocket goes over HTTP/2 |
//! | the example's app | TLS, no ALPN (HTTP/1.1) | our tokio client, same server |
//! | hyper HTTP/2 without extended CONNECT | h2c | our `h2` client, which refuses to send the CONNECT |
//!
//! Every server records the requests that reached `/ws`, so each test asserts on the server
//! side that the WebSocket came as an extended CONNECT over HTTP/2 (or as an HTTP/1.1 GET).
#![cfg(all(feature = "axum08", feature = "h2", feature = "tokio-rustls"))]

extern crate axum08 as axum;

#[allow(dead_code)]
#[path = "../examples/axum_echo.rs"]
mod axum_echo;
#[allow(dead_code)]
mod interop_support;

use interop_support::Peer;
use rcgen::{CertificateParams, KeyPair};
use rfc6455::h2::H2Connection;
use rfc6455::handshake::{ClientRequest, OriginPolicy};
use rfc6455::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rfc6455::tls::rustls::{self, RootCertStore};
use rfc6455::{CloseCode, Config, Error, Event, HandshakeError, MessageKind};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Turns a hang into a failure; never used to wait for something to happen.
const WATCHDOG: Duration = Duration::from_secs(30);

/// How a request reached `/ws`, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    version: http::Version,
    method: http::Method,
    /// The `:protocol` pseudo-header (RFC 8441 §4), if any.
    protocol: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The example's app, recording every request to `/ws` before it runs.
fn recorded_app(log: Log) -> axum::Router {
    axum_echo::app().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let log = Arc::clone(&log);
            async move {
                if request.uri().path() == "/ws" {
                    log.lock().unwrap().push(Seen {
                        version: request.version(),
                        method: request.method().clone(),
                        protocol: request
                            .extensions()
                            .get::<hyper::ext::Protocol>()
                            .map(|p| p.as_str().to_owned()),
                    });
                }
                next.run(request).await
            }
        },
    ))
}

fn extended_connect() -> Seen {
    Seen {
        version: http::Version::HTTP_2,
        method: http::Method::CONNECT,
        protocol: Some("websocket".to_owned()),
    }
}

/// A self-signed certificate for `127.0.0.1`.
struct Cert {
    der: CertificateDer<'static>,
    key: Vec<u8>,
    pem: String,
}

fn cert() -> Cert {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    Cert {
        der: cert.der().clone(),
        key: key.serialize_der(),
        pem: cert.pem(),
    }
}

/// TLS over a TcpListener for `axum::serve`, offering ALPN `h2` and `http/1.1`.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that fails the TLS handshake (or gives up) is skipped.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves the recorded app on 127.0.0.1:0, over TLS when `cert` is given, with
/// `axum::serve` (hyper-util's HTTP/1.1 + HTTP/2 server, extended CONNECT enabled).
async fn serve(cert: Option<&Cert>) -> (SocketAddr, Log) {
    let log = Log::default();
    let app = recorded_app(Arc::clone(&log));
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    match cert {
        None => {
            tokio::spawn(async move { axum::serve(tcp, app).await });
        }
        Some(cert) => {
            let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der.clone()],
                PrivateKeyDer::Pkcs8(cert.key.clone().into()),
            )
            .expect("server config");
            tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let listener = TlsListener {
                tcp,
                acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
            };
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    (addr, log)
}

fn trusting(cert: &Cert) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert.der.clone()).expect("root");
    rfc6455::tls::client_config(roots)
}

/// The echo checks every client here runs: the first subprotocol chosen, text, 1 MiB of
/// binary, a fragmented text, a Ping answered, the closing handshake with 1000.
async fn echo_script<S>(socket: &mut rfc6455::tokio::WebSocket<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket.send_text("hello over h2").await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some("hello over h2".into()));
    let blob = interop_support::blob();
    socket.send_binary(&blob).await.unwrap();
    assert_eq!(socket.recv().await.unwrap(), Some(blob.into()));
    for (part, fin) in [("frag-", false), ("ment-", false), ("ed", true)] {
        socket
            .send_fragment(MessageKind::Text, part.as_bytes(), fin)
            .await
            .unwrap();
    }
    assert_eq!(socket.recv().await.unwrap(), Some("frag-ment-ed".into()));
    socket.send_ping(b"p").await.unwrap();
    assert_eq!(
        socket.recv_event().await.unwrap(),
        Some(Event::Pong(b"p".as_slice().into()))
    );
    socket.close(CloseCode::NORMAL, "bye").await.unwrap();
}

fn offering(uri: &str) -> ClientRequest {
    ClientRequest::new(uri)
        .unwrap()
        .protocol("echo.v1")
        .protocol("echo.v0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8441_our_h2_client_and_server_over_h2c() {
    let (addr, log) = serve(None).await;
    tokio::time::timeout(WATCHDOG, async {
        let (mut socket, response) = rfc6455::h2::connect(offering(&format!("ws://{addr}/ws")))
            .await
            .expect("h2c websocket");
        // RFC 8441 §5: 200, no Sec-WebSocket-Accept; the subprotocol as over HTTP/1.1.
        assert_eq!(
            (response.status(), response.protocol()),
            (200, Some("echo.v1"))
        );
        assert_eq!(response.header("sec-websocket-accept"), None);
        echo_script(&mut socket).await;

        // Two WebSockets at once on one HTTP/2 connection.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let h2 = H2Connection::handshake(tcp, &Config::default())
            .await
            .unwrap();
        assert!(h2.supports_websocket());
        let uri = format!("ws://{addr}/ws");
        let (mut a, _) = h2.open(uri.as_str(), Config::default()).await.unwrap();
        let (mut b, _) = h2
            .clone()
            .open(uri.as_str(), Config::default())
            .await
            .unwrap();
        a.send_text("to a").await.unwrap();
        b.send_text("to b").await.unwrap();
        assert_eq!(b.recv().await.unwrap(), Some("to b".into()));
        assert_eq!(a.recv().await.unwrap(), Some("to a".into()));
        a.close(CloseCode::NORMAL, "").await.unwrap();
        b.send_text("b still open").await.unwrap();
        assert_eq!(b.recv().await.unwrap(), Some("b still open".into()));
        b.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .expect("within the watchdog");
    assert_eq!(*log.lock().unwrap(), vec![extended_connect(); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8441_our_h2_client_and_server_over_tls_alpn_h2() {
    let cert = cert();
    let (addr, log) = serve(Some(&cert)).await;
    let tls = trusting(&cert);
    tokio::time::timeout(WATCHDOG, async {
        let uri = format!("wss://127.0.0.1:{}/ws", addr.port());
        let (mut socket, response) =
            rfc6455::h2::connect_tls(offering(&uri), Config::default(), Arc::clone(&tls))
                .await
                .expect("websocket over h2 over tls");
        assert_eq!(
            (response.status(), response.protocol()),
            (200, Some("echo.v1"))
        );
        echo_script(&mut socket).await;
        // The same server, reached over HTTP/1.1 by our tokio client (no ALPN).
        let (mut socket, response) =
            rfc6455::tokio::connect_tls(offering(&uri), Config::default(), tls)
                .await
                .expect("websocket over http/1.1 over tls");
        assert_eq!(
            (response.status(), response.protocol()),
            (101, Some("echo.v1"))
        );
        echo_script(&mut socket).await;
    })
    .await
    .expect("within the watchdog");
    let http11 = Seen {
        version: http::Version::HTTP_11,
        method: http::Method::GET,
        protocol: None,
    };
    assert_eq!(*log.lock().unwrap(), vec![extended_connect(), http11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8441_refusals_reach_our_h2_client_as_statuses() {
    let (addr, _) = serve(None).await;
    tokio::time::timeout(WATCHDOG, async {
        let refused = |request: ClientRequest| async move {
            match rfc6455::h2::connect(request).await {
                Err(Error::Rejected(response)) => response,
                other => panic!("{:?}", other.map(|(_, r)| r)),
            }
        };
        // RFC 6455 §10.2 over HTTP/2: a foreign page's Origin is refused with 403, and the
        // client gets the answer whole, as over HTTP/1.1.
        let foreign = ClientRequest::new(&format!("ws://{addr}/ws"))
            .unwrap()
            .header("Origin", "https://evil.example");
        let response = refused(foreign).await;
        assert_eq!(response.status(), 403);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            (response.body(), response.body_complete()),
            (
                &b"origin not allowed by the server's origin policy\n"[..],
                true
            )
        );
        let missing = ClientRequest::new(&format!("ws://{addr}/nope")).unwrap();
        assert_eq!(refused(missing).await.status(), 404);
        // An answer choosing what was not offered fails the client (RFC 6455 §4.1).
        let own = ClientRequest::new(&format!("ws://{addr}/ws"))
            .unwrap()
            .header("Origin", &format!("http://{addr}"));
        let (mut socket, _) = rfc6455::h2::connect(own).await.expect("own origin");
        socket.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .expect("within the watchdog");
}

/// RFC 8441 §3: without SETTINGS_ENABLE_CONNECT_PROTOCOL from the server, the client must
/// not send the extended CONNECT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8441_3_no_extended_connect_without_the_setting() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let reached = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&reached);
    tokio::spawn(async move {
        let (stream, _) = tcp.accept().await.unwrap();
        let service = hyper::service::service_fn(move |_request: http::Request<_>| {
            *counter.lock().unwrap() += 1;
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
        });
        // HTTP/2 without `enable_connect_protocol()`.
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    tokio::time::timeout(WATCHDOG, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let h2 = H2Connection::handshake(tcp, &Config::default())
            .await
            .unwrap();
        assert!(!h2.supports_websocket());
        match h2.open(format!("ws://{addr}/"), Config::default()).await {
            Err(Error::Handshake(HandshakeError::InvalidResponse(why))) => {
                assert!(why.contains("extended connect"), "{why}");
            }
            other => panic!("{:?}", other.map(|(_, r)| r)),
        }
    })
    .await
    .expect("within the watchdog");
    assert_eq!(*reached.lock().unwrap(), 0, "no request was sent");
}

/// Headless Chromium loads an https page over HTTP/2 from the server; the page's WebSocket
/// rides the same HTTP/2 connection as an extended CONNECT, which the server records.
#[test]
fn rfc8441_chromium_https_page_websocket_over_h2() {
    const TEST: &str = "rfc8441 browser_echo";
    let Some(node) = interop_support::node(TEST, &["playwright-core"]) else {
        return;
    };
    if interop_support::chromium(TEST).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cert = cert();
    let (addr, log) = runtime.block_on(serve(Some(&cert)));
    let dir = std::env::temp_dir().join(format!("rfc6455-rfc8441-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, &cert.pem).unwrap();
    let url = format!("https://127.0.0.1:{}/echo.html", addr.port());
    let mut peer = Peer::spawn(
        TEST,
        &node,
        &["browser_echo.mjs", &url, "--cert", pem.to_str().unwrap()],
    );
    let status = peer.finish(Duration::from_secs(90));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success()
            && peer.lines()
                == [
                    "PAGE h2".to_owned(),
                    "OK echo ok protocol=echo.v1 close=1000".to_owned()
                ],
        "{TEST}: {status}\n{}",
        peer.transcript()
    );
    assert_eq!(
        *log.lock().unwrap(),
        [extended_connect()],
        "the browser's WebSocket came as an RFC 8441 extended CONNECT over HTTP/2"
    );
    drop(runtime);
}

/// The default origin policy over HTTP/2 compares the Origin with `:authority`.
#[test]
fn rfc8441_origin_policy_uses_the_authority() {
    let policy = OriginPolicy::default();
    assert!(policy.allows(Some("https://127.0.0.1:8443"), "127.0.0.1:8443"));
    assert!(!policy.allows(Some("https://127.0.0.1:8444"), "127.0.0.1:8443"));
}
