//! The three message types of `tests/waiting.rs`, sets of endpoints over many topics of those
//! types, what a receiver checks of every sample ([`Tracker`]), and a seeded random generator.

use super::common::DEADLINE;
use shmx::waitset::Attachment;
use shmx::{Overflow, Publisher, ShmMessage, Subscriber, TopicConfig, WaitSet};
use std::collections::HashMap;
use std::fmt::Debug;

/// A message that says which publisher process (`source`) sent it to which topic, and that
/// process's counter (1, 2, 3, … over all its topics).
pub trait Stamped: ShmMessage + Copy + Debug + PartialEq {
    fn make(source: u32, topic: u32, counter: u64) -> Self;
    /// `(source, topic, counter)`.
    fn stamp(&self) -> (u32, u32, u64);
    /// Whether every field is what `make` writes for its stamp.
    fn intact(&self) -> bool {
        let (source, topic, counter) = self.stamp();
        *self == Self::make(source, topic, counter)
    }
}

/// Type 0: 16 bytes.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Tick {
    source: u16,
    topic: u16,
    check: u32,
    counter: u64,
}

impl Stamped for Tick {
    fn make(source: u32, topic: u32, counter: u64) -> Self {
        Tick {
            source: source as u16,
            topic: topic as u16,
            check: (counter as u32).wrapping_mul(0x9e37_79b9) ^ source,
            counter,
        }
    }
    fn stamp(&self) -> (u32, u32, u64) {
        (self.source.into(), self.topic.into(), self.counter)
    }
}

/// Type 1: 72 bytes, with floats.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Reading {
    counter: u64,
    source: u32,
    topic: u32,
    values: [f64; 6],
    check: u64,
}

impl Stamped for Reading {
    fn make(source: u32, topic: u32, counter: u64) -> Self {
        let base = counter as f64 + f64::from(source) / 8.0;
        Reading {
            counter,
            source,
            topic,
            values: [0.5, 1.5, 2.5, 3.5, 4.5, 5.5].map(|x| base * x),
            check: counter.rotate_left(17) ^ u64::from(topic) << 40,
        }
    }
    fn stamp(&self) -> (u32, u32, u64) {
        (self.source, self.topic, self.counter)
    }
}

/// Type 2: 512 bytes.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Frame {
    source: u64,
    topic: u64,
    counter: u64,
    words: [u64; 61],
}

impl Stamped for Frame {
    fn make(source: u32, topic: u32, counter: u64) -> Self {
        let mut words = [0u64; 61];
        for (i, w) in words.iter_mut().enumerate() {
            *w = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 32 ^ u64::from(source);
        }
        Frame {
            source: source.into(),
            topic: topic.into(),
            counter,
            words,
        }
    }
    fn stamp(&self) -> (u32, u32, u64) {
        (self.source as u32, self.topic as u32, self.counter)
    }
}

/// Topic `i` of a set: its name and message type (`i % 3`: [`Tick`], [`Reading`],
/// [`Frame`]).
pub fn topic_name(prefix: &str, i: u32) -> String {
    format!("{prefix}/t{i:02}")
}

