//! Lock-free index rings in shared memory (PROTOCOLS.md §1 and §2).
//!
//! Both rings carry `u64` entries in a power-of-two array of `AtomicU64` slots. Indices
//! (`head`, `tail`) only grow; entry `i` lives in slot `i & mask`. A `u64` never wraps in
//! practice, so there is no ABA problem.
//!
//! - [`DeliveryRing`]: publisher → subscriber. One producer owns `head`; `tail` moves by CAS,
//!   by the consumer when it takes and by the producer when it steals the oldest entry
//!   (`Overflow::DropOldest`). A consumer that read an entry just before the producer stole it
//!   fails its CAS and retries, so it never returns a stolen entry or one entry twice. The
//!   producer never reloads `tail` between its full check and its steal (reloading is a real
//!   bug: if the consumer drains in between, the producer would "reclaim" an entry already
//!   taken).
//! - [`ReturnRing`]: subscriber → publisher, a plain single-producer single-consumer ring.
//!
//! Each producer keeps its own `head` (and a cached copy of `tail`) in private memory and
//! only *publishes* it to shared memory, so a peer that scribbles on the shared copy cannot
//! make this side index out of bounds: every slot access is masked, and every entry read is
//! validated by the caller before use.
//!
//! **Laps instead of `head`.** A delivery-ring entry carries, in its top 4 bits, the *lap* of
//! the position it was written for (`(position / capacity + 1) mod 16`). A consumer at
//! position `t` reads slot `t & mask` and accepts it only if its lap is `t`'s: until the
//! producer writes position `t`, the slot holds position `t - capacity` (one lap earlier) or
//! the zeroes of a fresh file (lap 0, never the first lap's 1). So the consumer never reads
//! `head`: a message costs it one cache line for the slot instead of two for head and slot.
//! The producer likewise re-reads `tail` only when its cached copy says the ring is full.
//! `head` is still published, for the producer's own bookkeeping and for tools.
//!
//! **`seen`: room without touching `tail`.** A delivery ring has a third word, on a line
//! of its own: `seen`, which the consumer sets to its `tail` when it finds the ring empty
//! (`publish_seen`, Release), and which only ever lags `tail` (`tail` only grows, and a
//! steal moves `tail` without it). The producer looks for room in `seen` first (Acquire,
//! so the consumer's reads of the slots before `seen` happen before their reuse) and reads
//! `tail` only if `seen` shows the ring full, as before the steal. Why: each read of
//! `tail` by the producer takes the line from the consumer, whose next CAS there then
//! waits for it, on the path of the very sample it is taking (~10 ns of the median 8-byte
//! one-way latency between two processes, measured with the producer never reading
//! `tail`). The consumer writes `seen` while idle, not with each take: a store to a line
//! the producer read also waits for the line, and stores become visible in order, so the
//! answer it publishes next would wait behind it. A consumer that never finds its ring
//! empty never writes `seen`, and its producer reads `tail` when the ring looks full, as
//! it always did.
//!
//! The protocols are model-checked by loom in `tests` (ring/tests.rs; run with
//! `RUSTFLAGS="--cfg loom" cargo test -p shmx --release --lib ring`).

use crate::sync::{AtomicU64, Ordering};

/// Ring entries carry a chunk index in their low 24 bits, 18 bits of the publisher's and 18
/// bits of the subscriber's incarnation above it (so an entry left over from an earlier
/// occupant of a slot is recognised and ignored), and the lap in the top 4 bits.
pub(crate) const CHUNK_MASK: u64 = (1 << 24) - 1;
const LAP_SHIFT: u32 = 60;
const PAYLOAD_MASK: u64 = (1 << LAP_SHIFT) - 1;

/// The tag of every entry between publisher incarnation `pub_inc` and subscriber `sub_inc`.
pub(crate) fn entry_tag(pub_inc: u64, sub_inc: u64) -> u64 {
    ((pub_inc & 0x3_FFFF) << 24) | ((sub_inc & 0x3_FFFF) << 42)
}

/// A producer's private view of a ring: its `head` and the last `tail` it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Producer {
    /// Next position to write.
    pub head: u64,
    /// A lower bound of the shared `tail`.
    pub tail_cache: u64,
}

/// Where a ring's words are, kept by a participant that keeps their mapping alive itself, so
/// that the hot path builds a ring view without recomputing offsets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RingLoc {
    head: *const AtomicU64,
    tail: *const AtomicU64,
    seen: *const AtomicU64,
    slots: *const AtomicU64,
    len: usize,
    mask: u64,
    shift: u32,
}

impl RingLoc {
    fn of(
        head: &AtomicU64,
        tail: &AtomicU64,
        seen: &AtomicU64,
        slots: &[AtomicU64],
        mask: u64,
        shift: u32,
    ) -> Self {
        RingLoc {
            head,
            tail,
            seen,
            slots: slots.as_ptr(),
            len: slots.len(),
            mask,
            shift,
        }
    }

