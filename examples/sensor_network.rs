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
//!   (`loan()`), the camera writes its 3 KiB frame field by field into an uninitialised loan
//!   (`loan_uninit()`, no zeroing), the IMU sends a small value by copy (`send()`).
//! - The controller receives the three streams on one thread each (a `Subscriber` is `Send`,
//!   and blocking `recv_timeout` wakes it as soon as a sample arrives), keeps the latest
//!   values, and publishes a `Command` at 20 Hz. `Command::mode` is a `#[repr(u8)]` enum that
//!   derives `ShmMessage`: subscribers validate its byte on receipt.
//! - The robot drives toward a wall; once the lidar sees it closer than 1 m, the controller
//!   switches from `Drive` to `Stop`.
//! - Nobody sleeps to wait for a peer: publishers wait, with a deadline, until
//!   `subscriber_count() >= 1`, and a subscriber stops once its publisher has left
//!   (`publisher_count() == 0`) and everything it sent has been received.
//!
//! Each process prints one summary line per stream: messages sent or received, the observed
//! rate, lost messages (gaps in `sample.sequence()`) and the mean one-way latency, measured
//! with a `CLOCK_MONOTONIC` stamp written by the publisher.

use shmx::{Publisher, ShmMessage, Subscriber};
use shmx_suite::{
    format_ns, monotonic_ns, spawn_self, topic_dir, unique_topic, wait_all, wait_until,
};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One revolution of a planar laser scanner.
#[derive(ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
struct LidarScan {
    seq: u64,
    /// `CLOCK_MONOTONIC` in ns when the scan was published.
    stamp_ns: u64,
    /// Angle of `ranges[0]`, radians (0 = straight ahead, counter-clockwise).
    angle_min: f32,
    /// Angle between two consecutive ranges, radians.
    angle_increment: f32,
    /// Distances in metres, one per degree.
    ranges: [f32; 360],
}

const CAMERA_WIDTH: usize = 64;
const CAMERA_HEIGHT: usize = 48;

/// A small grayscale camera frame.
#[derive(ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
struct CameraFrame {
    seq: u64,
    stamp_ns: u64,
    width: u16,
    height: u16,
    exposure_us: u32,
    /// Row-major 8-bit pixels.
    pixels: [u8; CAMERA_WIDTH * CAMERA_HEIGHT],
}

/// One reading of an inertial measurement unit.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Imu {
    seq: u64,
    stamp_ns: u64,
    /// Linear acceleration, m/s^2.
    accel: [f32; 3],
    /// Angular velocity, rad/s.
    gyro: [f32; 3],
}

/// What the motor driver should do. A fieldless enum with an integer `repr` is a message too;
/// a subscriber refuses a byte that names no variant.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Idle = 0,
    Drive = 1,
    Stop = 2,
}

