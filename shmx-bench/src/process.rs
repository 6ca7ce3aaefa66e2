//! The processes of a benchmark: a fresh root directory per run ([`RunDir`]), child processes
//! that re-execute the current binary ([`RunDir::spawn`]), a watchdog per child ([`Peer`]),
//! the child's entry point ([`run_child_if_requested`]) and core placement ([`Placement`],
//! optional pinning).
//!
//! Children never outlive the benchmark: each asks the kernel to kill it when its parent dies
//! (`PR_SET_PDEATHSIG`), a [`Peer`] that is dropped kills and reaps its child, and a child that
//! exits before the parent told it to stops the whole benchmark, with a message (the parent
//! would otherwise spin forever waiting for an answer), after removing the run directories.

use super::{ping_pong, throughput, Result};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable that makes a benchmark binary run a child role:
/// `<contender id>:<payload bytes>`, e.g. `shmx-spin:4194304`.
pub const CHILD_ENV: &str = "SHMX_BENCH_CHILD";
/// The parent's process id, which the child checks (it may have died already).
pub const PARENT_ENV: &str = "SHMX_BENCH_PARENT";
/// A contender-specific argument for the child: a socket path, a port, a subscriber count.
pub const ARG_ENV: &str = "SHMX_BENCH_ARG";
/// The CPU a child pins itself to, when pinning is on.
pub const CPU_ENV: &str = "SHMX_BENCH_CPU";
/// `SHMX_BENCH_PIN=1` turns pinning on for the criterion benchmarks ([`pin_from_env`]).
pub const PIN_ENV: &str = "SHMX_BENCH_PIN";
/// How long the parent waits for a child to connect, or to stop when told to.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(20);

/// Run directories that exist now, removed by [`fatal`] before it exits.
static LIVE_RUNS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Whether children are pinned, each to its own CPU, and the parent to the first one.
static PINNING: AtomicBool = AtomicBool::new(false);
/// The CPUs this process was allowed to run on before it pinned itself.
static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();

/// What a child role gets from its parent.
#[derive(Debug, Clone)]
pub struct ChildEnv {
    /// The contender's id.
    pub contender: String,
    /// Payload size in bytes.
    pub payload: usize,
    /// The run directory: shmx root, socket and mapping files.
    pub root: PathBuf,
    /// The contender-specific argument ([`ARG_ENV`]), empty if none.
    pub arg: String,
}

/// If this process was started as a benchmark child ([`CHILD_ENV`] is set), runs that child
/// role and exits: status 0 when the parent stopped it normally, 1 on any error (printed on
/// stderr). Returns at once otherwise.
///
/// Call it first thing in `main` of every binary that runs benchmarks.
pub fn run_child_if_requested() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let code = match child_main(&spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("[shmx bench child {spec}] error: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn child_main(spec: &str) -> Result<()> {
    // A child spins or blocks until told to stop: make sure it dies with its parent.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    let parent: i32 = std::env::var(PARENT_ENV)?.parse()?;
    if Pid::as_raw(rustix::process::getppid()) != parent {
        return Err("the parent exited before the child started".into());
    }
    if let Ok(cpu) = std::env::var(CPU_ENV) {
        pin_self(cpu.parse()?)?;
    }
    let (id, payload) = spec
        .rsplit_once(':')
        .ok_or_else(|| format!("{CHILD_ENV} must be <contender>:<payload>, not {spec:?}"))?;
    let env = ChildEnv {
        contender: id.to_owned(),
        payload: payload.parse()?,
        root: PathBuf::from(std::env::var_os("SHMX_ROOT").ok_or("SHMX_ROOT is not set")?),
        arg: std::env::var(ARG_ENV).unwrap_or_default(),
    };
    if let Some(c) = ping_pong(id) {
        c.child(&env)?;
    } else if let Some(c) = throughput(id) {
        c.child(&env)?;
    } else if let Some(c) = super::paced::by_child_id(id) {
        c.child(&env)?;
    } else {
        return Err(format!("no contender is called {id:?}").into());
    }
    let placement = Placement::here("child");
    std::fs::write(
        env.root.join(format!("placement-{}", std::process::id())),
        placement.encode(),
    )?;
    Ok(())
}

/// Where a process was allowed to run and where it was last seen running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `parent` or `child`.
    pub role: String,
    /// The CPUs of its affinity mask (`sched_getaffinity`).
    pub affinity: Vec<usize>,
    /// The CPU it ran on when it was asked (`sched_getcpu`).
    pub cpu: usize,
}

