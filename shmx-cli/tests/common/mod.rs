//! The harness of the integration tests: the real `shmx` binary against real publishers and
//! subscribers in other processes. Each test binary (`inspect.rs`, `echo_pub.rs`) has
//! `mod common;` and a `#[test] fn child_main()` that calls [`run_child_role`].
//!
//! Each test gets a fresh root under /dev/shm, passed to the binary with `--root` and to every
//! process as `SHMX_ROOT`. Publishers and subscribers live in children: this test binary run
//! again with [`ROLE_VAR`] naming the role, so the test process itself never opens a topic.
//! A child prints a line ending in `ready` once its endpoints exist, then waits until its
//! stdin closes (it then drops them and exits) or it is killed. Roles: `pubsub` (a publisher
//! and a subscriber of [`Pose`], [`SENT`] samples sent), `waitpub` (a publisher of [`Pose`]
//! that sends [`echoed_poses`] once a subscriber appears), `sub` (a subscriber of
//! [`Robot`] that prints `got {:?}` of the first sample it receives), `stream` (a publisher
//! of [`STREAMED`] poses, 1 ms apart, once a subscriber appears) and `recv` (a subscriber of
//! [`Pose`] that prints `pose <seq>` for each sample).

// Each test binary uses a subset of the harness.
#![allow(dead_code)]

use serde_json::Value;
use shmx::{Publisher, ShmMessage, Subscriber};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Environment variable naming a child's role and topic: `pubsub <topic>`, `waitpub <topic>`,
/// `sub <topic>`.
pub const ROLE_VAR: &str = "SHMX_CLI_TEST_ROLE";
/// How long any single wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The message type the children publish.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Pose {
    pub seq: u64,
    pub x: f64,
    pub y: f64,
    pub heading: f32,
    pub flags: u32,
}

/// Samples a child publishes to its own subscriber before saying `ready`.
pub const SENT: u64 = 3;

/// Samples the `stream` role publishes.
pub const STREAMED: u64 = 200;

/// A fieldless enum, for `shmx pub`.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
pub enum Mode {
    Idle = 0,
    Drive = 1,
    Stop = 2,
}

/// A message with a nested struct, a nested array, an enum, a bool and padding, for `shmx pub`.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Robot {
    pub pose: Pose,
    pub path: [[f32; 2]; 2],
    pub mode: Mode,
    pub armed: bool,
    pub _pad: [u8; 6],
}

/// What a `waitpub` child sends once `shmx echo` subscribes (values exact in f32 and f64).
pub fn echoed_poses() -> Vec<Pose> {
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

/// The children's entry point: runs the role [`ROLE_VAR`] names, and returns at once when it is
/// unset. Each test binary calls it from its own `#[test] fn child_main()`, which the children
/// run (see [`Participant::start_as`]).
pub fn run_child_role() {
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
        Some(("stream", topic)) => {
            // A publisher of STREAMED poses (seq 1..=STREAMED), 1 ms apart, once a subscriber
            // (a recorder) is there; "sent N" at the end.
            let publisher = Publisher::<Pose>::builder(topic)
                .queue_depth(256)
                .create()
                .expect("create the publisher");
            println!("ready");
            let start = Instant::now();
            while publisher.subscriber_count() == 0 {
                assert!(start.elapsed() < DEADLINE, "no subscriber came");
                std::thread::sleep(Duration::from_millis(1));
            }
            for seq in 1..=STREAMED {
                let pose = Pose {
                    seq,
                    x: seq as f64 * 0.5,
                    y: -1.0,
                    heading: 0.25,
                    flags: seq as u32,
                };
                publisher.send(pose).expect("publish");
                std::thread::sleep(Duration::from_millis(1));
            }
            println!("sent {STREAMED}");
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        Some(("recv", topic)) => {
            // A subscriber of poses that prints "pose <seq>" for each, until stdin closes.
            let subscriber = Subscriber::<Pose>::builder(topic)
                .queue_depth(256)
                .create()
                .expect("create the subscriber");
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = done.clone();
            std::thread::spawn(move || {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            println!("ready");
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(pose) = subscriber
                    .recv_timeout(Duration::from_millis(20))
                    .expect("receive")
                {
                    println!("pose {}", pose.seq);
                }
            }
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
pub fn fresh_root() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").expect("create a root under /dev/shm")
}

/// Polls `child` until it exits, up to [`DEADLINE`]; kills it and panics after that.
pub fn wait_for_exit(child: &mut Child, what: &str) -> ExitStatus {
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
pub struct Participant {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The lines the child prints after `ready`.
    lines: Receiver<String>,
}

impl Participant {
    /// Starts a child that publishes and subscribes to `topic` under `root`, and waits (up
    /// to [`DEADLINE`]) until it says `ready`.
    pub fn start(root: &Path, topic: &str) -> Participant {
        Participant::start_as(root, "pubsub", topic)
    }

    /// Starts a child in `role` (see [`run_child_role`]) on `topic` under `root`, and waits (up
    /// to [`DEADLINE`]) until it says `ready`.
    pub fn start_as(root: &Path, role: &str, topic: &str) -> Participant {
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
    pub fn line_starting(&self, prefix: &str) -> String {
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

    pub fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }

    /// SIGKILL: the child leaves everything behind.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the child");
        self.child.wait().expect("reap the child");
    }

    /// Closes the child's stdin and waits for it to drop its endpoints and exit.
    pub fn finish(&mut self) {
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
pub fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
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
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> String {
        assert!(
            self.status.success(),
            "shmx failed ({}): {}",
            self.status,
            self.stderr
        );
        self.stdout
    }

    #[track_caller]
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

/// Runs the real `shmx` binary with `--root root` and `SHMX_ROOT=root`.
pub fn shmx(root: &Path, args: &[&str]) -> Run {
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
pub fn files_under(root: &Path) -> Vec<PathBuf> {
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

pub fn topic_named<'a>(topics: &'a Value, name: &str) -> &'a Value {
    topics
        .as_array()
        .expect("an array of topics")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no topic {name:?} in {topics:#}"))
}