/// A velocity command for the motor driver.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Command {
    seq: u64,
    stamp_ns: u64,
    /// Forward speed, m/s.
    linear: f32,
    /// Turn rate, rad/s.
    angular: f32,
    mode: Mode,
    /// Explicit padding up to the struct's alignment: message types have no implicit padding.
    _pad: [u8; 7],
}

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
                "lidar" => lidar(&topics, seconds),
                "camera" => camera(&topics, seconds),
                "imu" => imu(&topics, seconds),
                "controller" => controller(&topics, seconds),
                _ => motor(&topics, seconds),
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
    let mut children = Vec::new();
    for role in ROLES {
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
    for topic in [&topics.lidar, &topics.camera, &topics.imu, &topics.cmd] {
        let dir = topic_dir(topic)?;
        if dir.exists() {
            return Err(format!("{} was left behind", dir.display()).into());
        }
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: every process succeeded and no files were left behind");
    Ok(())
}

/// Creates a publisher and waits until its subscriber is there.
fn connect<T: ShmMessage>(topic: &str) -> Result<Publisher<T>> {
    let publisher = Publisher::<T>::builder(topic)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    if !wait_until(PEER_TIMEOUT, || publisher.subscriber_count() >= 1) {
        return Err(format!("nobody subscribed to {topic:?} within {PEER_TIMEOUT:?}").into());
    }
    Ok(publisher)
}

/// Calls `publish(seq)` for seq = 1..=count, `1/hz` apart; returns the rate achieved.
fn run_paced(hz: f64, count: u64, mut publish: impl FnMut(u64) -> Result<()>) -> Result<f64> {
    let period = Duration::from_secs_f64(1.0 / hz);
    let start = Instant::now();
    for seq in 1..=count {
        // An absolute schedule: a late tick does not delay the ones after it.
        let due = start + period * (seq - 1) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        publish(seq)?;
    }
    let span = start.elapsed().as_secs_f64();
    Ok(if count > 1 {
        (count - 1) as f64 / span
    } else {
        0.0
    })
}

/// Prints a publisher's summary line.
fn report_sent(role: &str, what: &str, count: u64, rate: f64, extra: &str) {
    println!("[{role:<10}] sent {count:>4} {what:<8} @ {rate:>5.1} Hz{extra}");
}

/// Publishes scans of a wall straight ahead that comes closer, with a pillar on the left.
fn lidar(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<LidarScan>(&topics.lidar)?;
    let start = Instant::now();
    let count = expected(LIDAR_HZ, seconds);
    let rate = run_paced(LIDAR_HZ, count, |seq| {
        let wall = (WALL_DISTANCE - APPROACH_SPEED * start.elapsed().as_secs_f32()).max(0.2);
        // A zeroed chunk of shared memory, written in place: 1.4 KiB, never copied.
        let mut scan = publisher.loan()?;
        scan.seq = seq;
        scan.angle_min = 0.0;
        scan.angle_increment = 1f32.to_radians();
        for (deg, range) in scan.ranges.iter_mut().enumerate() {
            let angle = (deg as f32).to_radians();
            // Distance to the wall x = `wall` along this ray; 10 m beyond 80 degrees.
            *range = if angle.cos() > 0.17 {
                wall / angle.cos()
            } else {
                10.0
            };
            if (85..95).contains(&deg) {
                *range = range.min(1.5); // a pillar on the left
            }
        }
        scan.stamp_ns = monotonic_ns();
        scan.publish()?;
        Ok(())
    })?;
    report_sent("lidar", "scans", count, rate, "");
    Ok(())
}

/// Publishes frames of a moving gradient, written field by field without zeroing first.
fn camera(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<CameraFrame>(&topics.camera)?;
    let count = expected(CAMERA_HZ, seconds);
    let rate = run_paced(CAMERA_HZ, count, |seq| {
        let mut frame = publisher.loan_uninit()?;
        let p = frame.as_mut_ptr();
        // SAFETY: `p` points to the payload of a chunk loaned to `frame` alone, aligned for
        // `CameraFrame` and `size_of::<CameraFrame>()` bytes long. Each field is written
        // through a raw place (`&raw mut`), so no reference to uninitialised memory is made;
        // `pixels` is written element by element through a `*mut u8` inside that field.
        unsafe {
            (&raw mut (*p).seq).write(seq);
            (&raw mut (*p).width).write(CAMERA_WIDTH as u16);
            (&raw mut (*p).height).write(CAMERA_HEIGHT as u16);
            (&raw mut (*p).exposure_us).write(8_000);
            let pixels = (&raw mut (*p).pixels).cast::<u8>();
            for y in 0..CAMERA_HEIGHT {
                for x in 0..CAMERA_WIDTH {
                    let value = (x * 4 + y + seq as usize) as u8;
                    pixels.add(y * CAMERA_WIDTH + x).write(value);
                }
            }
            (&raw mut (*p).stamp_ns).write(monotonic_ns());
        }
        // SAFETY: every field of `CameraFrame` was written above, and it has no padding.
        let frame = unsafe { frame.assume_init() };
        frame.publish()?;
        Ok(())
    })?;
    report_sent("camera", "frames", count, rate, "");
    Ok(())
}

/// Publishes IMU readings by copy: 40 bytes, cheaper to copy than to write field by field.
fn imu(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<Imu>(&topics.imu)?;
    let count = expected(IMU_HZ, seconds);
    let rate = run_paced(IMU_HZ, count, |seq| {
        let t = seq as f32 / IMU_HZ as f32;
        publisher.send(Imu {
            seq,
            stamp_ns: monotonic_ns(),
            accel: [0.05 * (t * 7.0).sin(), 0.02, 9.81],
            gyro: [0.0, 0.0, 0.1 * (t * 2.0).sin()],
        })?;
        Ok(())
    })?;
    report_sent("imu", "readings", count, rate, "");
    Ok(())
}

/// What one subscriber thread saw.
#[derive(Debug, Default)]
struct StreamStats {
    received: u64,
    lost: u64,
    first_ns: u64,
    last_ns: u64,
    latency_sum_ns: u64,
    latency_max_ns: u64,
}

impl StreamStats {
    /// Accounts for a sample with publisher sequence `seq`, stamped `stamp_ns`.
    fn record(&mut self, seq: u64, stamp_ns: u64) {
        let now = monotonic_ns();
        let latency = now.saturating_sub(stamp_ns);
        if self.received == 0 {
            self.first_ns = now;
        }
        self.lost += seq.saturating_sub(self.received + self.lost + 1);
        self.received += 1;
        self.last_ns = now;
        self.latency_sum_ns += latency;
        self.latency_max_ns = self.latency_max_ns.max(latency);
    }

    /// Prints the summary line and checks that nothing went missing.
    fn report(&self, role: &str, what: &str, expected: u64) -> Result<()> {
        let span = self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9;
        let rate = if self.received > 1 && span > 0.0 {
            (self.received - 1) as f64 / span
        } else {
            0.0
        };
        let mean = self.latency_sum_ns.checked_div(self.received).unwrap_or(0);
        println!(
            "[{role:<10}] recv {:>4} {what:<8} @ {rate:>5.1} Hz, lost {}, latency mean {} max {}",
            self.received,
            self.lost,
            format_ns(mean),
            format_ns(self.latency_max_ns)
        );
        if self.received != expected || self.lost != 0 {
            return Err(format!(
                "{what}: expected {expected} messages, received {}",
                self.received
            )
            .into());
        }
        Ok(())
    }
}

/// Receives every sample of `subscriber` until its publisher has left (or `give_up()`),
/// passing each to `on_sample`.
fn receive_all<T: ShmMessage>(
    subscriber: &Subscriber<T>,
    give_up: impl Fn() -> bool,
    stamp: impl Fn(&T) -> u64,
    mut on_sample: impl FnMut(&T),
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut connected = false;
    loop {
        match subscriber.recv_timeout(Duration::from_millis(50))? {
            Some(sample) => {
                connected = true;
                stats.record(sample.sequence(), stamp(&sample));
                on_sample(&sample);
            }
            None => {
                // No sample waiting: done once the publisher has come and gone (a publisher
                // that leaves with samples still queued stays counted until they are taken).
                let publishers = subscriber.publisher_count();
                connected |= publishers > 0;
                if (connected && publishers == 0) || give_up() {
                    return Ok(stats);
                }
            }
        }
    }
}

/// The controller's picture of the world, updated by the subscriber threads.
#[derive(Debug, Default)]
struct World {
    /// Closest obstacle within 30 degrees of straight ahead, metres.
    front_range: Option<f32>,
    /// Mean brightness of the last camera frame, 0-255.
    brightness: Option<f32>,
    /// Latest yaw rate, rad/s.
    yaw_rate: Option<f32>,
}

/// Subscribes to the sensors, publishes commands at 20 Hz.
fn controller(topics: &Topics, seconds: f64) -> Result<()> {
    let lidar_sub = Subscriber::<LidarScan>::builder(&topics.lidar)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let camera_sub = Subscriber::<CameraFrame>::builder(&topics.camera)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let imu_sub = Subscriber::<Imu>::builder(&topics.imu)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let world = Mutex::new(World::default());
    let stop = AtomicBool::new(false);

    std::thread::scope(|s| {
        let (world, give_up) = (&world, || stop.load(Ordering::Relaxed));
        let lidar = s.spawn(move || {
            receive_all(
                &lidar_sub,
                give_up,
                |m| m.stamp_ns,
                |scan| {
                    let front = scan.ranges[..=30]
                        .iter()
                        .chain(&scan.ranges[330..])
                        .copied();
                    world.lock().unwrap().front_range = Some(front.fold(f32::INFINITY, f32::min));
                },
            )
        });
        let camera = s.spawn(move || {
            receive_all(
                &camera_sub,
                give_up,
                |m| m.stamp_ns,
                |frame| {
                    let sum: u32 = frame.pixels.iter().map(|&p| u32::from(p)).sum();
                    world.lock().unwrap().brightness = Some(sum as f32 / frame.pixels.len() as f32);
                },
            )
        });
        let imu = s.spawn(move || {
            receive_all(
                &imu_sub,
                give_up,
                |m| m.stamp_ns,
                |reading| {
                    world.lock().unwrap().yaw_rate = Some(reading.gyro[2]);
                },
            )
        });

        let commands = drive(topics, seconds, world);
        if commands.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // The sensors leave after `seconds` of their own; should one hang, stop waiting.
        let threads = [&lidar, &camera, &imu];
        if !wait_until(PEER_TIMEOUT, || threads.iter().all(|t| t.is_finished())) {
            stop.store(true, Ordering::Relaxed);
        }
        let join = |t: std::thread::ScopedJoinHandle<'_, Result<StreamStats>>| {
            t.join()
                .unwrap_or_else(|_| Err("a subscriber thread panicked".into()))
        };
        let (lidar, camera, imu) = (join(lidar), join(camera), join(imu));
        let mut result = lidar?.report("controller", "lidar", expected(LIDAR_HZ, seconds));
        result = result.and(camera?.report("controller", "camera", expected(CAMERA_HZ, seconds)));
        result = result.and(imu?.report("controller", "readings", expected(IMU_HZ, seconds)));
        let Driven {
            sent,
            rate,
            stopped,
        } = commands?;
        let outcome = match stopped {
            Some((after, range)) => format!(
                "stop after {:.1} s, {range:.2} m from the wall",
                after.as_secs_f64()
            ),
            None => "never had to stop".to_owned(),
        };
        report_sent("controller", "command", sent, rate, &format!("; {outcome}"));
        result
    })
}

