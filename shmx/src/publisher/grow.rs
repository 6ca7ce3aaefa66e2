//! Pools that follow the traffic: a publisher's pool starts with a small reserve per size
//! class and adds a segment when a class has no free chunk left, up to the worst case its
//! limits allow and within its budgets; idle segments can be given back.
//!
//! Growth happens on the loan path only after the free list ran dry *and* the returns were
//! taken back and dead subscribers reclaimed, so a pool that has grown to the traffic makes no
//! system call and allocates nothing on its hot path.

use super::{PubCore, PubState};
use crate::config::PublisherConfig;
use crate::data::{segment_bytes, MAX_SEGMENT_CHUNKS};
use crate::dir::Kind;
use crate::error::{Error, Result};
use crate::root::Root;
use crate::trust::Trust;

/// About this many bytes of chunks per class to start with, and to add at least.
const RESERVE_BYTES: usize = 1 << 20;
/// Chunks per class to start with at least (a sample in flight and the next being written).
const MIN_RESERVE: usize = 2;

/// What a publisher's pool may grow to.
pub(super) struct Limits {
    /// Payload capacity asked of each class, smallest first.
    pub caps: Vec<usize>,
    /// Chunks one class may have: every chunk a pool can have in use at once under the
    /// topic's limits (what a fixed pool reserved).
    pub worst_chunks: usize,
    /// Bytes of chunks the whole pool may have: the worst case of a fixed pool of the
    /// largest class (and segment 0, if it holds a smaller class).
    pub worst_bytes: u64,
    reserve: Option<usize>,
    max_pool_bytes: Option<u64>,
    max_root_bytes: Option<u64>,
}

impl Limits {
    /// The limits for `worst_chunks` chunks, classes `caps`, as `config` asks.
    pub(super) fn new(
        worst_chunks: usize,
        caps: Vec<usize>,
        top_stride: usize,
        config: &PublisherConfig,
    ) -> Option<Limits> {
        let worst_bytes = u64::try_from(worst_chunks.checked_mul(top_stride)?).ok()?;
        Some(Limits {
            caps,
            worst_chunks,
            worst_bytes,
            reserve: config.reserve_chunks,
            max_pool_bytes: config.max_pool_bytes,
            max_root_bytes: config.max_root_bytes,
        })
    }

    /// Chunks a class of chunks of `stride` bytes starts with (and adds at least).
    pub(super) fn reserve(&self, stride: usize) -> usize {
        let n = match self.reserve {
            Some(n) => n.max(1),
            None => (RESERVE_BYTES / stride.max(1)).max(MIN_RESERVE),
        };
        n.min(self.worst_chunks).clamp(1, MAX_SEGMENT_CHUNKS)
    }

    /// This publisher's budget, with `reserved` bytes counted against it; `None` if it has
    /// none.
    pub(super) fn pool_budget(&self, reserved: u64) -> Option<Budget> {
        Some(Budget {
            name: "max_pool_bytes",
            limit: self.max_pool_bytes?,
            reserved,
        })
    }

    /// The root's budget, with what the data files under the root hold now (counted here:
    /// call it with the root locked); `None` if there is none.
    pub(super) fn root_budget(&self, root: &Root, trust: &Trust) -> Option<Budget> {
        Some(Budget {
            name: "max_root_bytes",
            limit: self.max_root_bytes?,
            reserved: root_data_bytes(root, trust),
        })
    }
}

/// A memory budget and what it counts as reserved.
pub(super) struct Budget {
    name: &'static str,
    limit: u64,
    reserved: u64,
}

impl Budget {
    /// `Ok` if `wanted` more bytes fit, else the error naming the budget.
    pub(super) fn check(&self, topic: &str, wanted: u64) -> Result<()> {
        if self.reserved.saturating_add(wanted) <= self.limit {
            return Ok(());
        }
        Err(Error::BudgetExceeded {
            topic: topic.to_owned(),
            budget: self.name,
            limit: self.limit,
            reserved: self.reserved,
            wanted,
        })
    }

