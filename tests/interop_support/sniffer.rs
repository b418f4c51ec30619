//! A relay that sits between a WebSocket client and server on 127.0.0.1 and reads the frame
//! headers going by, so an interop test can see what no peer reports: which extension the
//! 101 agreed and how many frames each way carried RSV1 (permessage-deflate's "compressed"
//! bit). It forwards every byte unchanged, for any number of connections (a browser opens
//! several; only those answered with 101 are read as frames).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the relay saw, over every connection answered with 101.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The `Sec-WebSocket-Extensions` values of the 101 responses.
    pub extensions: Vec<String>,
    /// Frames (all, with RSV1) from client to server.
    pub to_server: (usize, usize),
    /// Frames (all, with RSV1) from server to client.
    pub to_client: (usize, usize),
}

/// A relay listening on an ephemeral port, forwarding to `target`.
pub struct Sniffer {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Sniffer {
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let seen = Arc::clone(&shared);
                thread::spawn(move || relay(client, server, &seen));
            }
        });
        Self { port, seen }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

/// Relays one connection both ways until each side ends.
fn relay(client: TcpStream, server: TcpStream, seen: &Arc<Mutex<Seen>>) {
    let upgraded = Arc::new(Mutex::new(None::<bool>));
    let up = {
        let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (seen, upgraded) = (Arc::clone(seen), Arc::clone(&upgraded));
        thread::spawn(move || pump(from, to, Direction::ToServer, &seen, &upgraded))
    };
    pump(server, client, Direction::ToClient, seen, &upgraded);
    let _ = up.join();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// Copies `from` to `to`, reading the HTTP head and then frame headers as they pass.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Direction,
    seen: &Arc<Mutex<Seen>>,
    upgraded: &Arc<Mutex<Option<bool>>>,
) {
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Read before forwarding: the 101 must be seen before the client can answer it.
        parser.feed(&buf[..n], dir, seen, upgraded);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[derive(Default)]
struct Parser {
    /// The HTTP head so far; `None` once it is over.
    head: Option<Vec<u8>>,
    head_done: bool,
    /// Frame header bytes gathered so far.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
}

impl Parser {
    fn feed(
        &mut self,
        mut data: &[u8],
        dir: Direction,
        seen: &Arc<Mutex<Seen>>,
        upgraded: &Arc<Mutex<Option<bool>>>,
    ) {
        if !self.head_done {
            let head = self.head.get_or_insert_with(Vec::new);
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let rest = head.split_off(end + 4);
            self.head_done = true;
            if dir == Direction::ToClient {
                let text = String::from_utf8_lossy(head).into_owned();
                let is_101 = text.starts_with("HTTP/1.1 101");
                *upgraded.lock().unwrap() = Some(is_101);
                if is_101 {
                    let mut seen = seen.lock().unwrap();
                    for line in text.split("\r\n") {
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                                seen.extensions.push(value.trim().to_owned());
                            }
                        }
                    }
                }
            }
            self.head = None;
            return self.frames(&rest, dir, seen, upgraded);
        }
        self.frames(core::mem::take(&mut data), dir, seen, upgraded);
    }

    fn frames(
        &mut self,
        mut data: &[u8],
        dir: Direction,
        seen: &Arc<Mutex<Seen>>,
        upgraded: &Arc<Mutex<Option<bool>>>,
    ) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64) as usize;
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header.push(data[0]);
            data = &data[1..];
            let Some((len, header_len)) = header_length(&self.header) else {
                continue;
            };
            if self.header.len() < header_len {
                continue;
            }
            // Frames only count on a connection the server upgraded (a page load is not one).
            if *upgraded.lock().unwrap() == Some(true) {
                let rsv1 = self.header[0] & 0x40 != 0;
                let mut seen = seen.lock().unwrap();
                let count = match dir {
                    Direction::ToServer => &mut seen.to_server,
                    Direction::ToClient => &mut seen.to_client,
                };
                count.0 += 1;
                count.1 += usize::from(rsv1);
            }
            self.header.clear();
            self.skip = len;
        }
    }
}

/// The payload length and header length of a frame whose header starts `h`, once `h` holds
/// enough of it to tell.
fn header_length(h: &[u8]) -> Option<(u64, usize)> {
    if h.len() < 2 {
        return None;
    }
    let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
    match h[1] & 0x7f {
        126 if h.len() >= 4 => Some((u64::from(u16::from_be_bytes([h[2], h[3]])), 4 + mask)),
        127 if h.len() >= 10 => {
            let len = u64::from_be_bytes(h[2..10].try_into().unwrap());
            Some((len, 10 + mask))
        }
        126 | 127 => None,
        n => Some((u64::from(n), 2 + mask)),
    }
}
