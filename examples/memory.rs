//! Memory that follows the traffic: what a topic of large, variable-length samples reserves
//! in `/dev/shm` with a fixed pool (the worst case its limits allow, reserved up front) and
//! with a pool that grows, before the first sample and after a stream with one subscriber
//! that keeps up.
//!
//! ```text
//! cargo run --release --example memory [-- --frames 300]
//! ```
//!
//! Two topics, each with default settings but for the tail:
//!
//! - **camera**: 1920x1080 RGB frames (6.2 MB each), `max_tail_bytes(1920 * 1080 * 3)`,
//!   loaned with `loan()` (the largest size class);
//! - **jpeg**: compressed frames of 50 KB to 2 MB, `max_tail_bytes(2 MiB)`, loaned with
//!   `loan_with_tail(len)` (the smallest class that holds the frame).
//!
//! For each, a fixed pool (`reserve_chunks(usize::MAX)`) and the default growing pool stream
//! the same frames to a subscriber thread that acknowledges each one; the publisher keeps at
//! most three frames in flight. The table gives the bytes the topic's data files hold
//! (allocated blocks, as `du` counts them), from `Publisher::reserved_bytes()`. Prints a
//! Markdown table (the README's).

use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use shmx_suite::{unique_topic, ExampleRoot};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

#[derive(ShmMessage)]
#[repr(C)]
struct Frame {
    seq: u64,
    bytes: RelSlice<u8>,
}

const CAMERA: usize = 1920 * 1080 * 3;
const JPEG_MAX: usize = 2 << 20;

/// The length of frame `seq` of a topic whose frames are `max` bytes or, if `vary`, between
/// 50 KB and `max`.
fn frame_len(seq: u64, max: usize, vary: bool) -> usize {
    if !vary {
        return max;
    }
    // A fixed pseudo-random walk, the same in every run.
    let x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    50_000 + (x as usize % (max - 50_000))
}

/// Streams `frames` frames through a new topic and returns (reserved before the first frame,
/// reserved after the last, fixed or not).
fn stream(
    root: &std::path::Path,
    fixed: bool,
    max: usize,
    vary: bool,
    frames: u64,
) -> shmx::Result<(u64, u64)> {
    let topic = unique_topic("examples/memory");
    let subscriber = Subscriber::<Frame>::builder(&topic).root(root).create()?;
    let builder = Publisher::<Frame>::builder(&topic)
        .root(root)
        .max_tail_bytes(max);
    let publisher = if fixed {
        builder.reserve_chunks(usize::MAX)
    } else {
        builder
    }
    .create()?;
    let before = publisher.reserved_bytes();
    let (ack, acks) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || -> shmx::Result<()> {
        for seq in 1..=frames {
            let frame =
                subscriber
                    .recv_timeout(Duration::from_secs(10))?
                    .ok_or(shmx::Error::Timeout {
                        topic: "examples/memory".into(),
                        operation: "waiting for a frame",
                    })?;
            assert_eq!(frame.seq, seq);
            assert_eq!(frame.bytes().len(), frame_len(seq, max, vary));
            assert_eq!(frame.bytes().last(), Some(&(seq as u8)));
            drop(frame);
            let _ = ack.send(seq);
        }
        Ok(())
    });
    let mut acked = 0;
    for seq in 1..=frames {
        while acked + 3 < seq {
            acked = acks
                .recv_timeout(Duration::from_secs(10))
                .expect("the reader acknowledges");
        }
        let len = frame_len(seq, max, vary);
        let mut sample = if vary {
            publisher.loan_with_tail(len)?
        } else {
            publisher.loan()?
        };
        let mut w = sample.writer();
        *w.seq = seq;
        w.alloc_bytes(len)?.fill(seq as u8);
        sample.publish()?;
    }
    reader.join().expect("the reader does not panic")?;
    Ok((before, publisher.reserved_bytes()))
}

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

fn main() -> ExitCode {
    let frames = std::env::args()
        .skip_while(|a| a != "--frames")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let root = match ExampleRoot::new() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("no root for the run: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("| topic ({frames} frames, one subscriber keeping up) | pool | reserved before the first frame | reserved after the last |");
    println!("|---|---|---:|---:|");
    for (name, max, vary) in [
        ("camera, 6.2 MB frames, `loan()`", CAMERA, false),
        ("jpeg, 50 KB to 2 MB, `loan_with_tail(len)`", JPEG_MAX, true),
    ] {
        for fixed in [true, false] {
            match stream(root.path(), fixed, max, vary, frames) {
                Ok((before, after)) => println!(
                    "| {name} | {} | {} | {} |",
                    if fixed {
                        "fixed (worst case)"
                    } else {
                        "growing (default)"
                    },
                    mib(before),
                    mib(after)
                ),
                Err(e) => {
                    eprintln!("{name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