impl Placement {
    /// This process, now.
    pub fn here(role: &str) -> Placement {
        Placement {
            role: role.to_owned(),
            affinity: current_affinity(),
            cpu: rustix::thread::sched_getcpu(),
        }
    }

    fn encode(&self) -> String {
        format!("affinity={}\ncpu={}\n", cpu_list(&self.affinity), self.cpu)
    }

    fn decode(role: &str, text: &str) -> Option<Placement> {
        let mut affinity = None;
        let mut cpu = None;
        for line in text.lines() {
            match line.split_once('=')? {
                ("affinity", v) => affinity = parse_cpu_list(v),
                ("cpu", v) => cpu = v.parse().ok(),
                _ => {}
            }
        }
        Some(Placement {
            role: role.to_owned(),
            affinity: affinity?,
            cpu: cpu?,
        })
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: affinity {{{}}}, on CPU {}",
            self.role,
            cpu_list(&self.affinity),
            self.cpu
        )
    }
}

/// CPUs as ranges: `0-3,6`.
///
/// ```
/// use shmx_bench::process::cpu_list;
/// assert_eq!(cpu_list(&[0, 1, 2, 3, 6]), "0-3,6");
/// assert_eq!(cpu_list(&[1]), "1");
/// ```
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn current_affinity() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn pin_self(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// The CPUs this process may use (as it started, before any pinning).
pub fn allowed_cpus() -> &'static [usize] {
    ALLOWED.get_or_init(current_affinity)
}

/// Turns pinning on or off for the runs started from now on. On: this process pins itself to
/// the first CPU it may use, and the `k`-th child of a run to the `(k + 1)`-th one (round
/// robin). Off (the default): the scheduler places every process, and [`Placement`] records
/// where they ran.
pub fn set_pinning(on: bool) -> Result<()> {
    let allowed = allowed_cpus();
    if on {
        pin_self(*allowed.first().ok_or("no CPU in the affinity mask")?)?;
    } else if PINNING.load(Ordering::Relaxed) {
        let mut set = rustix::thread::CpuSet::new();
        allowed.iter().for_each(|&c| set.set(c));
        rustix::thread::sched_setaffinity(None, &set)?;
    }
    PINNING.store(on, Ordering::Relaxed);
    Ok(())
}

/// Whether pinning is on.
pub fn pinning() -> bool {
    PINNING.load(Ordering::Relaxed)
}

/// Turns pinning on if `SHMX_BENCH_PIN=1` ([`PIN_ENV`]); for the criterion benchmarks.
pub fn pin_from_env() -> Result<()> {
    if std::env::var(PIN_ENV).is_ok_and(|v| v == "1") {
        set_pinning(true)?;
    }
    Ok(())
}

/// Prints `message` and exits with status 3, after removing every live run directory (the
/// children die with this process). For a child that died while its parent waited for it.
fn fatal(message: &str) -> ! {
    eprintln!("[shmx bench] {message}: stopping the benchmark");
    let dirs = match LIVE_RUNS.lock() {
        Ok(d) => d.clone(),
        Err(e) => e.into_inner().clone(),
    };
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(3);
}

