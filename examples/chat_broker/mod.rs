//! The chat's message log: a Redis Stream shared by every node, or the same thing in memory
//! for a single process.
//!
//! Every message gets an ID from the log, `<milliseconds>-<sequence>` as Redis Streams make
//! them, so IDs grow with time and the order is the same on every node. A node reads the log
//! in one task and hands each new entry to its connections through a broadcast channel; a
//! client that comes back with the last ID it saw is first given what it missed
//! ([`Broker::after`]), then the live feed.

pub mod resp;

use resp::{Limits, Value};
use rfc6455::{Config, Message, PreparedMessage};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Entries kept in the log (Redis trims with `MAXLEN ~`, so a little more may stay).
pub const KEEP: usize = 10_000;
/// Entries read from the log per request (replay pages, live reads).
pub const PAGE: usize = 64;
/// How long one Redis command may take before the node gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the reader's `XREAD` blocks for new entries before it asks again.
const BLOCK: Duration = Duration::from_secs(5);

/// A stream entry ID: milliseconds since the epoch (Redis's clock), then a sequence number
/// within that millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds since 1970 when the entry was added.
    pub ms: u64,
    /// Sequence within that millisecond.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID greater than this one (for "everything after", which `XRANGE` spells
    /// `(id` only from Redis 6.2 on).
    pub const fn successor(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => Self { ms: self.ms, seq },
            None => Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<Self> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad stream ID {s:?}"));
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// One chat message as the log holds it.
#[derive(Debug)]
pub struct Entry {
    /// Its place in the log.
    pub id: StreamId,
    /// The sender's nickname (empty for clients that do not speak the chat protocol).
    pub nick: String,
    /// The sender's own ID for the message, so it can tell its message came through.
    pub cid: String,
    /// The message as sent.
    pub message: Message,
    /// Framed once for every connection that wants it (see `tokio_chat`'s protocols).
    framed: [OnceLock<PreparedMessage>; 2],
}

impl Entry {
    /// A new entry.
    pub fn new(id: StreamId, nick: String, cid: String, message: Message) -> Self {
        Self {
            id,
            nick,
            cid,
            message,
            framed: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The entry framed in form `which` (0 or 1), made by `make` the first time any
    /// connection asks: a broadcast is encoded once per form, not once per member.
    pub fn framed(
        &self,
        which: usize,
        config: &Config,
        make: impl FnOnce(&Self) -> Message,
    ) -> &PreparedMessage {
        self.framed[which].get_or_init(|| PreparedMessage::new(&make(self), config))
    }

    /// Reads an entry from an `XRANGE`/`XREAD` item: `[id, [field, value, ...]]`. Only a
    /// reply of another shape is an error. Fields that another writer to the stream got
    /// wrong are made harmless instead (control characters in a name would break the chat
    /// protocol's lines; bad UTF-8 is replaced): refusing the entry would stop the node's
    /// reader at it for good.
    fn from_redis(item: Value) -> io::Result<Self> {
        let mut parts = item.into_array()?.into_iter();
        let (Some(id), Some(fields), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "redis: a stream entry is not [id, fields]",
            ));
        };
        let id: StreamId = id.into_string()?.parse()?;
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        let line = |bytes: Vec<u8>| text(bytes).replace(char::is_control, "?");
        let (mut nick, mut cid, mut binary, mut body) =
            (String::new(), String::new(), false, Vec::new());
        let mut fields = fields.into_array()?.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            let value = value.into_bytes()?;
            match name.into_bytes()?.as_slice() {
                b"nick" => nick = line(value),
                b"cid" => cid = line(value),
                b"kind" => binary = value == b"binary",
                b"body" => body = value,
                _ => {} // fields a later version may add
            }
        }
        let message = if binary {
            Message::from(body)
        } else {
            Message::from(text(body))
        };
        Ok(Self::new(id, nick, cid, message))
    }
}

/// The log: in memory for one process, or a Redis Stream shared by several.
pub enum Broker {
    /// One process: entries live (and die) with it.
    Local(Local),
    /// Several processes: entries live in Redis.
    Redis(Redis),
}

/// The in-memory log.
pub struct Local {
    log: Mutex<VecDeque<Arc<Entry>>>,
    live: broadcast::Sender<Arc<Entry>>,
}

