//! Support shared by integration tests that need a network between two endpoints:
//! [`chaos_proxy`], a fault-injecting TCP proxy (resets, stalls, black holes, refusals).
#![allow(dead_code, unreachable_pub)]

pub mod chaos_proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Builds `examples/NAME.rs` as this test was built (profile, features, target directory)
/// and returns the path of the binary.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // The test runs from TARGET/PROFILE/deps/; examples land in TARGET/PROFILE/examples/.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary sits in TARGET/PROFILE/deps");
    let target_dir = profile_dir.parent().expect("TARGET");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let features: Vec<&str> = [
        ("std", cfg!(feature = "std")),
        ("tokio", cfg!(feature = "tokio")),
        ("rustls", cfg!(feature = "rustls")),
        ("tokio-rustls", cfg!(feature = "tokio-rustls")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name, "--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--no-default-features", "--features", &features.join(",")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Starts `examples/echo_server` (built by [`example_binary`]) on `addr` and waits for its
/// "listening" line; returns the process (killed on drop) and the address it listens on.
pub async fn start_echo_server(binary: &Path, addr: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(binary)
        .arg(addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start echo_server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("echo_server says it listens within 30 s")
        .expect("read its stdout")
        .expect("a line");
    let listening = line
        .strip_prefix("echo server listening on ws://")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    (child, listening.parse().expect("an address"))
}
