//! WaitSet: the sensor network's controller on one thread, waiting at once on its three
//! topics, a 50 Hz control tick and the silence of its IMU.
//!
//! ```text
//! cargo run --release --example waitset [-- --seconds N]
//! ```
//!
//! Run without a role, the program starts itself four more times, one process per role,
//! and fails if any of them fails or if anything is left in the shmx root:
//!
//! ```text
//!  lidar  (10 Hz, LidarScan)   ---.
//!  camera (30 Hz, CameraFrame) ---+--> controller: one thread, one WaitSet
//!  imu   (100 Hz, Imu)         ---'      + a 50 Hz control tick
//!                                        + "the IMU was silent for 100 ms"
//! ```
//!
//! - The controller attaches its three subscribers (three message types), a deadline on the
//!   IMU and a 50 Hz interval to one `WaitSet`, and handles every event in one loop: samples
//!   (taken until none is left: events are level-triggered), ticks (a control step), the
//!   IMU's silence, and publishers joining, leaving or dying. Between events the thread
//!   sleeps in `epoll`: no thread per topic, no timeouts to look for departed publishers
//!   (compare `examples/sensor_network/controller.rs`, with a thread per topic that wakes
//!   every 50 ms to ask whether its publisher has left).
//! - Half-way through, the IMU's driver "crashes": its process sends itself `SIGKILL`. The
//!   controller hears of it at once (`PublisherDied`: the wait set watches every publisher's
//!   process through a pidfd), still receives the readings the IMU queued before it died,
//!   is told 100 ms after the last one that the IMU is silent (`Silent`, repeated every
//!   100 ms of further silence) and switches to a safe stop. Lidar and camera leave
//!   normally at the end: `PublisherLeft`, even when their process has exited by the time the
//!   controller looks (a publisher that leaves clears its slot's node; a sweep that reclaims
//!   a dead one does not). Once all three are gone the controller prints its summary and
//!   exits.
//! - Nobody sleeps to wait for a peer: each sensor waits until its subscriber is there with
//!   `Publisher::wait_for_subscribers`, which sleeps until the topic's participants change.
//!
//! The controller checks what it saw (every scan, frame and reading in order, the IMU dead,
//! the others gone, safe-stop ticks after the crash) and fails otherwise. The run uses a fresh
//! shmx root, a temporary directory under `/dev/shm` removed at the end, unless `SHMX_ROOT`
//! names one (then only this run's topics must be gone afterwards).

use rustix::process::{getpid, kill_process, Signal};
use shmx::waitset::{EventKind, PeerEvent};
use shmx::{Publisher, ShmMessage, Subscriber, WaitSet};
use shmx_suite::{format_ns, monotonic_ns, spawn_self, unique_topic, wait_all, ExampleRoot};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A planar laser scan: one range per degree.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct LidarScan {
    /// `CLOCK_MONOTONIC` in ns when the scan was published.
    stamp_ns: u64,
    /// Distances in metres; `ranges[0]` straight ahead, counter-clockwise.
    ranges: [f32; 360],
}

/// A small grayscale camera frame.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct CameraFrame {
    stamp_ns: u64,
    exposure_us: u32,
    width: u16,
    height: u16,
    pixels: [u8; 64 * 48],
}

/// One reading of an inertial measurement unit.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Imu {
    stamp_ns: u64,
    /// Linear acceleration, m/s^2.
    accel: [f32; 3],
    /// Angular velocity, rad/s.
    gyro: [f32; 3],
}

