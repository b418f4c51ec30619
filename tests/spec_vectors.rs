//! Walks every vector in `spec-vectors/` (format: `spec-vectors/README.md`).
//!
//! Each vector runs three ways: its whole input in one `receive`, one byte at a time, and cut
//! at pseudo-random points. All three must agree with each other and with the vector. A file
//! that does not parse fails the test, so a typo cannot silently skip a vector.

use bytes::BufMut;
use rfc6455::{CloseCode, Config, Connection, Event, Message, MessageKind};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------ vector model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Frames,
    AcceptKey,
    ServerHandshake,
    ClientHandshake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleSpec {
    Server,
    Client,
}

/// An event as a vector states it; also what the runner records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, Vec<u8>),
}

#[derive(Debug, Clone)]
enum SendCmd {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, Vec<u8>)>),
    Fragment(MessageKind, bool, Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseSent {
    Code(u16),
    NoStatus,
}

#[derive(Debug, Clone)]
struct Vector {
    file: String,
    line: usize,
    name: String,
    kind: Kind,
    tags: Vec<String>,
    role: Option<RoleSpec>,
    config: Config,
    entropy: Vec<u8>,
    sends: Vec<SendCmd>,
    input: Vec<u8>,
    eof: bool,
    events: Vec<Ev>,
    out: Vec<u8>,
    close_sent: Option<CloseSent>,
    error: Option<u16>,
    // accept-key
    key: Vec<u8>,
    accept: Vec<u8>,
    // handshakes
    status: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_lacks: Vec<String>,
    request_headers: Vec<(String, String)>,
    request_line: Option<String>,
    uri: Option<String>,
    outcome_accepted: Option<bool>,
}

impl Vector {
    fn id(&self) -> String {
        format!("{}:{} {}", self.file, self.line, self.name)
    }

    /// Invalid = the peer's input must be refused (a close code or an HTTP rejection).
    fn is_invalid(&self) -> bool {
        self.error.is_some()
            || self.outcome_accepted == Some(false)
            || (self.kind == Kind::ServerHandshake && self.status != Some(101))
    }
}

// ------------------------------------------------------------------------------ parsing

const COMMON_KEYS: &[&str] = &[
    "name", "section", "kind", "note", "tags", "config", "entropy",
];
const REPEATABLE: &[&str] = &[
    "note",
    "send",
    "in",
    "event",
    "out",
    "response-header",
    "response-lacks",
    "request-header",
];

fn allowed_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Frames => &[
            "role",
            "send",
            "in",
            "eof",
            "event",
            "out",
            "close-sent",
            "error",
        ],
        Kind::AcceptKey => &["key", "accept"],
        Kind::ServerHandshake => &["in", "status", "response-header", "response-lacks", "event"],
        Kind::ClientHandshake => &[
            "uri",
            "request-line",
            "request-header",
            "in",
            "outcome",
            "status",
            "event",
        ],
    }
}

fn required_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Frames => &["role"],
        Kind::AcceptKey => &["key", "accept"],
        Kind::ServerHandshake => &["in", "status"],
        Kind::ClientHandshake => &["uri", "in", "outcome"],
    }
}

fn parse_file(path: &Path, display: &str) -> Result<Vec<Vector>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{display}: {e}"))?;
    let mut vectors = Vec::new();
    let mut block: Vec<(usize, String, String)> = Vec::new();
    let mut flush = |block: &mut Vec<(usize, String, String)>| -> Result<(), String> {
        if !block.is_empty() {
            vectors.push(parse_vector(display, block)?);
            block.clear();
        }
        Ok(())
    };
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if line == "---" {
            flush(&mut block)?;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "{display}:{lineno}: expected `key: value`, got {line:?}"
            ));
        };
        block.push((lineno, key.trim().to_string(), value.trim().to_string()));
    }
    flush(&mut block)?;
    Ok(vectors)
}

