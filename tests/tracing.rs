//! The `tracing` feature: a `websocket` span per connection with `role` and `peer`, DEBUG
//! events for the handshake's outcome, close codes sent and received, and protocol errors,
//! and never a payload byte. A small subscriber records every span and event.
#![cfg(all(feature = "tracing", feature = "tokio"))]

use rfc6455::handshake::ClientRequest;
use rfc6455::{CloseCode, Config, Error, Event, HandshakeError};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

/// One event, with the fields of the span it was emitted in.
#[derive(Debug, Clone)]
struct Seen {
    message: String,
    fields: HashMap<String, String>,
    span: HashMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, HashMap<String, String>>>,
    events: Mutex<Vec<Seen>>,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Clone)]
struct Recorder(Arc<Capture>);

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = HashMap::new();
        fields.insert("name".to_owned(), attrs.metadata().name().to_owned());
        attrs.record(&mut Fields(&mut fields));
        self.0.spans.lock().unwrap().insert(id, fields);
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(fields) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let span = STACK
            .with(|s| s.borrow().last().copied())
            .and_then(|id| self.0.spans.lock().unwrap().get(&id).cloned())
            .unwrap_or_default();
        self.0.events.lock().unwrap().push(Seen {
            message,
            fields,
            span,
        });
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut stack = s.borrow_mut();
            if let Some(at) = stack.iter().rposition(|&id| id == span.into_u64()) {
                stack.remove(at);
            }
        });
    }
}

/// The process-wide recorder (the adapters' threads report to it too), and a lock so that
/// the tests here run one at a time.
fn recorder() -> (MutexGuard<'static, ()>, Arc<Capture>) {
    static SERIAL: Mutex<()> = Mutex::new(());
    static CAPTURE: OnceLock<Arc<Capture>> = OnceLock::new();
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let capture = CAPTURE.get_or_init(|| {
        let capture = Arc::new(Capture::default());
        tracing::subscriber::set_global_default(Recorder(Arc::clone(&capture)))
            .expect("the only subscriber");
        capture
    });
    capture.events.lock().unwrap().clear();
    (guard, Arc::clone(capture))
}

fn events(capture: &Capture) -> Vec<Seen> {
    capture.events.lock().unwrap().clone()
}

/// The events of the connections with this role.
fn of_role(events: &[Seen], role: &str) -> Vec<Seen> {
    events
        .iter()
        .filter(|e| e.span.get("name").map(String::as_str) == Some("websocket"))
        .filter(|e| e.span.get("role").map(String::as_str) == Some(role))
        .cloned()
        .collect()
}

fn find<'a>(events: &'a [Seen], message: &str, fields: &[(&str, &str)]) -> Option<&'a Seen> {
    events
        .iter()
        .find(|e| e.message == message && fields.iter().all(|(k, v)| e.field(k) == Some(v)))
}

/// Nothing recorded holds `marker`: no payload, Ping data or close reason.
fn assert_no_payload(events: &[Seen], capture: &Capture, marker: &str) {
    for e in events {
        let all = format!("{e:?}");
        assert!(!all.contains(marker), "payload bytes in {all}");
    }
    let spans = format!("{:?}", capture.spans.lock().unwrap());
    assert!(!spans.contains(marker), "payload bytes in a span: {spans}");
}

const WATCHDOG: Duration = Duration::from_secs(20);

#[test]
fn handshake_close_codes_and_the_span_are_reported_without_payloads() {
    let (_serial, capture) = recorder();
    runtime().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut socket = rfc6455::tokio::accept(tcp).await.unwrap();
            while let Some(event) = socket.recv_event().await.unwrap() {
                if let Event::Message(message) = event {
                    socket.send(message).await.unwrap();
                }
            }
        });
        tokio::time::timeout(WATCHDOG, async {
            let request = ClientRequest::new(&format!("ws://{addr}/")).unwrap();
            let (mut socket, _) = rfc6455::tokio::connect(request).await.unwrap();
            socket.send_text("SECRET-PAYLOAD").await.unwrap();
            assert_eq!(socket.recv().await.unwrap(), Some("SECRET-PAYLOAD".into()));
            socket.send_ping(b"SECRET-PING").await.unwrap();
            socket
                .close(CloseCode::from(4000), "SECRET-REASON")
                .await
                .unwrap();
            server.await.unwrap();
        })
        .await
        .expect("within the watchdog");

        let all = events(&capture);
        let client = of_role(&all, "client");
        let server = of_role(&all, "server");
        // The client's span knows the server's address; a server over any stream does not.
        assert!(
            client
                .iter()
                .all(|e| e.span.get("peer") == Some(&addr.to_string())),
            "{client:#?}"
        );
        for (events, role) in [(&client, "client"), (&server, "server")] {
            assert!(
                find(events, "websocket handshake done", &[("status", "101")]).is_some(),
                "{role}: {events:#?}"
            );
            assert!(find(events, "closed", &[]).is_some(), "{role}: {events:#?}");
        }
        let sent = [
            ("code", "4000"),
            ("by", "application"),
            ("reason_len", "13"),
        ];
        assert!(find(&client, "close sent", &sent).is_some(), "{client:#?}");
        assert!(find(&client, "close received", &[("code", "4000")]).is_some());
        assert!(
            find(
                &server,
                "close received",
                &[("code", "4000"), ("reason_len", "13")]
            )
            .is_some()
        );
        assert!(
            find(&server, "close sent", &[("code", "4000"), ("by", "echo")]).is_some(),
            "{server:#?}"
        );
        assert!(find(&client, "close sent", &[("by", "echo")]).is_none());
        assert_no_payload(&all, &capture, "SECRET");
    });
}

