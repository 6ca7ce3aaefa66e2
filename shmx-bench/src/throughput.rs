//! Throughput: one publisher process (the parent) streams messages to 1 or 4 subscriber
//! processes.
//!
//! Every message starts with its number (1, 2, 3, … per run); a subscriber checks that each
//! number follows the last, so nothing may be lost, duplicated or reordered. The last message
//! of a batch carries a flush bit, and every subscriber answers it with the count it received;
//! [`Stream::send`] returns once all answered and fails unless each
//! count is the number published. So only delivered messages count, and the time includes
//! the last subscriber's catching up.
//!
//! - `shmx-stream`: topic `bench/stream` of `[u8; N]`, publisher with `Overflow::Block` (it
//!   waits instead of dropping) and queue depth 256, writing the 8-byte number in place
//!   (`loan_uninit`); subscribers poll `take()` with `spin_loop()` (and, when the processes
//!   outnumber the CPUs, as four subscribers and a publisher do on two, also yield every 128
//!   empty polls). Answers go back on topic `bench/ack` (`u64`).
//! - `shmx-batch`: the same topics and policy, but the publisher sends batches of 64
//!   messages with `send_many` (each message written whole, as `send` does) and subscribers
//!   poll `drain()`, which hands them every queued message in one call.
//! - `uds-stream`: one Unix domain stream socket per subscriber; the publisher writes each
//!   message to each socket (`write_all` of `N` bytes, blocking), subscribers read through a
//!   64 KiB `BufReader` (blocking) and answer on the same socket.

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::shmx_pingpong::{header, publish_header};
use super::socket::{accept_unix, read_msg};
use super::{mismatch, with_payload, write_header, Result, Stream, Throughput, STOP};
use shmx::{Overflow, Publisher, Subscriber, TopicConfig};
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The flush bit of a message number: the last message of a batch, which subscribers answer.
const FLUSH: u64 = 1 << 62;

/// shmx publish/subscribe, a message at a time (id `shmx-stream`) or in batches
/// (`shmx-batch`).
#[derive(Debug, Clone, Copy)]
pub struct ShmxStream {
    batch: bool,
    /// The stream publisher's `reserve_chunks` (`None`: the default, chosen by size).
    reserve: Option<usize>,
}

/// `shmx-stream`: `loan_uninit`/`publish` and `take()`, a message at a time.
pub const SHMX_STREAM: ShmxStream = ShmxStream {
    batch: false,
    reserve: None,
};
/// `shmx-batch`: [`Publisher::send_many`] of [`BATCH`] messages and [`Subscriber::drain`].
pub const SHMX_BATCH: ShmxStream = ShmxStream {
    batch: true,
    reserve: None,
};
/// `shmx-stream-fixed`: as `shmx-stream`, the pool reserved whole up front (a fixed pool).
pub const SHMX_STREAM_FIXED: ShmxStream = ShmxStream {
    batch: false,
    reserve: Some(usize::MAX),
};
/// `shmx-stream-grown`: as `shmx-stream`, the pool grown from one chunk to the traffic.
pub const SHMX_STREAM_GROWN: ShmxStream = ShmxStream {
    batch: false,
    reserve: Some(1),
};

/// Messages per `send_many` call of `shmx-batch`.
pub const BATCH: u64 = 64;

/// Unix domain stream sockets (id `uds-stream`).
#[derive(Debug, Clone, Copy)]
pub struct UdsStream;

const STREAM: &str = "bench/stream";
const ACK: &str = "bench/ack";
const QUEUE_DEPTH: usize = 256;
const ACK_DEPTH: usize = 4;

fn stream_topic(subscribers: usize) -> TopicConfig {
    TopicConfig {
        max_publishers: 1,
        max_subscribers: subscribers,
        max_queue_depth: QUEUE_DEPTH,
        max_held: 2,
        max_history: 0,
        ..TopicConfig::default()
    }
}

fn ack_topic(subscribers: usize) -> TopicConfig {
    TopicConfig {
        max_publishers: subscribers,
        max_subscribers: 1,
        max_queue_depth: ACK_DEPTH,
        max_held: 2,
        max_history: 0,
        ..TopicConfig::default()
    }
}

/// Busy-wait policy of a throughput process: spin, and when the publisher and its
/// subscribers outnumber the CPUs, also yield every 128 empty polls (so that a spinning
/// process whose queue is empty hands its CPU to one with work).
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    pub(super) yields: bool,
    empty: u32,
}

impl Idle {
    /// The policy for a publisher with `subscribers` subscribers on the CPUs the benchmark
    /// may use (as it started, before any pinning).
    pub(super) fn new(subscribers: usize) -> Idle {
        Idle::with_yields(subscribers + 1 > super::process::allowed_cpus().len())
    }

    pub(super) fn with_yields(yields: bool) -> Idle {
        Idle { yields, empty: 0 }
    }

