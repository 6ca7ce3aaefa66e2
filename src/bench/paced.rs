//! Paced one-way latency: a publisher process (the parent) sends an 8-byte message at a fixed
//! interval, and a receiver process (the child) that waits for each one measures how long it
//! took to arrive.
//!
//! Unlike the ping-pong, where the receiver of a round trip never waits long, this is the
//! latency of a receiver that idles between messages: with a message every 10 us a blocking
//! `recv()` should stay near the spinning figure (its adaptive spin budget covers the gap),
//! and with sparse traffic, where it sleeps on a futex, it should be no worse than a blocking
//! Unix socket.
//!
//! - Pacing: the parent busy-waits on `CLOCK_MONOTONIC` ([`crate::monotonic_ns`]) until the
//!   next send time, reads the clock, and sends that reading as the message's first (and only)
//!   8 bytes. The next send time is that reading plus the interval, so no gap between two
//!   messages is ever shorter than the interval, even after a late send.
//! - Measuring: the child reads the clock as soon as its receive returns; one-way latency =
//!   receive reading − send reading (`CLOCK_MONOTONIC` is system-wide, so readings of two
//!   processes compare). It checks that the timestamps increase (nothing reordered or
//!   repeated) and, once stopped, writes every latency to `paced-latencies` in the run
//!   directory ([`LATENCIES_FILE`]: native-endian `u64`s, in order of arrival); the parent
//!   reads the file after the child exited, checks that every message arrived, and drops the
//!   warm-up messages (which let the adaptive spin budget settle).
//! - Contenders ([`PACED`]): `shmx-recv` (receiver blocking in `Subscriber::recv()`),
//!   `shmx-spin` (receiver polling `take()` with `std::hint::spin_loop()`, the reference) and
//!   `uds` (blocking `read` on a Unix domain stream socket). shmx's publisher uses
//!   `Overflow::Block` and queue depth 256, so nothing is dropped; it writes the stamp in place
//!   (`loan_uninit`) and the stamp is read before the loan. The socket's stamp is read right
//!   before its `write`.
//!
//! The child's [`CHILD_ENV`](super::CHILD_ENV) id is `paced-<id>` ([`Paced::child_id`]), so
//! that it never collides with the ping-pong contenders of the same name.

use super::process::{ChildEnv, ChildStdio, Placement, RunDir, PEER_TIMEOUT};
use super::shmx_pingpong::{header, publish_header};
use super::socket::{accept_unix, read_msg, write_msg};
use super::{Result, STOP, UDS_ID};
use crate::monotonic_ns;
use shmx::{Overflow, Publisher, Subscriber, TopicConfig};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// Intervals between messages of the paced runs: 10 us (dense), 100 us (the top of shmx's
/// adaptive spin budget) and 1 ms (sparse).
pub const INTERVALS: [Duration; 3] = [
    Duration::from_micros(10),
    Duration::from_micros(100),
    Duration::from_millis(1),
];

/// Payload of every paced message: the 8-byte send timestamp.
pub const PAYLOAD: usize = 8;

/// Id of the reference of the paced ratios: shmx with a spinning receiver.
pub const SPIN_ID: &str = "shmx-spin";

/// The file, in the run directory, where the child leaves its latencies.
pub const LATENCIES_FILE: &str = "paced-latencies";

const TOPIC: &str = "bench/paced";
const QUEUE_DEPTH: usize = 256;

/// How the receiver waits for the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// shmx, blocking in `recv()` (adaptive spin, then a futex).
    ShmxRecv,
    /// shmx, polling `take()` with `std::hint::spin_loop()` between polls.
    ShmxSpin,
    /// Unix domain stream socket, blocking `read`.
    Uds,
}

/// One contender of the paced table.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    receiver: Receiver,
}

/// shmx, receiver spinning on `take()` (id `shmx-spin`): the reference.
pub static SHMX_SPIN: Paced = Paced {
    receiver: Receiver::ShmxSpin,
};
/// shmx, receiver blocking in `recv()` (id `shmx-recv`).
pub static SHMX_RECV: Paced = Paced {
    receiver: Receiver::ShmxRecv,
};
/// Unix domain stream socket, blocking receive (id `uds`).
pub static UDS: Paced = Paced {
    receiver: Receiver::Uds,
};

/// Every paced contender, in table order.
pub static PACED: &[&Paced] = &[&SHMX_SPIN, &SHMX_RECV, &UDS];

/// The paced contender whose child role is `child_id` ([`Paced::child_id`]).
pub fn by_child_id(child_id: &str) -> Option<&'static Paced> {
    PACED.iter().copied().find(|c| c.child_id() == child_id)
}

/// `10 us`, `100 us`, `1 ms`, `2.5 ms`.
///
/// ```
/// use shmx_suite::bench::paced::interval_label;
/// use std::time::Duration;
/// assert_eq!(interval_label(Duration::from_micros(10)), "10 us");
/// assert_eq!(interval_label(Duration::from_millis(1)), "1 ms");
/// assert_eq!(interval_label(Duration::from_micros(2500)), "2.5 ms");
/// ```
pub fn interval_label(interval: Duration) -> String {
    let ns = interval.as_nanos() as f64;
    let (v, unit) = match ns {
        n if n < 1e3 => (n, "ns"),
        n if n < 1e6 => (n / 1e3, "us"),
        n => (n / 1e6, "ms"),
    };
    format!("{v} {unit}")
}

