//! Just enough of a Redis client for the chat: RESP2 requests out, replies in.
//!
//! RESP is small: a request is an array of bulk strings, a reply one of five types, each
//! introduced by one byte and ended by CRLF. The parser is sans-IO, like the crate's own
//! core: [`parse`] looks at the bytes read so far and says "not yet" (`Ok(None)`, nothing
//! consumed) or returns a whole reply and its length, so its result never depends on how
//! the reply was split across reads. It checks every length Redis declares against
//! [`Limits`] before it trusts it, and allocates only for bytes that have arrived.
//!
//! Why not the `redis` crate: see `docs/README-scaling.md` (it would add a few dozen crates
//! to every example's build; the chat needs five commands).

use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`: a command failed (the connection is still fine).
    Error(String),
    /// `:42`
    Int(i64),
    /// `$3 foo`; `None` for the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`; `None` for the null array `*-1` (what `XREAD BLOCK` answers on timeout).
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The elements of an array (a null array is empty).
    pub fn into_array(self) -> io::Result<Vec<Value>> {
        match self {
            Self::Array(items) => Ok(items.unwrap_or_default()),
            other => Err(unexpected("an array", &other)),
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self {
            Self::Bulk(Some(bytes)) => Ok(bytes),
            Self::Simple(text) => Ok(text.into_bytes()),
            other => Err(unexpected("a string", &other)),
        }
    }

    /// A bulk or simple string as UTF-8 text.
    pub fn into_string(self) -> io::Result<String> {
        String::from_utf8(self.into_bytes()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "redis: string is not UTF-8"))
    }
}

fn unexpected(wanted: &str, got: &Value) -> io::Error {
    let kind = match got {
        Value::Simple(_) => "a simple string",
        Value::Error(_) => "an error",
        Value::Int(_) => "an integer",
        Value::Bulk(_) => "a bulk string",
        Value::Array(_) => "an array",
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("redis: expected {wanted}, got {kind}"),
    )
}

/// What a reply may declare before the parser refuses it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest bulk string.
    pub max_bulk: usize,
    /// Most elements in one array.
    pub max_elements: usize,
    /// Deepest nesting of arrays (an `XREAD` reply is 5 deep).
    pub max_depth: usize,
    /// Longest type line (`$12345\r\n`, `+OK\r\n`, `-ERR ...\r\n`).
    pub max_line: usize,
    /// Largest whole reply, in bytes.
    pub max_reply: usize,
}

impl Limits {
    /// Room for `count` stream entries of up to `max_entry` bytes each.
    pub const fn for_entries(count: usize, max_entry: usize) -> Self {
        Self {
            max_bulk: max_entry,
            max_elements: 4 * count + 64,
            max_depth: 6,
            max_line: 4096,
            max_reply: count * (max_entry + 1024) + 64 * 1024,
        }
    }
}

/// A reply that breaks RESP or a [`Limits`] value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl From<ParseError> for io::Error {
    fn from(e: ParseError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, format!("redis: {}", e.0))
    }
}

/// Parses one reply from the start of `buf`: `Ok(None)` if more bytes are needed (nothing
/// is consumed), otherwise the reply and how many bytes it took.
///
/// # Errors
/// A malformed reply, or one that declares more than `limits` allow.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ParseError> {
    let mut at = 0;
    match value(buf, &mut at, limits, 0)? {
        Some(v) => Ok(Some((v, at))),
        None if buf.len() > limits.max_reply => Err(ParseError(format!(
            "reply exceeds {} bytes",
            limits.max_reply
        ))),
        None => Ok(None),
    }
}

