//! An echo server on axum 0.8: the WebSocket on `/` and on `/ws` (HTTP/1.1, and h2c or
//! HTTP/2 extended CONNECT where the client speaks it), accepting the client's first
//! subprotocol, plus a page at `/echo.html` that talks to `/ws` from a browser.
//!
//! ```text
//! cargo run --release --example axum_echo --features axum08 -- [ADDR]   # 127.0.0.1:9001
//! ```
//!
//! It prints `axum echo server listening on ws://ADDR/` once it listens. The handler is
//! `echo`; the rest is routing and the page.

// This repository's manifest names its axum 0.8 dependency `axum08` (see the feature's docs);
// in your project it is plain `axum`.
extern crate axum08 as axum;

use axum::response::{Html, Response};
use axum::routing::{any, get};
use rfc6455::axum08::WebSocketUpgrade;
use rfc6455::handshake::Accept;

async fn echo(ws: WebSocketUpgrade) -> Response {
    let accept = match ws.request().protocols().next() {
        Some(first) => Accept::new().protocol(first),
        None => Accept::new(),
    };
    ws.accept(accept).on_upgrade(|mut socket| async move {
        while let Ok(Some(message)) = socket.recv().await {
            if socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

/// The routes: the echo on `/` and `/ws` (`any`: over HTTP/2 a WebSocket opens with
/// CONNECT, RFC 8441), the page at `/echo.html`.
pub fn app() -> axum::Router {
    axum::Router::new()
        .route("/", any(echo))
        .route("/ws", any(echo))
        .route("/echo.html", get(|| async { Html(PAGE) }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "axum echo server listening on ws://{}/",
        listener.local_addr()?
    );
    axum::serve(listener, app()).await
}

/// A page that checks the echo from a browser: it opens `ws(s)://<its host>/ws` offering
/// two subprotocols, sends a text, a 100 KiB text and 256 bytes of binary, checks each echo
/// and the subprotocol, closes with 1000, and puts the verdict in `window.echoResult`
/// (`"ok ..."` or `"fail ..."`) and in `#result`.
pub const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>rfc6455 axum echo</title>
<p id="result">running</p>
<script>
const result = document.getElementById('result');
function done(text) { window.echoResult = text; result.textContent = text; }
const big = 'x'.repeat(100 * 1024);
const bytes = new Uint8Array(256).map((_, i) => i);
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const ws = new WebSocket(`${scheme}://${location.host}/ws`, ['echo.v1', 'echo.v0']);
ws.binaryType = 'arraybuffer';
const expected = ['hello', big, bytes];
const same = (got, want) => typeof want === 'string' ? got === want
  : got instanceof ArrayBuffer && new Uint8Array(got).every((b, i) => b === want[i])
    && got.byteLength === want.length;
ws.onopen = () => {
  if (ws.protocol !== 'echo.v1') return done(`fail subprotocol ${JSON.stringify(ws.protocol)}`);
  for (const message of expected) ws.send(message);
};
ws.onmessage = (event) => {
  const want = expected.shift();
  if (!same(event.data, want)) return done(`fail echo of ${typeof want === 'string' ? want.length + ' chars' : 'binary'}`);
  if (expected.length === 0) ws.close(1000, 'done');
};
ws.onclose = (event) => done(event.code === 1000 && expected.length === 0
  ? `ok protocol=${ws.protocol} close=${event.code}` : `fail close ${event.code} with ${expected.length} left`);
ws.onerror = () => done('fail websocket error');
</script>
"#;