    /// The delivery ring at this location.
    ///
    /// # Safety
    /// The mapping this location was taken from must still be mapped, for as long as the
    /// returned view is used.
    #[inline(always)]
    pub(crate) unsafe fn delivery<'a>(self) -> DeliveryRing<'a> {
        // SAFETY: the caller keeps the mapping alive; the pointers and length came from
        // references and a slice into it.
        unsafe {
            DeliveryRing {
                head: &*self.head,
                tail: &*self.tail,
                seen: &*self.seen,
                slots: std::slice::from_raw_parts(self.slots, self.len),
                mask: self.mask,
                shift: self.shift,
            }
        }
    }

    /// The return ring at this location.
    ///
    /// # Safety
    /// As for [`RingLoc::delivery`].
    #[inline(always)]
    pub(crate) unsafe fn returns<'a>(self) -> ReturnRing<'a> {
        // SAFETY: as in `delivery`.
        unsafe {
            ReturnRing {
                head: &*self.head,
                tail: &*self.tail,
                slots: std::slice::from_raw_parts(self.slots, self.len),
                mask: self.mask,
            }
        }
    }
}

/// A view of a delivery ring's words, wherever they live.
///
/// Invariant of both ring views: `slots` is not empty and `mask == slots.len() - 1`, so
/// `position & mask` is always a valid slot index (the constructors check it once).
#[derive(Clone, Copy)]
pub(crate) struct DeliveryRing<'a> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    /// A lower bound of `tail` that the consumer publishes when it finds the ring empty
    /// (see the module docs): what the producer reads for room.
    seen: &'a AtomicU64,
    slots: &'a [AtomicU64],
    mask: u64,
    shift: u32,
}

/// The slot of `position` in `slots` whose length is `mask + 1`.
#[inline(always)]
fn slot_of(slots: &[AtomicU64], mask: u64, position: u64) -> &AtomicU64 {
    let i = (position & mask) as usize;
    debug_assert!(i < slots.len());
    // SAFETY: the ring views' invariant: `mask == slots.len() - 1` with `slots` non-empty,
    // so `position & mask <= slots.len() - 1`.
    unsafe { slots.get_unchecked(i) }
}

/// What a push into a delivery ring did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// The entry is in the ring.
    Pushed,
    /// The entry is in the ring; the oldest entry (returned) was stolen to make room and is
    /// now the producer's to reclaim.
    PushedAfterSteal(u64),
    /// The ring held `depth` entries; nothing was pushed.
    Full,
}

impl<'a> DeliveryRing<'a> {
    /// A view over `head`, `tail`, `seen` and `slots` (`slots.len()` a power of two).
    ///
    /// # Panics
    /// If `slots` is empty or its length not a power of two (validated layouts never are).
    pub(crate) fn new(
        head: &'a AtomicU64,
        tail: &'a AtomicU64,
        seen: &'a AtomicU64,
        slots: &'a [AtomicU64],
    ) -> Self {
        assert!(
            slots.len().is_power_of_two(),
            "ring capacity is a power of two"
        );
        DeliveryRing {
            head,
            tail,
            seen,
            slots,
            mask: slots.len() as u64 - 1,
            shift: slots.len().trailing_zeros(),
        }
    }

