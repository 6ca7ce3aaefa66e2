//! Sensor network: a robot's sensors, controller and motor driver as separate processes.
//!
//! ```text
//! cargo run --release --example sensor_network [-- --seconds N]
//! ```
//!
//! Run without a role, the program starts itself five more times, one process per role, and
//! fails if any of them fails:
//!
//! ```text
//!  lidar  (10 Hz, LidarScan: 360 ranges) ---.
//!  camera (30 Hz, CameraFrame: 64x48 px) ---+--> controller --(20 Hz, Command)--> motor
//!  imu   (100 Hz, Imu: accel + gyro)     ---'
//! ```
//!
//! - Each sensor publishes at its own rate (paced by sleeping, as a real sensor's clock
//!   would), writing each message in place in shared memory: the lidar fills a zeroed loan
//!   (`loan()`) and its ranges, a `RelSlice<f32>` of any length in the chunk's tail
//!   (`alloc_ranges`), the camera writes its 3 KiB frame field by field into an uninitialised loan
//!   (`loan_uninit()`, no zeroing), the IMU sends a small value by copy (`send()`).
//! - The controller receives the three streams on one thread each (a `Subscriber` is `Send`,
//!   and blocking `recv_timeout` wakes it as soon as a sample arrives), keeps the latest
//!   values, and publishes a `Command` at 20 Hz. `Command::mode` is a `#[repr(u8)]` enum that
//!   derives `ShmMessage`: subscribers validate its byte on receipt.
//! - The robot drives toward a wall; once the lidar sees it closer than 1 m, the controller
//!   switches from `Drive` to `Stop`.
//! - Nobody sleeps to wait for a peer: publishers wait, with a deadline, until
//!   `subscriber_count() >= 1`, and a subscriber stops once its publisher has left
//!   (`publisher_count() == 0`) and everything it sent has been received. The parent starts
//!   the sensors once `shmx::inspect` shows the controller (and the motor) subscribed, so
//!   that another subscriber (`shmx record`) never makes a sensor start before its peer.
//!
//! Each process prints one summary line per stream: messages sent or received, the observed
//! rate, lost messages (gaps in `sample.sequence()`) and the mean one-way latency, measured
//! with a `CLOCK_MONOTONIC` stamp written by the publisher.
//!
//! The code follows the roles: `sensors.rs` (lidar, camera, IMU), `controller.rs`, `motor.rs`;
//! `messages.rs` holds the message types, and `streams.rs` what every publisher and
//! subscriber here does around them (waiting for a peer, pacing, counting, summary lines).

mod controller;
mod messages;
mod motor;
mod sensors;
mod streams;

use shmx_suite::{spawn_self, topic_dir, unique_topic, wait_all, wait_until};
use std::process::ExitCode;
use std::time::Duration;

const LIDAR_HZ: f64 = 10.0;
const CAMERA_HZ: f64 = 30.0;
const IMU_HZ: f64 = 100.0;
const COMMAND_HZ: f64 = 20.0;
/// Queue depth of every connection: how far a subscriber may fall behind before the
/// publisher (with the default `Overflow::DropOldest`) overwrites its oldest sample.
const QUEUE_DEPTH: usize = 64;
/// How long a process waits for its peers to show up.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// The wall ahead is this far at the start; the robot closes in at `APPROACH_SPEED`.
const WALL_DISTANCE: f32 = 3.0;
const APPROACH_SPEED: f32 = 0.8;
/// Closer than this, the controller stops the robot.
const STOP_DISTANCE: f32 = 1.0;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The names of the four topics, all under one unique prefix.
struct Topics {
    lidar: String,
    camera: String,
    imu: String,
    cmd: String,
}

impl Topics {
    fn new(prefix: &str) -> Topics {
        Topics {
            lidar: format!("{prefix}/lidar"),
            camera: format!("{prefix}/camera"),
            imu: format!("{prefix}/imu"),
            cmd: format!("{prefix}/cmd"),
        }
    }
}

