//! tokio: a multi-threaded tokio application that receives three topics from another process
//! without ever blocking one of its threads.
//!
//! ```text
//! cargo run --release --example tokio [-- --seconds N]
//! ```
//!
//! Run without a role, the program binds a control socket (a Unix datagram socket in a
//! private temporary directory), subscribes to three topics, starts itself once more as the
//! **robot** (a plain, blocking program: one thread publishes an IMU at 200 Hz, odometry at
//! 50 Hz and the battery state at 10 Hz) and runs a tokio runtime with three tasks:
//!
//! ```text
//!  robot process                          this process (tokio, multi-threaded)
//!  imu     (200 Hz, Imu)       ---------> task 1: loop { imu.recv_async().await }
//!  odom     (50 Hz, Odometry)  ---------> task 2: loop { odom.recv_async().await }
//!  battery  (10 Hz, Battery)   ---------> task 3: select! { battery.recv_async(),
//!  "hello", "bye <counts>"     --socket->                   control.recv(),
//!                                                           report.tick() (4 Hz) }
//! ```
//!
//! - Each subscriber is moved into its task (`Subscriber` is `Send`) and awaited with
//!   `recv_async()`: the task sleeps in tokio's reactor on the subscriber's descriptor until
//!   a publisher wakes it, so the runtime's threads stay free (the 4 Hz report shows how late
//!   its timer ever fired).
//! - Task 3 `select!`s over a subscriber, a socket and a timer. `recv_async()` is
//!   cancel-safe: when another branch wins, the dropped receive has taken nothing.
//! - When the robot is done it leaves its topics and says `bye` on the control socket with
//!   how many samples it sent; task 3 then tells the other two to stop (a `watch` channel,
//!   another `select!` branch), each takes what is still queued with `take()`, and the
//!   program checks that every sample arrived, in order.
//! - The robot waits for its subscribers with `Publisher::wait_for_subscribers` (no sleeps)
//!   and publishes with `Overflow::Block`, so nothing is dropped.
//!
//! The run uses a fresh shmx root, a temporary directory under `/dev/shm` removed at the end,
//! unless `SHMX_ROOT` names one (then only this run's topics must be gone afterwards).

use shmx::{Overflow, Publisher, ShmMessage, Subscriber};
use shmx_suite::{format_ns, monotonic_ns, spawn_self, unique_topic, wait_all, ExampleRoot};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One reading of an inertial measurement unit.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Imu {
    /// `CLOCK_MONOTONIC` in ns when the reading was published.
    stamp_ns: u64,
    /// Linear acceleration, m/s^2.
    accel: [f32; 3],
    /// Angular velocity, rad/s.
    gyro: [f32; 3],
}

/// Where the robot thinks it is.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Odometry {
    stamp_ns: u64,
    /// Position in metres and heading in radians.
    x: f64,
    y: f64,
    heading: f64,
    /// Forward speed, m/s.
    speed: f64,
}

/// The battery's state.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Battery {
    stamp_ns: u64,
    volts: f32,
    /// Charge left, 0-100.
    percent: f32,
}

const IMU_HZ: u64 = 200;
const ODOM_HZ: u64 = 50;
const BATTERY_HZ: u64 = 10;
/// How often task 3 prints what has arrived so far.
const REPORT: Duration = Duration::from_millis(250);
/// Queue depth of every connection.
const QUEUE_DEPTH: usize = 64;
/// How long anyone waits for a peer.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// The run's length by default.
const SECONDS: f64 = 1.5;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, result) = match args.as_slice() {
        [] => ("app", app(SECONDS)),
        [flag, n] if flag == "--seconds" => ("app", parse_seconds(n).and_then(app)),
        [role, prefix, socket, n] if role == "robot" => (
            "robot",
            parse_seconds(n).and_then(|s| robot(&Topics::new(prefix), Path::new(socket), s)),
        ),
        _ => {
            eprintln!("usage: tokio [--seconds N]   (robot: tokio robot PREFIX SOCKET SECONDS)");
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
        Ok(n) if (0.1..=3600.0).contains(&n) => Ok(n),
        _ => Err(format!("--seconds wants a number of seconds in [0.1, 3600], not {s:?}").into()),
    }
}

