//! [`Kid`]: a child process of a cross-process test, this very test binary run again for one
//! role of its `child_main` test.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child may take to say something or to exit.
const DEADLINE: Duration = Duration::from_secs(60);

/// A child process: this test binary run again with `--exact child_main`, the environment
/// given (and no `SHMX_ROOT` unless given), its stdout read line by line and its stderr kept
/// by threads of their own (a child that writes much never blocks on a full pipe). Killed
/// when dropped.
pub struct Kid {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Kid {
    /// Starts the child with environment `envs` (its role, its root, ...).
    pub fn spawn<V: AsRef<OsStr>>(envs: &[(&str, V)]) -> Kid {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
            .env_remove("SHMX_ROOT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let kept = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            kept.lock().unwrap().push_str(&text);
        });
        Kid {
            child,
            lines,
            stderr,
        }
    }

    /// Waits (up to a minute) for a line of the child's stdout that contains `want`, and
    /// returns it from there on. (The first line a child prints may follow libtest's
    /// `test child_main ... ` on the same line.)
    pub fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find(want) {
                        return line[i..].trim_end().to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("the child never said {want:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the child exited before saying {want:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Closes its stdin: a child that serves until then stops.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Closes its stdin (a child that serves until then stops) and checks that it exits
    /// (within a minute) successfully.
    pub fn finish(self) {
        let (status, text) = self.outcome();
        assert!(status.success(), "child failed: {status:?}\n{text}");
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Closes its stdin and waits (up to a minute) for it to exit: its status, and what it
    /// printed that was not read yet, then its stderr.
    pub fn outcome(mut self) -> (ExitStatus, String) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the child never exited");
            std::thread::sleep(Duration::from_millis(5));
        };
        // The readers end with the child's pipes: everything it printed is in by then.
        let mut text = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            text.push_str(&line);
            text.push('\n');
        }
        let wait_err = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < wait_err {
            std::thread::sleep(Duration::from_millis(2));
        }
        let err = self.stderr.lock().unwrap().clone();
        (status, format!("{text}\n--- stderr ---\n{err}"))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
