//! The real `shmx` binary against real publishers and subscribers in other processes.
//!
//! Each test gets a fresh root under /dev/shm, passed to the binary with `--root` and to every
//! process as `SHMX_ROOT`. Publishers and subscribers live in children: this test binary run
//! again with [`ROLE_VAR`] naming the role, so the test process itself never opens a topic.
//! A child prints a line ending in `ready` once its endpoints exist, then waits until its
//! stdin closes (it then drops them and exits) or it is killed. Roles: `pubsub` (a publisher
//! and a subscriber of [`Pose`], [`SENT`] samples sent), `waitpub` (a publisher of [`Pose`]
//! that sends [`echoed_poses`] once a subscriber appears) and `sub` (a subscriber of
//! [`Robot`] that prints `got {:?}` of the first sample it receives).

use serde_json::Value;
use shmx::{Publisher, ShmMessage, Subscriber};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Environment variable naming a child's role and topic: `pubsub <topic>`, `waitpub <topic>`,
/// `sub <topic>`.
const ROLE_VAR: &str = "SHMX_CLI_TEST_ROLE";
/// How long any single wait may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// The message type the children publish.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Pose {
    seq: u64,
    x: f64,
    y: f64,
    heading: f32,
    flags: u32,
}

/// Samples a child publishes to its own subscriber before saying `ready`.
const SENT: u64 = 3;

/// A fieldless enum, for `shmx pub`.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Mode {
    Idle = 0,
    Drive = 1,
    Stop = 2,
}

/// A message with a nested struct, a nested array, an enum, a bool and padding, for `shmx pub`.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Robot {
    pose: Pose,
    path: [[f32; 2]; 2],
    mode: Mode,
    armed: bool,
    _pad: [u8; 6],
}

/// What a `waitpub` child sends once `shmx echo` subscribes (values exact in f32 and f64).
fn echoed_poses() -> Vec<Pose> {
    (0..3u32)
        .map(|i| Pose {
            seq: 100 + u64::from(i),
            x: f64::from(i) + 0.5,
            y: -1.25,
            heading: 0.25 * i as f32,
            flags: 7 << i,
        })
        .collect()
}

/// The children's entry point; an ordinary (empty) test when [`ROLE_VAR`] is unset.
#[test]
fn child_main() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    match role.split_once(' ') {
        Some(("pubsub", topic)) => {
            let publisher = Publisher::<Pose>::new(topic).expect("create the publisher");
            let subscriber = Subscriber::<Pose>::new(topic).expect("create the subscriber");
            for seq in 0..SENT {
                publisher
                    .send(Pose {
                        seq,
                        x: 1.0,
                        y: 2.0,
                        heading: 0.5,
                        flags: 0,
                    })
                    .expect("publish");
            }
            println!("ready");
            // Until the parent closes our stdin (or kills us).
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            drop(subscriber);
            drop(publisher);
        }
        Some(("waitpub", topic)) => {
            let publisher = Publisher::<Pose>::new(topic).expect("create the publisher");
            println!("ready");
            let start = Instant::now();
            while publisher.subscriber_count() == 0 {
                assert!(start.elapsed() < DEADLINE, "no subscriber came");
                std::thread::sleep(Duration::from_millis(5));
            }
            for pose in echoed_poses() {
                publisher.send(pose).expect("publish");
            }
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        Some(("sub", topic)) => {
            let subscriber = Subscriber::<Robot>::new(topic).expect("create the subscriber");
            println!("ready");
            match subscriber.recv_timeout(DEADLINE).expect("receive") {
                Some(robot) => println!("got {:?}", *robot),
                None => println!("got nothing"),
            }
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        _ => panic!("unknown role {role:?}"),
    }
}

/// A fresh root under /dev/shm for one test.
fn fresh_root() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").expect("create a root under /dev/shm")
}

