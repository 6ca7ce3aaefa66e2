//! The motor driver: receives the controller's commands.

use crate::messages::{Command, Mode};
use crate::streams::receive_all;
use crate::{expected, Result, Topics, COMMAND_HZ, PEER_TIMEOUT, QUEUE_DEPTH};
use shmx::Subscriber;
use std::time::{Duration, Instant};

/// Receives commands until the controller leaves and counts them by mode.
pub fn run(topics: &Topics, seconds: f64) -> Result<()> {
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