    #[inline(always)]
    fn slot(&self, position: u64) -> &'a AtomicU64 {
        slot_of(self.slots, self.mask, position)
    }

    #[inline(always)]
    fn lap(&self, position: u64) -> u64 {
        ((position >> self.shift).wrapping_add(1) & 0xF) << LAP_SHIFT
    }

    /// Where this ring's words are.
    pub(crate) fn loc(&self) -> RingLoc {
        RingLoc::of(
            self.head, self.tail, self.seen, self.slots, self.mask, self.shift,
        )
    }

    /// The state a producer starts with on this ring. If an earlier producer died between
    /// writing a slot and publishing `head`, the consumer may already have taken that entry
    /// (it goes by the slot's lap, not by `head`) and be ahead of `head`: start from the
    /// consumer's position then, or every later entry would land behind it, unseen.
    pub(crate) fn producer(&self) -> Producer {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let ahead = tail.wrapping_sub(head);
        let head = if ahead != 0 && ahead <= self.slots.len() as u64 {
            tail
        } else {
            head
        };
        Producer {
            head,
            tail_cache: tail,
        }
    }

    /// Number of queued entries, read fresh (not from the cache).
    pub(crate) fn len_from(&self, head: u64) -> u64 {
        head.wrapping_sub(self.tail.load(Ordering::Acquire))
    }

    /// Producer: whether a push would find room (re-reading `tail` only if the cache says
    /// the ring is full).
    #[inline]
    pub(crate) fn has_room(&self, p: &mut Producer, depth: u64) -> bool {
        if p.head.wrapping_sub(p.tail_cache) < depth || self.room_seen(p, depth) {
            return true;
        }
        p.tail_cache = self.tail.load(Ordering::Acquire);
        p.head.wrapping_sub(p.tail_cache) < depth
    }

    /// Producer: raises the cached `tail` to what the consumer last published in `seen`;
    /// whether that shows room. Reads only `seen`: the `tail` line stays the consumer's
    /// alone, so its CAS there never waits for the line to come back.
    #[inline]
    fn room_seen(&self, p: &mut Producer, depth: u64) -> bool {
        let seen = self.seen.load(Ordering::Acquire);
        // `seen` lags `tail`, and a steal moved our cache past it: keep the larger.
        if seen.wrapping_sub(p.tail_cache) as i64 > 0 {
            p.tail_cache = seen;
        }
        p.head.wrapping_sub(p.tail_cache) < depth
    }

    /// Producer: pushes `entry` (which must leave the top 4 bits clear) if the cached `tail`
    /// shows room for it; `false` (nothing pushed) otherwise, and [`push`](Self::push) decides.
    /// The common case of a publish, kept small enough to inline.
    #[inline(always)]
    pub(crate) fn try_push(&self, p: &mut Producer, depth: u64, entry: u64) -> bool {
        debug_assert_eq!(entry & !PAYLOAD_MASK, 0);
        let h = p.head;
        if h.wrapping_sub(p.tail_cache) >= depth {
            return false;
        }
        self.slot(h).store(entry | self.lap(h), Ordering::Release);
        self.head.store(h.wrapping_add(1), Ordering::Release);
        p.head = h.wrapping_add(1);
        true
    }

    /// Producer: pushes `entry` (which must leave the top 4 bits clear) if fewer than `depth`
    /// entries are queued; when full and `steal` is set, first takes the oldest entry (once;
    /// `depth` must be at least 1).
    #[inline]
    pub(crate) fn push(&self, p: &mut Producer, depth: u64, entry: u64, steal: bool) -> Push {
        debug_assert_eq!(entry & !PAYLOAD_MASK, 0);
        let h = p.head;
        let mut stolen = None;
        if h.wrapping_sub(p.tail_cache) >= depth && !self.room_seen(p, depth) {
            let t = self.tail.load(Ordering::Acquire);
            p.tail_cache = t;
            if h.wrapping_sub(t) >= depth {
                if !steal {
                    return Push::Full;
                }
                // Same `t` as the full check: never reload here (see PROTOCOLS.md §1).
                let old = self.slot(t).load(Ordering::Acquire);
                match self.tail.compare_exchange(
                    t,
                    t.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        stolen = Some(old & PAYLOAD_MASK);
                        p.tail_cache = t.wrapping_add(1);
                    }
                    // The consumer took entry `t`: there is room now.
                    Err(now) => p.tail_cache = now,
                }
            }
        }
        self.slot(h).store(entry | self.lap(h), Ordering::Release);
        self.head.store(h.wrapping_add(1), Ordering::Release);
        p.head = h.wrapping_add(1);
        match stolen {
            Some(old) => Push::PushedAfterSteal(old),
            None => Push::Pushed,
        }
    }

    /// Producer: if the cache says the ring holds `depth` entries, raises it from `seen`
    /// (never from `tail`: see the module docs), so that the next `push` likely need not.
    #[inline]
    pub(crate) fn refresh_tail(&self, p: &mut Producer, depth: u64) {
        if p.head.wrapping_sub(p.tail_cache) >= depth {
            self.room_seen(p, depth);
        }
    }

    /// A new consumer, before any producer knows it: drops whatever an earlier occupant of
    /// its slot left queued (those entries carry the old tags and would only be skipped one
    /// by one, while taking room in the queue).
    pub(crate) fn skip_all(&self) {
        let head = self.head.load(Ordering::Acquire);
        self.tail.store(head, Ordering::Release);
        self.seen.store(head, Ordering::Release);
    }

    /// Consumer, finding the ring empty: publishes its position in `seen` for the producer's
    /// room checks, if it moved. Done here, while idle, rather than with each take: a store
    /// to a line the producer has read waits for the line, and stores become visible in
    /// order, so the answer a consumer publishes right after taking would wait too.
    #[inline]
    pub(crate) fn publish_seen(&self) {
        let t = self.tail.load(Ordering::Relaxed);
        if self.seen.load(Ordering::Relaxed) != t {
            // Release: our reads of the slots before `t` happen before the producer, having
            // read this, writes them again.
            self.seen.store(t, Ordering::Release);
        }
    }

    /// Consumer: takes the oldest entry, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Option<u64> {
        loop {
            let t = self.tail.load(Ordering::Acquire);
            let e = self.slot(t).load(Ordering::Acquire);
            if e & !PAYLOAD_MASK != self.lap(t) {
                return None;
            }
            if self
                .tail
                .compare_exchange(t, t.wrapping_add(1), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(e & PAYLOAD_MASK);
            }
            crate::sync::spin_hint();
        }
    }

    /// Consumer of a ring whose producer never steals (its overflow policy is not
    /// drop-oldest): takes the oldest entry with a plain store of `tail` instead of a CAS.
    /// A producer that steals anyway only loses its own entries; the consumer still
    /// validates every entry it reads.
    #[inline]
    pub(crate) fn pop_unshared(&self) -> Option<u64> {
        let t = self.tail.load(Ordering::Relaxed);
        let e = self.slot(t).load(Ordering::Acquire);
        if e & !PAYLOAD_MASK != self.lap(t) {
            return None;
        }
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        Some(e & PAYLOAD_MASK)
    }

    /// Consumer: the entry `ahead` positions past the oldest one, if it has been written,
    /// without taking it (used to prefetch what comes next).
    #[inline]
    pub(crate) fn peek(&self, ahead: u64) -> Option<u64> {
        let t = self.tail.load(Ordering::Relaxed).wrapping_add(ahead);
        let e = self.slot(t).load(Ordering::Relaxed);
        (e & !PAYLOAD_MASK == self.lap(t)).then_some(e & PAYLOAD_MASK)
    }

    /// Consumer: whether no entry is waiting.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        let t = self.tail.load(Ordering::Acquire);
        self.slot(t).load(Ordering::Acquire) & !PAYLOAD_MASK != self.lap(t)
    }
}

