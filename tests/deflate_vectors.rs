//! Runs `spec-vectors/deflate/` (format: `spec-vectors/README.md`, "deflate"): the RFC 7692
//! §7.2.3 examples, the receive path's limits, and negotiation in both roles.
#![cfg(feature = "deflate")]

use rfc6455::Role;
use rfc6455::deflate::{
    DeflateConfig, DeflateParams, Deflater, Inflater, MemoryPolicy, accept_offer, check_response,
    client_offer,
};
use rfc6455::error::ProtocolError;
use std::path::PathBuf;

struct Vector {
    file: String,
    keys: Vec<(String, String)>,
}

impl Vector {
    fn name(&self) -> &str {
        self.one("name").unwrap_or("?")
    }
    fn one(&self, key: &str) -> Option<&str> {
        let mut it = self.keys.iter().filter(|(k, _)| k == key);
        let v = it.next().map(|(_, v)| v.as_str());
        assert!(it.next().is_none(), "{}: `{key}` repeated", self.file);
        v
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

const COMMON: &[&str] = &["name", "section", "kind", "note", "tags", "config"];

fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "deflate-inflate" => &["params", "in", "out", "error"],
        "deflate-deflate" => &["params", "send", "out"],
        "deflate-server" => &["header", "response", "params"],
        "deflate-client" => &["offer", "header", "outcome", "params"],
        other => panic!("unknown kind {other:?}"),
    }
}

fn load() -> Vec<Vector> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec-vectors/deflate");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut vectors = Vec::new();
    for path in files {
        assert!(
            path.extension().is_some_and(|e| e == "vec"),
            "{}: not a .vec",
            path.display()
        );
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for block in text.split("\n---\n") {
            let mut keys = Vec::new();
            for line in block.lines() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let (k, v) = t
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{file}: bad line {t:?}"));
                keys.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            if keys.is_empty() {
                continue;
            }
            let v = Vector {
                file: file.clone(),
                keys,
            };
            let kind = v.one("kind").unwrap_or_else(|| panic!("{file}: no kind"));
            for (k, _) in &v.keys {
                assert!(
                    COMMON.contains(&k.as_str()) || allowed(kind).contains(&k.as_str()),
                    "{file}: {}: key {k:?} not allowed in {kind}",
                    v.name()
                );
            }
            assert!(
                v.one("name").is_some() && v.one("section").is_some(),
                "{file}: name/section"
            );
            vectors.push(v);
        }
    }
    let mut names: Vec<&str> = vectors.iter().map(Vector::name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate vector names");
    vectors
}

/// Bytes: hex tokens, "strings" with \\ \" \r \n \t \xHH escapes, and `unit*N` repeats.
fn bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut unit = Vec::new();
        if c[i] == '"' {
            i += 1;
            while c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                    match c[i] {
                        'r' => unit.push(b'\r'),
                        'n' => unit.push(b'\n'),
                        't' => unit.push(b'\t'),
                        'x' => {
                            let h: String = c[i + 1..i + 3].iter().collect();
                            unit.push(u8::from_str_radix(&h, 16).unwrap());
                            i += 2;
                        }
                        e => unit.push(e as u8),
                    }
                    i += 1;
                } else {
                    let mut buf = [0; 4];
                    unit.extend_from_slice(c[i].encode_utf8(&mut buf).as_bytes());
                    i += 1;
                }
            }
            i += 1;
        } else {
            let start = i;
            while i < c.len() && c[i].is_ascii_hexdigit() {
                i += 1;
            }
            let hex: String = c[start..i].iter().collect();
            assert!(!hex.is_empty() && hex.len() % 2 == 0, "bad hex in {s:?}");
            for k in (0..hex.len()).step_by(2) {
                unit.push(u8::from_str_radix(&hex[k..k + 2], 16).unwrap());
            }
        }
        let mut times = 1;
        if i < c.len() && c[i] == '*' {
            let start = i + 1;
            i = start;
            while i < c.len() && c[i].is_ascii_digit() {
                i += 1;
            }
            times = c[start..i].iter().collect::<String>().parse().unwrap();
        }
        for _ in 0..times {
            out.extend_from_slice(&unit);
        }
    }
    out
}

fn yes(v: &str) -> bool {
    match v {
        "yes" => true,
        "no" => false,
        other => panic!("expected yes/no, got {other:?}"),
    }
}

/// `config:` pairs: max_message_size (inflate limit) and the deflate settings.
fn config(v: &Vector) -> (DeflateConfig, usize) {
    let mut c = DeflateConfig::default().compression_threshold(0);
    let mut limit = 16 << 20;
    for pair in v.one("config").unwrap_or("").split_whitespace() {
        let (k, val) = pair.split_once('=').expect("name=value");
        match k {
            "max_message_size" => limit = val.parse().unwrap(),
            "server_max_window_bits" => c = c.server_max_window_bits(val.parse().unwrap()),
            "client_max_window_bits" => c = c.client_max_window_bits(val.parse().unwrap()),
            "server_no_context_takeover" => c = c.server_no_context_takeover(yes(val)),
            "client_no_context_takeover" => c = c.client_no_context_takeover(yes(val)),
            "enabled" => c = c.enabled(yes(val)),
            "compression_level" => c = c.compression_level(val.parse().unwrap()),
            other => panic!("{}: unknown config {other:?}", v.name()),
        }
    }
    (c, limit)
}

