//! The publisher's private bookkeeping of its chunks: who holds each one, and the free list.
//!
//! It lives in the publisher's own heap, never in shared memory, so a crashed or hostile peer
//! cannot corrupt it. A chunk is free when no subscriber holds it (delivered and not yet
//! returned), it is not part of the history, and it is not loaned. Pins of late subscribers
//! (PROTOCOLS.md §4) are checked when a free chunk is about to be reused.

use crate::data::DataSegment;
use crate::pins;

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
    /// Chunks in the pool.
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

/// A stack of free chunk indices with room for every chunk, so a push never allocates.
///
/// The top stays the top until it is popped: a chunk pushed goes in just below it. Each
/// publish announces the top to subscribers as the chunk the next loan will take
/// ([`ChunkHeader::next`](crate::data::ChunkHeader)), and chunks taken back in between must
/// not make that announcement wrong.
struct FreeStack {
    slots: Box<[u32]>,
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
}

pub(crate) struct Pool {
    chunks: Vec<ChunkState>,
    free: FreeStack,
    deferred: Vec<u32>,
    /// Whether subscribers may pin chunks (the publisher keeps history).
    pins_possible: bool,
    /// Return-ring entries that named a chunk the subscriber did not hold.
    pub ignored: u64,
}

impl Pool {
    pub(crate) fn new(count: usize, pins_possible: bool) -> Pool {
        Pool {
            chunks: vec![ChunkState::default(); count],
            // Pop from the end: hand out low indices first.
            free: FreeStack {
                slots: (0..count as u32).rev().collect(),
                len: count,
            },
            deferred: Vec::new(),
            pins_possible,
            ignored: 0,
        }
    }

    /// Takes a chunk to loan, or `None` when every chunk is in use.
    #[inline]
    pub(crate) fn alloc(&mut self, data: &DataSegment) -> Option<u32> {
        if !self.pins_possible {
            if let Some(c) = self.free.pop() {
                self.set_loaned(c);
                return Some(c);
            }
        }
        self.alloc_slow(data)
    }

    #[cold]
    fn alloc_slow(&mut self, data: &DataSegment) -> Option<u32> {
        while let Some(c) = self.free.pop() {
            if self.pins_possible
                && !pins::invalidate_and_check(&data.header(c as usize).seq, data.pin(c as usize))
            {
                self.deferred.push(c);
                continue;
            }
            self.set_loaned(c);
            return Some(c);
        }
        for i in (0..self.deferred.len()).rev() {
            let c = self.deferred[i];
            if pins::unpinned(data.pin(c as usize)) {
                self.deferred.swap_remove(i);
                self.set_loaned(c);
                return Some(c);
            }
        }
        None
    }

    #[inline(always)]
    fn set_loaned(&mut self, c: u32) {
        if let Some(s) = self.chunks.get_mut(c as usize) {
            s.flags |= LOANED;
        }
    }

    #[inline(always)]
    fn maybe_free(&mut self, c: u32) {
        if self.chunks.get(c as usize).is_some_and(|s| s.is_free()) {
            self.free.push(c);
        }
    }

    /// The chunk the `k + 1`-th `alloc` from now is likely to return (`k = 0`: the next).
    #[inline]
    pub(crate) fn free_ahead(&self, k: usize) -> Option<u32> {
        self.free.below_top(k)
    }

    /// A loan ends, published or not.
    #[inline]
    pub(crate) fn end_loan(&mut self, c: u32) {
        self.chunks[c as usize].flags &= !LOANED;
        self.maybe_free(c);
    }

    pub(crate) fn set_history(&mut self, c: u32, on: bool) {
        let s = &mut self.chunks[c as usize];
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
        if let Some(s) = self.chunks.get_mut(c as usize) {
            s.holders |= holders;
            s.flags &= !LOANED;
            if s.is_free() {
                self.free.push(c);
            }
        }
    }

    /// Subscriber bit `bit` gives back chunk index `c` (read from shared memory: checked).
    #[inline]
    pub(crate) fn give_back(&mut self, c: u64, bit: u64) {
        match self.chunks.get_mut(c as usize) {
            Some(s) if s.holders & bit != 0 => {
                s.holders &= !bit;
                if s.is_free() {
                    self.free.push(c as u32);
                }
            }
            _ => self.ignored += 1,
        }
    }

    /// Subscriber bit `bit` is gone: every chunk it held comes back.
    pub(crate) fn forget_holder(&mut self, bit: u64) {
        for c in 0..self.chunks.len() {
            if self.chunks[c].holders & bit != 0 {
                self.chunks[c].holders &= !bit;
                self.maybe_free(c as u32);
            }
        }
    }

    /// Chunks not ready to be loaned (without taking back returns first).
    #[inline]
    pub(crate) fn in_use(&self) -> usize {
        self.chunks.len() - self.free.len()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let mut st = PoolStats {
            total: self.chunks.len(),
            free: self.free.len() + self.deferred.len(),
            pinned: self.deferred.len(),
            ..PoolStats::default()
        };
        for c in &self.chunks {
            st.loaned += (c.flags & LOANED != 0) as usize;
            st.history += (c.flags & IN_HISTORY != 0) as usize;
            st.delivered += (c.holders != 0) as usize;
        }
        st
    }
}