const LIDAR_HZ: f64 = 10.0;
const CAMERA_HZ: f64 = 30.0;
const IMU_HZ: f64 = 100.0;
/// The controller's control tick: 50 Hz.
const TICK: Duration = Duration::from_millis(20);
/// The IMU counts as silent after this long without a reading.
const IMU_SILENCE: Duration = Duration::from_millis(100);
/// Queue depth of every connection.
const QUEUE_DEPTH: usize = 64;
/// How long a process waits for its peers to show up or to say anything.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// The run's length by default.
const SECONDS: f64 = 2.0;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const ROLES: [&str; 4] = ["controller", "lidar", "camera", "imu"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, result) = match args.as_slice() {
        [] => ("parent", parent(SECONDS)),
        [flag, n] if flag == "--seconds" => ("parent", parse_seconds(n).and_then(parent)),
        [role, prefix, n] if ROLES.contains(&role.as_str()) => {
            let topics = Topics::new(prefix);
            let result = parse_seconds(n).and_then(|seconds| match role.as_str() {
                "controller" => controller(&topics, seconds),
                "lidar" => lidar(&topics, seconds),
                "camera" => camera(&topics, seconds),
                _ => imu(&topics, seconds),
            });
            (role.as_str(), result)
        }
        _ => {
            eprintln!("usage: waitset [--seconds N]   (roles: {ROLES:?} PREFIX SECONDS)");
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
        Ok(n) if (0.5..=3600.0).contains(&n) => Ok(n),
        _ => Err(format!("--seconds wants a number of seconds in [0.5, 3600], not {s:?}").into()),
    }
}

/// Messages a source at `hz` sends in `seconds`.
fn expected(hz: f64, seconds: f64) -> u64 {
    ((hz * seconds).round() as u64).max(1)
}

/// Readings the IMU sends before it crashes: half the run's.
fn imu_readings_before_crash(seconds: f64) -> u64 {
    expected(IMU_HZ, seconds / 2.0)
}

/// The names of the three topics, under one unique prefix.
struct Topics {
    lidar: String,
    camera: String,
    imu: String,
}

impl Topics {
    fn new(prefix: &str) -> Topics {
        Topics {
            lidar: format!("{prefix}/lidar"),
            camera: format!("{prefix}/camera"),
            imu: format!("{prefix}/imu"),
        }
    }
}