/// A fresh directory for one benchmark run, under `/dev/shm` (else the temp dir): the shmx
/// root of the parent and its children (`SHMX_ROOT`), and the home of socket and mapping
/// files. Removed, with whatever is left in it, when dropped.
#[derive(Debug)]
pub struct RunDir {
    dir: tempfile::TempDir,
    children: std::cell::Cell<usize>,
}

/// How a child's standard input and output are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStdio {
    /// Both to `/dev/null`.
    Null,
    /// Both to pipes from and to the parent ([`Spawned::stdin`], [`Spawned::stdout`]).
    Piped,
}

/// A child that was just started.
#[derive(Debug)]
pub struct Spawned {
    /// Its watchdog: stop it with [`Peer::expect_exit`] and [`Peer::wait`].
    pub peer: Peer,
    /// The write end of its standard input, with [`ChildStdio::Piped`].
    pub stdin: Option<ChildStdin>,
    /// The read end of its standard output, with [`ChildStdio::Piped`].
    pub stdout: Option<ChildStdout>,
}

impl RunDir {
    /// Creates the directory.
    pub fn new() -> Result<RunDir> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| sweep_stale(&base));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{RUN_PREFIX}{}-", std::process::id()))
            .tempdir_in(&base)?;
        if let Ok(mut live) = LIVE_RUNS.lock() {
            live.push(dir.path().to_path_buf());
        }
        Ok(RunDir {
            dir,
            children: std::cell::Cell::new(0),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts this very binary as the child `contender` for `payload` bytes, with `arg` for
    /// [`ARG_ENV`] and this directory as its `SHMX_ROOT`. With pinning on, the `k`-th child of
    /// the run is pinned to the `(k + 1)`-th allowed CPU.
    pub fn spawn(
        &self,
        contender: &str,
        payload: usize,
        arg: &str,
        stdio: ChildStdio,
    ) -> Result<Spawned> {
        let k = self.children.get();
        self.children.set(k + 1);
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(CHILD_ENV, format!("{contender}:{payload}"))
            .env(PARENT_ENV, std::process::id().to_string())
            .env("SHMX_ROOT", self.path())
            .env(ARG_ENV, arg)
            .env_remove(CPU_ENV)
            .stderr(Stdio::inherit());
        match stdio {
            ChildStdio::Null => cmd.stdin(Stdio::null()).stdout(Stdio::null()),
            ChildStdio::Piped => cmd.stdin(Stdio::piped()).stdout(Stdio::piped()),
        };
        if pinning() {
            let allowed = allowed_cpus();
            cmd.env(CPU_ENV, allowed[(k + 1) % allowed.len()].to_string());
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let peer = Peer::watch(format!("{contender}:{payload} #{k}"), child, self.path())?;
        Ok(Spawned {
            peer,
            stdin,
            stdout,
        })
    }
}

/// Run directories are named `shmx-bench-<pid of the parent>-<random>`.
const RUN_PREFIX: &str = "shmx-bench-";

/// Removes the run directories of benchmark processes that no longer exist (killed, say by
/// Ctrl-C, before they could clean up: a 4 MiB topic holds 64 MiB of `/dev/shm`).
fn sweep_stale(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell who is alive
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE_RUNS.lock() {
            live.retain(|d| d != self.dir.path());
        }
    }
}

/// A child process and its watchdog thread, which reaps it and stops the benchmark if it
/// exits before [`expect_exit`](Peer::expect_exit). Dropping a `Peer` kills and reaps the
/// child.
#[derive(Debug)]
pub struct Peer {
    label: String,
    pid: Pid,
    state: Arc<PeerState>,
    watcher: Option<JoinHandle<std::io::Result<ExitStatus>>>,
    placement_file: PathBuf,
}

#[derive(Debug)]
struct PeerState {
    /// The parent told the child to stop: its exit is no surprise.
    expected: AtomicBool,
    /// The watcher reaped the child, so its pid may belong to someone else now.
    reaped: Mutex<bool>,
}

impl Peer {
    fn watch(label: String, child: Child, run: &Path) -> Result<Peer> {
        let pid = Pid::from_child(&child);
        let state = Arc::new(PeerState {
            expected: AtomicBool::new(false),
            reaped: Mutex::new(false),
        });
        let watcher = std::thread::Builder::new()
            .name(format!("watch {label}"))
            .spawn({
                let state = Arc::clone(&state);
                let label = label.clone();
                move || watch(child, &state, &label)
            })?;
        Ok(Peer {
            placement_file: run.join(format!("placement-{}", pid.as_raw_nonzero())),
            label,
            pid,
            state,
            watcher: Some(watcher),
        })
    }

    /// Declares that the child is about to be told to stop, so its exit stops nothing. Call
    /// it before telling the child.
    pub fn expect_exit(&self) {
        self.state.expected.store(true, Ordering::Release);
    }

    /// Waits up to `timeout` for the child to exit (killing it after that), and returns where
    /// it ran. An error if it failed, was killed, or did not say where it ran.
    pub fn wait(mut self, timeout: Duration) -> Result<Placement> {
        self.expect_exit();
        let watcher = self.watcher.take().expect("a peer is waited for once");
        let deadline = Instant::now() + timeout;
        let mut killed = false;
        while !watcher.is_finished() {
            if Instant::now() >= deadline {
                self.kill();
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = watcher
            .join()
            .map_err(|_| format!("the watcher of child {} panicked", self.label))??;
        if killed {
            return Err(format!("child {} did not stop within {timeout:?}", self.label).into());
        }
        if !status.success() {
            return Err(format!("child {} failed: {status}", self.label).into());
        }
        let text = std::fs::read_to_string(&self.placement_file)
            .map_err(|e| format!("child {} left no placement: {e}", self.label))?;
        let _ = std::fs::remove_file(&self.placement_file);
        Placement::decode("child", &text)
            .ok_or_else(|| format!("child {} left an unreadable placement", self.label).into())
    }

    /// Tells the child to stop with `stop`, then [`wait`](Peer::wait)s for it with
    /// [`PEER_TIMEOUT`].
    pub fn stop(self, stop: impl FnOnce() -> Result<()>) -> Result<Placement> {
        self.expect_exit();
        stop()?;
        self.wait(PEER_TIMEOUT)
    }

    fn kill(&self) {
        let reaped = match self.state.reaped.lock() {
            Ok(r) => r,
            Err(e) => e.into_inner(),
        };
        if !*reaped {
            // Not reaped yet, so the pid is still our child's (alive or a zombie).
            let _ = rustix::process::kill_process(self.pid, Signal::KILL);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            self.expect_exit();
            self.kill();
            let _ = watcher.join();
        }
    }
}

/// The watcher thread: waits for the child to exit, reaps it, and stops the benchmark if
/// nobody expected that.
fn watch(mut child: Child, state: &PeerState, label: &str) -> std::io::Result<ExitStatus> {
    let pid = Pid::from_child(&child);
    // Wait without reaping, so that `Peer::kill` never signals a recycled pid.
    while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
    let mut reaped = match state.reaped.lock() {
        Ok(r) => r,
        Err(e) => e.into_inner(),
    };
    let status = child.wait();
    *reaped = true;
    drop(reaped);
    if !state.expected.load(Ordering::Acquire) {
        let how = match &status {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        fatal(&format!("child {label} exited unexpectedly ({how})"));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        for cpus in [vec![], vec![0], vec![0, 1], vec![0, 2, 3, 4, 7]] {
            assert_eq!(parse_cpu_list(&cpu_list(&cpus)), Some(cpus));
        }
    }

    #[test]
    fn placements_round_trip_through_their_file() {
        let p = Placement::here("child");
        assert!(p.affinity.contains(&p.cpu));
        assert_eq!(Placement::decode("child", &p.encode()), Some(p));
    }
}
