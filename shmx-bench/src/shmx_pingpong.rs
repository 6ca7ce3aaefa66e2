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
//!   futex);
//! - `shmx-waitset`: each side waits in a `WaitSet` with its subscriber attached (which spins
//!   briefly, then sleeps in `epoll` on the subscriber's descriptor), then takes;
//! - `shmx-epoll`: each side takes until `take()` finds nothing, spins with
//!   `Subscriber::spin()`, then sleeps in a raw `epoll_wait` on `Subscriber::fd()` (an event
//!   loop's way).
//!
//! The topics are sized for one subscriber each (`max_subscribers: 1`, queue depth 4,
//! `max_held: 2`, `max_loans: 2`, no history), so a 4 MiB topic's pool is 8 chunks.

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::{mismatch, with_payload, PingPong, Result, Session, STOP};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use shmx::{Publisher, Sample, ShmMessage, Subscriber, TopicConfig, WaitSet};
use std::path::Path;
use std::time::Duration;

/// How a side waits for the other's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll `take()`, with `std::hint::spin_loop()` between polls.
    Spin,
    /// Call `recv()`.
    Recv,
    /// Wait in a `WaitSet`, then `take()`.
    WaitSet,
    /// `take()` until it finds nothing, then `epoll_wait` on `Subscriber::fd()`.
    Epoll,
}

/// The shmx ping-pong with one waiting policy.
#[derive(Debug, Clone, Copy)]
pub struct ShmxPingPong {
    wait: Wait,
    /// The subscribers copy each sample on take (`copy_on_take()`).
    copy: bool,
    /// The publishers' `reserve_chunks` (`None`: the default, chosen by size).
    reserve: Option<usize>,
}

/// shmx, both sides spinning on `take()` (id `shmx-spin`).
pub static SPIN: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: false,
    reserve: None,
};
/// shmx, both sides spinning on `take()` of subscribers that copy on take (id `shmx-copy`).
pub static COPY: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: true,
    reserve: None,
};
/// shmx, both sides blocking in `recv()` (id `shmx-recv`).
pub static RECV: ShmxPingPong = ShmxPingPong {
    wait: Wait::Recv,
    copy: false,
    reserve: None,
};

/// shmx, both sides waiting in a `WaitSet` (id `shmx-waitset`).
pub static WAITSET: ShmxPingPong = ShmxPingPong {
    wait: Wait::WaitSet,
    copy: false,
    reserve: None,
};
/// shmx, both sides waiting in `epoll` on `Subscriber::fd()` (id `shmx-epoll`).
pub static EPOLL: ShmxPingPong = ShmxPingPong {
    wait: Wait::Epoll,
    copy: false,
    reserve: None,
};

/// shmx, both sides spinning on `take()`, pools reserved whole up front as a fixed pool
/// (`reserve_chunks(usize::MAX)`; id `shmx-fixed`): the reference of [`GROWN`].
pub static FIXED: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: false,
    reserve: Some(usize::MAX),
};
/// shmx, both sides spinning on `take()`, pools that start with one chunk and grow to the
/// traffic (`reserve_chunks(1)`; id `shmx-grown`): the chunks in use lie in several
/// segments, as in a pool that grew.
pub static GROWN: ShmxPingPong = ShmxPingPong {
    wait: Wait::Spin,
    copy: false,
    reserve: Some(1),
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

fn publisher<const N: usize>(
    root: &Path,
    topic: &str,
    reserve: Option<usize>,
) -> Result<Publisher<[u8; N]>> {
    let builder = Publisher::builder(topic)
        .root(root)
        .queue_depth(QUEUE_DEPTH)
        .max_loans(MAX_LOANS)
        .topic_config(topic_config());
    Ok(match reserve {
        Some(n) => builder.reserve_chunks(n),
        None => builder,
    }
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

/// Takes the next sample, waiting in `waitset` (to which `sub` is attached) while there is
/// none.
#[inline(always)]
pub fn waitset_take<'s, T: ShmMessage>(
    sub: &'s Subscriber<T>,
    waitset: &mut WaitSet<'_>,
) -> Result<Sample<'s, T>> {
    loop {
        if let Some(sample) = sub.take()? {
            return Ok(sample);
        }
        waitset.wait(|_| {})?;
    }
}

/// Takes the next sample, spinning (`Subscriber::spin`) and then waiting in `epoll` (which
/// watches `sub.fd()`) while there is none: the `take()` that finds nothing arms the
/// descriptor, and a spin that finds nothing arms it again.
#[inline(always)]
pub fn epoll_take<'s, T: ShmMessage>(
    sub: &'s Subscriber<T>,
    epoll: BorrowedFd<'_>,
) -> Result<Sample<'s, T>> {
    loop {
        if let Some(sample) = sub.take()? {
            return Ok(sample);
        }
        if !sub.spin() {
            super::epoll::wait(epoll)?;
        }
    }
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
    /// With [`Wait::Epoll`]: an epoll instance watching `pong.fd()`.
    epoll: Option<OwnedFd>,
    peer: Option<Peer>,
    seq: u64,
}