/// Starts one process per role, waits for all of them and checks that nothing is left.
fn parent(seconds: f64) -> Result<()> {
    let root = ExampleRoot::new()?;
    let prefix = unique_topic("examples/waitset");
    let topics = Topics::new(&prefix);
    println!(
        "shmx waitset: a controller and three sensors for {seconds} s, the IMU crashing half-way"
    );
    println!(
        "  topics {prefix}/{{lidar,camera,imu}} under {}",
        root.path().display()
    );
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
    // The IMU is meant to die of SIGKILL: it is waited for apart from the others.
    let imu = children.pop().map(|(_, child)| child);
    let timeout = PEER_TIMEOUT * 2 + Duration::from_secs_f64(seconds);
    let mut ok = wait_all(children, timeout, Duration::from_secs(5));
    if let Some(mut imu) = imu {
        let deadline = Instant::now() + PEER_TIMEOUT;
        let status = loop {
            match imu.try_wait()? {
                Some(status) => break Some(status),
                None if Instant::now() >= deadline => break None,
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        if status.and_then(|s| s.signal()) != Some(Signal::KILL.as_raw()) {
            eprintln!("[parent] the imu did not crash as planned: {status:?}");
            let _ = imu.kill();
            let _ = imu.wait();
            ok = false;
        }
    }
    let left = root.leftovers([&topics.lidar, &topics.camera, &topics.imu].map(String::as_str));
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: every process ended as planned and nothing was left behind");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The sensors
// ---------------------------------------------------------------------------------------------

/// Creates a publisher and waits, sleeping, until its subscriber is there.
fn connect<T: ShmMessage>(topic: &str) -> Result<Publisher<T>> {
    let publisher = Publisher::<T>::builder(topic)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    publisher.wait_for_subscribers(1, PEER_TIMEOUT)?;
    Ok(publisher)
}

/// Calls `publish(i)` for i = 1..=count, `1/hz` apart (an absolute schedule).
fn run_paced(hz: f64, count: u64, mut publish: impl FnMut(u64) -> Result<()>) -> Result<()> {
    let period = Duration::from_secs_f64(1.0 / hz);
    let start = Instant::now();
    for i in 1..=count {
        let due = start + period * (i - 1) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        publish(i)?;
    }
    Ok(())
}

/// A wall straight ahead that comes closer, written in place in a zeroed loan.
fn lidar(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<LidarScan>(&topics.lidar)?;
    let count = expected(LIDAR_HZ, seconds);
    run_paced(LIDAR_HZ, count, |i| {
        let wall = 3.0 - 0.5 * i as f32 / LIDAR_HZ as f32;
        let mut scan = publisher.loan()?;
        for (deg, range) in scan.ranges.iter_mut().enumerate() {
            let cos = (deg as f32).to_radians().cos();
            *range = if cos > 0.17 { wall / cos } else { 10.0 };
        }
        scan.stamp_ns = monotonic_ns();
        scan.publish()?;
        Ok(())
    })?;
    println!("[lidar     ] sent {count} scans; leaving");
    Ok(())
}

/// Frames of a moving gradient.
fn camera(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<CameraFrame>(&topics.camera)?;
    let count = expected(CAMERA_HZ, seconds);
    run_paced(CAMERA_HZ, count, |i| {
        let mut frame = publisher.loan()?;
        (frame.width, frame.height, frame.exposure_us) = (64, 48, 8_000);
        for (p, pixel) in frame.pixels.iter_mut().enumerate() {
            *pixel = (p % 64 * 4 + p / 64 + i as usize) as u8;
        }
        frame.stamp_ns = monotonic_ns();
        frame.publish()?;
        Ok(())
    })?;
    println!("[camera    ] sent {count} frames; leaving");
    Ok(())
}

/// Readings by copy, until the driver "crashes" half-way: `SIGKILL` to itself, so no
/// destructor runs and the publisher never says goodbye.
fn imu(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<Imu>(&topics.imu)?;
    let count = imu_readings_before_crash(seconds);
    run_paced(IMU_HZ, count, |i| {
        let t = i as f32 / IMU_HZ as f32;
        publisher.send(Imu {
            stamp_ns: monotonic_ns(),
            accel: [0.05 * (t * 7.0).sin(), 0.02, 9.81],
            gyro: [0.0, 0.0, 0.1 * (t * 2.0).sin()],
        })?;
        Ok(())
    })?;
    println!("[imu       ] sent {count} readings; crashing now (SIGKILL to itself)");
    kill_process(getpid(), Signal::KILL)?;
    unreachable!("SIGKILL cannot be caught");
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

/// What the controller saw of one topic.
#[derive(Default)]
struct Stream {
    received: u64,
    /// Gaps in `sample.sequence()`.
    lost: u64,
    latency_sum_ns: u64,
    latency_max_ns: u64,
    /// How its publisher went.
    gone: Option<PeerEvent>,
}

impl Stream {
    /// Takes every sample waiting, passing each to `f`. (Level-triggered: what is left
    /// would be reported again by the next wait.)
    fn take_all<T: ShmMessage>(
        &mut self,
        subscriber: &Subscriber<T>,
        stamp: impl Fn(&T) -> u64,
        mut f: impl FnMut(&T),
    ) -> shmx::Result<()> {
        while let Some(sample) = subscriber.take()? {
            let latency = monotonic_ns().saturating_sub(stamp(&sample));
            self.lost += sample
                .sequence()
                .saturating_sub(self.received + self.lost + 1);
            self.received += 1;
            self.latency_sum_ns += latency;
            self.latency_max_ns = self.latency_max_ns.max(latency);
            f(&sample);
        }
        Ok(())
    }

    fn summary(&self, name: &str, what: &str) -> String {
        let mean = self.latency_sum_ns.checked_div(self.received).unwrap_or(0);
        let gone = match self.gone {
            Some(PeerEvent::PublisherDied { .. }) => "publisher died",
            Some(PeerEvent::PublisherLeft { .. }) => "publisher left",
            _ => "publisher still there",
        };
        format!(
            "{name:<7}{:>4} {what:<8} lost {}, latency mean {} max {}; {gone}",
            self.received,
            self.lost,
            format_ns(mean),
            format_ns(self.latency_max_ns)
        )
    }
}

/// What the 50 Hz control step decides.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Not every sensor has reported yet.
    Idle,
    Drive,
    /// The IMU is silent: no heading, no driving.
    SafeStop,
}

/// Subscribes to the three sensors and handles everything in one loop on one thread.
fn controller(topics: &Topics, seconds: f64) -> Result<()> {
    let lidar = Subscriber::<LidarScan>::builder(&topics.lidar)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let camera = Subscriber::<CameraFrame>::builder(&topics.camera)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let imu = Subscriber::<Imu>::builder(&topics.imu)
        .queue_depth(QUEUE_DEPTH)
        .create()?;

    let mut waitset = WaitSet::new()?;
    let lidar_at = waitset.attach(&lidar)?;
    let camera_at = waitset.attach(&camera)?;
    let imu_at = waitset.attach(&imu)?;
    let imu_silent = waitset.attach_deadline(&imu, IMU_SILENCE)?;
    let tick = waitset.attach_interval(TICK)?;

    let start = Instant::now();
    let deadline = start + PEER_TIMEOUT * 2 + Duration::from_secs_f64(seconds);
    let at = |t: Instant| format!("t={:.3} s", t.duration_since(start).as_secs_f64());
    let (mut lidar_in, mut camera_in, mut imu_in) =
        (Stream::default(), Stream::default(), Stream::default());
    // The latest values, for the control step.
    let (mut front_range, mut brightness, mut yaw_rate) = (None, None, None);
    // The IMU is silent (since its last reading) or dead: no heading to trust.
    let (mut imu_silent_now, mut imu_dead) = (false, false);
    let (mut silences, mut ticks) = (0u32, [0u32; 3]);
    let mut events = Vec::new();

    // Until all three publishers are gone (then nothing more can come).
    while [&lidar_in, &camera_in, &imu_in]
        .iter()
        .any(|s| s.gone.is_none())
    {
        if Instant::now() >= deadline {
            return Err("the sensors did not all leave in time".into());
        }
        // The events of one wait are collected and handled after it: errors go up with `?`
        // (the handler returns nothing), and no reading is taken before the IMU's deadline
        // has seen it waiting.
        events.clear();
        if waitset.wait_timeout(PEER_TIMEOUT, |event| events.push(event))? == 0 {
            return Err(format!("nothing happened for {PEER_TIMEOUT:?}").into());
        }
        let now = Instant::now();
        for event in &events {
            match event.kind {
                EventKind::Samples if event.is(lidar_at) => {
                    lidar_in.take_all(
                        &lidar,
                        |s| s.stamp_ns,
                        |scan| {
                            // The closest obstacle within 30 degrees of straight ahead.
                            let front = scan.ranges[..=30].iter().chain(&scan.ranges[330..]);
                            front_range = Some(front.copied().fold(f32::INFINITY, f32::min));
                        },
                    )?
                }
                EventKind::Samples if event.is(camera_at) => camera_in.take_all(
                    &camera,
                    |s| s.stamp_ns,
                    |frame| {
                        let sum: u32 = frame.pixels.iter().map(|&p| u32::from(p)).sum();
                        brightness = Some(sum as f32 / frame.pixels.len() as f32);
                    },
                )?,
                EventKind::Samples if event.is(imu_at) => {
                    imu_in.take_all(&imu, |s| s.stamp_ns, |r| yaw_rate = Some(r.gyro[2]))?;
                    imu_silent_now = false;
                }
                EventKind::Silent if event.is(imu_silent) => {
                    // Again after every further 100 ms of silence: say it once.
                    silences += 1;
                    if !imu_silent_now && imu_in.received > 0 {
                        println!("[controller] {}  imu: silent for {IMU_SILENCE:?}", at(now));
                    }
                    imu_silent_now = true;
                }
                EventKind::Tick if event.is(tick) => {
                    // The control step (a real one would publish a command here).
                    let mode =
                        if front_range.is_none() || brightness.is_none() || yaw_rate.is_none() {
                            Mode::Idle
                        } else if imu_silent_now || imu_dead {
                            Mode::SafeStop
                        } else {
                            Mode::Drive
                        };
                    ticks[mode as usize] += 1;
                }
                EventKind::Peer(peer) => {
                    let (name, stream) = if event.is(lidar_at) {
                        ("lidar", &mut lidar_in)
                    } else if event.is(camera_at) {
                        ("camera", &mut camera_in)
                    } else {
                        ("imu", &mut imu_in)
                    };
                    let what = match peer {
                        PeerEvent::PublisherJoined { pid } => format!("publisher {pid} joined"),
                        PeerEvent::PublisherLeft { pid } => format!("publisher {pid} left"),
                        PeerEvent::PublisherDied { pid } => format!("publisher {pid} died"),
                    };
                    let dead = matches!(peer, PeerEvent::PublisherDied { .. });
                    let react = if dead && event.is(imu_at) {
                        // What it queued before it died is still delivered.
                        imu_dead = true;
                        ": safe stop"
                    } else {
                        ""
                    };
                    println!("[controller] {}  {name}: {what}{react}", at(now));
                    if !matches!(peer, PeerEvent::PublisherJoined { .. }) {
                        stream.gone = Some(peer);
                    }
                }
                _ => {} // no foreign descriptors here
            }
        }
    }
    // A publisher that goes leaves its queued samples to be taken.
    lidar_in.take_all(&lidar, |s| s.stamp_ns, |_| {})?;
    camera_in.take_all(&camera, |s| s.stamp_ns, |_| {})?;
    imu_in.take_all(&imu, |s| s.stamp_ns, |_| {})?;

    let run = start.elapsed().as_secs_f64();
    let total: u32 = ticks.iter().sum();
    println!("[controller] {}", lidar_in.summary("lidar", "scans"));
    println!("[controller] {}", camera_in.summary("camera", "frames"));
    println!("[controller] {}", imu_in.summary("imu", "readings"));
    println!(
        "[controller] ticks  {total:>4} in {run:.2} s ({:.1} Hz): idle {}, drive {}, safe stop {}; \
         imu silent {silences} times",
        f64::from(total) / run,
        ticks[Mode::Idle as usize],
        ticks[Mode::Drive as usize],
        ticks[Mode::SafeStop as usize],
    );

    let mut wrong = Vec::new();
    for (name, stream, want, how) in [
        ("lidar", &lidar_in, expected(LIDAR_HZ, seconds), "left"),
        ("camera", &camera_in, expected(CAMERA_HZ, seconds), "left"),
        ("imu", &imu_in, imu_readings_before_crash(seconds), "died"),
    ] {
        let went = match stream.gone {
            Some(PeerEvent::PublisherLeft { .. }) => "left",
            Some(PeerEvent::PublisherDied { .. }) => "died",
            _ => "stayed",
        };
        if stream.received != want || stream.lost != 0 || went != how {
            wrong.push(format!(
                "{name}: {} received (want {want}), {} lost, publisher {went} (want {how})",
                stream.received, stream.lost
            ));
        }
    }
    if ticks[Mode::SafeStop as usize] == 0 {
        wrong.push("no safe-stop tick after the IMU died".to_owned());
    }
    if !wrong.is_empty() {
        return Err(wrong.join("; ").into());
    }
    Ok(())
}
