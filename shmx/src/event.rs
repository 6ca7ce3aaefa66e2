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
//! **Asymmetric barriers.** A `SeqCst` fence after every publish caps throughput: it waits
//! for the stores of the message to reach the subscriber's core, so publishes cannot overlap.
//! On Linux the expensive half of Dekker's pattern moves to the sleeper instead: a subscriber
//! that can, issues `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` after announcing, which
//! runs a full barrier on every core that runs a process registered for it, and says so in its
//! slot; a publisher whose process registered (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`)
//! then needs only a compiler fence before reading `sleeping`, for the subscribers that said
//! so. The argument is the usual one (liburcu, folly): if the publisher's load of `sleeping`
//! ran before the barrier the sleeper forced on its core, its earlier push was made visible by
//! that barrier, before the sleeper looks at its rings; if it ran after, it sees
//! `sleeping == 1`. The sleeper pays a few microseconds, only on its way to sleep. Loom cannot
//! model `membarrier`; it checks the fence-on-both-sides variant, which every other
//! combination falls back to.
//!
//! The futex lives in a shared mapping, so the `PRIVATE` flag must not be used. Targets other
//! than Linux fall back to sleeping in short steps; building with
//! `RUSTFLAGS="--cfg shmx_force_poll"` selects that fallback on Linux too, so CI tests it.

use crate::sync::{fence, AtomicU32, Ordering};
use std::time::Duration;

/// Bit of a subscriber slot's `sleeping` word: the subscriber sleeps on its futex (or is
/// about to).
pub(crate) const SLEEPING: u32 = 1;
/// Bit of a subscriber slot's `sleeping` word: the subscriber waits on its descriptor (see
/// `signal`); cleared by the first publisher that sees it, which then sends the wake-up.
pub(crate) const ARMED: u32 = 2;

/// Whether this process can force a barrier on publishers' cores before it sleeps
/// (`membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` is available). Recorded in each
/// subscriber's slot.
pub(crate) fn sleeper_forces_barrier() -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    {
        use rustix::thread::{membarrier_query, MembarrierCommand};
        static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *CAN.get_or_init(|| membarrier_query().contains_command(MembarrierCommand::GlobalExpedited))
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(shmx_force_poll))))]
    {
        false
    }
}

/// Whether publishers of this process may use a compiler fence instead of a `SeqCst` fence
/// for subscribers that force barriers: the process registered for global expedited
/// membarrier (once).
pub(crate) fn publisher_light_barrier() -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    {
        use rustix::thread::{membarrier, MembarrierCommand};
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *REGISTERED.get_or_init(|| {
            sleeper_forces_barrier()
                && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
        })
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(shmx_force_poll))))]
    {
        false
    }
}

/// Subscriber, before sleeping: announces it and returns the `wake` value to sleep on, and
/// whether the announcement is sound (`false` if the promised membarrier failed: then sleep
/// only briefly). The caller must look at its rings once more after this and sleep only if
/// they are empty.
#[inline]
pub(crate) fn announce_sleep(wake: &AtomicU32, sleeping: &AtomicU32, forced: bool) -> (u32, bool) {
    let v = wake.load(Ordering::Acquire);
    (v, announce(sleeping, SLEEPING, forced))
}

