//! Blocking receive: spin while samples come often, sleep on the futex when they do not.
//!
//! [`SubCore::recv_until`] is inlined into the caller with its `take`, spinning included, so
//! that a sample found stays in registers (see `SubCore::take_raw`); only the sleeping,
//! [`SubCore::sleep_ready`], which returns no sample, is a call.

use super::{SubCore, MAX_SPIN, MIN_SPIN};
use crate::error::Result;
use crate::event;
use std::time::{Duration, Instant};

impl SubCore {
    /// Takes with `take` until it gives a sample: first spinning on `take` itself for up to
    /// the adaptive budget, then sleeping until woken (see [`sleep_ready`](Self::sleep_ready));
    /// after `deadline`, one last `take` decides.
    ///
    /// The budget adapts to the traffic (see [`received`](Self::received)): a sample that
    /// arrives while spinning keeps it; one that arrives soon after going to sleep (within
    /// [`MAX_SPIN`]) doubles it to cover such gaps next time; a long wait halves it, down to
    /// [`MIN_SPIN`], so that sparse traffic costs little CPU. Spinning makes no system call
    /// (the clock is read through the vDSO).
    ///
    /// `take` has one call site, so inlining this costs one copy of it.
    #[inline(always)]
    pub(crate) fn recv_until<S>(
        &self,
        deadline: Option<Instant>,
        mut take: impl FnMut() -> Result<Option<S>>,
    ) -> Result<Option<S>> {
        // Set at the first miss: when the wait began and when spinning ends.
        let mut wait: Option<(Instant, Instant)> = None;
        // Spinning would only keep a publisher on our one CPU from running (decided at the
        // first miss, see `skip_spin`).
        let mut skip = false;
        let (mut polls, mut slept, mut last) = (0u32, false, false);
        // When it stopped spinning and went to sleep.
        let mut slept_at: Option<Instant> = None;
        loop {
            let sample = take()?;
            if sample.is_some() || last {
                if let Some((start, _)) = wait {
                    if let Some(at) = slept_at {
                        self.received(start.elapsed(), at.elapsed());
                    } else if !skip && self.shared_cpu.get().evidence != 0 {
                        self.caught_spinning();
                    }
                }
                return Ok(sample);
            }
            let (_, spin_until) = *wait.get_or_insert_with(|| {
                skip = self.skip_spin();
                let start = Instant::now();
                let until = start + self.spin.get();
                (start, deadline.map_or(until, |d| d.min(until)))
            });
            if !slept && !skip {
                polls = polls.wrapping_add(1);
                // The clock is read every 64 polls.
                if polls % 64 != 0 || Instant::now() < spin_until {
                    std::hint::spin_loop();
                    continue;
                }
            }
            slept = true;
            slept_at.get_or_insert_with(Instant::now);
            // After `deadline`, one last `take` decides.
            last = !self.sleep_ready(deadline);
        }
    }

    /// After spinning found nothing: sleeps on the futex until a sample may be waiting
    /// (`true`) or `deadline` passes (`false`). Returns at once if a sample came meanwhile;
    /// `true` after any wake-up, spurious ones included (the caller looks and comes back).
    #[inline(never)]
    pub(crate) fn sleep_ready(&self, deadline: Option<Instant>) -> bool {
        let slot = self.service.sub_slot(self.slot);
        // PROTOCOLS.md §3, subscriber side.
        let (v, sound) = event::announce_sleep(&slot.wake, &slot.sleeping, self.forces_barrier);
        if !self.looks_empty() {
            event::end_sleep(&slot.sleeping);
            return true;
        }
        let now = Instant::now();
        let timeout = match deadline {
            Some(d) if d <= now => {
                event::end_sleep(&slot.sleeping);
                return false;
            }
            Some(d) => (d - now).min(Duration::from_secs(1)),
            None => Duration::from_secs(1),
        };
        // If the promised barrier failed, a publisher may miss that we sleep: nap briefly.
        let timeout = if sound {
            timeout
        } else {
            timeout.min(Duration::from_micros(100))
        };
        event::wait(&slot.wake, v, Some(timeout));
        event::end_sleep(&slot.sleeping);
        // A long sleep: let dead publishers go (rate-limited).
        self.service.sweep_now(&self.last_sweep);
        true
    }