    #[inline(always)]
    pub(super) fn wait(&mut self) {
        self.empty = self.empty.wrapping_add(1);
        if self.yields && self.empty & 127 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Checks message number `h` against the last one; returns the new last and whether the
/// message asks for an answer.
#[inline(always)]
fn next(last: u64, h: u64) -> Result<(u64, bool)> {
    let n = h & !FLUSH;
    if n != last + 1 {
        return Err(format!("expected message {}, received {n}", last + 1).into());
    }
    Ok((n, h & FLUSH != 0))
}

/// Stops every peer: marks them all as expected to exit, runs `stop`, waits for each.
pub(super) fn stop_all(
    peers: Vec<Peer>,
    stop: impl FnOnce() -> Result<()>,
) -> Result<Vec<Placement>> {
    peers.iter().for_each(Peer::expect_exit);
    stop()?;
    peers.into_iter().map(|p| p.wait(PEER_TIMEOUT)).collect()
}

struct ShmxSender<const N: usize> {
    stream: Publisher<[u8; N]>,
    acks: Subscriber<u64>,
    subscribers: usize,
    peers: Vec<Peer>,
    seq: u64,
    batch: bool,
}

impl<const N: usize> ShmxSender<N> {
    /// Publishes messages `first..=last`, the last one with the flush bit, in batches of
    /// [`BATCH`] through `send_many` (each written whole, as `send` does).
    fn send_batches(&mut self, first: u64, last: u64) -> Result<()> {
        let mut from = first;
        while from <= last {
            let to = (from + BATCH - 1).min(last);
            let sent = self.stream.send_many((from..=to).map(|n| {
                let mut payload = [0u8; N];
                let h = if n == last { n | FLUSH } else { n };
                payload[..8].copy_from_slice(&h.to_ne_bytes());
                payload
            }))?;
            debug_assert_eq!(sent as u64, to - from + 1);
            from = to + 1;
        }
        Ok(())
    }
}

impl Throughput for ShmxStream {
    fn id(&self) -> &'static str {
        match (self.batch, self.reserve) {
            (true, _) => "shmx-batch",
            (false, Some(1)) => "shmx-stream-grown",
            (false, Some(_)) => "shmx-stream-fixed",
            (false, None) => "shmx-stream",
        }
    }

    fn describe(&self) -> &'static str {
        match (self.batch, self.reserve) {
            (true, _) => {
                "shmx, Overflow::Block, send_many() of 64 messages, subscribers spinning on drain()"
            }
            (false, Some(1)) => {
                "shmx, Overflow::Block, subscribers spinning on take(), pool grown from one chunk"
            }
            (false, Some(_)) => {
                "shmx, Overflow::Block, subscribers spinning on take(), pool reserved whole (fixed)"
            }
            (false, None) => "shmx, Overflow::Block, subscribers spinning on take()",
        }
    }