fn parse_vector(file: &str, lines: &[(usize, String, String)]) -> Result<Vector, String> {
    let first = lines[0].0;
    let ctx = |lineno: usize, msg: String| format!("{file}:{lineno}: {msg}");
    let kind = match lines
        .iter()
        .find(|(_, k, _)| k == "kind")
        .map(|(_, _, v)| v.as_str())
    {
        Some("frames") => Kind::Frames,
        Some("accept-key") => Kind::AcceptKey,
        Some("server-handshake") => Kind::ServerHandshake,
        Some("client-handshake") => Kind::ClientHandshake,
        Some(other) => return Err(ctx(first, format!("unknown kind {other:?}"))),
        None => return Err(ctx(first, "vector has no `kind`".into())),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (lineno, key, _) in lines {
        if !COMMON_KEYS.contains(&key.as_str()) && !allowed_keys(kind).contains(&key.as_str()) {
            return Err(ctx(
                *lineno,
                format!("key {key:?} is not allowed in a {kind:?} vector"),
            ));
        }
        if seen.contains(&key.as_str()) && !REPEATABLE.contains(&key.as_str()) {
            return Err(ctx(*lineno, format!("key {key:?} given twice")));
        }
        seen.push(key);
    }
    for req in ["name", "section"].iter().chain(required_keys(kind)) {
        if !seen.contains(req) {
            return Err(ctx(
                first,
                format!("{kind:?} vector lacks required key {req:?}"),
            ));
        }
    }
    let mut v = Vector {
        file: file.to_string(),
        line: first,
        name: String::new(),
        kind,
        tags: Vec::new(),
        role: None,
        config: Config::default(),
        entropy: vec![0; 4],
        sends: Vec::new(),
        input: Vec::new(),
        eof: false,
        events: Vec::new(),
        out: Vec::new(),
        close_sent: None,
        error: None,
        key: Vec::new(),
        accept: Vec::new(),
        status: None,
        response_headers: Vec::new(),
        response_lacks: Vec::new(),
        request_headers: Vec::new(),
        request_line: None,
        uri: None,
        outcome_accepted: None,
    };
    for (lineno, key, value) in lines {
        let r: Result<(), String> = (|| {
            match key.as_str() {
                "name" => {
                    if value.is_empty()
                        || !value
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    {
                        return Err(format!("name {value:?} must be [a-z0-9_]+"));
                    }
                    v.name = value.clone();
                }
                "section" => {
                    if value.is_empty() {
                        return Err("empty section".into());
                    }
                }
                "kind" | "note" => {}
                "tags" => v.tags = value.split_whitespace().map(str::to_string).collect(),
                "config" => v.config = parse_config(value)?,
                "entropy" => {
                    v.entropy = parse_bytes(value)?;
                    if v.entropy.is_empty() {
                        return Err("empty entropy".into());
                    }
                }
                "role" => {
                    v.role = Some(match value.as_str() {
                        "server" => RoleSpec::Server,
                        "client" => RoleSpec::Client,
                        _ => return Err(format!("role must be server or client, got {value:?}")),
                    })
                }
                "send" => v.sends.push(parse_send(value)?),
                "in" => v.input.extend(parse_bytes(value)?),
                "eof" => {
                    if value != "yes" {
                        return Err(format!("eof must be `yes`, got {value:?}"));
                    }
                    v.eof = true;
                }
                "event" => v.events.push(parse_event(value)?),
                "out" => v.out.extend(parse_bytes(value)?),
                "close-sent" => {
                    v.close_sent = Some(if value == "no-status" {
                        CloseSent::NoStatus
                    } else {
                        CloseSent::Code(parse_num(value)?)
                    })
                }
                "error" => v.error = Some(parse_num(value)?),
                "key" => v.key = parse_bytes(value)?,
                "accept" => v.accept = parse_bytes(value)?,
                "status" => v.status = Some(parse_num(value)?),
                "response-header" => v.response_headers.push(parse_header(value)?),
                "response-lacks" => v.response_lacks.push(value.clone()),
                "request-header" => v.request_headers.push(parse_header(value)?),
                "uri" => v.uri = Some(value.clone()),
                "request-line" => v.request_line = Some(value.clone()),
                "outcome" => {
                    v.outcome_accepted = Some(match value.as_str() {
                        "accepted" => true,
                        "failed" => false,
                        _ => {
                            return Err(format!(
                                "outcome must be accepted or failed, got {value:?}"
                            ));
                        }
                    })
                }
                other => return Err(format!("unhandled key {other:?}")),
            }
            Ok(())
        })();
        r.map_err(|e| ctx(*lineno, format!("{key}: {e}")))?;
    }
    if let Some(code) = v.error {
        if ![1002, 1006, 1007, 1008, 1009, 1010, 1011].contains(&code) {
            return Err(ctx(
                first,
                format!("error code {code} is not a failure code"),
            ));
        }
    }
    Ok(v)
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (n, v) = s
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, got {s:?}"))?;
    Ok((n.trim().to_string(), v.trim().to_string()))
}

fn parse_config(s: &str) -> Result<Config, String> {
    let mut c = Config::default();
    for pair in s.split_whitespace() {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("expected name=value, got {pair:?}"))?;
        c = match k {
            "max_frame_size" => c.max_frame_size(parse_num(val)?),
            "max_message_size" => c.max_message_size(parse_num(val)?),
            "max_send_frame_size" => c.max_send_frame_size(parse_num(val)?),
            "auto_pong" => c.auto_pong(parse_num(val)?),
            "max_handshake_size" => c.max_handshake_size(parse_num(val)?),
            "max_headers" => c.max_headers(parse_num(val)?),
            "origin_policy" => c.origin_policy(match val {
                "any" => rfc6455::handshake::OriginPolicy::Any,
                "same-host" => rfc6455::handshake::OriginPolicy::SameHost,
                list => rfc6455::handshake::OriginPolicy::allow_list(list.split(',')),
            }),
            _ => return Err(format!("unknown config setting {k:?}")),
        };
    }
    Ok(c)
}