    /// Whether to sleep at once instead of spinning: on a thread pinned to one CPU whose
    /// publisher seems to share that CPU. Spinning there keeps the publisher off the CPU for
    /// the rest of the time slice (~50 us), while a futex wake-up preempts it at once. The
    /// evidence ([`SharedCpu`]): samples never arrive while spinning, but arrive right after
    /// going to sleep. A thread pinned to a CPU of its own keeps spinning (its samples arrive
    /// while it spins); one that stopped tries spinning again every 256 waits.
    fn skip_spin(&self) -> bool {
        if !pinned_to_one_cpu() {
            return false;
        }
        let mut shared = self.shared_cpu.get();
        if shared.evidence < SharedCpu::CONVINCED {
            return false;
        }
        shared.skipped = shared.skipped.wrapping_add(1);
        if shared.skipped == 0 {
            // A retry: spin this once; its outcome goes on as evidence.
            shared.evidence = SharedCpu::CONVINCED - 1;
        }
        self.shared_cpu.set(shared);
        shared.evidence >= SharedCpu::CONVINCED
    }

    /// A sample arrived while spinning: the publisher runs elsewhere.
    #[cold]
    fn caught_spinning(&self) {
        self.shared_cpu.set(SharedCpu::default());
    }

    /// After a receive that had to sleep and waited `waited` in all: a gap we could have
    /// bridged doubles the spin budget, a long one halves it.
    #[cold]
    fn received(&self, waited: Duration, asleep: Duration) {
        if pinned_to_one_cpu() {
            let mut shared = self.shared_cpu.get();
            shared.evidence = if asleep < SOON_AFTER_SLEEP {
                // Right after we stopped spinning: as if the publisher waited for our CPU.
                shared.evidence.saturating_add(1)
            } else {
                // A gap of the traffic's own: no evidence either way, start over.
                0
            };
            self.shared_cpu.set(shared);
        }
        let spin = if waited < MAX_SPIN {
            (waited * 2).clamp(MIN_SPIN, MAX_SPIN)
        } else {
            (self.spin.get() / 2).max(MIN_SPIN)
        };
        self.spin.set(spin);
    }

    /// Whether nothing at all is waiting, after connecting to the publishers that came and
    /// letting go of those that left (a change of the topic's participants alone is then no
    /// sign of samples: a wait set would report samples that are not there). A connection
    /// that fails counts as something waiting: the next take reports it.
    pub(crate) fn nothing_waiting(&self) -> bool {
        if self.service.generation() != self.state.borrow().gen {
            let mut st = self.state.borrow_mut();
            if self.refresh(&mut st).is_err() {
                // As when the subscriber was made: the next take retries, and reports it.
                st.gen = u64::MAX;
                st.broken.clear();
                return false;
            }
        }
        self.looks_empty()
    }

    /// Whether nothing at all is waiting.
    pub(crate) fn looks_empty(&self) -> bool {
        let st = self.state.borrow();
        if self.service.generation() != st.gen {
            return false;
        }
        st.active.iter().all(|&p| {
            let conn = st.pubs[p].as_ref().expect("active connections exist");
            // SAFETY: the ring lives in our service mapping, alive as long as `self`.
            conn.pending.is_empty() && unsafe { conn.delivery.delivery() }.is_empty()
        })
    }
}

/// Evidence that a subscriber's publisher shares the one CPU its thread is pinned to.
#[derive(Clone, Copy, Default)]
pub(crate) struct SharedCpu {
    /// Receives in a row that slept after spinning and got their sample soon after.
    evidence: u8,
    /// Waits that skipped spinning since the last retry (wraps at 256).
    skipped: u8,
}

impl SharedCpu {
    /// Evidence enough to stop spinning.
    const CONVINCED: u8 = 8;
}

/// A sample that comes this soon after the subscriber went to sleep counts as evidence that
/// its publisher waited for the subscriber's CPU (a futex wake-up and two context switches
/// take a few microseconds).
const SOON_AFTER_SLEEP: Duration = Duration::from_micros(30);

/// Whether this thread may run on one CPU only (its affinity), as of at most 100 ms ago.
pub(crate) fn pinned_to_one_cpu() -> bool {
    use std::cell::Cell;
    thread_local! {
        static PINNED: Cell<Option<(Instant, bool)>> = const { Cell::new(None) };
    }
    PINNED.with(|cached| {
        let now = Instant::now();
        if let Some((at, pinned)) = cached.get() {
            if now.duration_since(at) < Duration::from_millis(100) {
                return pinned;
            }
        }
        #[cfg(target_os = "linux")]
        let pinned = rustix::thread::sched_getaffinity(None).is_ok_and(|set| set.count() == 1);
        #[cfg(not(target_os = "linux"))]
        let pinned = false;
        cached.set(Some((now, pinned)));
        pinned
    })
}
