//! History for late subscribers without the publisher's help (PROTOCOLS.md §4).
//!
//! Each chunk has a pin word (a bit per subscriber slot) in the writable pin area of its
//! data segment. A late subscriber pins a history chunk and then confirms that the chunk's
//! header still carries the sequence the history list promised; the publisher, before reusing
//! a free chunk, invalidates its sequence and then looks for pins.
//!
//! Dekker argument: both sides store, issue `fence(SeqCst)`, then load the other side's word.
//! Either the subscriber's pin is visible to the publisher's check (the chunk is parked, not
//! reused), or the publisher's invalidation is visible to the subscriber's check (it unpins
//! and skips; sequences only grow, so a reused chunk never shows the old sequence again). A
//! parked chunk is reused only after an `Acquire` load sees no pin, which pairs with the
//! subscriber's `Release` unpin, so the subscriber's reads happen before the rewrite.

use crate::sync::{fence, AtomicU64, Ordering};

/// Sequence number that no published sample carries (sequences start at 1).
pub(crate) const NO_SEQUENCE: u64 = 0;

/// Subscriber: pins the chunk for `bit` if its header still carries `expected`. Returns
/// whether it is pinned (and so safe to read until [`unpin`]).
#[inline]
pub(crate) fn pin_if_current(pin: &AtomicU64, seq: &AtomicU64, bit: u64, expected: u64) -> bool {
    if expected == NO_SEQUENCE {
        return false;
    }
    pin.fetch_or(bit, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if seq.load(Ordering::SeqCst) == expected {
        true
    } else {
        unpin(pin, bit);
        false
    }
}

/// Subscriber: releases its pin; its reads of the chunk happen before any reuse.
#[inline]
pub(crate) fn unpin(pin: &AtomicU64, bit: u64) {
    pin.fetch_and(!bit, Ordering::Release);
}

/// Publisher, before reusing a free chunk: invalidates its sequence and reports whether no
/// subscriber pins it. If not, park the chunk and retry later with [`unpinned`].
#[inline]
pub(crate) fn invalidate_and_check(seq: &AtomicU64, pin: &AtomicU64) -> bool {
    seq.store(NO_SEQUENCE, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    pin.load(Ordering::SeqCst) == 0
}

/// Publisher: whether a parked (already invalidated) chunk is free of pins now.
#[inline]
pub(crate) fn unpinned(pin: &AtomicU64) -> bool {
    pin.load(Ordering::Acquire) == 0
}

#[cfg(all(test, loom))]
mod model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Chunk {
        seq: AtomicU64,
        pin: AtomicU64,
        payload: UnsafeCell<u64>,
    }

    /// A late subscriber pins chunk (seq 5, payload 50) while the publisher reuses it for
    /// seq 6: the subscriber either skips it or reads 50, and loom reports a data race on the
    /// payload if the publisher could rewrite it while it is read.
    #[test]
    fn a_pinned_chunk_is_never_rewritten_under_a_reader() {
        loom::model(|| {
            let c = Arc::new(Chunk {
                seq: AtomicU64::new(5),
                pin: AtomicU64::new(0),
                payload: UnsafeCell::new(50),
            });
            let subscriber = {
                let c = c.clone();
                loom::thread::spawn(move || {
                    if pin_if_current(&c.pin, &c.seq, 1, 5) {
                        // SAFETY (model): the pin keeps the publisher from writing.
                        let v = c.payload.with(|p| unsafe { *p });
                        assert_eq!(v, 50);
                        unpin(&c.pin, 1);
                    }
                })
            };
            if !invalidate_and_check(&c.seq, &c.pin) {
                while !unpinned(&c.pin) {
                    loom::thread::yield_now();
                }
            }
            // SAFETY (model): no pin is visible, so no subscriber reads the payload.
            c.payload.with_mut(|p| unsafe { *p = 60 });
            c.seq.store(6, Ordering::Release);
            subscriber.join().unwrap();
        });
    }
}
