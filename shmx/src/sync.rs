//! The atomics that shared-memory protocols use, swapped for `loom`'s under `cfg(loom)` so the
//! ring and pin protocols can be model-checked with the very code that runs in production.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Tells the CPU (or loom's scheduler) that this thread is busy-waiting.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
