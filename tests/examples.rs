//! Examples that `cargo test` runs to the end: each must exit 0 within a deadline and leave
//! its shmx root empty. Each example checks what it received itself (counts, order, the
//! events it expects) and exits non-zero otherwise, so this test only runs it.
//!
//! The examples are built with `cargo build --example` (nothing to do when `cargo test`
//! built them already, as it does unless targets are selected) and run with `SHMX_ROOT` set
//! to a fresh directory. Their output is shown when they fail.

#[path = "recording/sensor_network.rs"]
mod recording;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The examples run here.
const EXAMPLES: [&str; 4] = ["waitset", "tokio", "request_response", "sensor_network"];
/// Longest a run may take (each takes about 2 s; debug builds and busy machines are slower).
const DEADLINE: Duration = Duration::from_secs(120);

/// Builds the examples once (with this test's profile) and returns where each one is.
fn executable(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--message-format=json",
        ]);
        for example in EXAMPLES {
            cargo.args(["--example", example]);
        }
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let out = cargo
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build of the examples failed");
        // One JSON object a line; the artifacts of examples carry `"executable":"<path>"`.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
            .filter(|l| l.contains(r#""kind":["example"]"#))
            .filter_map(|l| {
                let name = field(l, r#""name":""#)?;
                let exe = field(l, r#""executable":""#)?;
                Some((name.to_owned(), PathBuf::from(exe)))
            })
            .collect()
    });
    built
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, exe)| exe.clone())
        .unwrap_or_else(|| panic!("cargo built no example {name}"))
}

/// The string after `key` in `line`, up to the next quote (paths and names here hold none).
fn field<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let start = line.find(key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// Runs example `name` with a fresh `SHMX_ROOT`; fails unless it exits 0 in time and leaves
/// the root empty.
fn run(name: &str) {
    let exe = executable(name);
    let root = tempfile::tempdir().expect("a temporary SHMX_ROOT");
    let logs = tempfile::tempdir().expect("a directory for the output");
    let log = logs.path().join("output");
    let file = std::fs::File::create(&log).expect("create the output file");
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .env("SHMX_ROOT", root.path())
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("duplicate the output file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let took = started.elapsed();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("example {name} failed ({s}) after {took:?}:\n{output}"),
        None => panic!("example {name} was still running after {DEADLINE:?}:\n{output}"),
    }
    let left: Vec<_> = std::fs::read_dir(root.path())
        .expect("read the root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "example {name} left {left:?} in its root:\n{output}"
    );
    println!("example {name}: exit 0 in {took:.2?}, root empty");
}

#[test]
fn the_sensor_network_is_recorded_and_played_back_byte_for_byte() {
    recording::record_and_play(&executable("sensor_network"));
}

#[test]
fn waitset_example_runs_to_the_end() {
    run("waitset");
}

#[test]
fn tokio_example_runs_to_the_end() {
    run("tokio");
}

#[test]
fn request_response_example_runs_to_the_end() {
    run("request_response");
}
