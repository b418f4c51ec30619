//! Running the interop peers in `tests/interop/` as subprocesses: finding them (or skipping
//! with a printed reason), reading their stdout lines through a channel with bounded waits,
//! and stopping them.
//!
//! A missing peer skips its test (it passes and prints `SKIPPED interop <test>: <why>`),
//! unless `RFC6455_INTEROP=required` is set, as `scripts/test.sh` does: then it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// `tests/interop/`.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

const SETUP_HINT: &str = "run scripts/setup-peers.sh";

/// Reports a missing peer: a failure under `RFC6455_INTEROP=required`, otherwise a skip
/// printed where `cargo test` shows it (straight to stderr: libtest captures `eprintln!`).
pub fn skip<T>(test: &str, reason: &str) -> Option<T> {
    if std::env::var("RFC6455_INTEROP").is_ok_and(|v| v == "required") {
        panic!(
            "interop {test}: {reason}; {SETUP_HINT} \
             (RFC6455_INTEROP=required makes a missing peer a failure)"
        );
    }
    let line = format!("SKIPPED interop {test}: {reason}; {SETUP_HINT}");
    println!("{line}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    None
}

/// The venv's Python (which has python-websockets), or a skip.
pub fn python(test: &str) -> Option<PathBuf> {
    let python = interop_dir().join(".venv/bin/python");
    if python.exists() {
        Some(python)
    } else {
        skip(test, "tests/interop/.venv is missing (python-websockets)")
    }
}

/// `node` with the given packages in `tests/interop/node_modules`, or a skip.
pub fn node(test: &str, packages: &[&str]) -> Option<PathBuf> {
    let runs = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        return skip(test, "`node` is not on PATH");
    }
    for package in packages {
        let manifest = interop_dir().join(format!("node_modules/{package}/package.json"));
        if !manifest.exists() {
            return skip(
                test,
                &format!("tests/interop/node_modules/{package} is missing"),
            );
        }
    }
    Some(PathBuf::from("node"))
}

/// The Chromium that `browser_chat.mjs` starts (`$CHROMIUM` or `/usr/bin/chromium`), or a
/// skip.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    if path.exists() {
        Some(path)
    } else {
        skip(test, &format!("{} is missing", path.display()))
    }
}

/// A peer program running as a subprocess. Its stdout lines arrive through a channel; its
/// stderr is kept for failure messages. Dropping it closes its stdin and kills it if it is
/// still running.
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line received so far.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stdout_done: bool,
}

impl Peer {
    /// Starts `program args...` in `tests/interop/` with piped stdin, stdout and stderr.
    pub fn spawn(name: &str, program: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {}: {e}", program.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stdout_done: false,
        }
    }

    /// The next stdout line, waiting at most `timeout`; `None` once stdout has ended.
    /// Panics (with the peer's output) if nothing arrives in time.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        if self.stdout_done {
            return None;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no output line within {timeout:?}\n{}",
                self.name,
                self.transcript()
            ),
        }
    }

    /// Reads lines until `done(lines so far)` holds, within `timeout` in total.
    pub fn read_until(&mut self, timeout: Duration, mut done: impl FnMut(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.next_line(left).is_none() {
                panic!(
                    "{}: expected output did not arrive within {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
        }
    }

    /// Closes stdin (which tells the server peers to exit), reads the rest of stdout and
    /// waits for the exit status, within `timeout` in total. Panics on timeout.
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        self.stdin = None;
        while !self.stdout_done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: still writing after {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            self.next_line(left);
        }
        // Its stdout has closed, so it is exiting: poll for the status (std has no wait with
        // a timeout), bounded by the same deadline.
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => panic!(
                    "{}: did not exit within {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                ),
                Err(e) => panic!("{}: wait failed: {e}", self.name),
            }
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> &[String] {
        &self.seen
    }

    /// The peer's stdout lines and stderr, for failure messages.
    pub fn transcript(&self) -> String {
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.seen.join("\n"),
            self.name,
            stderr.trim_end()
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs `f` on its own thread and waits at most `timeout` for its result. A blocking
/// WebSocket call that never returns then fails the test instead of hanging it; the thread
/// is left behind, and ends once the peer is stopped and its socket closes.
pub fn bounded<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(timeout) {
        Ok(value) => Ok(value),
        Err(RecvTimeoutError::Timeout) => Err(format!("{what}: not done within {timeout:?}")),
        Err(RecvTimeoutError::Disconnected) => Err(format!("{what}: panicked")),
    }
}

/// The 1 MiB binary message of the scripts: byte `i` is `i % 251`.
pub fn blob() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8).collect()
}

/// Describes a binary payload the way the assertions compare it.
pub fn describe_binary(data: &[u8]) -> String {
    match data
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8)
    {
        None => format!("BINARY {} bytes i%251", data.len()),
        Some(at) => format!("BINARY {} bytes differing from i%251 at {at}", data.len()),
    }
}
