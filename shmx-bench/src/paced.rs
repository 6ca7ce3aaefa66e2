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
//! - Contenders ([`PACED`]), by how the receiver waits:
//!   - shmx: `shmx-spin` (polling `take()` with `std::hint::spin_loop()`, the reference),
//!     `shmx-recv` (blocking in `Subscriber::recv()`), `shmx-waitset` (waiting in a `WaitSet`
//!     with the subscriber attached, then taking), `shmx-epoll` (taking until `take()` finds
//!     nothing, then `Subscriber::spin()`, then a raw `epoll_wait` on `Subscriber::fd()`) and, with the `async` feature,
//!     `shmx-async` (`Subscriber::recv_async().await` on a current-thread tokio runtime);
//!   - a Unix domain stream socket: `uds` (blocking `read`), `uds-epoll` (non-blocking, reading
//!     until `WouldBlock`, then `epoll_wait`) and, with `async`, `tokio-uds` (a tokio
//!     `UnixStream`'s `read().await` on a current-thread runtime);
//!   - with `compare-iceoryx2`, `iceoryx2-waitset`: an iceoryx2 publisher that notifies an
//!     event service after each send, and a receiver waiting in iceoryx2's `WaitSet` on the
//!     event's listener, then receiving (iceoryx2's own way to wait for samples; see
//!     `shmx-bench/src/iceoryx2.rs`).
//!
//!   shmx's publisher uses `Overflow::Block` and queue depth 256, so nothing is dropped; it
//!   writes the stamp in place (`loan_uninit`) and the stamp is read before the loan. The
//!   socket's stamp is read right before its `write`.
//!
//! The child's [`CHILD_ENV`](super::CHILD_ENV) id is `paced-<id>` ([`Paced::child_id`]), so
//! that it never collides with the ping-pong contenders of the same name.

use super::epoll::EpollStream;
use super::process::{ChildEnv, ChildStdio, Placement, RunDir, PEER_TIMEOUT};
use super::shmx_pingpong::{epoll_take, header, publish_header, waitset_take};
use super::socket::{accept_unix, read_msg, write_msg, UDS_EPOLL_ID};
use super::{Result, STOP, UDS_ID};
use crate::monotonic_ns;
use rustix::fd::AsFd;
use shmx::{Overflow, Publisher, Sample, Subscriber, TopicConfig, WaitSet};
use std::io::Read;
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
/// Id of shmx with a receiver blocking in `recv()`.
pub const RECV_ID: &str = "shmx-recv";

/// The file, in the run directory, where the child leaves its latencies.
pub const LATENCIES_FILE: &str = "paced-latencies";

const TOPIC: &str = "bench/paced";
/// Queue depth of the paced topic (and subscriber buffer of the iceoryx2 service).
pub(crate) const QUEUE_DEPTH: usize = 256;

/// How the receiver waits for the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// shmx, blocking in `recv()` (adaptive spin, then a futex).
    ShmxRecv,
    /// shmx, polling `take()` with `std::hint::spin_loop()` between polls.
    ShmxSpin,
    /// shmx, waiting in a `WaitSet` (adaptive spin, then `epoll`), then `take()`.
    ShmxWaitSet,
    /// shmx, `take()` until nothing, then `epoll_wait` on `Subscriber::fd()`.
    ShmxEpoll,
    /// shmx, `recv_async().await` on a current-thread tokio runtime.
    #[cfg(feature = "async")]
    ShmxAsync,
    /// iceoryx2, waiting in its `WaitSet` on an event listener, then `receive()`.
    #[cfg(feature = "compare-iceoryx2")]
    Iceoryx2WaitSet,
    /// Unix domain stream socket, blocking `read`.
    Uds,
    /// Unix domain stream socket, non-blocking `read` until `WouldBlock`, then `epoll_wait`.
    UdsEpoll,
    /// tokio `UnixStream`, `read().await` on a current-thread runtime.
    #[cfg(feature = "async")]
    TokioUds,
}

