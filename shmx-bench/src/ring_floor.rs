//! The throughput floors: streams of 8-byte messages between processes with no library at
//! all, measured like the other throughput contenders, so that every round shows what the
//! machine allowed at that moment.
//!
//! - `ring-floor`: a bare single-producer single-consumer ring of 8-byte values in a shared
//!   mapping, one ring per subscriber (the parent writes each message into every ring). The
//!   message *is* the ring entry, eight to a cache line: nothing streams 8-byte messages
//!   between two processes much faster.
//! - `chunk-floor` (one subscriber): the part of that cost a zero-copy design cannot avoid.
//!   Each message lives in a 64-byte chunk of its own (the parent writes the message's number
//!   there), the ring carries the chunk's index, and the subscriber reads the chunk and gives
//!   its index back through a return ring, as shmx does. The parent takes chunks from a LIFO
//!   free list that it refills from the return ring when it runs dry, and prefetches the chunk
//!   it will write six messages ahead. No sequence numbers, holders, policies, or checks
//!   beyond the message's number: the ceiling of any design that moves one chunk per message.
//!
//! Both keep the throughput contract of [`throughput`](mod@super::throughput): messages are
//! numbered 1, 2, 3, … per run and checked in order, the last one of a batch carries the
//! flush bit, and the subscriber answers it with its count (in a word of its own); subscribers
//! spin with the shared busy-wait policy.

use super::floor::SharedWords;
use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::throughput::Idle;
use super::{mismatch, Result, Stream, Throughput, STOP};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A bare ring (`chunks: false`, id `ring-floor`) or an index ring with a chunk per message
/// (`chunks: true`, id `chunk-floor`).
#[derive(Debug, Clone, Copy)]
pub struct RingFloor {
    chunks: bool,
}

/// `ring-floor`: 8-byte messages as the entries of a bare ring.
pub const RING_FLOOR: RingFloor = RingFloor { chunks: false };
/// `chunk-floor`: each message in a 64-byte chunk, its index through the ring and back.
pub const CHUNK_FLOOR: RingFloor = RingFloor { chunks: true };

/// Ring entries (a power of two): the queue depth of the shmx contenders.
const DEPTH: u64 = 256;
/// Return-ring entries: more than there are chunks, so it never fills.
const RETURNS: u64 = 512;
/// Chunks of the pool: a full ring, and some to write while it is full.
const CHUNKS: u64 = DEPTH + 8;
/// Bytes per chunk (one cache line).
const CHUNK_BYTES: usize = 64;
/// Chunks the parent prefetches ahead of the one it writes.
const PREFETCH_AHEAD: usize = 6;

/// Byte offsets inside one subscriber's area; every word the two sides share is on a line of
/// its own.
const TAIL: usize = 0;
const ACK: usize = 128;
const RHEAD: usize = 256;
const SLOTS: usize = 512;
const RSLOTS: usize = SLOTS + DEPTH as usize * 8;
const CHUNK_AREA: usize = 8192;
const AREA: usize = (CHUNK_AREA + CHUNKS as usize * CHUNK_BYTES).next_multiple_of(4096);
const _: () = assert!(RSLOTS + RETURNS as usize * 8 <= CHUNK_AREA);

/// The flush bit of a `ring-floor` entry (as in the shmx contenders' headers).
const FLUSH: u64 = 1 << 62;
/// A `chunk-floor` entry: `number << NUMBER_SHIFT | flush << 20 | chunk`.
const NUMBER_SHIFT: u32 = 21;
const CHUNK_FLUSH: u64 = 1 << 20;
const CHUNK_INDEX: u64 = CHUNK_FLUSH - 1;
/// Value of the answer word once the subscriber is ready.
const READY: u64 = u64::MAX - 1;

/// One subscriber's words.
struct Ring<'a> {
    tail: &'a AtomicU64,
    ack: &'a AtomicU64,
    rhead: &'a AtomicU64,
    slots: &'a [AtomicU64],
    rslots: &'a [AtomicU64],
    chunks: &'a [AtomicU64],
}

