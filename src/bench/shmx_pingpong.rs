//! shmx ping-pong: two topics of `[u8; N]`, `bench/ping` (parent to child) and `bench/pong`
//! (child to parent).
//!
//! Each side loans a chunk with `loan_uninit()`, writes only the 8-byte counter at its start,
//! and publishes it: the payload is neither zeroed nor copied, as a camera driver or a
//! serializer writing straight into the chunk would do. The receiver checks the counter.
//! Two waiting policies:
//!
//! - `shmx-spin`: both sides poll `take()` with `std::hint::spin_loop()` in between;
//! - `shmx-copy`: as `shmx-spin`, but both subscribers are built with `copy_on_take()`, so
//!   each take copies the whole payload into the subscriber's own memory (the price of not
//!   trusting the publisher, beside the zero-copy path);
//! - `shmx-recv`: both sides call the blocking `recv()` (which spins briefly, then sleeps on a
//!   futex).
//!
//! The topics are sized for one subscriber each (`max_subscribers: 1`, queue depth 4,
//! `max_held: 2`, `max_loans: 2`, no history), so a 4 MiB topic's pool is 8 chunks.

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::{mismatch, with_payload, PingPong, Result, Session, STOP};
use shmx::{Publisher, Subscriber, TopicConfig};
use std::path::Path;
use std::time::Duration;

/// How a side waits for the other's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll `take()`, with `std::hint::spin_loop()` between polls.
    Spin,
    /// Call `recv()`.
    Recv,
}

/// The shmx ping-pong with one waiting policy.
#[derive(Debug, Clone, Copy)]
pub struct ShmxPingPong {
    wait: Wait,
    /// The subscribers copy each sample on take (`copy_on_take()`).
    copy: bool,
}

/// shmx, both sides spinning on `take()` (id `shmx-spin`).
pub static SPIN: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: false,
};
/// shmx, both sides spinning on `take()` of subscribers that copy on take (id `shmx-copy`).
pub static COPY: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: true,
};
/// shmx, both sides blocking in `recv()` (id `shmx-recv`).
pub static RECV: ShmxPingPong = ShmxPingPong {
    wait: Wait::Recv,
    copy: false,
};

/// Id of [`SPIN`], the zero-copy reference of [`COPY`].
pub const SPIN_ID: &str = "shmx-spin";
/// Id of [`COPY`].
pub const COPY_ID: &str = "shmx-copy";

const PING: &str = "bench/ping";
const PONG: &str = "bench/pong";
const QUEUE_DEPTH: usize = 4;
const MAX_LOANS: usize = 2;

/// The topic limits of both topics: one publisher, one subscriber, few chunks.
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

fn publisher<const N: usize>(root: &Path, topic: &str) -> Result<Publisher<[u8; N]>> {
    Ok(Publisher::builder(topic)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .max_loans(MAX_LOANS)
        .topic_config(topic_config())
        .create()?)
}

fn subscriber<const N: usize>(root: &Path, topic: &str, copy: bool) -> Result<Subscriber<[u8; N]>> {
    let builder = Subscriber::builder(topic)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .topic_config(topic_config());
    let builder = if copy {
        builder.copy_on_take()
    } else {
        builder
    };
    Ok(builder.create()?)
}

/// Loans a chunk, writes `value` into its first 8 bytes and publishes it; the rest of the
/// payload is left as it is.
#[inline(always)]
pub fn publish_header<const N: usize>(publisher: &Publisher<[u8; N]>, value: u64) -> Result<()> {
    const { assert!(N >= 8, "the payload holds an 8-byte counter") };
    let mut sample = publisher.loan_uninit()?.assume_recycled();
    sample[..8].copy_from_slice(&value.to_ne_bytes());
    sample.publish()?;
    Ok(())
}

/// The counter in the first 8 bytes of a received payload.
#[inline(always)]
pub fn header(payload: &[u8]) -> u64 {
    super::read_header(payload)
}

struct ShmxSession<const N: usize> {
    wait: Wait,
    ping: Publisher<[u8; N]>,
    pong: Subscriber<[u8; N]>,
    peer: Option<Peer>,
    seq: u64,
}

impl PingPong for ShmxPingPong {
    fn id(&self) -> &'static str {
        match (self.wait, self.copy) {
            (Wait::Spin, false) => SPIN_ID,
            (Wait::Spin, true) => COPY_ID,
            (Wait::Recv, _) => "shmx-recv",
        }
    }

    fn describe(&self) -> &'static str {
        match (self.wait, self.copy) {
            (Wait::Spin, false) => "shmx, receivers spinning on take()",
            (Wait::Spin, true) => {
                "shmx, receivers spinning on take() of copy_on_take() subscribers (each take \
                 copies the payload)"
            }
            (Wait::Recv, _) => "shmx, receivers blocking in recv()",
        }
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        with_payload!(self.id(), payload, N => {
            let ping = publisher::<N>(run.path(), PING)?;
            let pong = subscriber::<N>(run.path(), PONG, self.copy)?;
            let spawned = run.spawn(self.id(), payload, "", ChildStdio::Null)?;
            if !crate::wait_until(PEER_TIMEOUT, || {
                ping.subscriber_count() >= 1 && pong.publisher_count() >= 1
            }) {
                return Err(format!("the {} child did not connect", self.id()).into());
            }
            Ok(Box::new(ShmxSession::<N> {
                wait: self.wait,
                ping,
                pong,
                peer: Some(spawned.peer),
                seq: 0,
            }) as Box<dyn Session>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let (wait, copy) = (self.wait, self.copy);
        with_payload!(self.id(), env.payload, N => child::<N>(wait, copy, &env.root))
    }
}

fn child<const N: usize>(wait: Wait, copy: bool, root: &Path) -> Result<()> {
    let ping = subscriber::<N>(root, PING, copy)?;
    let pong = publisher::<N>(root, PONG)?;
    loop {
        let sample = match wait {
            Wait::Spin => super::spin_wait(|| Ok(ping.take()?))?,
            Wait::Recv => ping.recv()?,
        };
        let v = header(&*sample);
        if v == STOP {
            return Ok(());
        }
        // Answer first, then hand the ping's chunk back.
        publish_header(&pong, v)?;
        drop(sample);
    }
}

impl<const N: usize> Session for ShmxSession<N> {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (ping, pong, seq) = (&self.ping, &self.pong, &mut self.seq);
        match self.wait {
            Wait::Spin => super::timed_round_trips(n, rtts, || {
                *seq += 1;
                publish_header(ping, *seq)?;
                let sample = super::spin_wait(|| Ok(pong.take()?))?;
                let v = header(&*sample);
                if v != *seq {
                    return Err(mismatch("shmx-spin pong", *seq, v));
                }
                Ok(())
            }),
            Wait::Recv => super::timed_round_trips(n, rtts, || {
                *seq += 1;
                publish_header(ping, *seq)?;
                let sample = pong.recv()?;
                let v = header(&*sample);
                if v != *seq {
                    return Err(mismatch("shmx-recv pong", *seq, v));
                }
                Ok(())
            }),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        let ping = &self.ping;
        Ok(vec![peer.stop(|| publish_header(ping, STOP))?])
    }
}
