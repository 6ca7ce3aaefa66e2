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
        // Pinned to one CPU (decided at the first miss): no spinning.
        let mut yielding = false;
        let (mut polls, mut slept, mut last) = (0u32, false, false);
        loop {
            let sample = take()?;
            if sample.is_some() || last {
                if let (Some((start, _)), true) = (wait, slept) {
                    self.received(start.elapsed());
                }
                return Ok(sample);
            }
            let (_, spin_until) = *wait.get_or_insert_with(|| {
                // Pinned to one CPU, spinning only keeps the publisher (if it shares that
                // CPU) from running: sleep at once, and its futex wake-up preempts it.
                yielding = pinned_to_one_cpu();
                let start = Instant::now();
                let until = start + self.spin.get();
                (start, deadline.map_or(until, |d| d.min(until)))
            });
            if !slept && !yielding {
                polls = polls.wrapping_add(1);
                // The clock is read every 64 polls.
                if polls % 64 != 0 || Instant::now() < spin_until {
                    std::hint::spin_loop();
                    continue;
                }
                slept = true;
            }
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

    /// After a receive that had to sleep and waited `waited` in all: a gap we could have
    /// bridged doubles the spin budget, a long one halves it.
    #[cold]
    fn received(&self, waited: Duration) {
        let spin = if waited < MAX_SPIN {
            (waited * 2).clamp(MIN_SPIN, MAX_SPIN)
        } else {
            (self.spin.get() / 2).max(MIN_SPIN)
        };
        self.spin.set(spin);
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
