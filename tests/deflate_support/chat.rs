//! A reproducible JSON chat corpus for the deflate tests and `benches/deflate.rs`: messages
//! of realistic shape (ids, room, nick, timestamp, text of varying length, sometimes
//! reactions or a reply), drawn from a fixed-seed splitmix64 so every run sees the same bytes.
#![allow(dead_code)] // each user takes a different part

/// splitmix64: small, seedable, good enough to shape test data (never for keys).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const NICKS: &[&str] = &[
    "ada",
    "grace_h",
    "linus",
    "margaret",
    "ken",
    "dennis_r",
    "barbara",
    "edsger",
    "alan_t",
    "frances",
    "radia",
    "sophie.w",
    "guido",
    "bjarne",
    "yukihiro",
    "anders_h",
    "rob_pike",
    "hedy",
    "katherine",
    "donald_k",
];
const ROOMS: &[&str] = &["general", "random", "rust", "deploys", "incidents", "lunch"];
const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "is",
    "it",
    "that",
    "we",
    "deploy",
    "build",
    "is",
    "green",
    "again",
    "anyone",
    "seen",
    "this",
    "error",
    "before",
    "looks",
    "like",
    "cache",
    "miss",
    "on",
    "staging",
    "prod",
    "lunch",
    "today",
    "ok",
    "thanks",
    "lgtm",
    "merged",
    "review",
    "please",
    "pipeline",
    "failed",
    "retrying",
    "now",
    "websocket",
    "connection",
    "dropped",
    "latency",
    "p99",
    "went",
    "up",
    "after",
    "the",
    "release",
    "rollback",
    "done",
    "coffee",
    "meeting",
    "in",
    "5",
    "minutes",
    "can",
    "you",
    "check",
    "ticket",
    "#4312",
    "👍",
    "🎉",
    "haha",
    "sounds",
    "good",
    "tomorrow",
    "morning",
    "works",
    "for",
    "me",
    "migration",
    "ran",
    "database",
    "index",
    "missing",
    "query",
    "plan",
    "changed",
    "memory",
    "leak",
    "fixed",
];

/// One chat message as JSON. `i` numbers it (ids and timestamps grow with it).
pub fn message(rng: &mut Rng, i: u64) -> String {
    // Mostly short lines, a tail of long ones (pasted logs, paragraphs).
    let words = match rng.below(100) {
        0..=59 => 1 + rng.below(8),
        60..=89 => 8 + rng.below(25),
        _ => 30 + rng.below(150),
    };
    let mut text = String::new();
    for w in 0..words {
        if w > 0 {
            text.push(' ');
        }
        text.push_str(rng.pick(WORDS));
    }
    let nick = rng.pick(NICKS);
    let user_id = 1000 + (nick.len() as u64 * 7919 + nick.as_bytes()[0] as u64) % 9000;
    let ms = 1_764_590_400_000 + i * 1_750 + rng.below(1_500);
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let mut json = format!(
        r#"{{"type":"message","id":"msg_{:016x}","seq":{},"room":"{}","user":{{"id":{},"nick":"{}"}},"ts":"2026-12-01T{:02}:{:02}:{:02}.{:03}Z","text":"{}""#,
        rng.next(),
        100_000 + i,
        rng.pick(ROOMS),
        user_id,
        nick,
        h,
        m,
        s,
        millis,
        text
    );
    if rng.below(5) == 0 {
        json.push_str(&format!(r#","reply_to":"msg_{:016x}""#, rng.next()));
    }
    if rng.below(4) == 0 {
        json.push_str(&format!(
            r#","reactions":[{{"emoji":"👍","count":{}}},{{"emoji":"🎉","count":{}}}]"#,
            1 + rng.below(9),
            rng.below(4)
        ));
    }
    json.push('}');
    json
}

/// `n` messages from the fixed seed.
pub fn corpus(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_c4a7_2026_1201);
    (0..n as u64).map(|i| message(&mut rng, i)).collect()
}
