//! The Rust side of the Python binding's struct tests (`shmx-python/tests`): a message with
//! arrays, a nested struct, an enum, a `RelStr` and a `RelSlice<f32>`, published and
//! received by Rust, so that Python's view of it is checked against Rust's.
//!
//! ```text
//! struct_peer sub TOPIC N       # prints `ready`, then each of N samples as a JSON line
//! struct_peer pub TOPIC N       # waits for a subscriber, publishes samples 1..=N
//! struct_peer schema            # prints the schema text and the fingerprint
//! ```
//!
//! Sample `i` holds `seq = i`, `xy = [[i, i+0.5], [2i, 2i+0.5], [3i, 3i+0.5]]`,
//! `inner = {a: -i, b: [i % 256, 2]}`, `mode = Drive` for odd `i` (else `Idle`),
//! `on = i is even`, `label = "robot-i"`, and `values = [0.5 * k for k in 0..i % 5]`.
//! The root is `$SHMX_ROOT`; every wait is bounded (10 s), after which it fails.

use shmx::{Publisher, RelSlice, RelStr, ShmMessage, Subscriber};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// What the robot does.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Mode {
    Idle = 0,
    Drive = 7,
}

/// A nested struct.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Inner {
    a: i16,
    b: [u8; 2],
}

/// The message: every kind of field the Python binding reads and writes.
#[derive(ShmMessage)]
#[repr(C)]
struct Robot {
    seq: u64,
    xy: [[f32; 2]; 3],
    inner: Inner,
    mode: Mode,
    on: bool,
    _pad0: [u8; 2],
    label: RelStr,
    values: RelSlice<f32>,
}

fn timeout(topic: &str) -> shmx::Error {
    shmx::Error::Timeout {
        topic: topic.to_owned(),
        operation: "waiting for the Python peer",
    }
}

fn subscribe(topic: &str, n: usize) -> shmx::Result<()> {
    let sub = Subscriber::<Robot>::new(topic)?;
    println!("ready");
    for _ in 0..n {
        let r = sub.recv_timeout(WAIT)?.ok_or_else(|| timeout(topic))?;
        let xy: Vec<String> =
            r.xy.iter()
                .map(|p| format!("[{},{}]", p[0], p[1]))
                .collect();
        let values: Vec<String> = r.values().iter().map(|v| v.to_string()).collect();
        println!(
            "{{\"seq\":{},\"xy\":[{}],\"a\":{},\"b\":[{},{}],\"mode\":\"{:?}\",\"on\":{},\
             \"label\":{:?},\"values\":[{}]}}",
            r.seq,
            xy.join(","),
            r.inner.a,
            r.inner.b[0],
            r.inner.b[1],
            r.mode,
            r.on,
            r.label(),
            values.join(",")
        );
    }
    Ok(())
}

fn publish(topic: &str, n: u64) -> shmx::Result<()> {
    // Blocks on a full queue: every sample reaches the Python subscriber.
    let publisher = Publisher::<Robot>::builder(topic)
        .max_tail_bytes(1024)
        .overflow(shmx::Overflow::Block)
        .create()?;
    publisher.wait_for_subscribers(1, WAIT)?;
    for i in 1..=n {
        let f = i as f32;
        let mut s = publisher.loan_with_tail(256)?;
        let mut w = s.writer();
        *w.seq = i;
        *w.xy = [
            [f, f + 0.5],
            [2.0 * f, 2.0 * f + 0.5],
            [3.0 * f, 3.0 * f + 0.5],
        ];
        *w.inner = Inner {
            a: -(i as i16),
            b: [(i % 256) as u8, 2],
        };
        *w.mode = if i % 2 == 1 { Mode::Drive } else { Mode::Idle };
        *w.on = i % 2 == 0;
        *w._pad0 = [0; 2];
        w.set_label(&format!("robot-{i}"))?;
        let values: Vec<f32> = (0..i % 5).map(|k| 0.5 * k as f32).collect();
        w.set_values(&values)?;
        s.publish()?;
    }
    // Stay until the subscriber took them all: the topic goes with its last participant.
    let deadline = Instant::now() + WAIT;
    while publisher.pool_stats().delivered > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let result = match (arg(0), arg(1), arg(2).and_then(|n| n.parse::<u64>().ok())) {
        (Some("sub"), Some(topic), Some(n)) => subscribe(topic, n as usize),
        (Some("pub"), Some(topic), Some(n)) => publish(topic, n),
        (Some("schema"), None, None) => {
            println!("{}", Robot::SCHEMA.describe());
            println!("{}", Robot::FINGERPRINT);
            Ok(())
        }
        _ => {
            eprintln!("usage: struct_peer sub TOPIC N | pub TOPIC N | schema");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("struct_peer: {e}");
            ExitCode::FAILURE
        }
    }
}