/// What carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Shmx,
    Uds,
    #[cfg(feature = "compare-iceoryx2")]
    Iceoryx2,
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
/// shmx, receiver waiting in a `WaitSet` (id `shmx-waitset`).
pub static SHMX_WAITSET: Paced = Paced {
    receiver: Receiver::ShmxWaitSet,
};
/// shmx, receiver waiting in `epoll` on `Subscriber::fd()` (id `shmx-epoll`).
pub static SHMX_EPOLL: Paced = Paced {
    receiver: Receiver::ShmxEpoll,
};
/// shmx, receiver awaiting `recv_async()` on tokio (id `shmx-async`).
#[cfg(feature = "async")]
pub static SHMX_ASYNC: Paced = Paced {
    receiver: Receiver::ShmxAsync,
};
/// iceoryx2, receiver waiting in iceoryx2's `WaitSet` (id `iceoryx2-waitset`).
#[cfg(feature = "compare-iceoryx2")]
pub static ICEORYX2_WAITSET: Paced = Paced {
    receiver: Receiver::Iceoryx2WaitSet,
};
/// Unix domain stream socket, blocking receive (id `uds`).
pub static UDS: Paced = Paced {
    receiver: Receiver::Uds,
};
/// Unix domain stream socket, receiver woken by `epoll` (id `uds-epoll`).
pub static UDS_EPOLL: Paced = Paced {
    receiver: Receiver::UdsEpoll,
};
/// tokio `UnixStream`, receiver awaiting `read()` (id `tokio-uds`).
#[cfg(feature = "async")]
pub static TOKIO_UDS: Paced = Paced {
    receiver: Receiver::TokioUds,
};

/// Every paced contender, in table order.
pub static PACED: &[&Paced] = &[
    &SHMX_SPIN,
    &SHMX_RECV,
    &SHMX_WAITSET,
    &SHMX_EPOLL,
    #[cfg(feature = "async")]
    &SHMX_ASYNC,
    #[cfg(feature = "compare-iceoryx2")]
    &ICEORYX2_WAITSET,
    &UDS,
    &UDS_EPOLL,
    #[cfg(feature = "async")]
    &TOKIO_UDS,
];

/// The paced contender whose child role is `child_id` ([`Paced::child_id`]).
pub fn by_child_id(child_id: &str) -> Option<&'static Paced> {
    PACED.iter().copied().find(|c| c.child_id() == child_id)
}