/// Splits off the first word of `s`.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn parse_event(s: &str) -> Result<Ev, String> {
    let (w, rest) = word(s);
    Ok(match w {
        "text" => Ev::Text(parse_bytes(rest)?),
        "binary" => Ev::Binary(parse_bytes(rest)?),
        "ping" => Ev::Ping(parse_bytes(rest)?),
        "pong" => Ev::Pong(parse_bytes(rest)?),
        "close" => {
            let (code, reason) = word(rest);
            Ev::Close(parse_num(code)?, parse_bytes(reason)?)
        }
        _ => return Err(format!("unknown event {w:?}")),
    })
}

fn parse_send(s: &str) -> Result<SendCmd, String> {
    let (w, rest) = word(s);
    Ok(match w {
        "text" => SendCmd::Text(parse_bytes(rest)?),
        "binary" => SendCmd::Binary(parse_bytes(rest)?),
        "ping" => SendCmd::Ping(parse_bytes(rest)?),
        "pong" => SendCmd::Pong(parse_bytes(rest)?),
        "close" if rest.is_empty() => SendCmd::Close(None),
        "close" => {
            let (code, reason) = word(rest);
            SendCmd::Close(Some((parse_num(code)?, parse_bytes(reason)?)))
        }
        "fragment" => {
            let (k, rest) = word(rest);
            let (f, rest) = word(rest);
            let kind = match k {
                "text" => MessageKind::Text,
                "binary" => MessageKind::Binary,
                _ => return Err(format!("fragment kind must be text or binary, got {k:?}")),
            };
            let fin = match f {
                "fin" => true,
                "more" => false,
                _ => return Err(format!("fragment needs fin or more, got {f:?}")),
            };
            SendCmd::Fragment(kind, fin, parse_bytes(rest)?)
        }
        _ => return Err(format!("unknown command {w:?}")),
    })
}

fn hex_run(tok: &str) -> Result<Vec<u8>, String> {
    if tok.is_empty() || tok.len() % 2 != 0 || !tok.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad hex token {tok:?}"));
    }
    Ok((0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&tok[i..i + 2], 16).unwrap())
        .collect())
}

/// Parses a byte string (README, "Byte strings").
fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut mask: Option<([u8; 4], usize)> = None;
    let emit = |out: &mut Vec<u8>, mask: &mut Option<([u8; 4], usize)>, bytes: &[u8]| {
        for &b in bytes {
            match mask {
                Some((key, idx)) => {
                    out.push(b ^ key[*idx % 4]);
                    *idx += 1;
                }
                None => out.push(b),
            }
        }
    };
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut unit: Vec<u8>;
        let repeat_src: String;
        if chars[i] == '"' {
            i += 1;
            unit = Vec::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(format!("unterminated string in {s:?}"));
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err("dangling backslash".into());
                        };
                        i += 1;
                        match e {
                            '\\' => unit.push(b'\\'),
                            '"' => unit.push(b'"'),
                            'r' => unit.push(b'\r'),
                            'n' => unit.push(b'\n'),
                            't' => unit.push(b'\t'),
                            'x' => {
                                let h: String = chars
                                    .get(i..i + 2)
                                    .ok_or("short \\x escape")?
                                    .iter()
                                    .collect();
                                unit.extend(hex_run(&h)?);
                                i += 2;
                            }
                            _ => return Err(format!("unknown escape \\{e}")),
                        }
                    }
                    c => {
                        let mut buf = [0; 4];
                        unit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            // Optional `*N` straight after the closing quote.
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            repeat_src = chars[start..i].iter().collect();
            if !repeat_src.is_empty() {
                let n: usize = repeat_src
                    .strip_prefix('*')
                    .ok_or_else(|| format!("junk {repeat_src:?} after a string"))
                    .and_then(parse_num)?;
                unit = unit.repeat(n);
            }
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            let tok: String = chars[start..i].iter().collect();
            if let Some(key) = tok.strip_prefix("mask=") {
                let key = hex_run(key)?;
                let key: [u8; 4] = key
                    .try_into()
                    .map_err(|_| format!("mask key {tok:?} is not 4 bytes"))?;
                mask = None;
                emit(&mut out, &mut mask, &key);
                mask = Some((key, 0));
                continue;
            }
            if let Some((base, n)) = tok.split_once('*') {
                let n: usize = parse_num(n)?;
                unit = if base == "ramp" {
                    (0..n).map(|i| i as u8).collect()
                } else {
                    let b = hex_run(base)?;
                    if b.len() != 1 {
                        return Err(format!("repeat base {base:?} must be one byte"));
                    }
                    b.repeat(n)
                };
            } else {
                unit = hex_run(&tok)?;
            }
        }
        emit(&mut out, &mut mask, &unit);
    }
    Ok(out)
}

