//! The floor: a ping-pong of two atomic counters in a shared mapping, with no library at all.
//! Nothing can cross between two processes faster than one cache line going there and another
//! coming back; every other contender is compared with this.
//!
//! The parent stores `i` into the ping counter and spins until the pong counter reads `i`;
//! the child spins until the ping counter changes and stores its value into the pong counter.
//! The counters sit 128 bytes apart (on different cache lines, and different pairs of lines
//! for the adjacent-line prefetcher). The payload size is ignored: nothing but the counters
//! moves.

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::{PingPong, Result, Session, STOP};
use memmap2::MmapMut;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The raw atomics ping-pong (id `floor`).
#[derive(Debug, Clone, Copy)]
pub struct Floor;

/// Byte offset of the ping counter in the mapping.
const PING: usize = 0;
/// Byte offset of the pong counter in the mapping.
const PONG: usize = 128;
/// Size of the mapped file.
const FILE_LEN: u64 = 4096;
/// Pong value of a child that is ready.
const READY: u64 = u64::MAX - 1;

/// Atomic words in a shared, writable mapping of a file: what the no-library contenders
/// (this floor and [`ring_floor`](super::ring_floor)) share between their two processes.
pub(super) struct SharedWords {
    map: MmapMut,
}

impl SharedWords {
    /// Maps the file at `path`, creating it with `len` bytes if `create` (and otherwise
    /// checking that it has them).
    pub(super) fn open(path: &Path, len: u64, create: bool) -> Result<SharedWords> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)?;
        if create {
            file.set_len(len)?;
        } else if file.metadata()?.len() < len {
            return Err(format!("{} is too short", path.display()).into());
        }
        // SAFETY: the file lives in this run's private directory, and only the benchmark's
        // processes map it; they access the mapping solely through the atomics of `at`, so
        // no plain reference ever sees bytes change under it. Nobody truncates the file while
        // it is mapped.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(SharedWords { map })
    }

    /// The word at byte `offset` (a multiple of 8 inside the mapping).
    ///
    /// # Panics
    /// If `offset` is out of bounds or not a multiple of 8.
    #[inline]
    pub(super) fn at(&self, offset: usize) -> &AtomicU64 {
        assert!(offset + 8 <= self.map.len() && offset & 7 == 0);
        // SAFETY: the mapping is page-aligned and `offset` a multiple of 8 within its length
        // (checked above), so the pointer is aligned and dereferenceable for 8 bytes for as
        // long as `self.map` lives, which bounds the returned lifetime. `AtomicU64` has the
        // size and alignment of `u64`, any bit pattern is a valid value (the file starts
        // zero-filled), and every process only ever accesses these bytes atomically.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// The `count` words from byte `offset` (a multiple of 8; all inside the mapping).
    ///
    /// # Panics
    /// If they are out of bounds or `offset` is not a multiple of 8.
    pub(super) fn slice(&self, offset: usize, count: usize) -> &[AtomicU64] {
        let end = count.checked_mul(8).and_then(|n| n.checked_add(offset));
        assert!(end.is_some_and(|e| e <= self.map.len()) && offset & 7 == 0);
        // SAFETY: as in `at`, for each of the `count` words, all inside the mapping (checked
        // above).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset).cast(), count) }
    }
}

/// The floor's two counters.
struct Counters {
    words: SharedWords,
}

impl Counters {
    fn open(path: &Path, create: bool) -> Result<Counters> {
        Ok(Counters {
            words: SharedWords::open(path, FILE_LEN, create)?,
        })
    }

    fn ping(&self) -> &AtomicU64 {
        self.words.at(PING)
    }

    fn pong(&self) -> &AtomicU64 {
        self.words.at(PONG)
    }
}

struct FloorSession {
    counters: Counters,
    peer: Option<Peer>,
    seq: u64,
}

impl PingPong for Floor {
    fn id(&self) -> &'static str {
        super::FLOOR_ID
    }

    fn describe(&self) -> &'static str {
        "two atomic counters in shared memory, no library (the floor)"
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        let path = run.path().join("floor.bin");
        let counters = Counters::open(&path, true)?;
        let spawned = run.spawn(
            self.id(),
            payload,
            &path.to_string_lossy(),
            ChildStdio::Null,
        )?;
        if !crate::wait_until(PEER_TIMEOUT, || {
            counters.pong().load(Ordering::Acquire) == READY
        }) {
            return Err("the floor's child did not get ready".into());
        }
        Ok(Box::new(FloorSession {
            counters,
            peer: Some(spawned.peer),
            seq: 0,
        }))
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let counters = Counters::open(Path::new(&env.arg), false)?;
        let (ping, pong) = (counters.ping(), counters.pong());
        let mut last = ping.load(Ordering::Acquire);
        pong.store(READY, Ordering::Release);
        loop {
            let v = ping.load(Ordering::Acquire);
            if v == last {
                std::hint::spin_loop();
                continue;
            }
            if v == STOP {
                return Ok(());
            }
            pong.store(v, Ordering::Release);
            last = v;
        }
    }
}

impl Session for FloorSession {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (ping, pong) = (self.counters.ping(), self.counters.pong());
        let seq = &mut self.seq;
        super::timed_round_trips(n, rtts, || {
            *seq += 1;
            ping.store(*seq, Ordering::Release);
            while pong.load(Ordering::Acquire) != *seq {
                std::hint::spin_loop();
            }
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        let ping = self.counters.ping();
        Ok(vec![peer.stop(|| {
            ping.store(STOP, Ordering::Release);
            Ok(())
        })?])
    }
}
