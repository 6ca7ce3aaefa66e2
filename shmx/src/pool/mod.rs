//! The publisher's private bookkeeping of its chunks: who holds each one, and the free lists
//! (one per size class, see [`classes`]).
//!
//! It lives in the publisher's own heap, never in shared memory, so a crashed or hostile peer
//! cannot corrupt it. A chunk is free when no subscriber holds it (delivered and not yet
//! returned), it is not part of the history, and it is not loaned. Pins of late subscribers
//! (PROTOCOLS.md §4) are checked when a free chunk is about to be reused, and before a
//! segment is given back.
//!
//! The pool grows by whole segments ([`Pool::add_segment`]); that, and giving a segment back
//! ([`Pool::retire`]), are the only places that allocate or free memory. Loans, publishes and
//! returns only move chunk numbers between fixed-size structures.

pub(crate) mod classes;

use crate::data::{join, split, ChunkHeader, MAX_SEGMENTS};
use crate::pins;
use crate::sync::AtomicU64;

/// What the pool needs of the segments: a chunk's header and pin word (for the pin checks).
pub(crate) trait ChunkAccess {
    /// Header of chunk `c`, which the pool knows.
    fn header(&self, c: u32) -> &ChunkHeader;
    /// Pin word of chunk `c`, which the pool knows.
    fn pin(&self, c: u32) -> &AtomicU64;
}

#[derive(Clone, Copy, Default, Debug)]
struct ChunkState {
    /// Bit `s` set: subscriber slot `s` holds the chunk (in its queue or taken).
    holders: u64,
    /// [`LOANED`] and [`IN_HISTORY`]: with `holders`, the chunk is free when both are 0.
    flags: u64,
}

const LOANED: u64 = 1;
const IN_HISTORY: u64 = 2;

impl ChunkState {
    #[inline(always)]
    fn is_free(self) -> bool {
        self.holders | self.flags == 0
    }
}

/// Counts of a publisher's chunks by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Chunks in the pool (of every size class).
    pub total: usize,
    /// Chunks ready to be loaned.
    pub free: usize,
    /// Chunks loaned and not yet published or dropped.
    pub loaned: usize,
    /// Chunks kept as history.
    pub history: usize,
    /// Chunks queued for or held by at least one subscriber.
    pub delivered: usize,
    /// Free chunks still pinned by a late subscriber reading history.
    pub pinned: usize,
}

impl std::ops::AddAssign for PoolStats {
    fn add_assign(&mut self, other: PoolStats) {
        self.total += other.total;
        self.free += other.free;
        self.loaned += other.loaned;
        self.history += other.history;
        self.delivered += other.delivered;
        self.pinned += other.pinned;
    }
}

/// One size class of a publisher's pool ([`Publisher::pool_classes`](crate::Publisher::pool_classes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassStats {
    /// Payload bytes of a chunk of the class (the message and the tail it holds).
    pub payload_bytes: usize,
    /// Bytes a chunk of the class takes in shared memory (with its header).
    pub chunk_bytes: usize,
    /// Chunks of the class in the pool.
    pub chunks: usize,
    /// Chunks of the class not free (loaned, queued, held, history, or pinned).
    pub in_use: usize,
    /// Segments of the class.
    pub segments: usize,
    /// Bytes of shared memory the class's segments take.
    pub reserved_bytes: u64,
}

/// A stack of free chunk indices with room for every chunk of its class, so a push never
/// allocates.
///
/// The top stays the top until it is popped: a chunk pushed goes in just below it. Each
/// publish announces the top to subscribers as the chunk the next loan will take
/// ([`ChunkHeader::next`](crate::data::ChunkHeader)), and chunks taken back in between must
/// not make that announcement wrong.
#[derive(Default)]
struct FreeStack {
    slots: Vec<u32>,
    len: usize,
}

