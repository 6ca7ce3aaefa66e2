//! What the tests and the bridge benchmark share: fresh roots, free ports, Zenoh configured
//! for loopback only, and two "hosts" (roots) bridged both ways.

// The benchmark uses a part.
#![allow(dead_code)]

use shmx_zenoh::Bridge;
use std::time::{Duration, Instant};

/// A fresh root under /dev/shm, removed when dropped.
pub fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shmx-test-")
        .tempdir_in("/dev/shm")
        .expect("a fresh root")
}

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// Zenoh in peer mode on loopback: listening on `listen`, connecting to `connect`, no
/// multicast scouting.
pub fn config(listen: u16, connect: Option<u16>) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    c.insert_json5("mode", r#""peer""#).unwrap();
    c.insert_json5(
        "listen/endpoints",
        &format!(r#"["tcp/127.0.0.1:{listen}"]"#),
    )
    .unwrap();
    if let Some(port) = connect {
        c.insert_json5("connect/endpoints", &format!(r#"["tcp/127.0.0.1:{port}"]"#))
            .unwrap();
    }
    c.insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    c
}

/// A bridge on `root`, listening on `listen` (and connecting to `connect`) on loopback,
/// forwarding and receiving the topics that match.
pub fn bridge(
    root: &std::path::Path,
    listen: u16,
    connect: Option<u16>,
    forward: &[&str],
    receive: &[&str],
) -> shmx_zenoh::Bridge {
    shmx_zenoh::Bridge::builder()
        .root(root)
        .zenoh_config(config(listen, connect))
        .forward(forward.iter().copied())
        .receive(receive.iter().copied())
        .start()
        .expect("a bridge")
}

/// A bridge receiving every topic on a fresh root, listening on loopback, and a plain Zenoh
/// session (a peer that may put anything) connected to it: (root, port, bridge, peer).
pub fn receiver_and_peer() -> (tempfile::TempDir, u16, shmx_zenoh::Bridge, zenoh::Session) {
    use zenoh::Wait;
    let root = root();
    let port = free_port();
    let bridge = bridge(root.path(), port, None, &[], &["**"]);
    let peer = zenoh::open(config(free_port(), Some(port)))
        .wait()
        .expect("a zenoh peer");
    (root, port, bridge, peer)
}

/// A publisher of `u64`s on `topic` under `root`, queues `depth` deep.
pub fn u64_publisher(root: &std::path::Path, topic: &str, depth: usize) -> shmx::Publisher<u64> {
    shmx::Publisher::<u64>::builder(topic)
        .root(root)
        .queue_depth(depth)
        .create()
        .unwrap()
}

/// A subscriber of `u64`s on `topic` under `root`, queues `depth` deep.
pub fn u64_subscriber(root: &std::path::Path, topic: &str, depth: usize) -> shmx::Subscriber<u64> {
    shmx::Subscriber::<u64>::builder(topic)
        .root(root)
        .queue_depth(depth)
        .create()
        .unwrap()
}

/// A child process killed (and waited for) when dropped: a failing test leaves no bridge
/// running.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the `shmx-zenoh` command with `args`; returns once it says it is bridging.
pub fn bridge_command(args: &[&std::ffi::OsStr]) -> Killed {
    use std::io::BufRead;
    let mut child = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_shmx-zenoh"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start shmx-zenoh"),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.as_mut().expect("its stdout"))
        .read_line(&mut line)
        .expect("its first line");
    assert!(line.starts_with("bridging"), "{line}");
    child
}

pub const DEADLINE: Duration = Duration::from_secs(30);

/// Two hosts, each bridging every topic both ways (the bridges stop before their roots go:
/// fields drop in order).
pub struct Hosts {
    pub bridge_a: Bridge,
    pub bridge_b: Bridge,
    pub a: tempfile::TempDir,
    pub b: tempfile::TempDir,
}

pub fn hosts() -> Hosts {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &["**"]);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &["**"], &["**"]);
    Hosts {
        bridge_a,
        bridge_b,
        a,
        b,
    }
}

/// Calls `send(i)` for i = 0, 1, ... until `arrived()` (the link is up: bridges found the
/// topic and each other), then returns the next `i`.
pub fn until_linked(mut send: impl FnMut(u64), mut arrived: impl FnMut() -> bool) -> u64 {
    let start = Instant::now();
    let mut i = 0;
    loop {
        send(i);
        i += 1;
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(50) {
            if arrived() {
                return i;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() < DEADLINE, "the bridges never linked");
    }
}