fn params_text(p: &DeflateParams) -> String {
    let yn = |b| if b { "yes" } else { "no" };
    format!(
        "server_no_context_takeover={} client_no_context_takeover={} server_max_window_bits={} client_max_window_bits={}",
        yn(p.server_no_context_takeover()),
        yn(p.client_no_context_takeover()),
        p.server_max_window_bits(),
        p.client_max_window_bits()
    )
}

/// The agreed parameters a `params:` response header states (checked as a client would).
fn agreed(v: &Vector) -> DeflateParams {
    let header = v.one("params").expect("params");
    check_response(&DeflateConfig::default(), [header])
        .unwrap_or_else(|e| panic!("{}: {e}", v.name()))
        .expect("permessage-deflate in params")
}

/// Every message inflated in turn, each cut per `cut` (None: whole; Some(0): byte by byte;
/// Some(k): at k). The outputs, then the close code of the failure, if any.
fn inflate_all(
    v: &Vector,
    policy: MemoryPolicy,
    cut: Option<usize>,
) -> (Vec<Vec<u8>>, Option<u16>) {
    let (c, limit) = config(v);
    let p = agreed(v);
    let mut inflater = Inflater::new(&p, Role::Client, &c.memory_policy(policy));
    let mut outs = Vec::new();
    for msg in v.all("in").into_iter().map(bytes) {
        let pieces: Vec<&[u8]> = match cut {
            None => vec![&msg[..]],
            Some(0) => msg.chunks(1).collect(),
            Some(k) => {
                let k = k.min(msg.len());
                vec![&msg[..k], &msg[k..]]
            }
        };
        let mut out = Vec::new();
        let mut result = Ok(());
        for piece in pieces {
            result = inflater.inflate(piece, &mut out, limit);
            assert!(out.len() <= limit);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = inflater.finish_message(&mut out, limit);
        }
        if let Err(e) = result {
            return (outs, Some(ProtocolError::from(e).close_code().0));
        }
        outs.push(out);
    }
    (outs, None)
}

fn run(v: &Vector) -> Result<(), String> {
    match v.one("kind").unwrap() {
        "deflate-inflate" => {
            let want: Vec<Vec<u8>> = v.all("out").into_iter().map(bytes).collect();
            let want_err: Option<u16> = v.one("error").map(|e| e.parse().unwrap());
            let longest = v
                .all("in")
                .into_iter()
                .map(|m| bytes(m).len())
                .max()
                .unwrap_or(0);
            for policy in [MemoryPolicy::PerMessage, MemoryPolicy::Retain] {
                let cuts = [None, Some(0)].into_iter().chain((1..=longest).map(Some));
                for cut in cuts {
                    let got = inflate_all(v, policy, cut);
                    if got != (want.clone(), want_err) {
                        return Err(format!("{policy:?} cut {cut:?}: got {got:?}"));
                    }
                }
            }
            Ok(())
        }
        "deflate-deflate" => {
            let (c, _) = config(v);
            let p = agreed(v);
            for policy in [MemoryPolicy::PerMessage, MemoryPolicy::Retain] {
                let c = c.clone().memory_policy(policy);
                let mut d = Deflater::new(&p, Role::Server, &c);
                let mut i = Inflater::new(&p, Role::Client, &c);
                for (send, want) in v.all("send").into_iter().zip(v.all("out")) {
                    let (send, want) = (bytes(send), bytes(want));
                    let mut payload = Vec::new();
                    d.compress(&send, &mut payload);
                    if payload != want {
                        return Err(format!("{policy:?}: sent {payload:02x?}, want {want:02x?}"));
                    }
                    let mut back = Vec::new();
                    i.inflate(&payload, &mut back, 1 << 20)
                        .map_err(|e| e.to_string())?;
                    i.finish_message(&mut back, 1 << 20)
                        .map_err(|e| e.to_string())?;
                    assert_eq!(back, send);
                }
            }
            Ok(())
        }
        "deflate-server" => {
            let (c, _) = config(v);
            let got = accept_offer(&c, v.all("header"));
            let want = v.one("response").expect("response");
            match (got, want) {
                (None, "none") => Ok(()),
                (Some((p, r)), want) if r == want => {
                    let text = params_text(&p);
                    if Some(text.as_str()) == v.one("params") {
                        Ok(())
                    } else {
                        Err(format!("params {text}"))
                    }
                }
                (got, _) => Err(format!("answered {got:?}")),
            }
        }
        "deflate-client" => {
            let (c, _) = config(v);
            if let Some(want) = v.one("offer") {
                let got = client_offer(&c);
                if got.as_deref() != (want != "none").then_some(want) {
                    return Err(format!("offered {got:?}"));
                }
            }
            let got = check_response(&c, v.all("header"));
            match (v.one("outcome").expect("outcome"), got) {
                ("failed", Err(_)) | ("declined", Ok(None)) => Ok(()),
                ("accepted", Ok(Some(p))) if Some(params_text(&p).as_str()) == v.one("params") => {
                    Ok(())
                }
                (_, got) => Err(format!("got {got:?}")),
            }
        }
        other => Err(format!("unknown kind {other}")),
    }
}

#[test]
fn rfc7692_spec_vectors() {
    let vectors = load();
    let mut failures = Vec::new();
    for v in &vectors {
        if let Err(e) = run(v) {
            failures.push(format!("{}: {}: {e}", v.file, v.name()));
        }
    }
    println!(
        "deflate vectors: {} run, {} failed",
        vectors.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