const ROLES: [&str; 5] = ["motor", "controller", "lidar", "camera", "imu"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, result) = match args.as_slice() {
        [] => ("parent", parent(3.0)),
        [flag, n] if flag == "--seconds" => ("parent", parse_seconds(n).and_then(parent)),
        [role, prefix, n] if ROLES.contains(&role.as_str()) => {
            let topics = Topics::new(prefix);
            let result = parse_seconds(n).and_then(|seconds| match role.as_str() {
                "lidar" => sensors::lidar(&topics, seconds),
                "camera" => sensors::camera(&topics, seconds),
                "imu" => sensors::imu(&topics, seconds),
                "controller" => controller::run(&topics, seconds),
                _ => motor::run(&topics, seconds),
            });
            (role.as_str(), result)
        }
        _ => {
            eprintln!("usage: sensor_network [--seconds N]   (roles: {ROLES:?} PREFIX SECONDS)");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[{role}] error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(n) if n > 0.0 && n <= 3600.0 => Ok(n),
        _ => Err(format!("--seconds wants a number of seconds in (0, 3600], not {s:?}").into()),
    }
}

/// Messages a source at `hz` sends in `seconds`.
fn expected(hz: f64, seconds: f64) -> u64 {
    ((hz * seconds).round() as u64).max(1)
}

/// Starts one process per role and waits for all of them.
fn parent(seconds: f64) -> Result<()> {
    let prefix = unique_topic("examples/sensor_network");
    let topics = Topics::new(&prefix);
    println!("shmx sensor network: 5 processes for {seconds} s, topics {prefix}/{{lidar,camera,imu,cmd}}");
    let seconds_arg = seconds.to_string();
    let mut children: Vec<(String, std::process::Child)> = Vec::new();
    for role in ROLES {
        // The sensors start once the controller listens to them (and the controller's
        // commands once the motor listens): a publisher waits only for *a* subscriber, which
        // could be another program's (`shmx record`), and would then start before its peer.
        if role == "lidar" {
            let listening = |topic: &str, role: &str| {
                let pid = children
                    .iter()
                    .find(|(r, _)| r == role)
                    .map(|(_, c)| c.id());
                let root = shmx::defaults::Defaults::get().map(|d| d.root());
                root.ok()
                    .and_then(|root| shmx::inspect::topic(&root, topic).ok())
                    .is_some_and(|t| t.subscribers.iter().any(|s| Some(s.pid as u32) == pid))
            };
            let ready = wait_until(PEER_TIMEOUT, || {
                [&topics.lidar, &topics.camera, &topics.imu]
                    .iter()
                    .all(|t| listening(t, "controller"))
                    && listening(&topics.cmd, "motor")
            });
            if !ready {
                wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(1));
                return Err("the controller and the motor did not subscribe in time".into());
            }
        }
        match spawn_self([role, prefix.as_str(), seconds_arg.as_str()]) {
            Ok(child) => children.push((role.to_owned(), child)),
            Err(e) => {
                // The others wait for their peers with a deadline, so they end by themselves.
                wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(1));
                return Err(format!("cannot start the {role}: {e}").into());
            }
        }
    }
    let timeout = PEER_TIMEOUT * 2 + Duration::from_secs_f64(seconds);
    let ok = wait_all(children, timeout, Duration::from_secs(5));
    // Every topic goes with its last participant: ours at once, and within moments a
    // program that followed them from outside (`shmx record`, a bridge), which leaves a
    // topic once its publishers have.
    for topic in [&topics.lidar, &topics.camera, &topics.imu, &topics.cmd] {
        let dir = topic_dir(topic)?;
        if !wait_until(Duration::from_secs(5), || !dir.exists()) {
            return Err(format!("{} was left behind", dir.display()).into());
        }
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: every process succeeded and no files were left behind");
    Ok(())
}