    fn start(&self, payload: usize, subscribers: usize, run: &RunDir) -> Result<Box<dyn Stream>> {
        with_payload!(self.id(), payload, N => {
            let root = run.path();
            let builder = Publisher::<[u8; N]>::builder(STREAM)
                .root(root)
                .queue_depth(QUEUE_DEPTH)
                .max_loans(2)
                .overflow(Overflow::Block)
                .topic_config(stream_topic(subscribers));
            let stream = match self.reserve {
                Some(n) => builder.reserve_chunks(n),
                None => builder,
            }
            .create()?;
            let acks = Subscriber::<u64>::builder(ACK)
                .root(root)
                .queue_depth(ACK_DEPTH)
                .topic_config(ack_topic(subscribers))
                .create()?;
            // The children's affinity may be one CPU (pinning): the parent decides.
            let arg = format!("{subscribers} {}", u8::from(Idle::new(subscribers).yields));
            let peers = (0..subscribers)
                .map(|_| Ok(run.spawn(self.id(), payload, &arg, ChildStdio::Null)?.peer))
                .collect::<Result<Vec<_>>>()?;
            if !crate::wait_until(PEER_TIMEOUT, || {
                stream.subscriber_count() == subscribers && acks.publisher_count() == subscribers
            }) {
                return Err("the shmx-stream subscribers did not connect".into());
            }
            Ok(Box::new(ShmxSender::<N> {
                stream, acks, subscribers, peers, seq: 0, batch: self.batch,
            }) as Box<dyn Stream>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let (subscribers, yields) = env
            .arg
            .split_once(' ')
            .ok_or("shmx-stream children need `<subscribers> <yields>`")?;
        let (subscribers, yields) = (subscribers.parse()?, yields == "1");
        let batch = self.batch;
        with_payload!(self.id(), env.payload, N => {
            shmx_child::<N>(&env.root, subscribers, yields, batch)
        })
    }
}

fn shmx_child<const N: usize>(
    root: &Path,
    subscribers: usize,
    yields: bool,
    batch: bool,
) -> Result<()> {
    let sub = Subscriber::<[u8; N]>::builder(STREAM)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .topic_config(stream_topic(subscribers))
        .create()?;
    let ack = Publisher::<u64>::builder(ACK)
        .root(root)
        .queue_depth(ACK_DEPTH)
        .topic_config(ack_topic(subscribers))
        .create()?;
    let (mut last, mut idle) = (0u64, Idle::with_yields(yields));
    if batch {
        return drain_child(&sub, &ack, idle);
    }
    loop {
        let Some(sample) = sub.take()? else {
            idle.wait();
            continue;
        };
        let h = header(&*sample);
        drop(sample);
        if h == STOP {
            return Ok(());
        }
        let (n, flush) = next(last, h)?;
        last = n;
        if flush {
            ack.send(last)?;
        }
    }
}

/// The `shmx-batch` subscriber: [`Subscriber::drain`] whatever is queued, check and answer
/// as `shmx_child` does.
fn drain_child<const N: usize>(
    sub: &Subscriber<[u8; N]>,
    ack: &Publisher<u64>,
    mut idle: Idle,
) -> Result<()> {
    let (mut last, mut stop, mut failed) = (0u64, false, None);
    while !stop {
        let taken = sub.drain(QUEUE_DEPTH, |sample| {
            if stop || failed.is_some() {
                return;
            }
            let h = header(&**sample);
            if h == STOP {
                stop = true;
                return;
            }
            match next(last, h) {
                Ok((n, flush)) => {
                    last = n;
                    if flush {
                        if let Err(e) = ack.send(last) {
                            failed = Some(e.into());
                        }
                    }
                }
                Err(e) => failed = Some(e),
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if taken == 0 {
            idle.wait();
        }
    }
    Ok(())
}

impl<const N: usize> Stream for ShmxSender<N> {
    fn send(&mut self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        if n == 0 {
            return Ok(start.elapsed());
        }
        if self.batch {
            self.send_batches(self.seq + 1, self.seq + n)?;
            self.seq += n;
        } else {
            for _ in 1..n {
                self.seq += 1;
                publish_header(&self.stream, self.seq)?;
            }
            self.seq += 1;
            publish_header(&self.stream, self.seq | FLUSH)?;
        }
        let (mut answered, mut idle) = (0, Idle::new(self.subscribers));
        while answered < self.subscribers {
            match self.acks.take()? {
                Some(count) if *count == self.seq => answered += 1,
                Some(count) => return Err(mismatch("shmx-stream subscriber", self.seq, *count)),
                None => idle.wait(),
            }
        }
        Ok(start.elapsed())
    }

    fn finish(self: Box<Self>) -> Result<Vec<Placement>> {
        let this = *self;
        let stream = &this.stream;
        stop_all(this.peers, || publish_header(stream, STOP))
    }
}

struct UdsSender {
    streams: Vec<UnixStream>,
    peers: Vec<Peer>,
    buf: Vec<u8>,
    seq: u64,
}

impl Throughput for UdsStream {
    fn id(&self) -> &'static str {
        "uds-stream"
    }

    fn describe(&self) -> &'static str {
        "Unix domain stream sockets, one per subscriber, blocking"
    }

    fn start(&self, payload: usize, subscribers: usize, run: &RunDir) -> Result<Box<dyn Stream>> {
        if payload < 8 {
            return Err(super::unsupported(self.id(), payload));
        }
        let path = run.path().join("stream.sock");
        let listener = UnixListener::bind(&path)?;
        let peers = (0..subscribers)
            .map(|_| {
                let s = run.spawn(
                    self.id(),
                    payload,
                    &path.to_string_lossy(),
                    ChildStdio::Null,
                )?;
                Ok(s.peer)
            })
            .collect::<Result<Vec<_>>>()?;
        let streams = accept_unix(&listener, self.id(), subscribers)?;
        Ok(Box::new(UdsSender {
            streams,
            peers,
            buf: vec![0u8; payload],
            seq: 0,
        }))
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let stream = UnixStream::connect(&env.arg)?;
        let mut r = BufReader::with_capacity(64 << 10, &stream);
        let mut w = &stream;
        let mut buf = vec![0u8; env.payload];
        let mut last = 0u64;
        while read_msg(&mut r, &mut buf)? {
            let (n, flush) = next(last, super::read_header(&buf))?;
            last = n;
            if flush {
                w.write_all(&last.to_ne_bytes())?;
            }
        }
        Ok(())
    }
}

impl Stream for UdsSender {
    fn send(&mut self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        for i in 1..=n {
            self.seq += 1;
            let h = if i == n { self.seq | FLUSH } else { self.seq };
            write_header(&mut self.buf, h);
            for s in &mut self.streams {
                s.write_all(&self.buf)?;
            }
        }
        if n > 0 {
            for s in &mut self.streams {
                let mut count = [0u8; 8];
                s.read_exact(&mut count)?;
                let count = u64::from_ne_bytes(count);
                if count != self.seq {
                    return Err(mismatch("uds-stream subscriber", self.seq, count));
                }
            }
        }
        Ok(start.elapsed())
    }

    fn finish(self: Box<Self>) -> Result<Vec<Placement>> {
        let this = *self;
        let streams = this.streams;
        stop_all(this.peers, move || {
            for s in &streams {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            Ok(())
        })
    }
}