fn load_all() -> Vec<Vector> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec-vectors");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path == root.join("deflate") {
                // permessage-deflate vectors: their own kinds, run by tests/deflate_vectors.rs.
                continue;
            } else if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "vec") {
                files.push(path);
            } else if path != root.join("README.md") {
                panic!(
                    "{}: not a .vec file; rename it or move it out of spec-vectors/",
                    path.display()
                );
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no .vec files under {}", root.display());
    let mut all: Vec<Vector> = Vec::new();
    let mut errors = Vec::new();
    for path in &files {
        let display = path.strip_prefix(&root).unwrap().display().to_string();
        match parse_file(path, &display) {
            Ok(vs) if vs.is_empty() => errors.push(format!("{display}: no vectors")),
            Ok(vs) => all.extend(vs),
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "vector files do not parse:\n{}",
        errors.join("\n")
    );
    let mut names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "vector name {} is used twice", pair[0]);
    }
    all
}

// ------------------------------------------------------------------------------ splitting

/// splitmix64: a tiny deterministic generator, seeded per vector, for cut points only.
struct SplitMix(u64);

impl SplitMix {
    fn seeded(name: &str) -> Self {
        // FNV-1a of the name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How the runner delivers a vector's input.
#[derive(Debug, Clone)]
struct Way {
    label: String,
    /// End offsets of the chunks handed to `receive`, one call each.
    ends: Vec<usize>,
    /// Poll events and drain output only once everything (input, EOF) was delivered, like an
    /// application that is slow to read; otherwise drain after every call.
    lazy: bool,
    /// Deliver through the zero-copy path (`read_buf` + `commit_read`) instead of `receive`.
    zero_copy: bool,
    /// With `zero_copy`: append to `read_space` + `commit_space` instead.
    space: bool,
}

/// Every way to deliver `len` input bytes: whole, byte by byte, a few random cuttings, and
/// whole with the application polling only at the end.
fn splittings(name: &str, len: usize) -> Vec<Way> {
    let way = |label: String, ends: Vec<usize>| Way {
        label,
        ends,
        lazy: false,
        zero_copy: false,
        space: false,
    };
    let mut ways = vec![way("whole".to_string(), vec![len])];
    if len > 1 {
        ways.push(way("byte-by-byte".to_string(), (1..=len).collect()));
        let mut rng = SplitMix::seeded(name);
        for round in 0..4 {
            let cuts = 1 + rng.below(8.min(len - 1));
            let mut ends: Vec<usize> = (0..cuts).map(|_| 1 + rng.below(len - 1)).collect();
            ends.push(len);
            ends.sort_unstable();
            ends.dedup();
            ways.push(way(
                format!("random#{round} {:?}", &ends[..ends.len() - 1]),
                ends,
            ));
        }
    }
    ways.push(Way {
        lazy: true,
        ..way("whole, polled only at the end".to_string(), vec![len])
    });
    if len > 1 {
        let mut rng = SplitMix::seeded(&format!("{name}/read_buf"));
        let mut ends = Vec::new();
        let mut at = 0;
        while at < len {
            at = (at + 1 + rng.below(200)).min(len);
            ends.push(at);
        }
        ways.push(Way {
            zero_copy: true,
            ..way(
                "read_buf + commit_read, random chunks".to_string(),
                ends.clone(),
            )
        });
        ways.push(Way {
            zero_copy: true,
            space: true,
            ..way("read_space + commit_space, random chunks".to_string(), ends)
        });
    }
    ways
}

fn chunks<'a>(input: &'a [u8], ends: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0;
    ends.iter().map(move |&end| {
        let c = &input[at..end];
        at = end;
        c
    })
}

// ------------------------------------------------------------------------------ frames

fn entropy(bytes: &[u8]) -> Box<dyn rfc6455::Entropy> {
    let bytes = bytes.to_vec();
    let mut pos = 0;
    Box::new(move |dest: &mut [u8]| {
        for d in dest {
            *d = bytes[pos % bytes.len()];
            pos += 1;
        }
    })
}

fn ev_of(e: Event) -> Ev {
    match e {
        Event::Message(Message::Text(t)) => Ev::Text(t.as_bytes().to_vec()),
        Event::Message(Message::Binary(b)) => Ev::Binary(b.to_vec()),
        Event::Ping(p) => Ev::Ping(p.to_vec()),
        Event::Pong(p) => Ev::Pong(p.to_vec()),
        Event::Close(c) => Ev::Close(c.code.as_u16(), c.reason.as_bytes().to_vec()),
        other => panic!("the vectors never stream messages: {other:?}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    out: Vec<u8>,
    error: Option<u16>,
    /// Invariant violations the runner noticed along the way.
    faults: Vec<String>,
}

fn drain(conn: &mut Connection, o: &mut Outcome) {
    while let Some(e) = conn.poll_event() {
        o.events.push(ev_of(e));
    }
    loop {
        let chunk = conn.pending_transmit();
        if chunk.is_empty() {
            break;
        }
        o.out.extend_from_slice(chunk);
        let n = chunk.len();
        conn.advance_transmit(n);
    }
}

fn run_frames(v: &Vector, way: &Way) -> Outcome {
    let mut conn = match v.role.unwrap() {
        RoleSpec::Server => Connection::server(v.config.clone()),
        RoleSpec::Client => Connection::client(v.config.clone(), entropy(&v.entropy)),
    };
    let mut o = Outcome {
        events: Vec::new(),
        out: Vec::new(),
        error: None,
        faults: Vec::new(),
    };
    for cmd in &v.sends {
        let text =
            |b: &[u8]| String::from_utf8(b.to_vec()).expect("send text: vector gives non-UTF-8");
        let r = match cmd {
            SendCmd::Text(b) => conn.send_text(&text(b)),
            SendCmd::Binary(b) => conn.send_binary(b),
            SendCmd::Ping(b) => conn.send_ping(b),
            SendCmd::Pong(b) => conn.send_pong(b),
            SendCmd::Close(None) => conn.send_close(CloseCode::NO_STATUS, ""),
            SendCmd::Close(Some((code, reason))) => {
                conn.send_close(CloseCode(*code), &text(reason))
            }
            SendCmd::Fragment(kind, fin, b) => conn.send_fragment(*kind, b, *fin),
        };
        if let Err(e) = r {
            o.faults.push(format!("send {cmd:?} failed: {e}"));
        }
    }
    drain(&mut conn, &mut o);
    for chunk in chunks(&v.input, &way.ends) {
        let r = if way.zero_copy {
            let mut rest = chunk;
            let mut r = Ok(());
            while way.space && !rest.is_empty() {
                let mut space = conn.read_space();
                let n = space.remaining_mut().min(rest.len());
                if n == 0 {
                    o.faults.push("read_space offered no room".into());
                    break;
                }
                space.put_slice(&rest[..n]);
                r = conn.commit_space();
                rest = &rest[n..];
            }
            while !rest.is_empty() {
                let buf = conn.read_buf();
                if buf.is_empty() {
                    o.faults.push("read_buf returned no room".into());
                    break;
                }
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                r = conn.commit_read(n);
                rest = &rest[n..];
            }
            r
        } else {
            conn.receive(chunk)
        };
        if r.err() != conn.error() {
            o.faults.push(format!(
                "receive returned {r:?} but error() is {:?}",
                conn.error()
            ));
        }
        if !way.lazy {
            drain(&mut conn, &mut o);
        }
    }
    if v.eof {
        let r = conn.receive_eof();
        if r.err() != conn.error() {
            o.faults.push(format!(
                "receive_eof returned {r:?} but error() is {:?}",
                conn.error()
            ));
        }
    }
    drain(&mut conn, &mut o);
    o.error = conn.error().map(|e| e.close_code().as_u16());
    // Failure is sticky (RFC 6455 §7.1.7): more input changes nothing and repeats the error.
    if let Some(err) = conn.error() {
        let before = (o.events.len(), o.out.len());
        let again = conn.receive(&[0x89, 0x80, 0, 0, 0, 0, 0x81, 0x00]);
        drain(&mut conn, &mut o);
        if again != Err(err) {
            o.faults.push(format!(
                "after failing with {err:?}, receive returned {again:?}"
            ));
        }
        if (o.events.len(), o.out.len()) != before {
            o.faults
                .push("input after the failure produced events or output".into());
            o.events.truncate(before.0);
            o.out.truncate(before.1);
        }
    }
    o
}

/// Checks `actual` written bytes against `out` + `close-sent`.
fn check_output(v: &Vector, actual: &[u8], problems: &mut Vec<String>) {
    let masked = v.role == Some(RoleSpec::Client);
    if actual.len() < v.out.len() || actual[..v.out.len()] != v.out[..] {
        problems.push(format!(
            "written bytes differ\n  expected {}\n  actual   {}",
            hex(&v.out),
            hex(actual)
        ));
        return;
    }
    let rest = &actual[v.out.len()..];
    match v.close_sent {
        None if rest.is_empty() => {}
        None => problems.push(format!(
            "unexpected bytes written after `out`: {}",
            hex(rest)
        )),
        Some(want) => match parse_close_frame(rest, masked) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!("close frame sent {got:?}, expected {want:?}")),
            Err(e) => problems.push(format!(
                "expected one Close frame ({want:?}) after `out`: {e}; got {}",
                hex(rest)
            )),
        },
    }
}

fn parse_close_frame(b: &[u8], masked: bool) -> Result<CloseSent, String> {
    if b.len() < 2 {
        return Err("nothing or a truncated frame".into());
    }
    if b[0] != 0x88 {
        return Err(format!("first byte {:02x}, not 88 (FIN + Close)", b[0]));
    }
    if (b[1] & 0x80 != 0) != masked {
        return Err(format!(
            "mask bit is {}, role requires {masked}",
            b[1] & 0x80 != 0
        ));
    }
    let len = usize::from(b[1] & 0x7f);
    if len > 125 {
        return Err(format!("close payload length {len} > 125"));
    }
    let hl = if masked { 6 } else { 2 };
    if b.len() != hl + len {
        return Err(format!(
            "frame of {} bytes, but {} bytes written",
            hl + len,
            b.len()
        ));
    }
    let mut payload = b[hl..].to_vec();
    if masked {
        for (i, p) in payload.iter_mut().enumerate() {
            *p ^= b[2 + i % 4];
        }
    }
    match payload.len() {
        0 => Ok(CloseSent::NoStatus),
        1 => Err("1-byte close payload".into()),
        _ => {
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err("close reason is not UTF-8".into());
            }
            Ok(CloseSent::Code(u16::from_be_bytes([
                payload[0], payload[1],
            ])))
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i == 64 {
            let _ = write!(s, "... ({} bytes)", b.len());
            break;
        }
        let _ = write!(s, "{x:02x} ");
    }
    s.trim_end().to_string()
}

fn show_events(evs: &[Ev]) -> String {
    let one = |e: &Ev| match e {
        Ev::Text(b) => format!("text {:?}", String::from_utf8_lossy(b)),
        Ev::Binary(b) => format!("binary [{}]", hex(b)),
        Ev::Ping(b) => format!("ping [{}]", hex(b)),
        Ev::Pong(b) => format!("pong [{}]", hex(b)),
        Ev::Close(c, r) => format!("close {c} {:?}", String::from_utf8_lossy(r)),
    };
    // Runs of equal events are shown once with a count.
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < evs.len() {
        let run = evs[i..].iter().take_while(|e| **e == evs[i]).count();
        parts.push(if run > 1 {
            format!("{run} x {}", one(&evs[i]))
        } else {
            one(&evs[i])
        });
        i += run;
    }
    format!("[{}]", parts.join(", "))
}

fn check_frames(v: &Vector) -> Vec<String> {
    let mut problems = Vec::new();
    let ways = splittings(&v.name, v.input.len());
    let outcomes: Vec<(String, Outcome)> = ways
        .iter()
        .map(|w| (w.label.clone(), run_frames(v, w)))
        .collect();
    let (_, base) = &outcomes[0];
    for (way, o) in &outcomes[1..] {
        if o != base {
            problems.push(format!(
                "delivery `{way}` differs from whole input:\n  whole: events {} error {:?} out {}\n  {way}: events {} error {:?} out {}",
                show_events(&base.events), base.error, hex(&base.out),
                show_events(&o.events), o.error, hex(&o.out)
            ));
        }
    }
    problems.extend(base.faults.iter().cloned());
    if base.events != v.events {
        problems.push(format!(
            "events differ\n  expected {}\n  actual   {}",
            show_events(&v.events),
            show_events(&base.events)
        ));
    }
    if base.error != v.error {
        problems.push(format!(
            "error differs: expected {:?}, actual {:?}",
            v.error, base.error
        ));
    }
    check_output(v, &base.out, &mut problems);
    problems
}

// ------------------------------------------------------------------------------ handshake

fn check_accept_key(v: &Vector) -> Vec<String> {
    let got = rfc6455::handshake::accept_key(&v.key);
    if got.as_bytes() == v.accept {
        Vec::new()
    } else {
        vec![format!(
            "accept key {got:?}, expected {:?}",
            String::from_utf8_lossy(&v.accept)
        )]
    }
}

/// What a handshake run produced, for comparing deliveries and checking the vector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HsOutcome {
    /// Everything the endpoint wrote: the HTTP head (response or request) and any frames.
    written: Vec<u8>,
    /// The status of the response (written by a server, received by a client).
    status: Option<u16>,
    /// Client only: whether the handshake completed.
    accepted: Option<bool>,
    events: Vec<Ev>,
    faults: Vec<String>,
}