impl PingPong for ShmxPingPong {
    fn id(&self) -> &'static str {
        match (self.wait, self.copy) {
            (Wait::Spin, false) if self.reserve == Some(1) => "shmx-grown",
            (Wait::Spin, false) if self.reserve.is_some() => "shmx-fixed",
            (Wait::Spin, false) => SPIN_ID,
            (Wait::Spin, true) => COPY_ID,
            (Wait::Recv, _) => "shmx-recv",
            (Wait::WaitSet, _) => "shmx-waitset",
            (Wait::Epoll, _) => "shmx-epoll",
        }
    }

    fn describe(&self) -> &'static str {
        match (self.wait, self.copy) {
            (Wait::Spin, false) if self.reserve == Some(1) => {
                "shmx, receivers spinning on take(), pools grown from one chunk to the traffic \
                 (chunks in several segments)"
            }
            (Wait::Spin, false) if self.reserve.is_some() => {
                "shmx, receivers spinning on take(), pools reserved whole up front (a fixed pool)"
            }
            (Wait::Spin, false) => "shmx, receivers spinning on take()",
            (Wait::Spin, true) => {
                "shmx, receivers spinning on take() of copy_on_take() subscribers (each take \
                 copies the payload)"
            }
            (Wait::Recv, _) => "shmx, receivers blocking in recv()",
            (Wait::WaitSet, _) => {
                "shmx, receivers waiting in a WaitSet (adaptive spin, then epoll), then take()"
            }
            (Wait::Epoll, _) => {
                "shmx, receivers taking until empty, then Subscriber::spin(), then epoll_wait on Subscriber::fd()"
            }
        }
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        with_payload!(self.id(), payload, N => {
            let ping = publisher::<N>(run.path(), PING, self.reserve)?;
            let pong = subscriber::<N>(run.path(), PONG, self.copy)?;
            // The descriptor exists before the first take, so that a take that finds nothing
            // arms it.
            let epoll = match self.wait {
                Wait::Epoll => Some(super::epoll::watch(pong.fd()?)?),
                Wait::WaitSet => {
                    pong.fd()?;
                    None
                }
                _ => None,
            };
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
                epoll,
                peer: Some(spawned.peer),
                seq: 0,
            }) as Box<dyn Session>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let (wait, copy, reserve) = (self.wait, self.copy, self.reserve);
        with_payload!(self.id(), env.payload, N => child::<N>(wait, copy, reserve, &env.root))
    }
}

fn child<const N: usize>(
    wait: Wait,
    copy: bool,
    reserve: Option<usize>,
    root: &Path,
) -> Result<()> {
    let ping = subscriber::<N>(root, PING, copy)?;
    let pong = publisher::<N>(root, PONG, reserve)?;
    let mut waitset = WaitSet::new()?;
    if wait == Wait::WaitSet {
        waitset.attach(&ping)?;
    }
    let epoll = match wait {
        Wait::Epoll => Some(super::epoll::watch(ping.fd()?)?),
        _ => None,
    };
    loop {
        let sample = match (wait, &epoll) {
            (Wait::Spin, _) => super::spin_wait(|| Ok(ping.take()?))?,
            (Wait::Recv, _) => ping.recv()?,
            (Wait::WaitSet, _) => waitset_take(&ping, &mut waitset)?,
            (Wait::Epoll, Some(epoll)) => epoll_take(&ping, epoll.as_fd())?,
            (Wait::Epoll, None) => unreachable!("made above"),
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
            Wait::WaitSet => {
                // A wait set per call: it borrows the subscriber (made once per batch, outside
                // the timed trips; its spin budget adapts within the warm-up).
                let mut waitset = WaitSet::new()?;
                waitset.attach(pong)?;
                super::timed_round_trips(n, rtts, || {
                    *seq += 1;
                    publish_header(ping, *seq)?;
                    let sample = waitset_take(pong, &mut waitset)?;
                    let v = header(&*sample);
                    if v != *seq {
                        return Err(mismatch("shmx-waitset pong", *seq, v));
                    }
                    Ok(())
                })
            }
            Wait::Epoll => {
                let epoll = self.epoll.as_ref().ok_or("no epoll instance")?.as_fd();
                super::timed_round_trips(n, rtts, || {
                    *seq += 1;
                    publish_header(ping, *seq)?;
                    let sample = epoll_take(pong, epoll)?;
                    let v = header(&*sample);
                    if v != *seq {
                        return Err(mismatch("shmx-epoll pong", *seq, v));
                    }
                    Ok(())
                })
            }
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
