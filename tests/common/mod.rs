//! Helpers for tests that run shmx in several real processes.
//!
//! The parent test never touches shmx itself (the library reads `SHMX_ROOT` from the
//! environment, which is process-global and shared by the test threads): it spawns the test
//! binary again as children, each with its own `SHMX_ROOT` and a role in `SHMX_CHILD`, talks
//! to them through lines on their stdin/stdout, and checks their exit status.
//!
//! Protocol: a child prints `@shmx <word> [details]` lines on stdout (libtest's own lines are
//! ignored) and its last line is `@shmx end <code>` right before it exits with that code.
//! The parent answers through lines on the child's stdin.
//!
//! [`messages`] holds the message types and [`roles`] the child roles that more than one
//! test binary uses; each binary's `child_main` dispatches to those and to roles of its own.
//! A binary uses only part of this module, hence `allow(dead_code)`.
#![allow(dead_code)]

pub mod messages;
pub mod rng;
pub mod roles;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Environment variable that carries a child's role and arguments.
pub const ROLE_VAR: &str = "SHMX_CHILD";
/// Prefix of the protocol lines on a child's stdout.
const TAG: &str = "@shmx ";
/// How long any single wait of the parent or of a child may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------------

/// A fresh, private `SHMX_ROOT` for one test.
pub struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        Root {
            dir: tempfile::tempdir().expect("create a temporary SHMX_ROOT"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every entry left in the root (recursively), for failure messages.
    pub fn entries(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                if p.is_dir() {
                    walk(&p, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out
    }

    /// Asserts that no file or directory is left in the root.
    #[track_caller]
    pub fn assert_empty(&self) {
        let left = self.entries();
        assert!(
            left.is_empty(),
            "SHMX_ROOT {} is not empty after every process exited: {left:?}",
            self.path().display()
        );
    }
}

/// A child process running one role; killed (and reaped) when dropped, so a failing test
/// leaves no process behind.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every protocol line received so far (for failure messages).
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    exited: Option<std::process::ExitStatus>,
}

impl Proc {
    /// Spawns this test binary as a child running `role` (e.g. `"sub topic=t n=10"`) with
    /// `SHMX_ROOT` set to `root`.
    pub fn spawn(name: &str, role: &str, root: &Path) -> Proc {
        let exe = std::env::current_exe().expect("path of the test binary");
        let mut child = Command::new(exe)
            .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .env("SHMX_ROOT", root)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn child {name} ({role}): {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have started the line (`test child_main ... `).
                if let Some(at) = line.find(TAG) {
                    if tx.send(line[at + TAG.len()..].to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            exited: None,
        }
    }

    fn report(&mut self) -> String {
        if self.exited.is_some() {
            // The child is gone, so its stderr reaches end of file: collect all of it.
            if let Some(reader) = self.stderr_reader.take() {
                let _ = reader.join();
            }
        }
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        format!(
            "child {} (pid {}): lines so far {:?}; stderr:\n{}",
            self.name,
            self.child.id(),
            self.seen,
            stderr
        )
    }

    /// Waits (up to [`DEADLINE`]) for the next protocol line; it must start with `word`.
    /// Returns the rest of the line.
    #[track_caller]
    pub fn expect(&mut self, word: &str) -> String {
        self.expect_within(word, DEADLINE)
    }

    #[track_caller]
    pub fn expect_within(&mut self, word: &str, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                let (head, rest) = line.split_once(' ').unwrap_or((&line, ""));
                if head != word {
                    panic!("expected `{word}`, got `{line}`; {}", self.report());
                }
                rest.to_owned()
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("no `{word}` line within {timeout:?}; {}", self.report())
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Give the stderr reader a moment to collect the panic message.
                let status = self.wait_status(Duration::from_secs(5));
                panic!(
                    "child exited ({status:?}) before printing `{word}`; {}",
                    self.report()
                )
            }
        }
    }

    /// Sends one line on the child's stdin.
    #[track_caller]
    pub fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!("cannot write to child: {e}; {}", self.report());
        }
    }

    fn wait_status(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => return None,
                Err(e) => panic!("wait for child: {e}; {}", self.report()),
            }
        }
    }

    /// Waits for the child to print `end <code>` and exit with that code; returns the code.
    #[track_caller]
    pub fn exit_code(&mut self) -> i32 {
        let code = self.expect("end");
        let Some(status) = self.wait_status(DEADLINE) else {
            panic!("child did not exit within {DEADLINE:?}; {}", self.report());
        };
        let expected: i32 = code.trim().parse().expect("numeric exit code");
        if status.code() != Some(expected) {
            panic!(
                "child said `end {code}` but exited with {status}; {}",
                self.report()
            );
        }
        expected
    }

    /// Waits for the child to finish its role successfully.
    #[track_caller]
    pub fn succeed(&mut self) {
        let code = self.exit_code();
        if code != 0 {
            panic!("child exited with {code}; {}", self.report());
        }
    }

    /// Every protocol line seen so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child with `SIGKILL` (no chance to clean up) and reaps it.
    #[track_caller]
    pub fn kill(&mut self) {
        if let Err(e) = self.child.kill() {
            panic!("kill child: {e}; {}", self.report());
        }
        match self.child.wait() {
            Ok(status) => self.exited = Some(status),
            Err(e) => panic!("reap killed child: {e}; {}", self.report()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for every child in turn to succeed.
#[track_caller]
pub fn all_succeed(procs: &mut [Proc]) {
    for p in procs {
        p.succeed();
    }
}

// ---------------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------------

/// A child's role: its name and `key=value` arguments.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    args: HashMap<String, String>,
}

impl Role {
    /// The role of this process, if it is a child.
    pub fn current() -> Option<Role> {
        let spec = std::env::var(ROLE_VAR).ok()?;
        let mut words = spec.split_whitespace();
        let name = words.next().unwrap_or_default().to_owned();
        let args = words
            .map(|w| {
                let (k, v) = w.split_once('=').unwrap_or((w, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Some(Role { name, args })
    }

    #[track_caller]
    pub fn str(&self, key: &str) -> &str {
        self.args
            .get(key)
            .unwrap_or_else(|| panic!("role {} needs {key}=", self.name))
    }

    pub fn opt(&self, key: &str) -> Option<&str> {
        self.args.get(key).map(String::as_str)
    }

    #[track_caller]
    pub fn num(&self, key: &str) -> u64 {
        let v = self.str(key);
        v.parse()
            .unwrap_or_else(|e| panic!("{key}={v} is not a number: {e}"))
    }

    pub fn num_or(&self, key: &str, default: u64) -> u64 {
        self.opt(key)
            .map_or(default, |v| v.parse().expect("a number"))
    }

    pub fn flag(&self, key: &str) -> bool {
        self.args.contains_key(key)
    }
}

/// Prints one protocol line to the parent.
pub fn emit(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG}{line}").expect("write to stdout");
    out.flush().expect("flush stdout");
}

fn stdin_lines() -> &'static Mutex<Receiver<Option<String>>> {
    static LINES: OnceLock<Mutex<Receiver<Option<String>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Mutex::new(rx)
    })
}

/// Waits (up to [`DEADLINE`]) for the parent's next line; it must be `expected`.
/// End of input (the parent died) ends the child at once.
#[track_caller]
pub fn await_parent(expected: &str) {
    let rx = stdin_lines().lock().unwrap_or_else(|e| e.into_inner());
    match rx.recv_timeout(DEADLINE) {
        Ok(Some(line)) if line == expected => {}
        Ok(Some(line)) => panic!("expected `{expected}` from the parent, got `{line}`"),
        Ok(None) | Err(RecvTimeoutError::Disconnected) => {
            eprintln!("parent went away while we waited for `{expected}`");
            std::process::exit(3)
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("the parent did not say `{expected}` within {DEADLINE:?}")
        }
    }
}

/// Calls `f` until it returns `Some`, up to [`DEADLINE`]; panics naming `what` otherwise.
#[track_caller]
pub fn poll<R>(what: &str, mut f: impl FnMut() -> Option<R>) -> R {
    let deadline = Instant::now() + DEADLINE;
    let mut round = 0u32;
    loop {
        if let Some(r) = f() {
            return r;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}");
        }
        round += 1;
        if round < 100 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs the child's role if this process is a child: `run` returns the exit code; every
/// value the role owns has been dropped by then (so its shmx endpoints have cleaned up,
/// which `std::process::exit` alone would skip). Returns normally in the parent.
pub fn run_child(run: impl FnOnce(&Role) -> i32) {
    let Some(role) = Role::current() else { return };
    let code = run(&role);
    emit(format_args!("end {code}"));
    std::process::exit(code);
}