impl FreeStack {
    #[inline(always)]
    fn push(&mut self, c: u32) {
        // A chunk is pushed only when it becomes free, so at most `slots.len()` are here.
        let len = self.len;
        if len >= self.slots.len() {
            return;
        }
        match len.checked_sub(1) {
            // Keep the top: the new chunk goes below it.
            Some(top) => {
                self.slots[len] = self.slots[top];
                self.slots[top] = c;
            }
            None => self.slots[0] = c,
        }
        self.len = len + 1;
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<u32> {
        let len = self.len.checked_sub(1)?;
        self.len = len;
        self.slots.get(len).copied()
    }

    /// The chunk `k` pops from now will return, if that many are here.
    #[inline(always)]
    fn below_top(&self, k: usize) -> Option<u32> {
        self.slots.get(self.len.checked_sub(k + 1)?).copied()
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Adds the free chunks `fresh` (in the order pops should hand them out) below those
    /// here, with room for them (only when the class grows): the top stays the top.
    fn add_below(&mut self, fresh: &[u32]) {
        let room = self.slots.len() + fresh.len();
        let mut slots: Vec<u32> = fresh.iter().rev().copied().collect();
        slots.extend_from_slice(&self.slots[..self.len]);
        self.len = slots.len();
        slots.resize(room, 0);
        self.slots = slots;
    }

    /// Removes every chunk for which `gone` holds, and the room for them.
    fn remove(&mut self, gone: impl Fn(u32) -> bool) -> usize {
        let before = self.slots.len();
        let mut live: Vec<u32> = self.slots[..self.len]
            .iter()
            .copied()
            .filter(|&c| !gone(c))
            .collect();
        let removed = self.len - live.len();
        self.len = live.len();
        live.resize(before - removed, 0);
        self.slots = live;
        removed
    }
}

/// The free chunks of one size class.
#[derive(Default)]
struct ClassFree {
    free: FreeStack,
    /// Free chunks a late subscriber still pinned when they were about to be loaned.
    deferred: Vec<u32>,
    /// Chunks of the class in the pool.
    chunks: usize,
}

/// Segment numbers without a segment in [`Pool::seg_class`].
const NO_CLASS: u8 = u8::MAX;

pub(crate) struct Pool {
    /// The state of each chunk of segment 0, by place (apart: the hot path's common case).
    states0: Box<[ChunkState]>,
    /// The class of segment 0.
    class0: usize,
    /// The state of each chunk of the other segments, by segment number and place
    /// (`states[0]` is always empty).
    states: Vec<Box<[ChunkState]>>,
    /// The class of each segment number's segment ([`NO_CLASS`]: none).
    seg_class: Vec<u8>,
    classes: Vec<ClassFree>,
    /// Whether subscribers may pin chunks (the publisher keeps history).
    pins_possible: bool,
    /// Return-ring entries that named a chunk the subscriber did not hold.
    pub ignored: u64,
}

impl Pool {
    /// An empty pool of `classes` size classes.
    pub(crate) fn new(classes: usize, pins_possible: bool) -> Pool {
        Pool {
            states0: Box::new([]),
            class0: 0,
            states: Vec::new(),
            seg_class: Vec::new(),
            classes: (0..classes).map(|_| ClassFree::default()).collect(),
            pins_possible,
            ignored: 0,
        }
    }

    /// Adds segment `k` of `count` chunks of class `class`, all free (allocates: the pool
    /// grows).
    pub(crate) fn add_segment(&mut self, k: usize, class: usize, count: usize) {
        assert!(k < MAX_SEGMENTS && class < self.classes.len());
        if self.states.len() <= k {
            self.states.resize_with(k + 1, Default::default);
            self.seg_class.resize(k + 1, NO_CLASS);
        }
        assert!(
            self.seg_class[k] == NO_CLASS,
            "segment {k} is in the pool already"
        );
        let fresh = vec![ChunkState::default(); count].into_boxed_slice();
        if k == 0 {
            self.states0 = fresh;
            self.class0 = class;
        } else {
            self.states[k] = fresh;
        }
        self.seg_class[k] = class as u8;
        let cf = &mut self.classes[class];
        cf.chunks += count;
        // Low places first.
        let fresh: Vec<u32> = (0..count).map(|i| join(k, i)).collect();
        cf.free.add_below(&fresh);
    }

    /// Gives segment `k` back if every chunk of it is free and no late subscriber pins one:
    /// removes its chunks from the free lists and returns `true` (the caller then drops the
    /// segment). Otherwise changes nothing it would need back and returns `false`.
    pub(crate) fn retire(&mut self, k: usize, segs: &impl ChunkAccess) -> bool {
        // Segment 0 stays as long as the publisher.
        let Some(&class) = self.seg_class.get(k).filter(|_| k > 0) else {
            return false;
        };
        if class == NO_CLASS || !self.states[k].iter().all(|s| s.is_free()) {
            return false;
        }
        let count = self.states[k].len();
        // PROTOCOLS.md §4, as before a reuse: invalidate, then look for pins. A chunk found
        // pinned keeps the segment (its sequence is invalid now, which only makes a late
        // subscriber skip it, as it would for a reused chunk).
        for i in 0..count {
            let c = join(k, i);
            if self.pins_possible && !pins::invalidate_and_check(&segs.header(c).seq, segs.pin(c)) {
                return false;
            }
        }
        let cf = &mut self.classes[class as usize];
        let of_k = |c: u32| split(c as usize).0 == k;
        cf.free.remove(of_k);
        cf.deferred.retain(|&c| !of_k(c));
        cf.chunks -= count;
        self.states[k] = Box::new([]);
        self.seg_class[k] = NO_CLASS;
        true
    }

    /// The segment numbers in the pool, with their classes.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.seg_class
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c != NO_CLASS)
            .map(|(k, &c)| (k, c as usize))
    }

