//! The three sensors: publishers that write their messages in three different ways.

use crate::messages::{CameraFrame, Imu, LidarScan, CAMERA_HEIGHT, CAMERA_WIDTH, LIDAR_RANGES};
use crate::streams::{connect, report_sent, run_paced};
use crate::{expected, Result, Topics, APPROACH_SPEED, CAMERA_HZ, IMU_HZ, LIDAR_HZ, WALL_DISTANCE};
use shmx_suite::monotonic_ns;
use std::time::Instant;

/// Publishes scans of a wall straight ahead that comes closer, with a pillar on the left.
pub fn lidar(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<LidarScan>(&topics.lidar, LIDAR_RANGES * 4)?;
    let start = Instant::now();
    let count = expected(LIDAR_HZ, seconds);
    let rate = run_paced(LIDAR_HZ, count, |seq| {
        let wall = (WALL_DISTANCE - APPROACH_SPEED * start.elapsed().as_secs_f32()).max(0.2);
        // A zeroed chunk of shared memory, written in place: the message, then its 1.4 KiB
        // of ranges in the chunk's tail, never copied.
        let mut scan = publisher.loan()?;
        let mut w = scan.writer();
        *w.seq = seq;
        *w.angle_min = 0.0;
        *w.angle_increment = 1f32.to_radians();
        for (deg, range) in w.alloc_ranges(LIDAR_RANGES)?.iter_mut().enumerate() {
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
        *w.stamp_ns = monotonic_ns();
        scan.publish()?;
        Ok(())
    })?;
    report_sent("lidar", "scans", count, rate, "");
    Ok(())
}

/// Publishes frames of a moving gradient, written field by field without zeroing first.
pub fn camera(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<CameraFrame>(&topics.camera, 0)?;
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
pub fn imu(topics: &Topics, seconds: f64) -> Result<()> {
    let publisher = connect::<Imu>(&topics.imu, 0)?;
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
