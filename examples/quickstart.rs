//! Quickstart: two processes exchange 100 000 messages through shared memory.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! Run without arguments, the program starts itself twice more, once as a **subscriber** and
//! once as a **publisher** of the topic `examples/quickstart/<pid>-<time>`, waits for both and
//! fails if either does. It shows:
//!
//! - a message type, `Tick`, that `#[derive(ShmMessage)]` checks at compile time (`#[repr(C)]`,
//!   no pointers, no implicit padding);
//! - the publisher writing each tick *in place* in a loaned chunk of shared memory
//!   (`loan()` ... `publish()`): nothing is serialised or copied, the subscriber reads the very
//!   same bytes through `Sample<Tick>`;
//! - `Overflow::Block`: a publisher that waits for room instead of dropping, so the subscriber
//!   receives every message, in order (`sample.sequence()` reveals any gap);
//! - a start-up handshake without sleeps: the publisher waits, with a deadline, until
//!   `subscriber_count() >= 1`;
//! - the one-way latency of every message, from a `CLOCK_MONOTONIC` stamp the publisher writes
//!   just before `publish()` to the subscriber's clock reading right after `recv()`. The
//!   subscriber uses the blocking `recv_timeout`, which spins briefly before it sleeps; the
//!   publisher sends one tick every 10 us, so it rarely has to sleep. With two idle cores the
//!   median is well under a microsecond; the tail percentiles show whatever else the machine
//!   runs (a process that is preempted, or a subscriber that fell asleep, adds microseconds to
//!   milliseconds).
//!
//! Both sides drop their endpoints at the end, and the last one removes the topic's files;
//! the parent checks that nothing was left under the shmx root (`$SHMX_ROOT`, else
//! `/dev/shm/shmx-<uid>`).
//!
//! Roles can also be started by hand, in two terminals:
//! `quickstart subscriber TOPIC COUNT` and `quickstart publisher TOPIC COUNT`.

use shmx::{Overflow, Publisher, ShmMessage, Subscriber};
use shmx_suite::{
    format_ns, monotonic_ns, spawn_self, topic_dir, unique_topic, wait_all, wait_until,
    LatencySummary,
};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One trade of a made-up instrument: 32 bytes, no padding.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Tick {
    /// The publisher's own count, 1, 2, 3, ... (checked against `sample.sequence()`).
    seq: u64,
    /// `CLOCK_MONOTONIC` in ns, taken just before `publish()`.
    sent_ns: u64,
    price: f64,
    /// Bid and ask quantities.
    qty: [u32; 2],
}

/// Messages sent by default.
const COUNT: u64 = 100_000;
/// The publisher sends one message every `PERIOD_NS` (busy-waited).
const PERIOD_NS: u64 = 10_000;
/// Queue depth of the connection: how far the subscriber may fall behind before the
/// publisher blocks.
const QUEUE_DEPTH: usize = 256;
/// How long either side waits for the other before giving up.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, result) = match args.as_slice() {
        [] => ("parent", parent()),
        [role, topic, count] if role == "subscriber" || role == "publisher" => {
            let count = match count.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    eprintln!("COUNT must be a positive integer, not {count:?}");
                    return ExitCode::FAILURE;
                }
            };
            if role == "subscriber" {
                ("sub", subscriber(topic, count))
            } else {
                ("pub", publisher(topic, count))
            }
        }
        _ => {
            eprintln!("usage: quickstart [subscriber|publisher TOPIC COUNT]");
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

/// Starts a subscriber and a publisher process and waits for both.
fn parent() -> Result<()> {
    let topic = unique_topic("examples/quickstart");
    let dir = topic_dir(&topic)?;
    println!("shmx quickstart: {COUNT} ticks on topic {topic:?}");
    println!("  files under {}", dir.parent().unwrap_or(&dir).display());
    let count = COUNT.to_string();
    let mut children = Vec::new();
    for role in ["subscriber", "publisher"] {
        match spawn_self([role, topic.as_str(), count.as_str()]) {
            Ok(child) => children.push((role.to_owned(), child)),
            Err(e) => {
                // Whoever started waits for a peer with a deadline, so it ends by itself.
                wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(1));
                return Err(format!("cannot start the {role}: {e}").into());
            }
        }
    }
    let ok = wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(5));
    if dir.exists() {
        return Err(format!("{} was left behind", dir.display()).into());
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: both processes succeeded and left no files behind");
    Ok(())
}