/// Topic limits of the multi-topic tests: room for several publisher processes, small pools.
pub fn topic_config() -> TopicConfig {
    TopicConfig {
        max_publishers: 8,
        max_subscribers: 2,
        max_queue_depth: 64,
        max_held: 4,
        max_history: 0,
        ..TopicConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// What a receiver checks
// ---------------------------------------------------------------------------------------------

/// One publisher endpoint, as its samples arrive: a `(source, topic)` pair.
#[derive(Debug)]
struct Stream {
    publisher_id: u64,
    last_counter: u64,
    last_seq: u64,
}

/// Checks every sample received from `sources` publisher processes that each send counters
/// `1..=per_source` over the topics: each counter arrives exactly once, on the topic it was
/// sent to, intact, and each publisher endpoint's samples arrive in order, without gaps in
/// their sequence numbers (publishers block rather than drop).
pub struct Tracker {
    per_source: u64,
    seen: Vec<Vec<bool>>,
    received: Vec<u64>,
    streams: HashMap<(u32, u32), Stream>,
    pub total: u64,
}

impl Tracker {
    pub fn new(sources: u32, per_source: u64) -> Tracker {
        Tracker {
            per_source,
            seen: (0..sources)
                .map(|_| vec![false; per_source as usize + 1])
                .collect(),
            received: vec![0; sources as usize],
            streams: HashMap::new(),
            total: 0,
        }
    }

    /// Every sample expected.
    pub fn expected(&self) -> u64 {
        self.per_source * self.seen.len() as u64
    }

    pub fn complete(&self) -> bool {
        self.total == self.expected()
    }

    /// Samples received per source, for failure messages.
    pub fn progress(&self) -> String {
        format!(
            "{} of {} samples; per source {:?}",
            self.total,
            self.expected(),
            self.received
        )
    }

    /// Records sample `msg` (sequence number `seq`, from publisher `publisher_id`) taken from
    /// the subscriber of topic `topic`.
    #[track_caller]
    pub fn record<M: Stamped>(&mut self, topic: u32, msg: &M, seq: u64, publisher_id: u64) {
        assert!(msg.intact(), "corrupt sample on topic {topic}: {msg:?}");
        let (source, on, counter) = msg.stamp();
        assert_eq!(
            on, topic,
            "sample sent to topic {on} arrived on {topic}: {msg:?}"
        );
        let seen = self
            .seen
            .get_mut(source as usize)
            .unwrap_or_else(|| panic!("unknown source {source}: {msg:?}"));
        assert!(
            (1..=self.per_source).contains(&counter),
            "counter out of range: {msg:?}"
        );
        assert!(!seen[counter as usize], "sample received twice: {msg:?}");
        seen[counter as usize] = true;
        let stream = self.streams.entry((source, topic)).or_insert(Stream {
            publisher_id,
            last_counter: 0,
            last_seq: 0,
        });
        assert_eq!(
            stream.publisher_id, publisher_id,
            "two publishers send as source {source} on topic {topic}"
        );
        assert!(
            counter > stream.last_counter,
            "out of order on topic {topic} from source {source}: counter {counter} after {}",
            stream.last_counter
        );
        assert_eq!(
            seq,
            stream.last_seq + 1,
            "sequence gap on topic {topic} from source {source} at counter {counter}"
        );
        stream.last_counter = counter;
        stream.last_seq = seq;
        self.received[source as usize] += 1;
        self.total += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints over many topics of the three types
// ---------------------------------------------------------------------------------------------

/// Subscribers of topics `0..count` of a set, by type (topic `i` is entry `i / 3` of the
/// vector of type `i % 3`).
pub struct SubSet {
    ticks: Vec<Subscriber<Tick>>,
    readings: Vec<Subscriber<Reading>>,
    frames: Vec<Subscriber<Frame>>,
}

impl SubSet {
    pub fn create(prefix: &str, count: u32) -> SubSet {
        fn make<M: Stamped>(prefix: &str, i: u32) -> Subscriber<M> {
            Subscriber::<M>::builder(&topic_name(prefix, i))
                .queue_depth(16)
                .topic_config(topic_config())
                .create()
                .unwrap_or_else(|e| panic!("subscribe to topic {i}: {e}"))
        }
        let mut set = SubSet {
            ticks: Vec::new(),
            readings: Vec::new(),
            frames: Vec::new(),
        };
        for i in 0..count {
            match i % 3 {
                0 => set.ticks.push(make(prefix, i)),
                1 => set.readings.push(make(prefix, i)),
                _ => set.frames.push(make(prefix, i)),
            }
        }
        set
    }

    pub fn len(&self) -> u32 {
        (self.ticks.len() + self.readings.len() + self.frames.len()) as u32
    }

    /// Attaches every subscriber to `waitset`; returns the topic of each attachment.
    pub fn attach<'a>(&'a self, waitset: &mut WaitSet<'a>) -> HashMap<Attachment, u32> {
        let mut topics = HashMap::new();
        for (k, s) in self.ticks.iter().enumerate() {
            topics.insert(waitset.attach(s).expect("attach"), 3 * k as u32);
        }
        for (k, s) in self.readings.iter().enumerate() {
            topics.insert(waitset.attach(s).expect("attach"), 3 * k as u32 + 1);
        }
        for (k, s) in self.frames.iter().enumerate() {
            topics.insert(waitset.attach(s).expect("attach"), 3 * k as u32 + 2);
        }
        topics
    }

    /// The descriptor of topic `topic`'s subscriber (see `Subscriber::fd`).
    pub fn fd(&self, topic: u32) -> rustix::fd::BorrowedFd<'_> {
        let k = (topic / 3) as usize;
        match topic % 3 {
            0 => self.ticks[k].fd(),
            1 => self.readings[k].fd(),
            _ => self.frames[k].fd(),
        }
        .expect("the subscriber's descriptor")
    }

    /// Takes every sample waiting on topic `topic` (with `take` for two types, `drain` for
    /// the third) into `tracker` until none is left, which arms the descriptor; returns how
    /// many.
    pub fn take_all(&self, topic: u32, tracker: &mut Tracker) -> u64 {
        fn take<M: Stamped>(s: &Subscriber<M>, topic: u32, tracker: &mut Tracker) -> u64 {
            let mut n = 0;
            while let Some(sample) = s.take().expect("take") {
                tracker.record(topic, &*sample, sample.sequence(), sample.publisher_id());
                n += 1;
            }
            n
        }
        let k = (topic / 3) as usize;
        match topic % 3 {
            0 => take(&self.ticks[k], topic, tracker),
            1 => take(&self.readings[k], topic, tracker),
            _ => {
                let mut n = 0;
                loop {
                    let got = self.frames[k]
                        .drain(usize::MAX, |sample| {
                            tracker.record(
                                topic,
                                &**sample,
                                sample.sequence(),
                                sample.publisher_id(),
                            )
                        })
                        .expect("drain");
                    if got == 0 {
                        return n;
                    }
                    n += got as u64;
                }
            }
        }
    }
}

/// Publishers of topics `0..count` of a set, by type as in [`SubSet`].
pub struct PubSet {
    ticks: Vec<Publisher<Tick>>,
    readings: Vec<Publisher<Reading>>,
    frames: Vec<Publisher<Frame>>,
}

impl PubSet {
    /// Publishers that block (up to [`DEADLINE`]) when a subscriber's queue is full, so
    /// that every sample reaches every subscriber.
    pub fn create(prefix: &str, count: u32) -> PubSet {
        fn make<M: Stamped>(prefix: &str, i: u32) -> Publisher<M> {
            Publisher::<M>::builder(&topic_name(prefix, i))
                .queue_depth(16)
                .overflow(Overflow::Block)
                .block_timeout(DEADLINE)
                .topic_config(topic_config())
                .create()
                .unwrap_or_else(|e| panic!("publish on topic {i}: {e}"))
        }
        let mut set = PubSet {
            ticks: Vec::new(),
            readings: Vec::new(),
            frames: Vec::new(),
        };
        for i in 0..count {
            match i % 3 {
                0 => set.ticks.push(make(prefix, i)),
                1 => set.readings.push(make(prefix, i)),
                _ => set.frames.push(make(prefix, i)),
            }
        }
        set
    }

    /// Waits until every publisher has `n` subscribers.
    pub fn wait_for_subscribers(&self, n: usize) {
        let counts = self
            .ticks
            .iter()
            .map(|p| p.wait_for_subscribers(n, DEADLINE))
            .chain(
                self.readings
                    .iter()
                    .map(|p| p.wait_for_subscribers(n, DEADLINE)),
            )
            .chain(
                self.frames
                    .iter()
                    .map(|p| p.wait_for_subscribers(n, DEADLINE)),
            );
        for c in counts {
            c.expect("wait for subscribers");
        }
    }

    /// Sends `M::make(source, topic, counter)` on topic `topic`.
    pub fn send(&self, source: u32, topic: u32, counter: u64) {
        let k = (topic / 3) as usize;
        match topic % 3 {
            0 => self.ticks[k].send(Tick::make(source, topic, counter)),
            1 => self.readings[k].send(Reading::make(source, topic, counter)),
            _ => {
                // In place, as large messages are meant to be written.
                self.frames[k].loan().and_then(|mut s| {
                    *s = Frame::make(source, topic, counter);
                    s.publish()
                })
            }
        }
        .unwrap_or_else(|e| panic!("send counter {counter} on topic {topic}: {e}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// splitmix64: small, seeded, good enough to pick bursts, pauses and topics.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