/// Polls `child` until it exits, up to [`DEADLINE`]; kills it and panics after that.
fn wait_for_exit(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child process with endpoints of one topic; killed when dropped.
struct Participant {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The lines the child prints after `ready`.
    lines: Receiver<String>,
}

impl Participant {
    /// Starts a child that publishes and subscribes to `topic` under `root`, and waits (up
    /// to [`DEADLINE`]) until it says `ready`.
    fn start(root: &Path, topic: &str) -> Participant {
        Participant::start_as(root, "pubsub", topic)
    }

    /// Starts a child in `role` (see [`child_main`]) on `topic` under `root`, and waits (up
    /// to [`DEADLINE`]) until it says `ready`.
    fn start_as(root: &Path, role: &str, topic: &str) -> Participant {
        let exe = std::env::current_exe().expect("path of the test binary");
        let mut child = Command::new(exe)
            .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, format!("{role} {topic}"))
            .env("SHMX_ROOT", root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a child");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut participant = Participant {
            child,
            stdin,
            lines: lines_of(stdout),
        };
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match participant.lines.recv_timeout(left) {
                // libtest may have started the line (`test child_main ... `).
                Ok(line) if line.ends_with("ready") => return participant,
                Ok(_) => continue,
                Err(e) => {
                    let status = participant.child.try_wait();
                    panic!("child on {topic:?} never said ready ({e}); status {status:?}");
                }
            }
        }
    }

    /// The next line the child prints that starts with `prefix` (waiting up to
    /// [`DEADLINE`]).
    fn line_starting(&self, prefix: &str) -> String {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("the child never printed {prefix:?}... ({e})"),
            }
        }
    }

    fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }

    /// SIGKILL: the child leaves everything behind.
    fn kill(&mut self) {
        self.child.kill().expect("kill the child");
        self.child.wait().expect("reap the child");
    }

    /// Closes the child's stdin and waits for it to drop its endpoints and exit.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let status = wait_for_exit(&mut self.child, "a finishing child");
        assert!(status.success(), "child exited with {status}");
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of `pipe`, read by a thread so that waiting for them can have a deadline. The
/// thread reads to the end even when nobody listens any more: a child whose stdout is closed
/// would fail on libtest's last lines.
fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// What a run of the `shmx` binary printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> String {
        assert!(
            self.status.success(),
            "shmx failed ({}): {}",
            self.status,
            self.stderr
        );
        self.stdout
    }

    #[track_caller]
    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

/// Runs the real `shmx` binary with `--root root` and `SHMX_ROOT=root`.
fn shmx(root: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmx"))
        .args(args)
        .arg("--root")
        .arg(root)
        .env("SHMX_ROOT", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shmx");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let status = wait_for_exit(&mut child, &format!("shmx {args:?}"));
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Every file and directory under `root`, recursively.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read a directory").flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

fn topic_named<'a>(topics: &'a Value, name: &str) -> &'a Value {
    topics
        .as_array()
        .expect("an array of topics")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no topic {name:?} in {topics:#}"))
}

#[test]
fn list_shows_topics_types_and_live_processes() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");

    let topics = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topics.as_array().map(Vec::len), Some(1), "{topics:#}");
    let t = topic_named(&topics, "robot/pose");
    assert!(
        t["type_name"].as_str().is_some_and(|n| n.ends_with("Pose")),
        "{t:#}"
    );
    assert!(
        t["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("0x")),
        "{t:#}"
    );
    for role in ["publishers", "subscribers"] {
        let slots = t[role].as_array().expect("slots");
        assert_eq!(slots.len(), 1, "{role}: {t:#}");
        assert_eq!(slots[0]["pid"], child.pid(), "{role}: {t:#}");
        assert_eq!(slots[0]["alive"], true, "{role}: {t:#}");
        assert_eq!(slots[0]["state"], "active", "{role}: {t:#}");
    }
    assert_eq!(t["subscribers"][0]["queued"], SENT, "{t:#}");
    let in_use = t["publishers"][0]["chunks_in_use"]
        .as_u64()
        .expect("chunks in use");
    assert!(in_use >= SENT, "the queued samples hold chunks: {t:#}");
    assert_eq!(t["publishers"][0]["published"], SENT, "{t:#}");

    let table = shmx(root.path(), &["list"]).ok();
    assert!(table.starts_with("TOPIC"), "{table}");
    assert!(table.contains("robot/pose"), "{table}");
    assert!(
        table.contains(&format!("{}(alive)", child.pid())),
        "{table}"
    );
    assert!(table.contains(&format!("{SENT} queued")), "{table}");
}