/// Parses an interval: `10us`, `100 us`, `1ms`, `250ns`, `1s` (a unit is required).
///
/// ```
/// use shmx_suite::bench::paced::parse_interval;
/// use std::time::Duration;
/// assert_eq!(parse_interval("10us"), Some(Duration::from_micros(10)));
/// assert_eq!(parse_interval("1 ms"), Some(Duration::from_millis(1)));
/// assert_eq!(parse_interval("10"), None);
/// ```
pub fn parse_interval(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    const UNITS: [(&str, u64); 5] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
    ];
    let (digits, scale) = UNITS
        .iter()
        .find_map(|&(unit, scale)| Some((t.strip_suffix(unit)?, scale)))?;
    let n: u64 = digits.trim().parse().ok()?;
    Some(Duration::from_nanos(n.checked_mul(scale)?))
}

/// What one paced batch measured.
#[derive(Debug, Clone)]
pub struct PacedRun {
    /// One-way latency of every measured (non-warm-up) message, in ns, in order of arrival.
    pub latencies: Vec<u64>,
    /// Time from the first to the last measured message's send stamp, in ns (the achieved
    /// mean interval is this over `latencies.len() - 1`).
    pub span: u64,
    /// Where the parent (first) and the child ran.
    pub placements: Vec<Placement>,
}

/// The parent's side of the transport.
enum Sender {
    Shmx(Box<Publisher<[u8; PAYLOAD]>>),
    Uds(UnixStream),
}

impl Sender {
    /// Sends the current time; returns it.
    #[inline(always)]
    fn send_now(&mut self) -> Result<u64> {
        match self {
            Sender::Shmx(p) => {
                let stamp = monotonic_ns();
                publish_header(p, stamp)?;
                Ok(stamp)
            }
            Sender::Uds(s) => {
                let stamp = monotonic_ns();
                write_msg(s, &stamp.to_ne_bytes())?;
                Ok(stamp)
            }
        }
    }

    /// Tells the child to stop: `STOP` for shmx, end-of-file for the socket.
    fn stop(&mut self) -> Result<()> {
        match self {
            Sender::Shmx(p) => publish_header(p, STOP),
            Sender::Uds(s) => Ok(s.shutdown(std::net::Shutdown::Write)?),
        }
    }
}

fn topic_config() -> TopicConfig {
    TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: QUEUE_DEPTH,
        max_held: 2,
        max_history: 0,
        ..TopicConfig::default()
    }
}