#[test]
fn protocol_errors_and_refused_handshakes_are_reported() {
    let (_serial, capture) = recorder();
    runtime().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                outcomes.push(match rfc6455::tokio::accept(tcp).await {
                    Ok(mut socket) => socket.recv().await.map(|_| ()),
                    Err(e) => Err(e),
                });
            }
            outcomes
        });
        tokio::time::timeout(WATCHDOG, async {
            // A client that sends an unmasked frame (RFC 6455 §5.1: the server fails with 1002).
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(
            format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
            tcp.write_all(b"\x81\x06SECRET").await.unwrap();
            // Gone at once, so the server's wait for our Close ends with the stream.
            drop(tcp);
            // A browser page of another site: refused with 403 by the default origin policy.
            let foreign = ClientRequest::new(&format!("ws://{addr}/"))
                .unwrap()
                .header("Origin", "https://evil.example");
            match rfc6455::tokio::connect(foreign).await {
                Err(Error::Rejected(response)) if response.status() == 403 => {}
                other => panic!("{:?}", other.map(|_| ())),
            }
            let outcomes = server.await.unwrap();
            assert!(
                matches!(outcomes[0], Err(Error::Protocol(_))),
                "{outcomes:?}"
            );
            assert!(
                matches!(
                    outcomes[1],
                    Err(Error::Handshake(HandshakeError::OriginNotAllowed))
                ),
                "{outcomes:?}"
            );
        })
        .await
        .expect("within the watchdog");

        let all = events(&capture);
        let server = of_role(&all, "server");
        let client = of_role(&all, "client");
        assert!(
            find(&server, "protocol error", &[("code", "1002")]).is_some(),
            "{server:#?}"
        );
        assert!(
            find(
                &server,
                "close sent",
                &[("code", "1002"), ("by", "failure")]
            )
            .is_some()
        );
        let refused = server
            .iter()
            .find(|e| e.message == "websocket handshake failed")
            .expect("the refusal");
        assert!(
            refused.field("error").unwrap().contains("origin"),
            "{refused:?}"
        );
        let failed = client
            .iter()
            .find(|e| e.message == "websocket handshake failed")
            .expect("the client's failure");
        assert!(failed.field("error").unwrap().contains("403"), "{failed:?}");
        assert_no_payload(&all, &capture, "SECRET");
    });
}

/// The blocking adapter reports the same, from its own thread.
#[test]
fn the_blocking_adapter_reports_too() {
    let (_serial, capture) = recorder();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, peer) = listener.accept().unwrap();
        let mut ws = rfc6455::sync::accept(tcp).unwrap();
        ws.span().record("peer", tracing::field::display(peer));
        while ws.recv().unwrap().is_some() {}
    });
    let (mut ws, _) = rfc6455::sync::connect(format!("ws://{addr}/")).unwrap();
    ws.close(CloseCode::GOING_AWAY, "").unwrap();
    server.join().unwrap();
    let all = events(&capture);
    let server = of_role(&all, "server");
    assert!(
        find(&server, "close received", &[("code", "1001")]).is_some(),
        "{server:#?}"
    );
    assert!(
        server.iter().any(|e| e
            .span
            .get("peer")
            .is_some_and(|p| p.starts_with("127.0.0.1:"))),
        "the peer recorded through span(): {server:#?}"
    );
    let client = of_role(&all, "client");
    assert!(
        find(
            &client,
            "close sent",
            &[("code", "1001"), ("by", "application")]
        )
        .is_some()
    );
    let _ = Config::default();
}

/// The hyper helper reports the handshake in a span with the peer the service knew.
#[cfg(feature = "hyper")]
#[test]
fn the_hyper_helper_reports_with_the_peer() {
    use hyper_util::rt::TokioIo;
    let (_serial, capture) = recorder();
    runtime().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
                request.extensions_mut().insert(peer);
                let response = match rfc6455::hyper::upgrade(&mut request, Config::default()) {
                    Ok(upgrade) => upgrade
                        .on_upgrade(Ok(rfc6455::handshake::Accept::new()), |mut ws| async move {
                            while let Ok(Some(_)) = ws.recv().await {}
                        }),
                    Err(refused) => refused.into_response(),
                };
                async { Ok::<_, std::convert::Infallible>(response.map(|b: String| b)) }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await
        });
        tokio::time::timeout(WATCHDOG, async {
            let (mut socket, _) = rfc6455::tokio::connect(format!("ws://{addr}/"))
                .await
                .unwrap();
            let client_port = socket.get_ref().tcp().local_addr().unwrap();
            socket.close(CloseCode::NORMAL, "").await.unwrap();
            let _ = server.await;
            let all = events(&capture);
            let server = of_role(&all, "server");
            let done = find(&server, "websocket handshake done", &[("status", "101")])
                .unwrap_or_else(|| panic!("{server:#?}"));
            assert_eq!(done.span.get("peer"), Some(&client_port.to_string()));
            assert!(
                find(&server, "close received", &[("code", "1000")]).is_some(),
                "{server:#?}"
            );
        })
        .await
        .expect("within the watchdog");
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
