//! A fault-injecting TCP proxy for tests: it listens on 127.0.0.1 (a free port), relays
//! each connection to an upstream address, and on command breaks the network the ways real
//! networks break:
//!
//! * [`Mode::Stall`]: every connection stops moving bytes but stays open (a frozen NAT, a
//!   suspended laptop); what was read is held and delivered once [`Mode::Forward`] returns;
//! * [`Mode::BlackHole`]: bytes are read and thrown away, nothing is ever answered, new
//!   connections are accepted and never reach upstream (a firewall that drops);
//! * [`Mode::Refuse`]: new connections are reset as soon as they are accepted;
//! * [`ChaosProxy::reset_all`]: every open connection is reset (RST to both sides);
//! * [`ChaosProxy::set_upstream`]: later connections go elsewhere.
//!
//! [`ChaosProxy::accepted`] counts the connections accepted, which is how a test counts a
//! client's attempts. Runs on the test's tokio runtime; dropping the proxy stops it and
//! resets what it holds.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with bytes and new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Relay both ways.
    Forward,
    /// Hold every byte (connections stay open); relaying resumes with `Forward`.
    Stall,
    /// Read and discard every byte, answer nothing; new connections never reach upstream.
    BlackHole,
    /// Reset new connections at once; open ones keep relaying.
    Refuse,
}

/// The proxy; see the module docs.
pub struct ChaosProxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    mode: watch::Sender<Mode>,
    /// Bumped by `reset_all`: connections older than the value reset themselves.
    epoch: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts relaying to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let upstream = Arc::new(Mutex::new(upstream));
        let (mode, _) = watch::channel(Mode::Forward);
        let (epoch, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&upstream),
            mode.subscribe(),
            epoch.subscribe(),
            Arc::clone(&accepted),
        ));
        Self {
            addr,
            upstream,
            mode,
            epoch,
            accepted,
            task,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Switches the fault mode, for open and new connections alike.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Resets every open connection, on both sides (SO_LINGER 0, then close).
    pub fn reset_all(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Relays later connections to `upstream`.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.reset_all();
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    mode: watch::Receiver<Mode>,
    epoch: watch::Receiver<u64>,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let born = *epoch.borrow();
        match *mode.borrow() {
            Mode::Refuse => {
                let _ = inbound.set_zero_linger();
                drop(inbound);
                continue;
            }
            Mode::BlackHole => {
                tokio::spawn(swallow(inbound, epoch.clone(), born));
                continue;
            }
            Mode::Forward | Mode::Stall => {}
        }
        let target = *upstream.lock().unwrap();
        let (mode, epoch) = (mode.clone(), epoch.clone());
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                let _ = inbound.set_zero_linger();
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(relay(in_read, out_write, mode.clone(), epoch.clone(), born));
            tokio::spawn(relay(out_read, in_write, mode, epoch, born));
        });
    }
}

/// Whether `reset_all` was called since a connection was born.
fn reset_since(epoch: &watch::Receiver<u64>, born: u64) -> bool {
    *epoch.borrow() > born
}

/// Resets the socket behind `read` and `write`: zero linger, and no FIN from the write
/// half, so closing sends RST once both relays have dropped their halves.
fn reset(read: OwnedReadHalf, write: OwnedWriteHalf) {
    let _ = read.as_ref().set_zero_linger();
    let _ = write.as_ref().set_zero_linger();
    write.forget();
    drop(read);
}

/// One direction of a connection.
async fn relay(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    mut epoch: watch::Receiver<u64>,
    born: u64,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        if reset_since(&epoch, born) {
            return reset(from, to);
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => {
                    // The sender closed (or reset): pass the end on.
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            _ = epoch.changed() => continue,
        };
        // Hold the bytes while stalled; a reset wins over a stall.
        loop {
            let current = *mode.borrow_and_update();
            match current {
                Mode::Stall => {
                    tokio::select! {
                        _ = mode.changed() => {}
                        _ = epoch.changed() => {}
                    }
                    if reset_since(&epoch, born) {
                        return reset(from, to);
                    }
                }
                Mode::BlackHole => break,
                Mode::Forward | Mode::Refuse => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// A black-holed connection: read and discard until reset or closed.
async fn swallow(mut inbound: TcpStream, mut epoch: watch::Receiver<u64>, born: u64) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        tokio::select! {
            read = inbound.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { return },
            _ = epoch.changed() => {
                if reset_since(&epoch, born) {
                    let _ = inbound.set_zero_linger();
                    return;
                }
            }
        }
    }
}