impl Paced {
    /// Short, stable identifier in tables and `--contenders` filters: `shmx-spin`,
    /// `shmx-recv`, `uds` (the same as the ping-pong contenders of the same transport).
    pub fn id(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => SPIN_ID,
            Receiver::ShmxRecv => "shmx-recv",
            Receiver::Uds => UDS_ID,
        }
    }

    /// The child role's id in [`CHILD_ENV`](super::CHILD_ENV): `paced-<id>`.
    pub fn child_id(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => "paced-shmx-spin",
            Receiver::ShmxRecv => "paced-shmx-recv",
            Receiver::Uds => "paced-uds",
        }
    }

    /// What it is, in a few words, for tables.
    pub fn describe(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => "shmx, receiver spinning on take() (the reference)",
            Receiver::ShmxRecv => "shmx, receiver blocking in recv() (adaptive spin, then futex)",
            Receiver::Uds => "Unix domain stream socket, receiver blocking in read()",
        }
    }

    /// Parent side: starts the receiver in `run`, sends `warmup + count` messages
    /// `interval` apart, stops the receiver and returns the latencies of the last `count`.
    pub fn run(
        &self,
        run: &RunDir,
        interval: Duration,
        warmup: u64,
        count: u64,
    ) -> Result<PacedRun> {
        let total = warmup + count;
        let (mut sender, spawned) = match self.receiver {
            Receiver::ShmxSpin | Receiver::ShmxRecv => {
                let publisher = Publisher::<[u8; PAYLOAD]>::builder(TOPIC)
                    .root(run.path())
                    .queue_depth(QUEUE_DEPTH)
                    .max_loans(2)
                    .overflow(Overflow::Block)
                    .topic_config(topic_config())
                    .create()?;
                let arg = total.to_string();
                let spawned = run.spawn(self.child_id(), PAYLOAD, &arg, ChildStdio::Null)?;
                if !crate::wait_until(PEER_TIMEOUT, || publisher.subscriber_count() >= 1) {
                    return Err(format!("the paced {} child did not connect", self.id()).into());
                }
                (Sender::Shmx(Box::new(publisher)), spawned)
            }
            Receiver::Uds => {
                let path = run.path().join("paced.sock");
                let listener = UnixListener::bind(&path)?;
                let arg = format!("{total} {}", path.to_string_lossy());
                let spawned = run.spawn(self.child_id(), PAYLOAD, &arg, ChildStdio::Null)?;
                let stream = accept_unix(&listener, self.id(), 1)?.remove(0);
                (Sender::Uds(stream), spawned)
            }
        };
        let step = interval.as_nanos() as u64;
        let sent = (|| {
            let mut stamps = (0, 0);
            let mut next = monotonic_ns();
            for i in 0..total {
                while monotonic_ns() < next {
                    std::hint::spin_loop();
                }
                let stamp = sender.send_now()?;
                if i == warmup {
                    stamps.0 = stamp;
                }
                stamps.1 = stamp;
                next = stamp + step;
            }
            Ok::<_, super::Error>(stamps)
        })();
        let parent = Placement::here("parent");
        let child = spawned.peer.stop(|| sender.stop());
        let (first, last) = sent?;
        let placements = vec![parent, child?];
        let bytes = std::fs::read(run.path().join(LATENCIES_FILE))
            .map_err(|e| format!("the paced {} child left no latencies: {e}", self.id()))?;
        let mut latencies: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("chunks of 8 bytes")))
            .collect();
        if latencies.len() as u64 != total {
            return Err(format!(
                "paced {}: sent {total} messages, the child received {}",
                self.id(),
                latencies.len()
            )
            .into());
        }
        latencies.drain(..warmup as usize);
        Ok(PacedRun {
            latencies,
            span: last - first,
            placements,
        })
    }

    /// Child side: receives until told to stop, then writes the latencies to
    /// [`LATENCIES_FILE`]. `env.arg` is `<messages expected>` (shmx) or
    /// `<messages expected> <socket path>` (uds).
    pub fn child(&self, env: &ChildEnv) -> Result<()> {
        let (expected, path) = env.arg.split_once(' ').unwrap_or((&env.arg, ""));
        let mut latencies = Vec::with_capacity(expected.parse::<usize>()? + 16);
        match self.receiver {
            Receiver::ShmxSpin | Receiver::ShmxRecv => {
                shmx_child(self.receiver, &env.root, &mut latencies)?
            }
            Receiver::Uds => uds_child(path, &mut latencies)?,
        }
        let bytes: Vec<u8> = latencies.iter().flat_map(|l| l.to_ne_bytes()).collect();
        std::fs::write(env.root.join(LATENCIES_FILE), bytes)?;
        Ok(())
    }
}

/// Records the latency of a message stamped `sent` and received at `now`; an error unless
/// stamps increase.
#[inline(always)]
fn record(latencies: &mut Vec<u64>, last: &mut u64, sent: u64, now: u64) -> Result<()> {
    if sent <= *last {
        return Err(format!("paced: stamp {sent} after {last}: reordered or repeated").into());
    }
    *last = sent;
    latencies.push(now.saturating_sub(sent));
    Ok(())
}

fn shmx_child(receiver: Receiver, root: &Path, latencies: &mut Vec<u64>) -> Result<()> {
    let sub = Subscriber::<[u8; PAYLOAD]>::builder(TOPIC)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .topic_config(topic_config())
        .create()?;
    let mut last = 0;
    loop {
        let sample = match receiver {
            Receiver::ShmxRecv => sub.recv()?,
            Receiver::ShmxSpin | Receiver::Uds => super::spin_wait(|| Ok(sub.take()?))?,
        };
        let now = monotonic_ns();
        let sent = header(&*sample);
        drop(sample);
        if sent == STOP {
            return Ok(());
        }
        record(latencies, &mut last, sent, now)?;
    }
}

fn uds_child(path: &str, latencies: &mut Vec<u64>) -> Result<()> {
    let mut stream = UnixStream::connect(path)?;
    let mut buf = [0u8; PAYLOAD];
    let mut last = 0;
    while read_msg(&mut stream, &mut buf)? {
        let now = monotonic_ns();
        record(latencies, &mut last, u64::from_ne_bytes(buf), now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_are_unique_and_found() {
        for c in PACED {
            assert_eq!(by_child_id(c.child_id()).map(Paced::id), Some(c.id()));
            assert!(c.child_id().starts_with("paced-"));
            assert!(super::super::ping_pong(c.child_id()).is_none());
            assert!(super::super::throughput(c.child_id()).is_none());
        }
        assert!(PACED.iter().any(|c| c.id() == SPIN_ID));
        assert!(PACED.iter().any(|c| c.id() == UDS_ID));
    }

    #[test]
    fn intervals_round_trip_through_the_parser() {
        for i in INTERVALS {
            assert_eq!(parse_interval(&interval_label(i)), Some(i));
        }
    }

    #[test]
    fn stamps_must_increase() {
        let (mut l, mut last) = (Vec::new(), 0);
        record(&mut l, &mut last, 10, 15).unwrap();
        record(&mut l, &mut last, 20, 21).unwrap();
        assert!(record(&mut l, &mut last, 20, 30).is_err());
        assert_eq!(l, [5, 1]);
    }
}