/// What the controller's command loop did.
struct Driven {
    /// Commands published.
    sent: u64,
    /// Their rate, Hz.
    rate: f64,
    /// When, and how far from the wall, the robot was told to stop.
    stopped: Option<(Duration, f32)>,
}

/// Publishes `Command`s at 20 Hz from the latest sensor values once every peer is there.
fn drive(topics: &Topics, seconds: f64, world: &Mutex<World>) -> Result<Driven> {
    let publisher = Publisher::<Command>::builder(&topics.cmd)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    // Start driving once the motor listens and every sensor has reported.
    let ready = || {
        let w = world.lock().unwrap();
        w.front_range.is_some() && w.brightness.is_some() && w.yaw_rate.is_some()
    };
    if !wait_until(PEER_TIMEOUT, || {
        publisher.subscriber_count() >= 1 && ready()
    }) {
        return Err(format!(
            "the motor and all three sensors did not show up within {PEER_TIMEOUT:?}"
        )
        .into());
    }
    let start = Instant::now();
    let mut stopped = None;
    let count = expected(COMMAND_HZ, seconds);
    let rate = run_paced(COMMAND_HZ, count, |seq| {
        let (front, brightness, yaw_rate) = {
            let w = world.lock().unwrap();
            (
                w.front_range.unwrap_or(0.0),
                w.brightness.unwrap_or(0.0),
                w.yaw_rate.unwrap_or(0.0),
            )
        };
        let mut cmd = publisher.loan()?;
        cmd.seq = seq;
        if brightness < 10.0 {
            cmd.mode = Mode::Idle; // blind: wait for light
        } else if front < STOP_DISTANCE {
            cmd.mode = Mode::Stop;
            stopped.get_or_insert((start.elapsed(), front));
        } else {
            cmd.mode = Mode::Drive;
            cmd.linear = (0.5 * (front - STOP_DISTANCE)).min(APPROACH_SPEED);
            cmd.angular = -0.5 * yaw_rate; // hold the heading
        }
        cmd.stamp_ns = monotonic_ns();
        cmd.publish()?;
        Ok(())
    })?;
    Ok(Driven {
        sent: count,
        rate,
        stopped,
    })
}

/// Receives commands until the controller leaves and counts them by mode.
fn motor(topics: &Topics, seconds: f64) -> Result<()> {
    let subscriber = Subscriber::<Command>::builder(&topics.cmd)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let mut modes = [0u64; 3];
    let mut distance = 0.0f32;
    // Should the controller never come (or never leave), give up after PEER_TIMEOUT plus the
    // run time.
    let deadline = Instant::now() + PEER_TIMEOUT * 2 + Duration::from_secs_f64(seconds);
    let give_up = || Instant::now() >= deadline;
    let stats = receive_all(
        &subscriber,
        give_up,
        |c| c.stamp_ns,
        |cmd| {
            modes[cmd.mode as usize] += 1;
            distance += cmd.linear / COMMAND_HZ as f32;
        },
    )?;
    stats.report("motor", "command", expected(COMMAND_HZ, seconds))?;
    println!(
        "[{:<10}] modes: idle {}, drive {}, stop {}; drove {distance:.2} m",
        "motor",
        modes[Mode::Idle as usize],
        modes[Mode::Drive as usize],
        modes[Mode::Stop as usize]
    );
    Ok(())
}