/// The names of the three topics, under one unique prefix.
struct Topics {
    imu: String,
    odom: String,
    battery: String,
}

impl Topics {
    fn new(prefix: &str) -> Topics {
        Topics {
            imu: format!("{prefix}/imu"),
            odom: format!("{prefix}/odom"),
            battery: format!("{prefix}/battery"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The robot: plain blocking code in a process of its own
// ---------------------------------------------------------------------------------------------

/// Publishes the three topics for `seconds` from one thread, then leaves and says `bye`.
fn robot(topics: &Topics, control: &Path, seconds: f64) -> Result<()> {
    fn connect<T: ShmMessage>(topic: &str) -> Result<Publisher<T>> {
        let publisher = Publisher::<T>::builder(topic)
            .queue_depth(QUEUE_DEPTH)
            .overflow(Overflow::Block)
            // A subscriber that stops reading makes `send` fail instead of hang.
            .block_timeout(Duration::from_secs(5))
            .create()?;
        publisher.wait_for_subscribers(1, PEER_TIMEOUT)?;
        Ok(publisher)
    }
    let imu = connect::<Imu>(&topics.imu)?;
    let odom = connect::<Odometry>(&topics.odom)?;
    let battery = connect::<Battery>(&topics.battery)?;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.send_to(
        format!("hello from robot {}", std::process::id()).as_bytes(),
        control,
    )?;

    // One step per IMU reading; odometry every 4th, the battery every 20th.
    let steps = ((IMU_HZ as f64 * seconds).round() as u64).max(1);
    let period = Duration::from_secs(1) / IMU_HZ as u32;
    let (mut x, mut heading) = (0.0f64, 0.0f64);
    let mut sent = [0u64; 3];
    let start = Instant::now();
    for step in 0..steps {
        if let Some(wait) = (start + period * step as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = step as f64 / IMU_HZ as f64;
        let yaw_rate = 0.2 * (t * 3.0).sin();
        heading += yaw_rate / IMU_HZ as f64;
        x += 0.5 / IMU_HZ as f64;
        imu.send(Imu {
            stamp_ns: monotonic_ns(),
            accel: [0.1, 0.0, 9.81],
            gyro: [0.0, 0.0, yaw_rate as f32],
        })?;
        sent[0] += 1;
        if step % (IMU_HZ / ODOM_HZ) == 0 {
            let mut pose = odom.loan()?; // written in place
            (pose.x, pose.y, pose.heading, pose.speed) = (x, 0.0, heading, 0.5);
            pose.stamp_ns = monotonic_ns();
            pose.publish()?;
            sent[1] += 1;
        }
        if step % (IMU_HZ / BATTERY_HZ) == 0 {
            let percent = 80.0 - 2.0 * t as f32;
            battery.send(Battery {
                stamp_ns: monotonic_ns(),
                volts: 22.0 + 3.2 * percent / 100.0,
                percent,
            })?;
            sent[2] += 1;
        }
    }
    // Leave the topics first (what is queued is still delivered), then say goodbye.
    drop((imu, odom, battery));
    let [i, o, b] = sent;
    socket.send_to(
        format!("bye imu={i} odom={o} battery={b}").as_bytes(),
        control,
    )?;
    println!("[robot] sent {i} imu readings, {o} poses, {b} battery states; left");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tokio application
// ---------------------------------------------------------------------------------------------

/// What a message says for the summary.
trait Reading: ShmMessage + Copy + Send + 'static {
    fn stamp_ns(&self) -> u64;
    fn describe(&self) -> String;
}

impl Reading for Imu {
    fn stamp_ns(&self) -> u64 {
        self.stamp_ns
    }
    fn describe(&self) -> String {
        format!("yaw rate {:+.3} rad/s", self.gyro[2])
    }
}

impl Reading for Odometry {
    fn stamp_ns(&self) -> u64 {
        self.stamp_ns
    }
    fn describe(&self) -> String {
        format!("at x {:.2} m, heading {:+.3} rad", self.x, self.heading)
    }
}

impl Reading for Battery {
    fn stamp_ns(&self) -> u64 {
        self.stamp_ns
    }
    fn describe(&self) -> String {
        format!("{:.1} V, {:.1} %", self.volts, self.percent)
    }
}

/// What one task saw of its topic.
struct Stats<T> {
    received: u64,
    /// Gaps in `sample.sequence()`.
    lost: u64,
    latency_sum_ns: u64,
    latency_max_ns: u64,
    /// A copy of the last message: a `Sample` borrows its subscriber and is not `Send`, so
    /// a task keeps no sample across an `.await`.
    last: Option<T>,
    /// Shared with the report.
    count: Arc<AtomicU64>,
}

impl<T: Reading> Stats<T> {
    fn new(count: Arc<AtomicU64>) -> Stats<T> {
        Stats {
            received: 0,
            lost: 0,
            latency_sum_ns: 0,
            latency_max_ns: 0,
            last: None,
            count,
        }
    }

    fn record(&mut self, sample: &shmx::Sample<'_, T>) {
        let latency = monotonic_ns().saturating_sub(sample.stamp_ns());
        self.lost += sample
            .sequence()
            .saturating_sub(self.received + self.lost + 1);
        self.received += 1;
        self.latency_sum_ns += latency;
        self.latency_max_ns = self.latency_max_ns.max(latency);
        self.last = Some(**sample);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes what is still queued (after the last `recv_async`).
    fn take_rest(&mut self, subscriber: &Subscriber<T>) -> shmx::Result<()> {
        while let Some(sample) = subscriber.take()? {
            self.record(&sample);
        }
        Ok(())
    }

    /// Prints the summary line; fails unless exactly `sent` samples arrived, in order.
    fn report(&self, name: &str, sent: u64) -> Result<()> {
        let mean = self.latency_sum_ns.checked_div(self.received).unwrap_or(0);
        let last = self.last.map_or("nothing".to_owned(), |m| m.describe());
        println!(
            "[app] {name:<8}{:>4} received, lost {}, latency mean {} max {}; last: {last}",
            self.received,
            self.lost,
            format_ns(mean),
            format_ns(self.latency_max_ns)
        );
        if self.received != sent || self.lost != 0 {
            return Err(format!("{name}: {} received of {sent} sent", self.received).into());
        }
        Ok(())
    }
}

/// Tasks 1 and 2: receives `subscriber`'s samples until told to stop.
async fn follow<T: Reading>(
    mut subscriber: Subscriber<T>,
    mut stop: watch::Receiver<bool>,
    count: Arc<AtomicU64>,
) -> Result<Stats<T>> {
    let mut stats = Stats::new(count);
    loop {
        tokio::select! {
            sample = subscriber.recv_async() => stats.record(&sample?),
            // Cancel-safe: the receive that lost this race took nothing.
            _ = stop.changed() => break,
        }
    }
    stats.take_rest(&subscriber)?;
    Ok(stats)
}

/// What task 3 ends with.
struct Control {
    battery: Stats<Battery>,
    /// What the robot said it sent: imu, odom, battery.
    sent: [u64; 3],
    /// How late the report timer fired at worst.
    late: Duration,
}

/// Task 3: the battery, the control socket and the report timer in one `select!`, until the
/// robot says `bye`; then tells the other tasks to stop.
async fn control(
    mut battery: Subscriber<Battery>,
    socket: tokio::net::UnixDatagram,
    stop: watch::Sender<bool>,
    counts: [Arc<AtomicU64>; 3],
) -> Result<Control> {
    let start = Instant::now();
    let mut stats = Stats::new(counts[2].clone());
    let mut report = tokio::time::interval(REPORT);
    let mut late = Duration::ZERO;
    let mut low_battery = false;
    let mut buf = [0u8; 256];
    let sent = loop {
        tokio::select! {
            sample = battery.recv_async() => {
                let sample = sample?;
                stats.record(&sample);
                if sample.percent < 78.0 && !low_battery {
                    low_battery = true;
                    println!("[app] battery below 78 %: {}", sample.describe());
                }
            }
            received = socket.recv(&mut buf) => {
                let text = String::from_utf8_lossy(&buf[..received?]).into_owned();
                println!("[app] control socket: {text:?}");
                if let Some(counts) = text.strip_prefix("bye ") {
                    break parse_counts(counts)?;
                }
            }
            due = report.tick() => {
                late = late.max(due.elapsed());
                let [imu, odom, battery] = counts.each_ref().map(|c| c.load(Ordering::Relaxed));
                println!(
                    "[app] t={:.2} s  imu {imu:>4}  odom {odom:>3}  battery {battery:>2}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    };
    // The robot published everything before it said bye: what is not taken yet is queued.
    stop.send_replace(true);
    stats.take_rest(&battery)?;
    Ok(Control {
        battery: stats,
        sent,
        late,
    })
}

/// `imu=N odom=N battery=N`.
fn parse_counts(text: &str) -> Result<[u64; 3]> {
    let mut counts = [0u64; 3];
    let mut fields = text.split(' ');
    for (count, name) in counts.iter_mut().zip(["imu=", "odom=", "battery="]) {
        let field = fields.next().and_then(|f| f.strip_prefix(name));
        *count = field.ok_or(format!("bad bye: {text:?}"))?.parse()?;
    }
    Ok(counts)
}

/// Subscribes, binds the control socket, starts the robot and runs the three tasks.
fn app(seconds: f64) -> Result<()> {
    let root = ExampleRoot::new()?;
    let prefix = unique_topic("examples/tokio");
    let topics = Topics::new(&prefix);
    let control_dir = tempfile::Builder::new().prefix("shmx-tokio-").tempdir()?;
    let control_path = control_dir.path().join("control.sock");
    println!("shmx tokio: three tasks receive from a robot process for {seconds} s");
    println!(
        "  topics {prefix}/{{imu,odom,battery}} under {}",
        root.path().display()
    );

    // Subscribers first: the robot waits for them.
    let imu = Subscriber::<Imu>::builder(&topics.imu)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let odom = Subscriber::<Odometry>::builder(&topics.odom)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    let battery = Subscriber::<Battery>::builder(&topics.battery)
        .queue_depth(QUEUE_DEPTH)
        .create()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (robot, outcome) = runtime.block_on(async {
        let socket = tokio::net::UnixDatagram::bind(&control_path)?;
        let robot = spawn_self([
            "robot",
            prefix.as_str(),
            path_str(&control_path)?,
            seconds.to_string().as_str(),
        ])?;
        let counts: [Arc<AtomicU64>; 3] = Default::default();
        let (stop_tx, stop_rx) = watch::channel(false);
        let imu_task = tokio::spawn(follow(imu, stop_rx.clone(), counts[0].clone()));
        let odom_task = tokio::spawn(follow(odom, stop_rx, counts[1].clone()));
        let control_task = tokio::spawn(control(battery, socket, stop_tx, counts));
        // Should the robot never say bye, give up instead of hanging.
        let all = async { tokio::try_join!(imu_task, odom_task, control_task) };
        let limit = PEER_TIMEOUT * 2 + Duration::from_secs_f64(seconds);
        let outcome = match tokio::time::timeout(limit, all).await {
            Ok(joined) => joined.map_err(Error::from),
            Err(_) => Err(format!("the robot did not say bye within {limit:?}").into()),
        };
        Ok::<_, Error>((robot, outcome))
    })?;
    drop(runtime);
    let robot_ok = wait_all(
        vec![("robot".to_owned(), robot)],
        PEER_TIMEOUT,
        Duration::from_secs(1),
    );
    let (imu, odom, control) = outcome?;
    let control = control?;
    let [imu_sent, odom_sent, battery_sent] = control.sent;
    let checks = [
        imu?.report("imu", imu_sent),
        odom?.report("odom", odom_sent),
        control.battery.report("battery", battery_sent),
    ];
    println!(
        "[app] the report timer fired at most {} late",
        format_ns(control.late.as_nanos() as u64)
    );
    checks.into_iter().collect::<Result<Vec<()>>>()?;
    drop(control_dir);
    let left = root.leftovers([&topics.imu, &topics.odom, &topics.battery].map(String::as_str));
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    if !robot_ok {
        return Err("the robot failed".into());
    }
    println!("done: every sample arrived in order and nothing was left behind");
    Ok(())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}