    /// Takes a chunk of class `class` to loan, or `None` when every chunk of it is in use.
    #[inline]
    pub(crate) fn alloc(&mut self, class: usize, segs: &impl ChunkAccess) -> Option<u32> {
        if !self.pins_possible {
            if let Some(c) = self.classes.get_mut(class).and_then(|cf| cf.free.pop()) {
                self.set_loaned(c);
                return Some(c);
            }
        }
        self.alloc_slow(class, segs)
    }

    #[cold]
    fn alloc_slow(&mut self, class: usize, segs: &impl ChunkAccess) -> Option<u32> {
        let cf = self.classes.get_mut(class)?;
        let mut found = None;
        while let Some(c) = cf.free.pop() {
            if self.pins_possible && !pins::invalidate_and_check(&segs.header(c).seq, segs.pin(c)) {
                cf.deferred.push(c);
                continue;
            }
            found = Some(c);
            break;
        }
        if found.is_none() {
            for i in (0..cf.deferred.len()).rev() {
                let c = cf.deferred[i];
                if pins::unpinned(segs.pin(c)) {
                    cf.deferred.swap_remove(i);
                    found = Some(c);
                    break;
                }
            }
        }
        let c = found?;
        self.set_loaned(c);
        Some(c)
    }

    #[inline(always)]
    fn state(&mut self, c: u32) -> Option<&mut ChunkState> {
        let (k, i) = split(c as usize);
        if k == 0 {
            return self.states0.get_mut(i);
        }
        self.states.get_mut(k)?.get_mut(i)
    }

    #[inline(always)]
    fn set_loaned(&mut self, c: u32) {
        if let Some(s) = self.state(c) {
            s.flags |= LOANED;
        }
    }

    /// Puts chunk `c`, free now, on its class's free list.
    #[inline(always)]
    fn push_free(&mut self, c: u32) {
        let k = split(c as usize).0;
        let class = match k {
            0 => self.class0,
            _ => match self.seg_class.get(k) {
                Some(&class) => class as usize,
                None => return,
            },
        };
        if let Some(cf) = self.classes.get_mut(class) {
            cf.free.push(c);
        }
    }

    #[inline(always)]
    fn maybe_free(&mut self, c: u32) {
        if self.state(c).is_some_and(|s| s.is_free()) {
            self.push_free(c);
        }
    }

    /// The chunk of class `class` that the `k + 1`-th `alloc` of it from now is likely to
    /// return (`k = 0`: the next).
    #[inline]
    pub(crate) fn free_ahead(&self, class: usize, k: usize) -> Option<u32> {
        self.classes.get(class)?.free.below_top(k)
    }

    /// A loan ends, published or not.
    #[inline]
    pub(crate) fn end_loan(&mut self, c: u32) {
        if let Some(s) = self.state(c) {
            s.flags &= !LOANED;
        }
        self.maybe_free(c);
    }

    pub(crate) fn set_history(&mut self, c: u32, on: bool) {
        let Some(s) = self.state(c) else { return };
        if on {
            s.flags |= IN_HISTORY;
        } else {
            s.flags &= !IN_HISTORY;
            self.maybe_free(c);
        }
    }

    /// Loaned chunk `c` was published to the subscribers of bits `holders`: they hold it
    /// now, and its loan ends.
    #[inline]
    pub(crate) fn publish(&mut self, c: u32, holders: u64) {
        if let Some(s) = self.state(c) {
            s.holders |= holders;
            s.flags &= !LOANED;
            if s.is_free() {
                self.push_free(c);
            }
        }
    }

    /// Subscriber bit `bit` gives back chunk index `c` (read from shared memory: checked).
    #[inline]
    pub(crate) fn give_back(&mut self, c: u64, bit: u64) {
        let state = u32::try_from(c).ok().and_then(|c| self.state(c));
        match state {
            Some(s) if s.holders & bit != 0 => {
                s.holders &= !bit;
                if s.is_free() {
                    self.push_free(c as u32);
                }
            }
            _ => self.ignored += 1,
        }
    }