/// A Redis Stream and this node's reader of it.
pub struct Redis {
    addr: String,
    key: String,
    /// For `XADD` and `XRANGE`: one command at a time, reconnected after a failure. The
    /// reader has a connection of its own, since `XREAD BLOCK` holds it.
    commands: tokio::sync::Mutex<Option<resp::Connection>>,
    live: broadcast::Sender<Arc<Entry>>,
}

impl Broker {
    /// An in-memory log; `queue` is the broadcast channel's capacity.
    pub fn local(queue: usize) -> Arc<Self> {
        Arc::new(Self::Local(Local {
            log: Mutex::new(VecDeque::new()),
            live: broadcast::channel(queue).0,
        }))
    }

    /// The stream `key` on the Redis at `addr`: checks that Redis answers, finds the last
    /// entry, and starts the task that reads new entries from there on. Starting from that
    /// ID (not `$`) leaves no gap between what [`Broker::after`] returns and the live feed.
    ///
    /// # Errors
    /// Redis cannot be reached or answers oddly.
    pub async fn redis(addr: &str, key: &str, queue: usize) -> io::Result<Arc<Self>> {
        let mut connection = connect(addr).await?;
        let last = connection
            .call(
                &[b"XREVRANGE", key.as_bytes(), b"+", b"-", b"COUNT", b"1"],
                COMMAND_TIMEOUT,
            )
            .await?
            .into_array()?
            .into_iter()
            .next()
            .map(Entry::from_redis)
            .transpose()?
            .map_or(StreamId { ms: 0, seq: 0 }, |e| e.id);
        let broker = Arc::new(Self::Redis(Redis {
            addr: addr.to_owned(),
            key: key.to_owned(),
            commands: tokio::sync::Mutex::new(Some(connection)),
            live: broadcast::channel(queue).0,
        }));
        tokio::spawn(read_stream(Arc::clone(&broker), last));
        Ok(broker)
    }

    /// The live feed: every entry added from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Entry>> {
        match self {
            Self::Local(local) => local.live.subscribe(),
            Self::Redis(redis) => redis.live.subscribe(),
        }
    }

    /// Adds a message to the log. It reaches this node's connections through the live feed
    /// (from Redis, like everyone else's), not directly.
    ///
    /// # Errors
    /// Redis failed or timed out; the message may or may not have been added.
    pub async fn publish(&self, nick: &str, cid: &str, message: &Message) -> io::Result<()> {
        match self {
            Self::Local(local) => {
                let mut log = local.log.lock().unwrap_or_else(PoisonError::into_inner);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                // As Redis does: the clock's millisecond, or the last ID's successor if the
                // clock has not moved on (or went back).
                let id = match log.back() {
                    Some(last) if last.id.ms >= now => last.id.successor(),
                    _ => StreamId { ms: now, seq: 0 },
                };
                let entry = Arc::new(Entry::new(id, nick.into(), cid.into(), message.clone()));
                if log.len() == KEEP {
                    log.pop_front();
                }
                log.push_back(Arc::clone(&entry));
                // Sent under the lock, so the feed's order is the log's. Fails only when
                // nobody listens.
                let _ = local.live.send(entry);
                Ok(())
            }
            Self::Redis(redis) => {
                let kind: &[u8] = match message {
                    Message::Text(_) => b"text",
                    Message::Binary(_) => b"binary",
                };
                let keep = KEEP.to_string();
                let args: [&[u8]; 14] = [
                    b"XADD",
                    redis.key.as_bytes(),
                    b"MAXLEN",
                    b"~",
                    keep.as_bytes(),
                    b"*",
                    b"nick",
                    nick.as_bytes(),
                    b"cid",
                    cid.as_bytes(),
                    b"kind",
                    kind,
                    b"body",
                    message.as_bytes(),
                ];
                redis.command(&args).await.map(drop)
            }
        }
    }

    /// Up to `count` entries after `after`, oldest first.
    ///
    /// # Errors
    /// Redis failed or timed out.
    pub async fn after(&self, after: StreamId, count: usize) -> io::Result<Vec<Arc<Entry>>> {
        match self {
            Self::Local(local) => {
                let log = local.log.lock().unwrap_or_else(PoisonError::into_inner);
                let start = log.partition_point(|e| e.id <= after);
                Ok(log.range(start..).take(count).cloned().collect())
            }
            Self::Redis(redis) => {
                let (from, count) = (after.successor().to_string(), count.to_string());
                let args: [&[u8]; 6] = [
                    b"XRANGE",
                    redis.key.as_bytes(),
                    from.as_bytes(),
                    b"+",
                    b"COUNT",
                    count.as_bytes(),
                ];
                entries(redis.command(&args).await?)
            }
        }
    }

    /// The last `count` entries, oldest first: what a newcomer is shown.
    ///
    /// # Errors
    /// Redis failed or timed out.
    pub async fn latest(&self, count: usize) -> io::Result<Vec<Arc<Entry>>> {
        match self {
            Self::Local(local) => {
                let log = local.log.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(log
                    .range(log.len().saturating_sub(count)..)
                    .cloned()
                    .collect())
            }
            Self::Redis(redis) => {
                let count = count.to_string();
                let args: [&[u8]; 6] = [
                    b"XREVRANGE",
                    redis.key.as_bytes(),
                    b"+",
                    b"-",
                    b"COUNT",
                    count.as_bytes(),
                ];
                let mut newest_first = entries(redis.command(&args).await?)?;
                newest_first.reverse();
                Ok(newest_first)
            }
        }
    }
}

