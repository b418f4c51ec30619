//! The server's opening handshake on a typical browser request (Chrome's headers): parse the
//! request, check it, compute `Sec-WebSocket-Accept`, write the 101 response.
//!
//! `handshake/server/rfc6455`: `ServerHandshake::receive` + `accept` + draining the response.
//! `handshake/server/tungstenite`: `tungstenite::accept` over an in-memory stream holding the
//! request (it reads, parses, answers). fastwebsockets upgrades through hyper only, so it has
//! no comparable sans-hyper path and is left out.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use rfc6455::Config;
use rfc6455::handshake::{Accept, ServerHandshake};
use std::hint::black_box;
use std::io::{self, Read, Write};

// A browser's request; its page is on the server's own host and port, as the default origin
// policy (same host) requires.
const REQUEST: &[u8] = b"GET /chat?room=42 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://example.com:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
Cookie: session=6f1c2a9e8b7d4c3a; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// The request once, then EOF; writes are swallowed.
struct OneShot {
    data: &'static [u8],
    written: usize,
}

impl Read for OneShot {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for OneShot {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += black_box(buf).len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn server(c: &mut Criterion<common::CpuTime>) {
    let mut g = c.benchmark_group("handshake/server");
    g.bench_function("rfc6455", |b| {
        b.iter(|| {
            let mut hs = ServerHandshake::new(Config::default());
            hs.receive(black_box(REQUEST)).unwrap();
            assert!(hs.request().is_some());
            let mut conn = hs.accept(Accept::new()).unwrap();
            let mut out = 0;
            while !conn.pending_transmit().is_empty() {
                let n = black_box(conn.pending_transmit()).len();
                out += n;
                conn.advance_transmit(n);
            }
            black_box((conn, out))
        });
    });
    g.bench_function("tungstenite", |b| {
        b.iter(|| {
            let stream = OneShot {
                data: black_box(REQUEST),
                written: 0,
            };
            black_box(tungstenite::accept(stream).unwrap())
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = server
}
criterion_main!(benches);