#[test]
fn info_shows_schema_and_slots() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");

    let text = shmx(root.path(), &["info", "robot/pose"]).ok();
    for field in ["seq@0", "x@8", "y@16", "heading@24", "flags@28"] {
        assert!(text.contains(field), "no {field} in:\n{text}");
    }
    assert!(text.contains("(32 bytes)"), "{text}");
    assert!(text.contains("mode         0600"), "{text}");
    assert!(text.contains("publishers (1):"), "{text}");
    assert!(text.contains("subscribers (1):"), "{text}");
    assert!(text.contains(&child.pid().to_string()), "{text}");

    let t = shmx(root.path(), &["info", "robot/pose", "--json"]).json();
    assert_eq!(t["name"], "robot/pose");
    assert_eq!(t["type_size"], 32);
    assert!(
        t["schema"]
            .as_str()
            .is_some_and(|s| s.contains("heading@24")),
        "{t:#}"
    );
    assert_eq!(t["limits"]["mode"], "0600");
    assert_eq!(t["publishers"][0]["pid"], child.pid());
    assert_eq!(t["publishers"][0]["alive"], true);
    assert_eq!(t["subscribers"][0]["pid"], child.pid());
    assert_eq!(t["subscribers"][0]["queued"], SENT);
}

#[test]
fn clean_removes_what_a_killed_process_left_and_keeps_live_topics() {
    let root = fresh_root();
    let mut killed = Participant::start(root.path(), "a");
    let mut live = Participant::start(root.path(), "b");
    let topics = shmx(root.path(), &["list", "--json"]).json();
    let dir_a = PathBuf::from(topic_named(&topics, "a")["dir"].as_str().expect("dir"));
    let dir_b = PathBuf::from(topic_named(&topics, "b")["dir"].as_str().expect("dir"));

    killed.kill();
    let t = shmx(root.path(), &["info", "a", "--json"]).json();
    assert_eq!(t["publishers"][0]["alive"], false, "{t:#}");
    assert!(shmx(root.path(), &["list"]).ok().contains("(DEAD)"));

    // A dry run names topic a's files and removes nothing.
    let before = files_under(root.path());
    let dry = shmx(root.path(), &["clean", "--dry-run", "--json"]).json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["reclaimed_slots"], 2, "{dry:#}");
    let would: Vec<PathBuf> = dry["removed"]
        .as_array()
        .expect("removed paths")
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("a path")))
        .collect();
    assert!(would.contains(&dir_a), "{dry:#}");
    assert!(would.iter().any(|p| p.starts_with(&dir_a) && p != &dir_a));
    assert!(!would.iter().any(|p| p.starts_with(&dir_b)), "{dry:#}");
    assert_eq!(
        files_under(root.path()),
        before,
        "the dry run removed something"
    );
    let text = shmx(root.path(), &["clean", "--dry-run"]).ok();
    assert!(text.starts_with("would reclaim 2 slot(s)"), "{text}");
    assert!(text.contains(&dir_a.display().to_string()), "{text}");

    // The real thing removes them, and only them.
    let done = shmx(root.path(), &["clean", "--json"]).json();
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["reclaimed_slots"], 2, "{done:#}");
    assert!(
        done["removed"]
            .as_array()
            .expect("removed paths")
            .iter()
            .any(|p| p == dir_a.to_str().expect("utf-8 path")),
        "{done:#}"
    );
    assert!(!dir_a.exists(), "{:?}", files_under(root.path()));
    assert!(dir_b.exists());
    let topics = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topics.as_array().map(Vec::len), Some(1), "{topics:#}");
    let b = topic_named(&topics, "b");
    assert_eq!(b["publishers"][0]["pid"], live.pid());
    assert_eq!(b["publishers"][0]["alive"], true);
    assert_eq!(shmx(root.path(), &["clean"]).ok(), "nothing to clean\n");

    live.finish();
    shmx(root.path(), &["clean"]).ok();
    assert_eq!(files_under(root.path()), Vec::<PathBuf>::new());
}

