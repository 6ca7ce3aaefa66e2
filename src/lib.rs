//! Support code shared by the examples, the cross-process integration tests and the
//! benchmarks of shmx. Not published.
//!
//! - [`monotonic_ns`]: a `CLOCK_MONOTONIC` timestamp that means the same thing in every
//!   process of the machine (an [`Instant`] cannot cross a process boundary), for one-way
//!   latencies measured by stamping a message on one side and reading the clock on the other.
//! - [`LatencySummary`], [`percentile`] and [`format_ns`]: percentiles of such latencies.
//! - [`spawn_self`], [`wait_all`] and [`wait_until`]: an example re-executes itself once per
//!   role, waits for its children and fails if one of them failed; endpoints wait for their
//!   peers with a deadline instead of sleeping and hoping.
//! - [`unique_topic`] and [`topic_dir`]: topic names that do not collide with other runs, and
//!   the directory a topic occupies, to check that nothing was left behind.
//! - [`ExampleRoot`]: the shmx root of one run of an example, a fresh private directory
//!   unless `SHMX_ROOT` names one.
//! - [`bench`](mod@bench): the benchmark harness (contenders, child processes, the interleaved
//!   runner and its Markdown report) behind `benches/` and `examples/bench_report.rs`: the
//!   `shmx-bench` crate, re-exported.
//!
//! ```
//! use shmx_suite::{format_ns, LatencySummary};
//! let mut latencies = vec![900, 1_200, 800, 15_000, 1_000];
//! let summary = LatencySummary::from_samples(&mut latencies).unwrap();
//! assert_eq!((summary.p50, summary.max), (1_000, 15_000));
//! assert_eq!(format_ns(summary.max), "15.0 us");
//! ```

/// The benchmark harness (its own crate, `shmx-bench`, so that the `shmx` tool builds
/// without it): re-exported here for `benches/`, the examples and the tests.
pub use shmx_bench as bench;
pub use shmx_bench::{monotonic_ns, percentile, wait_until};

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Summary statistics of a set of latencies, in nanoseconds.
///
/// Its [`Display`](fmt::Display) form is one short line:
/// `p50 1.1 us  p90 1.4 us  p99 3.2 us  p99.9 12.0 us  max 40.1 us`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Smallest sample.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencySummary {
    /// Sorts `samples` in place and summarises them; `None` if there are none.
    pub fn from_samples(samples: &mut [u64]) -> Option<LatencySummary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Some(LatencySummary {
            count: samples.len(),
            min: samples[0],
            mean: sum as f64 / samples.len() as f64,
            p50: percentile(samples, 0.50),
            p90: percentile(samples, 0.90),
            p99: percentile(samples, 0.99),
            p999: percentile(samples, 0.999),
            max: samples[samples.len() - 1],
        })
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            format_ns(self.p50),
            format_ns(self.p90),
            format_ns(self.p99),
            format_ns(self.p999),
            format_ns(self.max)
        )
    }
}

/// Formats a duration in nanoseconds for people: `850 ns`, `12.3 us`, `4.56 ms`, `1.20 s`.
///
/// ```
/// use shmx_suite::format_ns;
/// assert_eq!(format_ns(850), "850 ns");
/// assert_eq!(format_ns(12_340), "12.3 us");
/// assert_eq!(format_ns(4_560_000), "4.56 ms");
/// assert_eq!(format_ns(1_200_000_000), "1.20 s");
/// ```
pub fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// Starts this very program again (`std::env::current_exe()`) with `args`, typically a role
/// and its parameters. The child inherits stdout, stderr and the environment (so
/// `SHMX_ROOT` too).
pub fn spawn_self<I, S>(args: I) -> std::io::Result<Child>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(std::env::current_exe()?).args(args).spawn()
}