/// One value at `*at`; advances `*at` past it only when it is complete.
fn value(
    buf: &[u8],
    at: &mut usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<Value>, ParseError> {
    let start = *at;
    let Some((kind, line, next)) = line(buf, start, limits)? else {
        return Ok(None);
    };
    let text = || {
        std::str::from_utf8(line)
            .map(str::to_owned)
            .map_err(|_| ParseError("status line is not UTF-8".into()))
    };
    let parsed = match kind {
        b'+' => Value::Simple(text()?),
        b'-' => Value::Error(text()?),
        b':' => Value::Int(number(line)?),
        b'$' => {
            let len = number(line)?;
            if len == -1 {
                Value::Bulk(None)
            } else {
                let len =
                    usize::try_from(len).map_err(|_| ParseError(format!("bulk length {len}")))?;
                if len > limits.max_bulk {
                    return Err(ParseError(format!(
                        "bulk string of {len} bytes exceeds {}",
                        limits.max_bulk
                    )));
                }
                // The length is within the limit; the bytes are copied only once all of them
                // (and the CRLF) are here.
                let end = next.checked_add(len).and_then(|e| e.checked_add(2));
                let Some(end) = end.filter(|&end| end <= buf.len()) else {
                    return Ok(None);
                };
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(ParseError("bulk string not followed by CRLF".into()));
                }
                *at = end;
                return Ok(Some(Value::Bulk(Some(buf[next..end - 2].to_vec()))));
            }
        }
        b'*' => {
            let count = number(line)?;
            if count == -1 {
                Value::Array(None)
            } else {
                let count = usize::try_from(count)
                    .map_err(|_| ParseError(format!("array length {count}")))?;
                if count > limits.max_elements {
                    return Err(ParseError(format!(
                        "array of {count} elements exceeds {}",
                        limits.max_elements
                    )));
                }
                if depth >= limits.max_depth {
                    return Err(ParseError(format!(
                        "arrays nested deeper than {}",
                        limits.max_depth
                    )));
                }
                // Grows with the elements that parse, not with the count declared.
                let mut items = Vec::new();
                let mut cursor = next;
                for _ in 0..count {
                    match value(buf, &mut cursor, limits, depth + 1)? {
                        Some(item) => items.push(item),
                        None => return Ok(None),
                    }
                }
                *at = cursor;
                return Ok(Some(Value::Array(Some(items))));
            }
        }
        other => {
            return Err(ParseError(format!("unknown reply type byte 0x{other:02x}")));
        }
    };
    *at = next;
    Ok(Some(parsed))
}

/// A type line: its type byte, the rest of the line, and where the next line starts.
type Line<'a> = (u8, &'a [u8], usize);

/// The type line starting at `start`; `None` while its CRLF has not arrived.
fn line<'a>(buf: &'a [u8], start: usize, limits: &Limits) -> Result<Option<Line<'a>>, ParseError> {
    let rest = &buf[start.min(buf.len())..];
    let window = &rest[..rest.len().min(limits.max_line)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(0) => Err(ParseError("empty line".into())),
        Some(end) => Ok(Some((window[0], &window[1..end], start + end + 2))),
        None if rest.len() >= limits.max_line => Err(ParseError(format!(
            "line longer than {} bytes",
            limits.max_line
        ))),
        None => Ok(None),
    }
}

fn number(line: &[u8]) -> Result<i64, ParseError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ParseError(format!("bad number {:?}", String::from_utf8_lossy(line))))
}

/// Encodes a command as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// One connection to Redis, one command at a time.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: Limits,
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`) within `wait`.
    pub async fn connect(addr: &str, limits: Limits, wait: Duration) -> io::Result<Self> {
        let stream = timeout(wait, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "redis: connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
            limits,
        })
    }

    /// Sends one command and reads its reply, all within `wait`. An error reply (`-ERR`)
    /// becomes an `io::Error`, like a broken connection: for the chat both mean "not done".
    /// After a timeout the connection may be mid-reply: drop it.
    pub async fn call(&mut self, args: &[&[u8]], wait: Duration) -> io::Result<Value> {
        match timeout(wait, self.call_unbounded(args)).await {
            Ok(Ok(Value::Error(e))) => Err(io::Error::other(format!("redis: {e}"))),
            Ok(reply) => reply,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "redis: no reply in time",
            )),
        }
    }

    async fn call_unbounded(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let mut request = Vec::new();
        encode(args, &mut request);
        self.stream.write_all(&request).await?;
        loop {
            if let Some((reply, used)) = parse(&self.buf, &self.limits)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "redis closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