/// Subscriber: sets `bit` ([`SLEEPING`] or [`ARMED`]) in `sleeping` and issues the barrier
/// that pairs with the publisher's (see the module documentation); `false` if the promised
/// membarrier failed. The caller must look at its rings once more afterwards.
#[inline]
pub(crate) fn announce(sleeping: &AtomicU32, bit: u32, forced: bool) -> bool {
    sleeping.fetch_or(bit, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    if forced {
        use rustix::thread::{membarrier, MembarrierCommand};
        return membarrier(MembarrierCommand::GlobalExpedited).is_ok();
    }
    let _ = forced;
    true
}

/// Subscriber, after sleeping or deciding not to.
#[inline]
pub(crate) fn end_sleep(sleeping: &AtomicU32) {
    sleeping.fetch_and(!SLEEPING, Ordering::Relaxed);
}

/// Publisher, after its pushes: the barrier that pairs with [`announce_sleep`]'s. Call once,
/// then [`notify`] each subscriber pushed to. `light` only if [`publisher_light_barrier`]
/// holds and every subscriber to notify forces barriers when it sleeps.
#[inline]
pub(crate) fn before_notify(light: bool) {
    if light {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// Publisher: wakes the subscriber if it sleeps on its futex or is about to, and returns
/// `true` if it is armed on its descriptor, which this call disarmed: the caller then sends it
/// a wake-up (see `signal`). Only the first publisher to see an arm pays for it.
#[inline]
pub(crate) fn notify(wake_word: &AtomicU32, sleeping: &AtomicU32) -> bool {
    let s = sleeping.load(Ordering::Relaxed);
    if s == 0 {
        return false;
    }
    notify_sleeper(wake_word, sleeping, s)
}

#[cold]
fn notify_sleeper(wake_word: &AtomicU32, sleeping: &AtomicU32, seen: u32) -> bool {
    if seen & SLEEPING != 0 {
        wake(wake_word);
    }
    seen & ARMED != 0 && sleeping.fetch_and(!ARMED, Ordering::Relaxed) & ARMED != 0
}

/// Subscriber, awake again (spinning) after arming: takes its arm back, so that publishers
/// make no system call for it meanwhile. The same atomic operation as a publisher's in
/// [`notify`]: exactly one of them owns an arm. `false` if it was not armed (a publisher took
/// the arm, and its wake-up is on its way).
#[inline]
pub(crate) fn disarm(sleeping: &AtomicU32) -> bool {
    sleeping.fetch_and(!ARMED, Ordering::Relaxed) & ARMED != 0
}

/// Publisher, after [`notify`] took a subscriber's arm: if the wake-up could not be sent
/// (not because the subscriber is gone), puts the arm back, so that the next publish tries
/// again instead of leaving the subscriber asleep with samples waiting.
#[cfg(not(loom))]
pub(crate) fn rearm_if_failed(sleeping: &AtomicU32, sent: crate::signal::Sent) {
    if sent == crate::signal::Sent::Failed {
        sleeping.fetch_or(ARMED, Ordering::Relaxed);
    }
}

/// Sleeps until `word` moves away from `expected`, a wake arrives, or `timeout` passes
/// (spurious returns are allowed: callers re-check their condition).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    {
        use rustix::thread::futex;
        let ts = timeout.map(|d| rustix::fs::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        // EAGAIN (value moved), EINTR and ETIMEDOUT all mean "look again".
        let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(shmx_force_poll))))]
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
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), 1);
    }
}

/// Moves `word` and wakes every sleeper on it.
pub(crate) fn wake_all(word: &AtomicU32) {
    word.fetch_add(1, Ordering::Release);
    #[cfg(all(target_os = "linux", not(loom), not(shmx_force_poll)))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
    }
}

#[cfg(all(test, loom))]
mod model {
    use super::*;
    use crate::sync::AtomicU64;
    use loom::sync::Arc;

    /// PROTOCOLS.md §3 with the real functions: a subscriber that decides to sleep (its
    /// queue looked empty after announcing) always finds `wake` moved past the value it
    /// sleeps on, unless it saw the entry; so `futex_wait` cannot miss the publish.
    #[test]
    fn no_lost_wake_up() {
        loom::model(|| {
            let wake = Arc::new(AtomicU32::new(0));
            let sleeping = Arc::new(AtomicU32::new(0));
            let head = Arc::new(AtomicU64::new(0));
            let publisher = {
                let (wake, sleeping, head) = (wake.clone(), sleeping.clone(), head.clone());
                loom::thread::spawn(move || {
                    head.store(1, Ordering::Release);
                    before_notify(false);
                    notify(&wake, &sleeping);
                })
            };
            let (v, _) = announce_sleep(&wake, &sleeping, false);
            let saw_entry = head.load(Ordering::Acquire) == 1;
            if saw_entry {
                end_sleep(&sleeping);
            }
            // Otherwise it sleeps on `v` (keeping `sleeping` set) until woken.
            publisher.join().unwrap();
            if !saw_entry {
                assert_ne!(
                    wake.load(Ordering::Acquire),
                    v,
                    "a sleeper would miss the publish"
                );
            }
        });
    }
}