/// Waits for every child in `children` (named for messages) and returns whether all of them
/// exited successfully.
///
/// A failure is reported on stderr with the child's name. Once one child has failed, or
/// `timeout` has passed, the others get a grace period of `grace` to finish on their own
/// (their peers' deadlines usually end them); those still running after it are killed and
/// count as failed, so a broken run never hangs.
pub fn wait_all(mut children: Vec<(String, Child)>, timeout: Duration, grace: Duration) -> bool {
    let mut ok = true;
    let mut deadline = Instant::now() + timeout;
    let mut grace_started = false;
    while !children.is_empty() {
        let mut i = 0;
        while i < children.len() {
            let (name, child) = &mut children[i];
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("[parent] {name} failed: {status}");
                        ok = false;
                    }
                    children.swap_remove(i);
                }
                Ok(None) => i += 1,
                Err(e) => {
                    eprintln!("[parent] cannot wait for {name}: {e}");
                    ok = false;
                    let _ = child.kill();
                    let _ = child.wait();
                    children.swap_remove(i);
                }
            }
        }
        if children.is_empty() {
            break;
        }
        let now = Instant::now();
        if !grace_started && (!ok || now >= deadline) {
            grace_started = true;
            deadline = now + grace;
        } else if grace_started && now >= deadline {
            for (name, child) in &mut children {
                eprintln!("[parent] {name} is still running; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ok
}

/// A topic name under `prefix` that no other run uses at the same time: the prefix, this
/// process's id and the monotonic clock, e.g. `examples/quickstart/4242-171717`.
///
/// Pass it to child processes as an argument; they must use the very same name.
pub fn unique_topic(prefix: &str) -> String {
    format!("{prefix}/{}-{}", std::process::id(), monotonic_ns() / 1_000)
}

/// The directory that topic `topic` occupies under the shmx root (`$SHMX_ROOT`, else
/// `/dev/shm/shmx-<uid>`), whether or not it exists. The last participant of a topic removes it, so
/// after a clean run it must be gone.
pub fn topic_dir(topic: &str) -> shmx::Result<PathBuf> {
    let name = shmx::name::TopicName::new(topic)?;
    Ok(shmx::name::root_dir().join(name.encoded()))
}

/// The shmx root of one run of an example: the directory `$SHMX_ROOT` names, or else a fresh
/// private one (`0700`, under `/dev/shm` when it exists, else the temporary directory) that is
/// removed when this is dropped. [`ExampleRoot::new`] sets `SHMX_ROOT` to the fresh one, so
/// the endpoints of this process and of the children it starts afterwards ([`spawn_self`])
/// live there.
#[derive(Debug)]
pub struct ExampleRoot {
    path: PathBuf,
    fresh: Option<tempfile::TempDir>,
}

impl ExampleRoot {
    /// `$SHMX_ROOT` if set, else a fresh directory that `SHMX_ROOT` then names. Call it before
    /// this process starts threads (it may set an environment variable).
    pub fn new() -> std::io::Result<ExampleRoot> {
        if let Some(root) = std::env::var_os("SHMX_ROOT").filter(|r| !r.is_empty()) {
            return Ok(ExampleRoot {
                path: PathBuf::from(root),
                fresh: None,
            });
        }
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("shmx-example-")
            .tempdir_in(base)?;
        std::env::set_var("SHMX_ROOT", dir.path());
        Ok(ExampleRoot {
            path: dir.path().to_path_buf(),
            fresh: Some(dir),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory was made for this run (and is removed with it).
    pub fn is_fresh(&self) -> bool {
        self.fresh.is_some()
    }

    /// What the run left behind: every entry of a fresh root, or, in a root given through
    /// `SHMX_ROOT` (which other programs may use too), the directories of `topics` that
    /// still exist.
    pub fn leftovers<'t>(&self, topics: impl IntoIterator<Item = &'t str>) -> Vec<PathBuf> {
        if self.is_fresh() {
            return std::fs::read_dir(&self.path)
                .map(|entries| entries.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
        }
        topics
            .into_iter()
            .filter_map(|t| topic_dir(t).ok())
            .filter(|dir| dir.exists())
            .collect()
    }
}

/// The README's Rust code blocks, compiled and run as doctests by `cargo test --workspace`,
/// so that what a newcomer copies from the README builds and runs (in the order it is
/// written, without hanging). `build.rs` gives each block a root of its own, in hidden
/// lines, so that they leave nothing behind.
#[cfg(doctest)]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/README.doctest.md"))]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_nearest_rank_method() {
        let sorted: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&sorted, 0.0), 1);
        assert_eq!(percentile(&sorted, 0.5), 5);
        assert_eq!(percentile(&sorted, 0.9), 9);
        assert_eq!(percentile(&sorted, 0.99), 10);
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.999), 7);
    }

    #[test]
    fn a_summary_of_nothing_is_none() {
        assert_eq!(LatencySummary::from_samples(&mut []), None);
    }

    #[test]
    fn a_summary_sorts_and_averages() {
        let mut samples = vec![3, 1, 2];
        let s = LatencySummary::from_samples(&mut samples).unwrap();
        assert_eq!((s.count, s.min, s.p50, s.max), (3, 1, 2, 3));
        assert_eq!(s.mean, 2.0);
        assert_eq!(samples, [1, 2, 3]);
    }
}