fn drain_hs_connection(conn: &mut Connection, written: &mut Vec<u8>, events: &mut Vec<Ev>) {
    let mut o = Outcome {
        events: Vec::new(),
        out: Vec::new(),
        error: None,
        faults: Vec::new(),
    };
    drain(conn, &mut o);
    written.extend(o.out);
    events.extend(o.events);
}

fn run_server_handshake(v: &Vector, ends: &[usize]) -> HsOutcome {
    use rfc6455::handshake::{Accept, ServerHandshake};
    let mut o = HsOutcome {
        written: Vec::new(),
        status: None,
        accepted: None,
        events: Vec::new(),
        faults: Vec::new(),
    };
    let mut hs = ServerHandshake::new(v.config.clone());
    let mut conn: Option<Connection> = None;
    let mut failed = None;
    for chunk in chunks(&v.input, ends) {
        if let Some(c) = conn.as_mut() {
            // After the handshake, input goes to the connection, as an adapter would do.
            let _ = c.receive(chunk);
            drain_hs_connection(c, &mut o.written, &mut o.events);
            continue;
        }
        if failed.is_some() {
            break;
        }
        match hs.receive(chunk) {
            Err(e) => failed = Some(e),
            Ok(()) if hs.request().is_some() => match hs.accept(Accept::new()) {
                Ok(mut c) => {
                    drain_hs_connection(&mut c, &mut o.written, &mut o.events);
                    conn = Some(c);
                }
                Err(e) => o.faults.push(format!("accept failed: {e}")),
            },
            Ok(()) => {}
        }
    }
    if let Some(e) = failed.or(hs.error()) {
        o.written.extend_from_slice(hs.pending_transmit());
        let status = response_status(&o.written);
        if status != Some(e.http_status()) {
            o.faults.push(format!(
                "error {e:?} has http_status {} but the response says {status:?}",
                e.http_status()
            ));
        }
    }
    o.status = response_status(&o.written);
    o
}