/// A view of a single-producer single-consumer return ring.
#[derive(Clone, Copy)]
pub(crate) struct ReturnRing<'a> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    slots: &'a [AtomicU64],
    mask: u64,
}

impl<'a> ReturnRing<'a> {
    /// A view over `head`, `tail` and `slots` (`slots.len()` a power of two).
    ///
    /// # Panics
    /// If `slots` is empty or its length not a power of two (validated layouts never are).
    pub(crate) fn new(head: &'a AtomicU64, tail: &'a AtomicU64, slots: &'a [AtomicU64]) -> Self {
        assert!(
            slots.len().is_power_of_two(),
            "ring capacity is a power of two"
        );
        ReturnRing {
            head,
            tail,
            slots,
            mask: slots.len() as u64 - 1,
        }
    }

    #[inline(always)]
    fn slot(&self, position: u64) -> &'a AtomicU64 {
        slot_of(self.slots, self.mask, position)
    }

    /// The state a producer starts with on this ring.
    pub(crate) fn producer(&self) -> Producer {
        Producer {
            head: self.head.load(Ordering::Acquire),
            tail_cache: self.tail.load(Ordering::Acquire),
        }
    }

    /// Where this ring's words are.
    pub(crate) fn loc(&self) -> RingLoc {
        // A return ring has no `seen` word: the field is never read through this location.
        RingLoc::of(self.head, self.tail, self.tail, self.slots, self.mask, 0)
    }

    /// The consumer's `tail`, read once when a consumer starts on this ring.
    pub(crate) fn load_tail(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Producer: pushes `entry`, or returns `false` when the ring is full.
    #[inline]
    pub(crate) fn push(&self, p: &mut Producer, entry: u64) -> bool {
        let h = p.head;
        let cap = self.slots.len() as u64;
        if h.wrapping_sub(p.tail_cache) >= cap {
            p.tail_cache = self.tail.load(Ordering::Acquire);
            if h.wrapping_sub(p.tail_cache) >= cap {
                return false;
            }
        }
        self.slot(h).store(entry, Ordering::Relaxed);
        self.head.store(h.wrapping_add(1), Ordering::Release);
        p.head = h.wrapping_add(1);
        true
    }

    /// Consumer: hands every queued entry to `f`, then frees their slots at once. Returns
    /// `false` if the shared `head` was impossible (more entries than slots): the entries are
    /// skipped, as a corrupt peer's would be.
    #[inline]
    pub(crate) fn drain(&self, tail: &mut u64, mut f: impl FnMut(u64)) -> bool {
        let t0 = *tail;
        let h = self.head.load(Ordering::Acquire);
        if h == t0 {
            return true;
        }
        let n = h.wrapping_sub(t0);
        if n > self.slots.len() as u64 {
            *tail = h;
            self.tail.store(h, Ordering::Release);
            return false;
        }
        let mut t = t0;
        while t != h {
            f(self.slot(t).load(Ordering::Relaxed));
            t = t.wrapping_add(1);
        }
        *tail = h;
        self.tail.store(h, Ordering::Release);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests;