impl Redis {
    /// One command on the shared connection, connecting first if there is none. After a
    /// failure the connection is dropped (it may be mid-reply) and the next command makes a
    /// new one.
    async fn command(&self, args: &[&[u8]]) -> io::Result<Value> {
        let mut slot = self.commands.lock().await;
        let connection = match &mut *slot {
            Some(connection) => connection,
            empty => empty.insert(connect(&self.addr).await?),
        };
        let reply = connection.call(args, COMMAND_TIMEOUT).await;
        if reply.is_err() {
            *slot = None;
        }
        reply
    }
}

/// Room for a page of entries of up to 1 MiB (the chat's message limit) plus their fields.
const LIMITS: Limits = Limits::for_entries(PAGE, 2 << 20);

async fn connect(addr: &str) -> io::Result<resp::Connection> {
    resp::Connection::connect(addr, LIMITS, COMMAND_TIMEOUT).await
}

fn entries(reply: Value) -> io::Result<Vec<Arc<Entry>>> {
    reply
        .into_array()?
        .into_iter()
        .map(|item| Entry::from_redis(item).map(Arc::new))
        .collect()
}

/// The node's one reader of the stream: `XREAD BLOCK` from the last ID it has seen, each
/// entry into the live feed, for as long as the node runs. After a Redis failure it
/// reconnects (waiting longer each time, up to 5 s) and goes on from the same ID, so
/// nothing added meanwhile is skipped.
async fn read_stream(broker: Arc<Broker>, mut last: StreamId) {
    let Broker::Redis(redis) = &*broker else {
        return;
    };
    let mut pause = Duration::from_millis(100);
    loop {
        let mut connection = match connect(&redis.addr).await {
            Ok(connection) => connection,
            Err(e) => {
                eprintln!("tokio_chat: redis reader: {e}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let (block, count, from) = (
                BLOCK.as_millis().to_string(),
                PAGE.to_string(),
                last.to_string(),
            );
            let args: [&[u8]; 8] = [
                b"XREAD",
                b"COUNT",
                count.as_bytes(),
                b"BLOCK",
                block.as_bytes(),
                b"STREAMS",
                redis.key.as_bytes(),
                from.as_bytes(),
            ];
            let reply = connection.call(&args, BLOCK + COMMAND_TIMEOUT).await;
            // [[key, [entry, ...]]], or a null array when BLOCK ran out.
            let read = reply.and_then(|reply| {
                let mut all = Vec::new();
                for stream in reply.into_array()? {
                    let mut stream = stream.into_array()?.into_iter();
                    if let (Some(_key), Some(items)) = (stream.next(), stream.next()) {
                        all.extend(entries(items)?);
                    }
                }
                Ok(all)
            });
            match read {
                Ok(new) => {
                    pause = Duration::from_millis(100);
                    for entry in new {
                        last = last.max(entry.id);
                        // Fails only when no connection listens; the entry is in Redis.
                        let _ = redis.live.send(entry);
                    }
                }
                Err(e) => {
                    eprintln!("tokio_chat: redis reader: {e}; reconnecting in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
    }
}