fn run_client_handshake(v: &Vector, ends: &[usize]) -> HsOutcome {
    use rfc6455::handshake::{ClientHandshake, ClientRequest};
    let mut o = HsOutcome {
        written: Vec::new(),
        status: None,
        accepted: None,
        events: Vec::new(),
        faults: Vec::new(),
    };
    let uri = v.uri.as_deref().unwrap();
    let request = match ClientRequest::new(uri) {
        Ok(r) => r,
        Err(e) => {
            o.faults
                .push(format!("ClientRequest::new({uri:?}) failed: {e}"));
            return o;
        }
    };
    let mut hs = match ClientHandshake::new(request, v.config.clone(), entropy(&v.entropy)) {
        Ok(hs) => Some(hs),
        Err(e) => {
            o.faults.push(format!("ClientHandshake::new failed: {e}"));
            return o;
        }
    };
    {
        let h = hs.as_mut().unwrap();
        let n = h.pending_transmit().len();
        o.written.extend_from_slice(h.pending_transmit());
        h.advance_transmit(n);
    }
    let mut conn: Option<Connection> = None;
    for chunk in chunks(&v.input, ends) {
        if let Some(c) = conn.as_mut() {
            let _ = c.receive(chunk);
            drain_hs_connection(c, &mut o.written, &mut o.events);
            continue;
        }
        let h = hs.as_mut().unwrap();
        if h.receive(chunk).is_err() {
            break;
        }
        if h.is_complete() {
            match hs.take().unwrap().into_connection() {
                Ok((mut c, response)) => {
                    o.status = Some(response.status());
                    drain_hs_connection(&mut c, &mut o.written, &mut o.events);
                    conn = Some(c);
                }
                Err(e) => {
                    o.faults.push(format!("into_connection failed: {e}"));
                    return o;
                }
            }
        }
    }
    if let Some(h) = &hs {
        o.status = h.response().map(|r| r.status());
        if h.error().is_some() == h.is_complete() {
            o.faults.push(format!(
                "after all input: error {:?}, complete {}",
                h.error(),
                h.is_complete()
            ));
        }
    }
    o.accepted = Some(conn.is_some());
    o
}

