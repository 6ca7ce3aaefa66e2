//! Sleeping and waking a subscriber (PROTOCOLS.md §3).
//!
//! Each subscriber slot holds two words: `wake`, the futex word, and `sleeping`. A subscriber
//! that found nothing after spinning publishes `sleeping = 1`, issues a `SeqCst` fence, looks
//! at its rings once more and only then sleeps on `wake` with the value it read *before*
//! setting `sleeping`. A publisher, after pushing, issues a `SeqCst` fence and reads
//! `sleeping`; only if it is set does it bump `wake` and make the `futex_wake` system call.
//! The two fences form Dekker's pattern: either the subscriber sees the new entry, or the
//! publisher sees `sleeping == 1` and moves `wake`, so `futex_wait` returns at once. No lost
//! wake-up, and no system call while nobody sleeps.
//!
//! The futex lives in a shared mapping, so the `PRIVATE` flag must not be used. Targets other
//! than Linux fall back to sleeping in short steps.

use crate::sync::{AtomicU32, Ordering};
use std::time::Duration;

/// Sleeps until `word` moves away from `expected`, a wake arrives, or `timeout` passes
/// (spurious returns are allowed: callers re-check their condition).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        use rustix::thread::futex;
        let ts = timeout.map(|d| rustix::fs::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        // EAGAIN (value moved), EINTR and ETIMEDOUT all mean "look again".
        let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    {
        let step = Duration::from_micros(200);
        let d = timeout.map_or(step, |t| t.min(step));
        if word.load(Ordering::Acquire) == expected {
            std::thread::sleep(d);
        }
    }
}

/// Wakes one sleeper on `word` after moving it, so a sleeper that is about to wait with the
/// old value returns at once.
pub(crate) fn wake(word: &AtomicU32) {
    word.fetch_add(1, Ordering::Release);
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), 1);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wait_returns_when_the_value_moved_already() {
        let w = AtomicU32::new(5);
        let t = Instant::now();
        wait(&w, 4, Some(Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn wake_releases_a_sleeper() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let sleeper = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                wait(&w2, 0, Some(Duration::from_secs(10)));
            }
        });
        wake(&w);
        sleeper.join().unwrap();
        assert_eq!(w.load(Ordering::Relaxed), 1);
    }
}
