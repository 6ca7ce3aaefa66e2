//! `shmx record`, `shmx play`, `shmx export` and `shmx info FILE.mcap` against publishers and
//! subscribers in other processes: a recorder stopped by Ctrl-C leaves a complete file that
//! plays back to a typed subscriber; one killed leaves a file read up to its last whole
//! chunk; bad files and mismatched types give clear errors. The harness is in
//! `common/mod.rs`.

mod common;

use common::*;
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;
use shmx::ShmMessage;
use shmx_record::{Entry, Recording};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// The children's entry point (see [`common::run_child_role`]).
#[test]
fn child_main() {
    run_child_role();
}

/// A running `shmx record`, its stdout lines read by a thread.
struct Recorder {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Recorder {
    /// Starts `shmx record <args>` under `root` and waits for its first line.
    fn start(root: &Path, args: &[&str]) -> Recorder {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shmx"))
            .arg("record")
            .args(args)
            .args(["--interval", "0.02", "--root"])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run shmx record");
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        let mut r = Recorder {
            child,
            lines,
            seen: Vec::new(),
        };
        r.wait_line(|l| l.starts_with("recording "));
        r
    }

    /// Waits (up to [`DEADLINE`]) for a line that `f` accepts; returns it.
    fn wait_line(&mut self, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if f(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "shmx record never printed the line ({e}):\n{:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for a live line saying that `topic` has at least `n` messages; returns how many.
    fn wait_messages(&mut self, topic: &str, n: u64) -> u64 {
        let prefix = format!("] {topic}  ");
        let line = self.wait_line(|l| {
            l.split_once(&prefix)
                .and_then(|(_, rest)| rest.split(' ').next()?.parse::<u64>().ok())
                .is_some_and(|m| m >= n)
        });
        let rest = line.split_once(&prefix).unwrap().1;
        rest.split(' ').next().unwrap().parse().unwrap()
    }

    fn signal(&mut self, signal: Signal) {
        let pid = Pid::from_child(&self.child);
        kill_process(pid, signal).expect("signal shmx record");
    }

    /// Waits for it to exit; the rest of its output.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = wait_for_exit(&mut self.child, "shmx record");
        let mut rest = self.seen.join("\n");
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(5)) {
            rest.push('\n');
            rest.push_str(&line);
        }
        (status, rest)
    }
}

/// Records [`STREAMED`] poses of a `stream` child on `rec/pose` under a fresh root into
/// `file` (extra `args` to `shmx record`), stopping the recorder with Ctrl-C.
fn record_poses(file: &Path, args: &[&str]) {
    let root = fresh_root();
    let file_arg = file.to_str().unwrap();
    let mut all = vec!["rec/*", "-o", file_arg];
    all.extend_from_slice(args);
    let mut recorder = Recorder::start(root.path(), &all);
    let mut publisher = Participant::start_as(root.path(), "stream", "rec/pose");
    publisher.line_starting("sent");
    recorder.wait_messages("rec/pose", STREAMED);
    recorder.signal(Signal::INT);
    let (status, out) = recorder.finish();
    assert!(status.success(), "shmx record: {status}\n{out}");
    assert!(out.contains("recorded 1 topics"), "{out}");
    publisher.finish();
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory")
}

/// The sequence numbers (`Pose::seq`, the first 8 bytes) of a recording's messages.
fn recorded_seqs(file: &Path) -> (Vec<u64>, Option<String>) {
    let recording = Recording::open(file).expect("open the recording");
    let mut reader = recording.reader().expect("read it");
    let mut seqs = Vec::new();
    for entry in &mut reader {
        if let Entry::Message(m) = entry.expect("a valid record") {
            seqs.push(u64::from_ne_bytes(m.data[..8].try_into().unwrap()));
        }
    }
    (seqs, reader.truncated().map(str::to_owned))
}

#[test]
fn ctrl_c_finishes_a_complete_recording_that_plays_back_to_a_typed_subscriber() {
    let dir = scratch();
    let file = dir.path().join("poses.mcap");
    record_poses(&file, &["--compression", "zstd"]);

    // A complete file: summary written, every sample there, with its type.
    let info = shmx(dir.path(), &["info", file.to_str().unwrap(), "--json"]).json();
    assert_eq!(info["truncated"], Value::Null, "{info}");
    assert_eq!(info["messages"], STREAMED, "{info}");
    let channel = &info["channels"][0];
    assert_eq!(channel["topic"], "rec/pose");
    assert_eq!(channel["type"], "Pose");
    assert_eq!(channel["fingerprint"], Pose::FINGERPRINT, "{info}");
    assert_eq!(channel["message_encoding"], "shmx");
    assert_eq!(channel["publishers"], 1);
    let (seqs, _) = recorded_seqs(&file);
    assert_eq!(seqs, (1..=STREAMED).collect::<Vec<_>>());
    let table = shmx(dir.path(), &["info", file.to_str().unwrap()]).ok();
    assert!(
        table.contains("rec/pose") && table.contains("Pose"),
        "{table}"
    );

    // Played back, ten times as fast, to a typed subscriber in another process.
    let root = fresh_root();
    let mut sub = Participant::start_as(root.path(), "recv", "rec/pose");
    let played = shmx(
        root.path(),
        &[
            "play",
            file.to_str().unwrap(),
            "--rate",
            "10",
            "--wait-subscribers",
            "10",
            "--json",
        ],
    )
    .json();
    assert_eq!(played["messages"], STREAMED, "{played}");
    for seq in 1..=STREAMED {
        assert_eq!(sub.line_starting("pose "), format!("pose {seq}"));
    }
    sub.finish();
}

#[test]
fn a_killed_recorder_leaves_a_file_read_up_to_its_last_whole_chunk() {
    let root = fresh_root();
    let dir = scratch();
    let file = dir.path().join("cut.mcap");
    let file_arg = file.to_str().unwrap();
    // Small chunks: several are whole by the time it is killed.
    let mut recorder = Recorder::start(
        root.path(),
        &["rec/*", "-o", file_arg, "--chunk-size", "1024"],
    );
    let mut publisher = Participant::start_as(root.path(), "stream", "rec/pose");
    let live = recorder.wait_messages("rec/pose", STREAMED / 2);
    recorder.signal(Signal::KILL);
    let (status, _) = recorder.finish();
    assert!(!status.success());
    publisher.finish();

    let info = shmx(dir.path(), &["info", file_arg, "--json"]).json();
    let cut = info["truncated"]
        .as_str()
        .expect("the file is said to be cut off");
    assert!(cut.contains("cut off"), "{cut}");
    let (seqs, truncated) = recorded_seqs(&file);
    assert!(truncated.is_some());
    assert_eq!(info["messages"], seqs.len());
    // Whole chunks of 1 KiB hold ~15 poses each: most of what it had taken is there, in
    // order, from the first.
    assert!(
        seqs.len() >= 15,
        "only {} of {live} messages read back",
        seqs.len()
    );
    assert!(seqs.len() as u64 <= STREAMED);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let table = shmx(dir.path(), &["info", file_arg]).ok();
    assert!(table.contains("CUT OFF"), "{table}");
}

#[test]
fn play_refuses_a_topic_of_another_type_naming_both_fingerprints() {
    let dir = scratch();
    let file = dir.path().join("poses.mcap");
    record_poses(&file, &[]);
    let root = fresh_root();
    // The topic exists with `Robot` messages.
    let _robot = Participant::start_as(root.path(), "sub", "rec/pose");
    let run = shmx(root.path(), &["play", file.to_str().unwrap()]);
    assert!(!run.status.success());
    for fingerprint in [Pose::FINGERPRINT, Robot::FINGERPRINT] {
        let hex = format!("{fingerprint:#018x}");
        assert!(run.stderr.contains(&hex), "{hex} not in: {}", run.stderr);
    }
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = scratch();
    let at = |name: &str| -> PathBuf { dir.path().join(name) };
    std::fs::write(at("text.mcap"), "hello, not a recording\n").unwrap();
    std::fs::write(at("empty.mcap"), "").unwrap();
    for name in ["text.mcap", "empty.mcap"] {
        for command in ["info", "play"] {
            let run = shmx(dir.path(), &[command, at(name).to_str().unwrap()]);
            assert!(!run.status.success());
            assert!(
                run.stderr.contains("not an MCAP file"),
                "{command} {name}: {}",
                run.stderr
            );
        }
    }
    let run = shmx(dir.path(), &["info", at("missing.mcap").to_str().unwrap()]);
    assert!(
        !run.status.success() && run.stderr.contains("No such file"),
        "{}",
        run.stderr
    );

    // A recording cut inside its first records: nothing to read, and said so.
    let file = at("poses.mcap");
    record_poses(&file, &[]);
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(at("cut.mcap"), &whole[..40]).unwrap();
    let info = shmx(
        dir.path(),
        &["info", at("cut.mcap").to_str().unwrap(), "--json"],
    )
    .json();
    assert_eq!(info["messages"], 0);
    assert!(info["truncated"].is_string(), "{info}");

    // Garbage after the magic bytes: an error naming the file, not a crash.
    let mut garbage = whole[..8].to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(at("garbage.mcap"), &garbage).unwrap();
    let run = shmx(dir.path(), &["info", at("garbage.mcap").to_str().unwrap()]);
    assert!(
        run.status.success() || run.stderr.contains("garbage.mcap"),
        "{}",
        run.stderr
    );

    // A finished file corrupted inside a chunk: its checksum fails; an export of it leaves
    // no file behind (not even a part).
    let mut corrupt = whole.clone();
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(at("corrupt.mcap"), &corrupt).unwrap();
    let run = shmx(dir.path(), &["info", at("corrupt.mcap").to_str().unwrap()]);
    assert!(
        !run.status.success() && run.stderr.contains("corrupt.mcap"),
        "{}",
        run.stderr
    );
    let out = at("corrupt.json.mcap");
    let run = shmx(
        dir.path(),
        &[
            "export",
            at("corrupt.mcap").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(!out.exists() && !at("corrupt.json.mcap.part").exists());

    // Another schema encoding (the JSON export): shown by `info`, refused by `play`.
    let json = at("poses.json.mcap");
    shmx(
        dir.path(),
        &[
            "export",
            file.to_str().unwrap(),
            "-o",
            json.to_str().unwrap(),
        ],
    )
    .ok();
    let info = shmx(dir.path(), &["info", json.to_str().unwrap(), "--json"]).json();
    assert_eq!(info["channels"][0]["schema_encoding"], "jsonschema");
    let root = fresh_root();
    let run = shmx(root.path(), &["play", json.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("cannot be played") && run.stderr.contains("json"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_recordings_name_every_field() {
    let dir = scratch();
    let file = dir.path().join("poses.json.mcap");
    record_poses(&file, &["--encoding", "json"]);
    let recording = Recording::open(&file).unwrap();
    let mut messages = Vec::new();
    for entry in recording.reader().unwrap() {
        match entry.unwrap() {
            Entry::Channel(c) => {
                assert_eq!(
                    (c.schema_encoding.as_str(), c.message_encoding.as_str()),
                    ("jsonschema", "json")
                );
                let schema: Value = serde_json::from_slice(&c.schema_data).unwrap();
                let fields: Vec<&String> =
                    schema["properties"].as_object().unwrap().keys().collect();
                assert_eq!(fields, ["seq", "x", "y", "heading", "flags"]);
                assert_eq!(c.fingerprint(), Some(Pose::FINGERPRINT));
            }
            Entry::Message(m) => messages.push(serde_json::from_slice::<Value>(&m.data).unwrap()),
        }
    }
    assert_eq!(messages.len() as u64, STREAMED);
    assert_eq!(
        messages[2],
        serde_json::json!({"seq": 3, "x": 1.5, "y": -1.0, "heading": 0.25, "flags": 3})
    );
}