#[test]
fn unknown_topic_is_a_clear_error() {
    let root = fresh_root();
    let run = shmx(root.path(), &["info", "no/such/topic"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.starts_with("shmx: "), "{}", run.stderr);
    assert!(run.stderr.contains("no/such/topic"), "{}", run.stderr);
}

#[test]
fn invalid_topic_name_is_a_clear_error() {
    let root = fresh_root();
    for bad in ["", "a//b", "/x"] {
        let run = shmx(root.path(), &["info", bad]);
        assert_eq!(run.status.code(), Some(1), "{bad:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("shmx: invalid topic name"),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn an_empty_or_missing_root_lists_nothing() {
    let root = fresh_root();
    assert_eq!(
        shmx(root.path(), &["list", "--json"]).json(),
        Value::Array(vec![])
    );
    let missing = root.path().join("missing");
    assert!(shmx(&missing, &["list"])
        .ok()
        .starts_with("no topics under"));
    assert_eq!(shmx(&missing, &["clean"]).ok(), "nothing to clean\n");
    assert!(!missing.exists());
}

#[test]
fn echo_prints_samples_as_json() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "waitpub", "robot/pose");

    // The child publishes once `echo` has subscribed.
    let out = shmx(
        root.path(),
        &["echo", "robot/pose", "-n", "3", "--timeout", "30"],
    )
    .ok();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let expected: Vec<Value> = echoed_poses()
        .iter()
        .map(|p| {
            serde_json::json!({
                "seq": p.seq, "x": p.x, "y": p.y, "heading": p.heading, "flags": p.flags,
            })
        })
        .collect();
    let values: Vec<&Value> = lines.iter().map(|l| &l["value"]).collect();
    assert_eq!(values, expected.iter().collect::<Vec<_>>(), "{out}");
    // Fields in declaration order, and the publisher's sequence numbers, increasing.
    assert!(out.starts_with(r#"{"seq":"#), "{out}");
    assert!(
        out.lines().next().is_some_and(|l| l.contains(
            r#"{"seq":100,"x":0.5,"y":-1.25,"heading":0.0,"flags":7}"#
        )),
        "{out}"
    );
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    child.finish();

    // Nothing more comes: a timeout without -n ends quietly, with -n it is an error.
    let mut child = Participant::start(root.path(), "robot/pose");
    assert_eq!(
        shmx(root.path(), &["echo", "robot/pose", "--timeout", "0.2"]).ok(),
        ""
    );
    let run = shmx(
        root.path(),
        &["echo", "robot/pose", "-n", "1", "--timeout", "0.2"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("received 0 of 1"), "{}", run.stderr);
    child.finish();
}

/// The JSON `shmx pub` sends in the tests below, and the value it stands for.
fn robot_json() -> (Value, Robot) {
    let json = serde_json::json!({
        "pose": {"seq": 9, "x": 1.5, "y": -2.0, "heading": 0.75, "flags": 3},
        "path": [[1.0, 2.0], [3.5, -4.0]],
        "mode": "Drive",
        "armed": true,
    });
    let robot = Robot {
        pose: Pose {
            seq: 9,
            x: 1.5,
            y: -2.0,
            heading: 0.75,
            flags: 3,
        },
        path: [[1.0, 2.0], [3.5, -4.0]],
        mode: Mode::Drive,
        armed: true,
        _pad: [0; 6],
    };
    (json, robot)
}

#[test]
fn pub_encodes_json_for_a_typed_subscriber() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "sub", "robot/state");
    let (json, robot) = robot_json();

    let out = shmx(root.path(), &["pub", "robot/state", &json.to_string()]).ok();
    assert!(out.starts_with("published 1 sample(s)"), "{out}");
    assert_eq!(child.line_starting("got "), format!("got {robot:?}"));
    child.finish();

    // Round trip through `echo`: a second `pub` (paced, twice) while `echo` listens.
    let _child = Participant::start_as(root.path(), "sub", "robot/state");
    let echo_root = root.path().to_owned();
    let echo = std::thread::spawn(move || {
        shmx(
            &echo_root,
            &["echo", "robot/state", "-n", "2", "--timeout", "30"],
        )
        .ok()
    });
    let start = Instant::now();
    loop {
        let t = shmx(root.path(), &["info", "robot/state", "--json"]).json();
        if t["subscribers"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "echo never subscribed: {t:#}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = shmx(
        root.path(),
        &[
            "pub",
            "robot/state",
            &json.to_string(),
            "--count",
            "2",
            "--rate",
            "50",
            "--json",
        ],
    )
    .json();
    assert_eq!(report["published"], 2, "{report:#}");
    assert_eq!(report["subscribers"], 2, "{report:#}");
    let out = echo.join().expect("echo");
    let mut with_padding = json.clone();
    with_padding["_pad"] = serde_json::json!([0, 0, 0, 0, 0, 0]);
    for line in out.lines() {
        let line: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(line["value"], with_padding, "{out}");
    }
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn pub_names_the_missing_or_mistyped_field() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "sub", "robot/state");
    let (json, _) = robot_json();
    let cases: [(&[&str], Value, &str); 5] = [
        (
            &["pose", "x"],
            "abc".into(),
            r#"field "pose.x": expected a number, found "abc""#,
        ),
        (&["armed"], Value::Null, r#"missing field "armed""#),
        (
            &["mode"],
            "Fly".into(),
            r#"field "mode": expected a variant of Mode"#,
        ),
        (
            &["path"],
            serde_json::json!([[1.0, 2.0]]),
            r#"field "path": expected an array of 2"#,
        ),
        (
            &["pose", "extra"],
            1.into(),
            r#"unknown field "pose.extra""#,
        ),
    ];
    for (path, value, message) in cases {
        let mut bad = json.clone();
        let (last, parents) = path.split_last().expect("a path");
        let mut at = &mut bad;
        for p in parents {
            at = &mut at[*p];
        }
        if value.is_null() {
            at.as_object_mut().expect("an object").remove(*last);
        } else {
            at[*last] = value;
        }
        let run = shmx(root.path(), &["pub", "robot/state", &bad.to_string()]);
        assert_eq!(run.status.code(), Some(1), "{path:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(
            run.stderr.starts_with(&format!("shmx: {message}")),
            "{path:?}: {}",
            run.stderr
        );
    }
    let run = shmx(root.path(), &["pub", "robot/state", "{not json"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("not valid JSON"), "{}", run.stderr);
    // Nothing bad was published: the first thing the child receives is a good message.
    shmx(root.path(), &["pub", "robot/state", &json.to_string()]).ok();
    assert_eq!(
        child.line_starting("got "),
        format!("got {:?}", robot_json().1)
    );
    child.finish();
}

#[test]
fn echo_and_pub_need_an_existing_topic() {
    let root = fresh_root();
    for args in [
        &["echo", "no/such", "--timeout", "1"][..],
        &["pub", "no/such", "{}"][..],
    ] {
        let run = shmx(root.path(), args);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr, "shmx: no topic \"no/such\": start a publisher or subscriber of it first\n",
            "{args:?}"
        );
    }
}

#[test]
fn monitor_shows_publish_counts_and_queue_fill() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");
    let out = shmx(
        root.path(),
        &["monitor", "--json", "--count", "2", "--interval", "0.05"],
    )
    .ok();
    let refreshes: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON array per refresh"))
        .collect();
    assert_eq!(refreshes.len(), 2, "{out}");
    for r in &refreshes {
        let t = topic_named(r, "robot/pose");
        assert_eq!(t["publishers"][0]["published"], SENT, "{t:#}");
        assert_eq!(t["publishers"][0]["pid"], child.pid(), "{t:#}");
        assert_eq!(t["subscribers"][0]["queued"], SENT, "{t:#}");
    }
    // Nothing was published between the two refreshes.
    assert_eq!(
        topic_named(&refreshes[1], "robot/pose")["publishers"][0]["rate"],
        0.0
    );
    let screen = shmx(root.path(), &["monitor", "--count", "1"]).ok();
    assert!(
        screen.contains("TOPIC") && screen.contains("robot/pose"),
        "{screen}"
    );
}