    /// Subscriber bit `bit` is gone: every chunk it held comes back.
    pub(crate) fn forget_holder(&mut self, bit: u64) {
        for i in 0..self.states0.len() {
            if self.states0[i].holders & bit != 0 {
                self.states0[i].holders &= !bit;
                self.maybe_free(join(0, i));
            }
        }
        for k in 1..self.states.len() {
            for i in 0..self.states[k].len() {
                if self.states[k][i].holders & bit != 0 {
                    self.states[k][i].holders &= !bit;
                    self.maybe_free(join(k, i));
                }
            }
        }
    }

    /// Chunks not ready to be loaned (without taking back returns first).
    #[inline]
    pub(crate) fn in_use(&self) -> usize {
        match &self.classes[..] {
            [only] => only.chunks - only.free.len(),
            all => all.iter().map(|cf| cf.chunks - cf.free.len()).sum(),
        }
    }

    /// Chunks of class `class` in the pool, and how many of them are not free.
    pub(crate) fn class_counts(&self, class: usize) -> (usize, usize) {
        self.classes.get(class).map_or((0, 0), |cf| {
            (cf.chunks, cf.chunks - cf.free.len() - cf.deferred.len())
        })
    }

    /// Free chunks of class `class` (ready to be loaned, or pinned).
    pub(crate) fn free_count(&self, class: usize) -> usize {
        self.classes
            .get(class)
            .map_or(0, |cf| cf.free.len() + cf.deferred.len())
    }

    /// Chunks in the pool, of every class.
    pub(crate) fn total(&self) -> usize {
        self.classes.iter().map(|cf| cf.chunks).sum()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let mut st = PoolStats {
            total: self.total(),
            ..PoolStats::default()
        };
        for cf in &self.classes {
            st.free += cf.free.len() + cf.deferred.len();
            st.pinned += cf.deferred.len();
        }
        for c in self
            .states0
            .iter()
            .chain(self.states.iter().flat_map(|s| s.iter()))
        {
            st.loaned += (c.flags & LOANED != 0) as usize;
            st.history += (c.flags & IN_HISTORY != 0) as usize;
            st.delivered += (c.holders != 0) as usize;
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoPins(Vec<ChunkHeader>, Vec<AtomicU64>);

    impl ChunkAccess for NoPins {
        fn header(&self, _: u32) -> &ChunkHeader {
            &self.0[0]
        }
        fn pin(&self, _: u32) -> &AtomicU64 {
            &self.1[0]
        }
    }

    fn no_pins() -> NoPins {
        NoPins(
            vec![ChunkHeader {
                seq: AtomicU64::new(0),
                len: AtomicU64::new(0),
                next: AtomicU64::new(0),
                tag: AtomicU64::new(0),
            }],
            vec![AtomicU64::new(0)],
        )
    }

    #[test]
    fn classes_hand_out_their_own_chunks_and_segments_come_and_go() {
        let segs = no_pins();
        let mut pool = Pool::new(2, false);
        pool.add_segment(0, 0, 2);
        pool.add_segment(1, 1, 1);
        assert_eq!(pool.alloc(1, &segs), Some(join(1, 0)));
        assert_eq!(pool.alloc(1, &segs), None, "class 1 has one chunk");
        assert_eq!(pool.alloc(0, &segs), Some(join(0, 0)));
        pool.add_segment(2, 1, 2);
        assert_eq!(pool.alloc(1, &segs), Some(join(2, 0)));
        assert_eq!(pool.total(), 5);
        assert!(!pool.retire(2, &segs), "a loaned chunk keeps its segment");
        pool.end_loan(join(2, 0));
        assert!(pool.retire(2, &segs));
        assert_eq!(pool.total(), 3);
        assert_eq!(
            pool.alloc(1, &segs),
            None,
            "retired chunks are never handed out"
        );
        pool.publish(join(1, 0), 0b10);
        pool.give_back(u64::from(join(1, 0)), 0b10);
        assert_eq!(pool.alloc(1, &segs), Some(join(1, 0)));
        pool.give_back(u64::from(join(200, 3)), 1);
        pool.give_back(u64::MAX, 1);
        assert_eq!(pool.ignored, 2);
        assert_eq!(pool.segments().collect::<Vec<_>>(), [(0, 0), (1, 1)]);
    }
}