impl<'a> Ring<'a> {
    fn of(words: &'a SharedWords, subscriber: usize) -> Ring<'a> {
        let base = subscriber * AREA;
        Ring {
            tail: words.at(base + TAIL),
            ack: words.at(base + ACK),
            rhead: words.at(base + RHEAD),
            slots: words.slice(base + SLOTS, DEPTH as usize),
            rslots: words.slice(base + RSLOTS, RETURNS as usize),
            chunks: words.slice(base + CHUNK_AREA, CHUNKS as usize * CHUNK_BYTES / 8),
        }
    }

    /// The slot of position `p`.
    #[inline(always)]
    fn slot(&self, p: u64) -> &AtomicU64 {
        &self.slots[(p % DEPTH) as usize]
    }

    /// The first word of chunk `c` (`c < CHUNKS`), where its message's number goes.
    #[inline(always)]
    fn chunk(&self, c: u64) -> &AtomicU64 {
        &self.chunks[c as usize * (CHUNK_BYTES / 8)]
    }
}

/// The parent's side: the mapping, the children, and the producer's private state.
struct FloorSender {
    words: SharedWords,
    peers: Vec<Peer>,
    producer: Producer,
}

/// The producer's private state.
struct Producer {
    chunks: bool,
    subscribers: usize,
    /// The last message number sent.
    seq: u64,
    /// Per subscriber, a lower bound of its position.
    tails: Vec<u64>,
    /// `chunk-floor`: free chunks (LIFO), and how far the return ring was read.
    free: Vec<u64>,
    rtail: u64,
}

fn file(root: &Path) -> std::path::PathBuf {
    root.join("ring-floor.bin")
}

impl Throughput for RingFloor {
    fn id(&self) -> &'static str {
        if self.chunks {
            super::CHUNK_FLOOR_ID
        } else {
            super::RING_FLOOR_ID
        }
    }

    fn describe(&self) -> &'static str {
        if self.chunks {
            "no library: each message in a 64-byte chunk, its index through a ring and back \
             (the ceiling of one chunk per message)"
        } else {
            "no library: 8-byte messages as the entries of a bare ring per subscriber \
             (the floor)"
        }
    }

    fn supports(&self, payload: usize, subscribers: usize) -> bool {
        payload == 8 && (subscribers == 1 || (!self.chunks && (1..=8).contains(&subscribers)))
    }

    fn start(&self, payload: usize, subscribers: usize, run: &RunDir) -> Result<Box<dyn Stream>> {
        if !self.supports(payload, subscribers) {
            return Err(super::unsupported(self.id(), payload));
        }
        let path = file(run.path());
        let words = SharedWords::open(&path, (AREA * subscribers) as u64, true)?;
        let yields = Idle::new(subscribers).yields;
        let peers = (0..subscribers)
            .map(|i| {
                let arg = format!("{i} {}", u8::from(yields));
                Ok(run.spawn(self.id(), payload, &arg, ChildStdio::Null)?.peer)
            })
            .collect::<Result<Vec<_>>>()?;
        let ready = crate::wait_until(PEER_TIMEOUT, || {
            (0..subscribers).all(|i| Ring::of(&words, i).ack.load(Ordering::Acquire) == READY)
        });
        if !ready {
            return Err(format!("the {} subscribers did not get ready", self.id()).into());
        }
        Ok(Box::new(FloorSender {
            words,
            peers,
            producer: Producer {
                chunks: self.chunks,
                subscribers,
                seq: 0,
                tails: vec![0; subscribers],
                free: (0..CHUNKS).rev().collect(),
                rtail: 0,
            },
        }))
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let (index, yields) = env
            .arg
            .split_once(' ')
            .ok_or("ring-floor children need `<index> <yields>`")?;
        let index: usize = index.parse()?;
        let words = SharedWords::open(&file(&env.root), (AREA * (index + 1)) as u64, false)?;
        receive(
            &Ring::of(&words, index),
            self.chunks,
            Idle::with_yields(yields == "1"),
        )
    }
}

/// The subscriber's loop, until the parent says stop.
fn receive(ring: &Ring<'_>, chunks: bool, mut idle: Idle) -> Result<()> {
    ring.ack.store(READY, Ordering::Release);
    let (mut t, mut rhead) = (0u64, 0u64);
    loop {
        let v = ring.slot(t).load(Ordering::Acquire);
        if v == STOP {
            return Ok(());
        }
        let (n, flush) = if chunks {
            (v >> NUMBER_SHIFT, v & CHUNK_FLUSH != 0)
        } else {
            (v & !FLUSH, v & FLUSH != 0)
        };
        if n != t + 1 {
            idle.wait(); // not written yet (the slot holds the last lap's entry, or nothing)
            continue;
        }
        if chunks {
            let c = v & CHUNK_INDEX;
            if c >= CHUNKS {
                return Err(format!("chunk-floor: chunk index {c} out of range").into());
            }
            let got = ring.chunk(c).load(Ordering::Relaxed);
            if got != n {
                return Err(mismatch("chunk-floor chunk", n, got));
            }
            ring.rslots[(rhead % RETURNS) as usize].store(c, Ordering::Relaxed);
            rhead += 1;
            ring.rhead.store(rhead, Ordering::Release);
        }
        t += 1;
        ring.tail.store(t, Ordering::Release);
        if flush {
            ring.ack.store(t, Ordering::Release);
        }
    }
}

