//! Helpers of the batch tests (`batch.rs`, `batch_policies.rs`).
#![allow(dead_code)]

use shmx::{Error, Overflow, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long any wait of these tests may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A message that says where it came from.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Tagged {
    pub source: u64,
    pub index: u64,
}

/// Room for 1,024 queued samples per connection (the default allows 256).
pub fn deep_topic() -> TopicConfig {
    TopicConfig {
        max_subscribers: 2,
        max_queue_depth: 1024,
        ..TopicConfig::default()
    }
}

/// A subscriber and then an `Overflow::Fail` publisher on topic `t`, both with queue depth
/// `depth`: a sample that would be dropped makes `send_many` fail instead, so no loss can go
/// unnoticed.
pub fn fail_pair(dir: &Path, depth: usize) -> (Publisher<u64>, Subscriber<u64>) {
    fail_pair_in(dir, depth, deep_topic())
}

/// [`fail_pair`] on a topic with the limits of `topic`.
pub fn fail_pair_in(
    dir: &Path,
    depth: usize,
    topic: TopicConfig,
) -> (Publisher<u64>, Subscriber<u64>) {
    let sub = Subscriber::<u64>::builder("t")
        .queue_depth(depth)
        .topic_config(topic)
        .root(dir)
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .queue_depth(depth)
        .overflow(Overflow::Fail)
        .topic_config(topic)
        .root(dir)
        .create()
        .unwrap();
    (publisher, sub)
}

/// A subscriber of `u64` on topic `t` in `dir` with queue depth `depth` (default topic limits).
pub fn subscriber_t(dir: &Path, depth: usize) -> Subscriber<u64> {
    Subscriber::<u64>::builder("t")
        .queue_depth(depth)
        .root(dir)
        .create()
        .unwrap()
}

/// A publisher of `u64` on topic `t` in `dir` with queue depth `depth` and `overflow`;
/// under `Overflow::Block` it waits up to `block_timeout` (default topic limits).
pub fn publisher_t(
    dir: &Path,
    depth: usize,
    overflow: Overflow,
    block_timeout: Duration,
) -> Publisher<u64> {
    Publisher::<u64>::builder("t")
        .queue_depth(depth)
        .overflow(overflow)
        .block_timeout(block_timeout)
        .root(dir)
        .create()
        .unwrap()
}

/// Calls `drain(max, …)` until it returns 0, checking that each call hands over exactly
/// `min(max, still waiting)` samples and returns that count; `waiting` samples must be
/// queued. Returns the (sequence, value) of every sample, in the order handed over.
pub fn drain_everything(sub: &Subscriber<u64>, max: usize, waiting: usize) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    let mut left = waiting;
    loop {
        let before = got.len();
        let n = sub
            .drain(max, |s| {
                assert_eq!(s.payload_len(), size_of::<u64>());
                got.push((s.sequence(), **s));
            })
            .unwrap();
        assert_eq!(
            n,
            got.len() - before,
            "drain returns how many it handed to f"
        );
        assert_eq!(n, left.min(max), "drain({max}) with {left} samples waiting");
        left -= n;
        if n == 0 {
            return got;
        }
    }
}

pub fn values(got: &[(u64, u64)]) -> Vec<u64> {
    got.iter().map(|&(_, v)| v).collect()
}

pub fn sequences(got: &[(u64, u64)]) -> Vec<u64> {
    got.iter().map(|&(s, _)| s).collect()
}

/// Checks that the subscriber counts exactly the samples it holds (none): it can take and
/// hold `max_held` samples, and the next take is `HeldLimit`. Leaves nothing queued.
pub fn assert_holds_nothing(publisher: &Publisher<u64>, sub: &Subscriber<u64>, max_held: usize) {
    assert!(sub.take().unwrap().is_none(), "nothing may be queued here");
    let n = max_held + 1;
    assert_eq!(publisher.send_many(1000..1000 + n as u64).unwrap(), n);
    let held: Vec<_> = (0..max_held)
        .map(|i| {
            sub.take()
                .unwrap_or_else(|e| panic!("take {i} of {max_held}: {e}"))
                .expect("queued")
        })
        .collect();
    assert!(
        matches!(sub.take(), Err(Error::HeldLimit { max_held: m, .. }) if m == max_held),
        "the subscriber holds exactly the samples taken"
    );
    drop(held);
    let mut rest = Vec::new();
    assert_eq!(sub.drain(usize::MAX, |s| rest.push(**s)).unwrap(), 1);
    assert_eq!(rest, vec![1000 + max_held as u64]);
}

/// Asserts that every chunk of `publisher` is free again.
#[track_caller]
pub fn assert_pool_whole(publisher: &Publisher<u64>) {
    let st = publisher.pool_stats();
    assert_eq!(
        (st.free, st.loaned, st.delivered, st.history, st.pinned),
        (st.total, 0, 0, 0, 0),
        "{st:?}"
    );
}

/// Polls `f` until it holds or `DEADLINE` passes.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