#[cfg(all(test, loom))]
mod armed_model {
    use super::*;
    use crate::sync::AtomicU64;
    use loom::sync::Arc;

    /// The descriptor variant (`signal`): a subscriber arms and looks at its ring once more;
    /// two publishers push and notify. Either the subscriber saw an entry, or exactly one
    /// publisher took the arm (and sends the one wake-up); never neither, never both.
    #[test]
    fn an_armed_subscriber_is_told_exactly_once() {
        loom::model(|| {
            let wake = Arc::new(AtomicU32::new(0));
            let sleeping = Arc::new(AtomicU32::new(0));
            let head = Arc::new(AtomicU64::new(0));
            let sent = Arc::new(AtomicU32::new(0));
            let publishers: Vec<_> = (0..2)
                .map(|_| {
                    let (wake, sleeping, head, sent) =
                        (wake.clone(), sleeping.clone(), head.clone(), sent.clone());
                    loom::thread::spawn(move || {
                        head.fetch_add(1, Ordering::Release);
                        before_notify(false);
                        if notify(&wake, &sleeping) {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            announce(&sleeping, ARMED, false);
            let saw_entry = head.load(Ordering::Acquire) > 0;
            for p in publishers {
                p.join().unwrap();
            }
            let sent = sent.load(Ordering::Relaxed);
            assert!(sent <= 1, "an arm is paid for once");
            assert!(
                saw_entry || sent == 1,
                "an armed subscriber would miss the publish"
            );
            // No futex wake-up for a subscriber that only armed its descriptor.
            assert_eq!(wake.load(Ordering::Relaxed), 0);
        });
    }

    /// `Subscriber::spin`: an armed subscriber (its last look found nothing) takes the arm
    /// back to spin, looks, and arms again when it found nothing, while a publisher pushes
    /// and notifies. Either the subscriber sees the entry (or learns that the publisher took
    /// the arm, whose wake-up it then gets), or it sleeps armed and the publisher sends
    /// exactly one wake-up after that; a publisher never pays for an arm the subscriber took
    /// back.
    #[test]
    fn a_subscriber_that_takes_its_arm_back_is_told_exactly_once() {
        loom::model(|| {
            let wake = Arc::new(AtomicU32::new(0));
            let sleeping = Arc::new(AtomicU32::new(ARMED));
            let head = Arc::new(AtomicU64::new(0));
            let sent = Arc::new(AtomicU32::new(0));
            let publisher = {
                let (wake, sleeping, head, sent) =
                    (wake.clone(), sleeping.clone(), head.clone(), sent.clone());
                loom::thread::spawn(move || {
                    head.store(1, Ordering::Release);
                    before_notify(false);
                    if notify(&wake, &sleeping) {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            let ours = disarm(&sleeping);
            // Spinning: one look.
            let mut told = !ours || head.load(Ordering::Acquire) == 1;
            let mut armed_again = false;
            if !told {
                // Nothing came: arm again and look once more before sleeping.
                announce(&sleeping, ARMED, false);
                armed_again = true;
                told = head.load(Ordering::Acquire) == 1;
            }
            publisher.join().unwrap();
            let sent = sent.load(Ordering::Relaxed);
            assert!(sent <= 1, "an arm is paid for once");
            if !ours {
                assert_eq!(sent, 1, "the publisher that took the arm sends");
            }
            if !told {
                assert!(armed_again);
                assert_eq!(sent, 1, "a sleeping subscriber would miss the publish");
            }
            if ours && !armed_again {
                assert_eq!(sent, 0, "no wake-up for an arm taken back");
            }
        });
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
