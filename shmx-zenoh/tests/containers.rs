//! Two "containers" that share no `/dev/shm`: each side runs in a mount namespace of its own
//! with a private tmpfs on `/dev/shm` (as a container without `--ipc=host` has), both using
//! the same root path, `/dev/shm/shmx-host`. Only the bridges, over Zenoh on loopback, join
//! them. The sides are this test binary run again (`SHMX_ZENOH_ROLE`), under `unshare`;
//! needs root, as the README's container example does not.

mod common;

use common::{free_port, Killed};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);
/// The root both sides use, each in its own `/dev/shm`.
const ROOT: &str = "/dev/shm/shmx-host";
/// A file side A leaves in its `/dev/shm`: side B must not see it.
const MARKER: &str = "/dev/shm/shmx-zenoh-test-side-a";

fn role() -> Option<String> {
    std::env::var("SHMX_ZENOH_ROLE").ok()
}

fn port() -> u16 {
    std::env::var("SHMX_ZENOH_PORT").unwrap().parse().unwrap()
}

/// Side A (only when run as it): publishes `u64`s 0, 1, 2, ... on `t/far` and forwards them,
/// until killed.
#[test]
fn side_a() {
    if role().as_deref() != Some("a") {
        return;
    }
    std::fs::write(MARKER, b"a").unwrap();
    let _bridge = common::bridge(ROOT.as_ref(), port(), None, &["**"], &[]);
    let publisher = common::u64_publisher(ROOT.as_ref(), "t/far", 64);
    for i in 0.. {
        publisher.send(i).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Side B (only when run as it): receives 20 of side A's values in order, then says so.
#[test]
fn side_b() {
    if role().as_deref() != Some("b") {
        return;
    }
    assert!(
        !std::path::Path::new(MARKER).exists(),
        "side B sees side A's /dev/shm"
    );
    // A fresh /dev/shm: the bridge makes the root, and the topic, as the first samples come.
    let bridge = common::bridge(ROOT.as_ref(), free_port(), Some(port()), &[], &["**"]);
    let start = Instant::now();
    while shmx::inspect::topic(ROOT.as_ref(), "t/far").is_err() {
        assert!(start.elapsed() < DEADLINE, "{:?}", bridge.problems());
        std::thread::sleep(Duration::from_millis(10));
    }
    let sub = common::u64_subscriber(ROOT.as_ref(), "t/far", 64);
    let mut got = Vec::new();
    while got.len() < 20 {
        assert!(start.elapsed() < DEADLINE, "received {got:?}");
        if let Some(s) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
            got.push(*s);
        }
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    drop(sub);
    drop(bridge);
    println!("side B received {} values", got.len());
}

/// This test binary, run as `role` in a mount namespace with a private `/dev/shm`.
fn side(role: &str, port: u16) -> Killed {
    let script = r#"mount -t tmpfs -o mode=1777 shmx-test /dev/shm && exec "$0" "$@""#;
    Killed(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", &format!("side_{role}"), "--nocapture"])
            .env("SHMX_ZENOH_ROLE", role)
            .env("SHMX_ZENOH_PORT", port.to_string())
            .env_remove("SHMX_ROOT")
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare"),
    )
}

#[test]
fn two_sides_that_share_no_dev_shm_talk_through_their_bridges() {
    if role().is_some() {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root for mount namespaces");
        return;
    }
    let port = free_port();
    let a = side("a", port);
    let mut b = side("b", port);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = b.0.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < DEADLINE * 2, "side B never finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut b.0.stdout.take().unwrap(), &mut out).unwrap();
    drop(a);
    assert!(status.success(), "side B: {status}\n{out}");
    assert!(out.contains("side B received 20 values"), "{out}");
    // Neither side wrote to this machine's /dev/shm.
    assert!(!std::path::Path::new(MARKER).exists());
    assert!(!std::path::Path::new(ROOT).exists());
}
