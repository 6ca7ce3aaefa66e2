//! The messages on the four topics.

use shmx::{RelSlice, ShmMessage};

/// Ranges in a full scan: one per degree.
pub const LIDAR_RANGES: usize = 360;

/// One revolution of a planar laser scanner: a message of variable length, its ranges in the
/// sample's tail (`scan.ranges()`, written in place with `alloc_ranges`).
#[derive(ShmMessage, Debug)]
#[repr(C)]
pub struct LidarScan {
    pub seq: u64,
    /// `CLOCK_MONOTONIC` in ns when the scan was published.
    pub stamp_ns: u64,
    /// Angle of `ranges[0]`, radians (0 = straight ahead, counter-clockwise).
    pub angle_min: f32,
    /// Angle between two consecutive ranges, radians.
    pub angle_increment: f32,
    /// Distances in metres, one per `angle_increment` (a full scan has [`LIDAR_RANGES`]).
    pub ranges: RelSlice<f32>,
}

pub const CAMERA_WIDTH: usize = 64;
pub const CAMERA_HEIGHT: usize = 48;

/// A small grayscale camera frame.
#[derive(ShmMessage, Clone, Copy, Debug)]
#[repr(C)]
pub struct CameraFrame {
    pub seq: u64,
    pub stamp_ns: u64,
    pub width: u16,
    pub height: u16,
    pub exposure_us: u32,
    /// Row-major 8-bit pixels.
    pub pixels: [u8; CAMERA_WIDTH * CAMERA_HEIGHT],
}

/// One reading of an inertial measurement unit.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Imu {
    pub seq: u64,
    pub stamp_ns: u64,
    /// Linear acceleration, m/s^2.
    pub accel: [f32; 3],
    /// Angular velocity, rad/s.
    pub gyro: [f32; 3],
}

/// What the motor driver should do. A fieldless enum with an integer `repr` is a message too;
/// a subscriber refuses a byte that names no variant.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Idle = 0,
    Drive = 1,
    Stop = 2,
}

/// A velocity command for the motor driver.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Command {
    pub seq: u64,
    pub stamp_ns: u64,
    /// Forward speed, m/s.
    pub linear: f32,
    /// Turn rate, rad/s.
    pub angular: f32,
    pub mode: Mode,
    /// Explicit padding up to the struct's alignment: message types have no implicit padding.
    pub _pad: [u8; 7],
}
