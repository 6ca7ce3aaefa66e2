//! Child processes the test runs to the end or in the background: the `shmx` binary (and
//! cargo, building the probe).

use crate::common;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `shmx` command running in the background; killed when dropped.
pub(crate) struct Background {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Background {
    /// Starts `shmx args` under `root`.
    pub(crate) fn start(root: &Path, args: &[&str]) -> Background {
        Background::spawn(
            Command::new(env!("CARGO_BIN_EXE_shmx"))
                .args(args)
                .arg("--root")
                .arg(root)
                .env("SHMX_ROOT", root),
        )
    }

    /// Starts `command`, its stdout and stderr read by threads.
    pub(crate) fn spawn(command: &mut Command) -> Background {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = pipe.read_to_string(&mut s);
                s
            })
        };
        let stdout = Some(read(Box::new(child.stdout.take().expect("piped"))));
        let stderr = Some(read(Box::new(child.stderr.take().expect("piped"))));
        Background {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits (up to the deadline) until `topic` has `count` subscribers, as `shmx info`
    /// shows them; an error if this command exits first.
    pub(crate) fn wait_for_subscribers(
        &mut self,
        root: &Path,
        topic: &str,
        count: usize,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for shmx") {
                let stderr = self.stderr.take().expect("once").join().expect("stderr");
                return Err(format!(
                    "shmx exited ({status}) before it subscribed: {stderr}"
                ));
            }
            let info: Value = shmx(root, &["info", topic, "--json"]).and_then(|out| {
                serde_json::from_str(&out).map_err(|e| format!("shmx info: not JSON ({e}): {out}"))
            })?;
            if info["subscribers"].as_array().map(Vec::len) == Some(count) {
                return Ok(());
            }
            if start.elapsed() > common::DEADLINE {
                return Err(format!("shmx never subscribed to {topic}: {info:#}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits (up to the deadline) for the command to exit; its stdout if it succeeded.
    pub(crate) fn finish(self) -> Result<String, String> {
        let (status, stdout, stderr) = self.finish_within(common::DEADLINE)?;
        if status.success() {
            Ok(stdout)
        } else {
            Err(format!("shmx failed ({status}): {stderr}"))
        }
    }

    /// Waits up to `deadline` for the command to exit (killing it after that): its exit
    /// status, stdout and stderr.
    pub(crate) fn finish_within(
        mut self,
        deadline: Duration,
    ) -> Result<(ExitStatus, String, String), String> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for a child") {
                break status;
            }
            if start.elapsed() > deadline {
                return Err(format!("{:?} did not exit within {deadline:?}", self.child));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self.stdout.take().expect("once").join().expect("stdout");
        let stderr = self.stderr.take().expect("once").join().expect("stderr");
        Ok((status, stdout, stderr))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `shmx` to the end: its stdout, or what went wrong.
pub(crate) fn shmx(root: &Path, args: &[&str]) -> Result<String, String> {
    let run = common::shmx(root, args);
    if run.status.success() {
        Ok(run.stdout)
    } else {
        Err(format!(
            "`shmx {}` failed ({}): {}",
            args.iter()
                .map(|a| if a.len() > 200 { "<json>" } else { a })
                .collect::<Vec<_>>()
                .join(" "),
            run.status,
            run.stderr
        ))
    }
}