/// The status code of the HTTP response at the start of `b`.
fn response_status(b: &[u8]) -> Option<u16> {
    let line = b.split(|&c| c == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.1") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The start line and headers of the HTTP head at the start of `b`, if it is complete.
fn http_head(b: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&b[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let start = lines.next()?.to_string();
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Some((start, headers))
}

fn check_headers(
    what: &str,
    head: &[(String, String)],
    want: &[(String, String)],
    lacks: &[String],
    problems: &mut Vec<String>,
) {
    for (name, value) in want {
        if !head
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
        {
            problems.push(format!("{what} lacks `{name}: {value}`; it has {head:?}"));
        }
    }
    for name in lacks {
        if head.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            problems.push(format!("{what} has header {name}, which it must not"));
        }
    }
}

fn check_handshake(v: &Vector) -> Vec<String> {
    let mut problems = Vec::new();
    let run = |ends: &[usize]| match v.kind {
        Kind::ServerHandshake => run_server_handshake(v, ends),
        _ => run_client_handshake(v, ends),
    };
    let ways = splittings(&v.name, v.input.len());
    let outcomes: Vec<(String, HsOutcome)> = ways
        .iter()
        .filter(|w| !w.lazy && !w.zero_copy)
        .map(|w| (w.label.clone(), run(&w.ends)))
        .collect();
    let (_, base) = &outcomes[0];
    for (way, o) in &outcomes[1..] {
        if o != base {
            problems.push(format!(
                "delivery `{way}` differs from whole input:\n  whole: status {:?} accepted {:?} events {} faults {:?}\n    wrote {:?}\n  {way}: status {:?} accepted {:?} events {} faults {:?}\n    wrote {:?}",
                base.status, base.accepted, show_events(&base.events), base.faults, String::from_utf8_lossy(&base.written),
                o.status, o.accepted, show_events(&o.events), o.faults, String::from_utf8_lossy(&o.written),
            ));
        }
    }
    problems.extend(base.faults.iter().cloned());
    if base.events != v.events {
        problems.push(format!(
            "events differ\n  expected {}\n  actual   {}",
            show_events(&v.events),
            show_events(&base.events)
        ));
    }
    if v.status.is_some() && base.status != v.status {
        problems.push(format!("status {:?}, expected {:?}", base.status, v.status));
    }
    match v.kind {
        Kind::ServerHandshake => match http_head(&base.written) {
            Some((_, headers)) => check_headers(
                "response",
                &headers,
                &v.response_headers,
                &v.response_lacks,
                &mut problems,
            ),
            None => problems.push(format!(
                "no complete HTTP response written: {:?}",
                String::from_utf8_lossy(&base.written)
            )),
        },
        _ => {
            if base.accepted != v.outcome_accepted {
                problems.push(format!(
                    "accepted: {:?}, expected {:?}",
                    base.accepted, v.outcome_accepted
                ));
            }
            match http_head(&base.written) {
                Some((start, headers)) => {
                    if let Some(line) = &v.request_line {
                        if &start != line {
                            problems.push(format!("request line {start:?}, expected {line:?}"));
                        }
                    }
                    check_headers("request", &headers, &v.request_headers, &[], &mut problems);
                }
                None => problems.push("no complete HTTP request written".into()),
            }
        }
    }
    problems
}

// ------------------------------------------------------------------------------ the test

#[test]
fn spec_vectors() {
    let started = std::time::Instant::now();
    let vectors = load_all();
    let mut failures = Vec::new();
    // [frames, handshake] x [valid, invalid]
    let mut counts = [[0usize; 2]; 2];
    for v in &vectors {
        let problems = match v.kind {
            Kind::Frames => check_frames(v),
            Kind::AcceptKey => check_accept_key(v),
            Kind::ServerHandshake | Kind::ClientHandshake => check_handshake(v),
        };
        counts[usize::from(v.kind != Kind::Frames)][usize::from(v.is_invalid())] += 1;
        if !problems.is_empty() {
            failures.push(format!("{}\n  {}", v.id(), problems.join("\n  ")));
        }
    }
    let [[fv, fi], [hv, hi]] = counts;
    println!(
        "spec vectors: {} run: frames {fv} valid + {fi} invalid, handshake {hv} valid + {hi} invalid; {} failed; {:?}",
        vectors.len(),
        failures.len(),
        started.elapsed()
    );
    // A floor, so that losing a file or most of one cannot pass unnoticed.
    assert!(
        fi >= 40 && fv >= 40 && hv + hi >= 20,
        "too few vectors ran: {counts:?}"
    );
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