    /// The most of `count` chunks, halving, whose `bytes` fit; the error if one does not.
    fn fit(&self, topic: &str, mut count: usize, bytes: impl Fn(usize) -> u64) -> Result<usize> {
        self.check(topic, bytes(1))?;
        while count > 1 && self.check(topic, bytes(count)).is_err() {
            count /= 2;
        }
        Ok(count)
    }
}

/// Bytes of shared memory that the data segments of every topic under `root` hold now
/// (allocated blocks, so holes count for nothing).
fn root_data_bytes(root: &Root, trust: &Trust) -> u64 {
    let mut total = 0u64;
    for (name, kind) in root.dir().entries().unwrap_or_default() {
        if kind != Kind::Dir {
            continue;
        }
        let Ok(Some(dir)) = root.dir().open_dir(&name, trust) else {
            continue;
        };
        for (file, _) in dir.entries().unwrap_or_default() {
            if !file.to_str().is_some_and(|f| f.starts_with("data.")) {
                continue;
            }
            if let Ok(Some(st)) = dir.stat_at(&file) {
                total = total.saturating_add((st.st_blocks as u64).saturating_mul(512));
            }
        }
    }
    total
}

impl PubCore {
    /// Adds a segment to class `class`, which has no free chunk: as many chunks as the class
    /// has already (so it doubles), at least its reserve, within the worst case and the
    /// budgets. When a limit leaves no room, idle segments of the pool are given back first.
    #[cold]
    #[inline(never)]
    pub(super) fn grow(&self, st: &mut PubState, class: usize) -> Result<()> {
        match self.try_grow(st, class) {
            Err(
                e @ (Error::PoolExhausted { .. }
                | Error::BudgetExceeded { .. }
                | Error::OutOfSpace { .. }),
            ) => {
                if self.keep_segments.get() || self.shrink_in(st) == 0 {
                    return Err(e);
                }
                self.try_grow(st, class)
            }
            other => other,
        }
    }

    /// After a loan found the free list of class `class` dry and had to take returns back
    /// first (on the loan's path, reading the subscribers' return rings): if fewer chunks
    /// than the returns taken back every so often after publishing are free now, grows the
    /// class (within its limits, and only while it holds less than ~1 MiB; failing that,
    /// nothing changes), so that the traffic finds free chunks without that detour. A pool
    /// grown exactly to what is in flight would take it at nearly every loan (measured: ~50 ns
    /// more per one-way 8-byte ping-pong between two processes).
    #[cold]
    #[inline(never)]
    pub(super) fn keep_headroom(&self, st: &mut PubState, class: usize) {
        let bit = 1u64 << class;
        if st.pool.free_count(class) >= self.collect_every || st.no_headroom & bit != 0 {
            return;
        }
        // Tried once per class until the pool gives segments back: at a limit, the next dry
        // loans must not pay for a failed growth each (an error, a lock, a scan). Only for
        // classes of small chunks: for large ones the detour costs little beside writing the
        // sample, and memory matters more.
        let have = st.pool.class_counts(class).0;
        if have >= self.limits.worst_chunks
            || have.saturating_mul(st.segs.classes[class].stride) >= RESERVE_BYTES
            || self.try_grow(st, class).is_err()
        {
            st.no_headroom |= bit;
        }
    }