impl Producer {
    /// `chunk-floor`: a free chunk, taking back returned ones when the list runs dry.
    #[inline(always)]
    fn loan(&mut self, ring: &Ring<'_>, idle: &mut Idle) -> u64 {
        loop {
            if let Some(c) = self.free.pop() {
                if let Some(&ahead) = self
                    .free
                    .len()
                    .checked_sub(PREFETCH_AHEAD)
                    .map(|i| &self.free[i])
                {
                    prefetch(ring.chunk(ahead));
                }
                return c;
            }
            let head = ring.rhead.load(Ordering::Acquire);
            while self.rtail != head {
                let c = ring.rslots[(self.rtail % RETURNS) as usize].load(Ordering::Relaxed);
                if c < CHUNKS {
                    self.free.push(c);
                }
                self.rtail += 1;
            }
            if self.free.is_empty() {
                idle.wait();
            }
        }
    }

    /// Sends messages `seq + 1 ..= seq + n`, the last with the flush bit, and waits for every
    /// subscriber's answer.
    fn send(&mut self, words: &SharedWords, n: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let rings: Vec<Ring<'_>> = (0..self.subscribers).map(|i| Ring::of(words, i)).collect();
        let mut idle = Idle::new(self.subscribers);
        let last = self.seq + n;
        for k in self.seq + 1..=last {
            let flush = k == last;
            let entry = if self.chunks {
                let c = self.loan(&rings[0], &mut idle);
                let chunk = rings[0].chunk(c);
                chunk.store(k, Ordering::Relaxed);
                (k << NUMBER_SHIFT) | if flush { CHUNK_FLUSH } else { 0 } | c
            } else {
                k | if flush { FLUSH } else { 0 }
            };
            for (ring, tail) in rings.iter().zip(&mut self.tails) {
                Producer::push(ring, tail, k - 1, entry, &mut idle);
            }
        }
        self.seq = last;
        for ring in &rings {
            loop {
                match ring.ack.load(Ordering::Acquire) {
                    a if a == last => break,
                    a if a == READY || a < last => idle.wait(),
                    a => return Err(mismatch("ring-floor subscriber", last, a)),
                }
            }
        }
        Ok(())
    }

    /// Writes `entry` at position `p` of `ring` once there is room.
    #[inline(always)]
    fn push(ring: &Ring<'_>, tail: &mut u64, p: u64, entry: u64, idle: &mut Idle) {
        // `saturating_sub`: a corrupt `tail` beyond `p` reads as an empty ring, not a full one.
        while p.saturating_sub(*tail) >= DEPTH {
            *tail = ring.tail.load(Ordering::Acquire);
            if p.saturating_sub(*tail) >= DEPTH {
                idle.wait();
            }
        }
        ring.slot(p).store(entry, Ordering::Release);
    }
}

/// Starts loading `word`'s cache line.
#[inline(always)]
fn prefetch(word: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no effect beyond the cache; the address is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(word.as_ptr().cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

impl Stream for FloorSender {
    fn send(&mut self, n: u64) -> Result<Duration> {
        let start = Instant::now();
        self.producer.send(&self.words, n)?;
        Ok(start.elapsed())
    }

    fn finish(self: Box<Self>) -> Result<Vec<Placement>> {
        let FloorSender {
            words,
            peers,
            mut producer,
        } = *self;
        let mut idle = Idle::new(producer.subscribers);
        let stop = producer.seq; // the position after the last message
        super::throughput::stop_all(peers, || {
            for (i, tail) in producer.tails.iter_mut().enumerate() {
                Producer::push(&Ring::of(&words, i), tail, stop, STOP, &mut idle);
            }
            Ok(())
        })
    }
}