/// Sends `count` ticks, one every `PERIOD_NS`, once a subscriber is there.
fn publisher(topic: &str, count: u64) -> Result<()> {
    let publisher = Publisher::<Tick>::builder(topic)
        .queue_depth(QUEUE_DEPTH)
        .overflow(Overflow::Block)
        // A subscriber that stops reading makes `publish` fail instead of hang.
        .block_timeout(Duration::from_secs(5))
        .create()?;
    if !wait_until(PEER_TIMEOUT, || publisher.subscriber_count() >= 1) {
        return Err(format!("no subscriber showed up within {PEER_TIMEOUT:?}").into());
    }
    println!(
        "[pub] subscriber connected; sending {count} ticks, one every {}",
        format_ns(PERIOD_NS)
    );
    let start = Instant::now();
    let mut next = monotonic_ns();
    for seq in 1..=count {
        while monotonic_ns() < next {
            std::hint::spin_loop();
        }
        next += PERIOD_NS;
        // The chunk comes zeroed; fill it in place, stamp it last, publish it.
        let mut tick = publisher.loan()?;
        tick.seq = seq;
        tick.price = 100.0 + (seq % 997) as f64 * 0.01;
        tick.qty = [(seq % 7 + 1) as u32 * 100, (seq % 5 + 1) as u32 * 100];
        tick.sent_ns = monotonic_ns();
        tick.publish()?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "[pub] sent {count} ticks in {secs:.2} s ({:.0} ticks/s)",
        count as f64 / secs
    );
    Ok(())
}

/// Receives `count` ticks, prints a few, checks order and reports one-way latencies.
fn subscriber(topic: &str, count: u64) -> Result<()> {
    let subscriber = Subscriber::<Tick>::builder(topic)
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    println!("[sub] subscribed; waiting for {count} ticks");
    let mut latencies = Vec::with_capacity(count as usize);
    let (mut received, mut lost, mut mismatched, mut last_seq) = (0u64, 0u64, 0u64, 0u64);
    let mut start = None;
    while received < count {
        let Some(tick) = subscriber.recv_timeout(PEER_TIMEOUT)? else {
            println!("[sub] nothing for {PEER_TIMEOUT:?}; the publisher is gone");
            break;
        };
        let now = monotonic_ns();
        start.get_or_insert_with(Instant::now);
        latencies.push(now.saturating_sub(tick.sent_ns));
        received += 1;
        let seq = tick.sequence();
        lost += seq.saturating_sub(last_seq + 1);
        last_seq = seq;
        if tick.seq != seq {
            mismatched += 1;
        }
        if seq <= 5 || seq % 10_000 == 0 {
            println!(
                "[sub] #{seq:<6} price {:>6.2}  qty {:?}  latency {}",
                tick.price,
                tick.qty,
                format_ns(now.saturating_sub(tick.sent_ns))
            );
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    // Messages never received at all count as lost too (a gap at the end has no sequence).
    lost += count.saturating_sub(last_seq);
    println!(
        "[sub] received {received} ticks in {secs:.2} s, lost {lost}, mismatched {mismatched}"
    );
    if let Some(summary) = LatencySummary::from_samples(&mut latencies) {
        println!("[sub] one-way latency: {summary}");
        println!(
            "[sub]                  mean {}",
            format_ns(summary.mean as u64)
        );
    }
    if lost > 0 || mismatched > 0 || received != count {
        return Err(
            format!("expected {count} ticks in order, received {received}, lost {lost}").into(),
        );
    }
    Ok(())
}