/// `10 us`, `100 us`, `1 ms`, `2.5 ms`.
///
/// ```
/// use shmx_bench::paced::interval_label;
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
/// use shmx_bench::paced::parse_interval;
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
    #[cfg(feature = "compare-iceoryx2")]
    Iceoryx2(Box<super::iceoryx2::PacedSender>),
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
            #[cfg(feature = "compare-iceoryx2")]
            Sender::Iceoryx2(s) => s.send_now(),
        }
    }

    /// Tells the child to stop: `STOP` for shmx, end-of-file for the socket.
    fn stop(&mut self) -> Result<()> {
        match self {
            Sender::Shmx(p) => publish_header(p, STOP),
            Sender::Uds(s) => Ok(s.shutdown(std::net::Shutdown::Write)?),
            #[cfg(feature = "compare-iceoryx2")]
            Sender::Iceoryx2(s) => s.stop(),
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
    /// `shmx-recv`, `uds`, … (the same as the ping-pong contenders of the same transport and
    /// wait, where there is one).
    pub fn id(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => SPIN_ID,
            Receiver::ShmxRecv => RECV_ID,
            Receiver::ShmxWaitSet => "shmx-waitset",
            Receiver::ShmxEpoll => "shmx-epoll",
            #[cfg(feature = "async")]
            Receiver::ShmxAsync => "shmx-async",
            #[cfg(feature = "compare-iceoryx2")]
            Receiver::Iceoryx2WaitSet => "iceoryx2-waitset",
            Receiver::Uds => UDS_ID,
            Receiver::UdsEpoll => UDS_EPOLL_ID,
            #[cfg(feature = "async")]
            Receiver::TokioUds => "tokio-uds",
        }
    }

    /// The child role's id in [`CHILD_ENV`](super::CHILD_ENV): `paced-<id>`.
    pub fn child_id(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => "paced-shmx-spin",
            Receiver::ShmxRecv => "paced-shmx-recv",
            Receiver::ShmxWaitSet => "paced-shmx-waitset",
            Receiver::ShmxEpoll => "paced-shmx-epoll",
            #[cfg(feature = "async")]
            Receiver::ShmxAsync => "paced-shmx-async",
            #[cfg(feature = "compare-iceoryx2")]
            Receiver::Iceoryx2WaitSet => "paced-iceoryx2-waitset",
            Receiver::Uds => "paced-uds",
            Receiver::UdsEpoll => "paced-uds-epoll",
            #[cfg(feature = "async")]
            Receiver::TokioUds => "paced-tokio-uds",
        }
    }

    /// What it is, in a few words, for tables.
    pub fn describe(&self) -> &'static str {
        match self.receiver {
            Receiver::ShmxSpin => "shmx, receiver spinning on take() (the reference)",
            Receiver::ShmxRecv => "shmx, receiver blocking in recv() (adaptive spin, then futex)",
            Receiver::ShmxWaitSet => {
                "shmx, receiver waiting in a WaitSet (adaptive spin, then epoll), then take()"
            }
            Receiver::ShmxEpoll => {
                "shmx, receiver taking until empty, then Subscriber::spin(), then epoll_wait on Subscriber::fd()"
            }
            #[cfg(feature = "async")]
            Receiver::ShmxAsync => {
                "shmx, receiver awaiting recv_async() on a current-thread tokio runtime"
            }
            #[cfg(feature = "compare-iceoryx2")]
            Receiver::Iceoryx2WaitSet => {
                "iceoryx2, publisher notifying an event after each send, receiver waiting in \
                 iceoryx2's WaitSet, then receive()"
            }
            Receiver::Uds => "Unix domain stream socket, receiver blocking in read()",
            Receiver::UdsEpoll => {
                "Unix domain stream socket, non-blocking receiver reading until WouldBlock, \
                 then epoll_wait"
            }
            #[cfg(feature = "async")]
            Receiver::TokioUds => {
                "tokio UnixStream, receiver awaiting read() on a current-thread runtime"
            }
        }
    }

    fn transport(&self) -> Transport {
        match self.receiver {
            Receiver::ShmxSpin
            | Receiver::ShmxRecv
            | Receiver::ShmxWaitSet
            | Receiver::ShmxEpoll => Transport::Shmx,
            #[cfg(feature = "async")]
            Receiver::ShmxAsync => Transport::Shmx,
            #[cfg(feature = "compare-iceoryx2")]
            Receiver::Iceoryx2WaitSet => Transport::Iceoryx2,
            Receiver::Uds | Receiver::UdsEpoll => Transport::Uds,
            #[cfg(feature = "async")]
            Receiver::TokioUds => Transport::Uds,
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
        let (mut sender, spawned) = match self.transport() {
            Transport::Shmx => {
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
            #[cfg(feature = "compare-iceoryx2")]
            Transport::Iceoryx2 => {
                let (sender, spawned) =
                    super::iceoryx2::paced_start(run, self.child_id(), &total.to_string())?;
                (Sender::Iceoryx2(Box::new(sender)), spawned)
            }
            Transport::Uds => {
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
    /// [`LATENCIES_FILE`]. `env.arg` is `<messages expected>` (shmx, iceoryx2) or
    /// `<messages expected> <socket path>` (sockets).
    pub fn child(&self, env: &ChildEnv) -> Result<()> {
        let (expected, path) = env.arg.split_once(' ').unwrap_or((&env.arg, ""));
        let mut latencies = Vec::with_capacity(expected.parse::<usize>()? + 16);
        let l = &mut latencies;
        match self.receiver {
            Receiver::ShmxSpin
            | Receiver::ShmxRecv
            | Receiver::ShmxWaitSet
            | Receiver::ShmxEpoll => shmx_child(self.receiver, &env.root, l)?,
            #[cfg(feature = "async")]
            Receiver::ShmxAsync => shmx_async_child(&env.root, l)?,
            #[cfg(feature = "compare-iceoryx2")]
            Receiver::Iceoryx2WaitSet => super::iceoryx2::paced_child(&env.root, l)?,
            Receiver::Uds => uds_child(UnixStream::connect(path)?, l)?,
            Receiver::UdsEpoll => uds_child(EpollStream::new(UnixStream::connect(path)?)?, l)?,
            #[cfg(feature = "async")]
            Receiver::TokioUds => tokio_uds_child(path, l)?,
        }
        let bytes: Vec<u8> = latencies.iter().flat_map(|l| l.to_ne_bytes()).collect();
        std::fs::write(env.root.join(LATENCIES_FILE), bytes)?;
        Ok(())
    }
}

/// Records the latency of a message stamped `sent` and received at `now`; an error unless
/// stamps increase.
#[inline(always)]
pub(crate) fn record(latencies: &mut Vec<u64>, last: &mut u64, sent: u64, now: u64) -> Result<()> {
    if sent <= *last {
        return Err(format!("paced: stamp {sent} after {last}: reordered or repeated").into());
    }
    *last = sent;
    latencies.push(now.saturating_sub(sent));
    Ok(())
}

fn subscriber(root: &Path) -> Result<Subscriber<[u8; PAYLOAD]>> {
    Ok(Subscriber::<[u8; PAYLOAD]>::builder(TOPIC)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .topic_config(topic_config())
        .create()?)
}

/// Records the latency of `sample`, received just now; `Ok(true)` if it says stop.
#[inline(always)]
fn on_sample(
    sample: Sample<'_, [u8; PAYLOAD]>,
    latencies: &mut Vec<u64>,
    last: &mut u64,
) -> Result<bool> {
    let now = monotonic_ns();
    let sent = header(&*sample);
    drop(sample);
    if sent == STOP {
        return Ok(true);
    }
    record(latencies, last, sent, now)?;
    Ok(false)
}

fn shmx_child(receiver: Receiver, root: &Path, latencies: &mut Vec<u64>) -> Result<()> {
    let sub = subscriber(root)?;
    let mut last = 0;
    match receiver {
        Receiver::ShmxRecv => loop {
            if on_sample(sub.recv()?, latencies, &mut last)? {
                return Ok(());
            }
        },
        Receiver::ShmxWaitSet => {
            let mut waitset = WaitSet::new()?;
            waitset.attach(&sub)?;
            loop {
                if on_sample(waitset_take(&sub, &mut waitset)?, latencies, &mut last)? {
                    return Ok(());
                }
            }
        }
        Receiver::ShmxEpoll => {
            // Made before the first take, so that a take that finds nothing arms it.
            let epoll = super::epoll::watch(sub.fd()?)?;
            loop {
                if on_sample(epoll_take(&sub, epoll.as_fd())?, latencies, &mut last)? {
                    return Ok(());
                }
            }
        }
        _ => loop {
            let sample = super::spin_wait(|| Ok(sub.take()?))?;
            if on_sample(sample, latencies, &mut last)? {
                return Ok(());
            }
        },
    }
}

/// A current-thread tokio runtime with the I/O driver (what an async receiver needs).
#[cfg(feature = "async")]
fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?)
}

#[cfg(feature = "async")]
fn shmx_async_child(root: &Path, latencies: &mut Vec<u64>) -> Result<()> {
    let mut sub = subscriber(root)?;
    current_thread()?.block_on(async {
        let mut last = 0;
        loop {
            let sample = sub.recv_async().await?;
            if on_sample(sample, latencies, &mut last)? {
                return Ok(());
            }
        }
    })
}

fn uds_child(mut stream: impl Read, latencies: &mut Vec<u64>) -> Result<()> {
    let mut buf = [0u8; PAYLOAD];
    let mut last = 0;
    while read_msg(&mut stream, &mut buf)? {
        let now = monotonic_ns();
        record(latencies, &mut last, u64::from_ne_bytes(buf), now)?;
    }
    Ok(())
}

#[cfg(feature = "async")]
fn tokio_uds_child(path: &str, latencies: &mut Vec<u64>) -> Result<()> {
    use tokio::io::AsyncReadExt;
    current_thread()?.block_on(async {
        let stream = UnixStream::connect(path)?;
        stream.set_nonblocking(true)?;
        let mut stream = tokio::net::UnixStream::from_std(stream)?;
        let mut buf = [0u8; PAYLOAD];
        let mut last = 0;
        loop {
            let mut off = 0;
            while off < PAYLOAD {
                match stream.read(&mut buf[off..]).await? {
                    0 if off == 0 => return Ok(()),
                    0 => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
                    k => off += k,
                }
            }
            let now = monotonic_ns();
            record(latencies, &mut last, u64::from_ne_bytes(buf), now)?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_are_unique_and_found() {
        let mut ids: Vec<&str> = PACED.iter().map(|c| c.id()).collect();
        ids.extend(PACED.iter().map(|c| c.child_id()));
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids and child ids are all different");
        for c in PACED {
            assert_eq!(c.child_id().strip_prefix("paced-"), Some(c.id()));
            assert_eq!(by_child_id(c.child_id()).map(Paced::id), Some(c.id()));
            assert!(c.child_id().starts_with("paced-"));
            assert!(super::super::ping_pong(c.child_id()).is_none());
            assert!(super::super::throughput(c.child_id()).is_none());
        }
        for id in [SPIN_ID, RECV_ID, UDS_ID, UDS_EPOLL_ID] {
            assert!(PACED.iter().any(|c| c.id() == id), "{id}");
        }
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