    fn try_grow(&self, st: &mut PubState, class: usize) -> Result<()> {
        let topic = self.service.topic();
        let exhausted = |chunks| Error::PoolExhausted {
            topic: topic.to_owned(),
            chunks,
        };
        let total = st.pool.total();
        let (have, _) = st.pool.class_counts(class);
        let stride = st.segs.classes[class].stride;
        let capacity = st.segs.classes[class].capacity;
        let room_bytes = self
            .limits
            .worst_bytes
            .saturating_sub(st.segs.chunk_bytes());
        let room = self
            .limits
            .worst_chunks
            .saturating_sub(have)
            .min((room_bytes / stride as u64) as usize);
        if room == 0 {
            return Err(exhausted(total));
        }
        // At most half the room left, so that one class never takes what the others may
        // need later: the room shrinks geometrically and runs out only chunk by chunk.
        let mut count = self
            .limits
            .reserve(stride)
            .max(have)
            .min((room / 2).max(1))
            .min(MAX_SEGMENT_CHUNKS);
        let bytes = |n: usize| {
            segment_bytes(n, capacity, self.service.type_facts().2).map_or(u64::MAX, |b| b as u64)
        };
        // The publisher's budget: halve the growth until it fits, if one chunk does.
        if let Some(budget) = self.limits.pool_budget(st.segs.reserved_bytes()) {
            count = budget.fit(topic, count, bytes)?;
        }
        // Files are made with the root locked (a sweep removes the temporary files of
        // creations it does not see under the lock), and the root's budget is counted and
        // taken under it, so that two publishers growing at once cannot both pass it.
        let _lock = self.service.root().lock(self.service.trust())?;
        if let Some(budget) = self
            .limits
            .root_budget(self.service.root(), self.service.trust())
        {
            count = budget.fit(topic, count, bytes)?;
        }
        let k = st
            .segs
            .add(&self.service, class, count)?
            .ok_or_else(|| exhausted(total))?;
        st.pool.add_segment(k, class, count);
        let (chunks, in_use) = st.pool.class_counts(class);
        st.segs.record_class(class, chunks, in_use);
        self.service
            .pub_slot(self.slot)
            .chunk_count
            .store(st.pool.total() as u64, crate::sync::Ordering::Relaxed);
        Ok(())
    }

    /// The pool class by class.
    pub(super) fn class_stats(&self, st: &PubState) -> Vec<crate::pool::ClassStats> {
        let segments: Vec<(usize, usize)> = st.pool.segments().collect();
        st.segs
            .classes
            .iter()
            .enumerate()
            .map(|(c, class)| {
                let (chunks, in_use) = st.pool.class_counts(c);
                let mine = segments.iter().filter(|&&(_, of)| of == c);
                crate::pool::ClassStats {
                    payload_bytes: class.capacity,
                    chunk_bytes: class.stride,
                    chunks,
                    in_use,
                    segments: mine.clone().count(),
                    reserved_bytes: mine.map(|&(k, _)| st.segs.segment_bytes(k)).sum(),
                }
            })
            .collect()
    }

    /// From now on, never gives a segment back while this endpoint lives (growth at a limit
    /// fails instead, and [`shrink_in`](Self::shrink_in) gives none): for endpoints whose
    /// users may still point into chunks they published (see `RawPublisher::open`).
    pub(crate) fn keep_segments(&self) {
        self.keep_segments.set(true);
    }

    /// Gives back every segment but the first whose chunks are all free and unpinned;
    /// returns how many.
    pub(super) fn shrink_in(&self, st: &mut PubState) -> usize {
        if self.keep_segments.get() {
            return 0;
        }
        self.collect(st);
        let numbers: Vec<(usize, usize)> = st.pool.segments().filter(|&(k, _)| k > 0).collect();
        let mut given = 0;
        for (k, class) in numbers {
            if st.pool.retire(k, &st.segs) {
                st.segs.remove(&self.service, k);
                let (chunks, in_use) = st.pool.class_counts(class);
                st.segs.record_class(class, chunks, in_use);
                given += 1;
            }
        }
        if given > 0 {
            st.no_headroom = 0;
            self.service
                .pub_slot(self.slot)
                .chunk_count
                .store(st.pool.total() as u64, crate::sync::Ordering::Relaxed);
            // Subscribers that mapped a segment given back let go of it on their next look,
            // which those asleep take now.
            self.service.bump_generation();
            self.service.notify_subscribers();
        }
        given
    }
}
