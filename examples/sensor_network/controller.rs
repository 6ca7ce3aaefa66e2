//! The controller: subscribes to the three sensors, one thread each, and commands the motor.

use crate::messages::{CameraFrame, Command, Imu, LidarScan, Mode};
use crate::streams::{receive_all, report_sent, run_paced, StreamStats};
use crate::{
    expected, Result, Topics, APPROACH_SPEED, CAMERA_HZ, COMMAND_HZ, IMU_HZ, LIDAR_HZ,
    PEER_TIMEOUT, QUEUE_DEPTH, STOP_DISTANCE,
};
use shmx::{Publisher, Subscriber};
use shmx_suite::{monotonic_ns, wait_until};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
pub fn run(topics: &Topics, seconds: f64) -> Result<()> {
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
                    // Within 30 degrees of straight ahead, however many ranges the scan has.
                    let front = scan.ranges().iter().enumerate().filter_map(|(i, &r)| {
                        let deg = (scan.angle_min + i as f32 * scan.angle_increment).to_degrees();
                        (deg <= 30.5 || deg >= 329.5).then_some(r)
                    });
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
