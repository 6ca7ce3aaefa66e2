//! Blocking receive: spin while samples come often, sleep on the futex when they do not.
//!
//! [`SubCore::recv_until`] is inlined into the caller with its `take`, spinning included, so
//! that a sample found stays in registers (see `SubCore::take_raw`); only the sleeping,
//! [`SubCore::sleep_ready`], which returns no sample, is a call.

use super::SubCore;
use crate::error::Result;
use crate::event;
use crate::spin::SpinClock;
use std::time::{Duration, Instant};

impl SubCore {
    /// Takes with `take` until it gives a sample: first spinning on `take` itself for up to
    /// the adaptive budget (see `spin`), then sleeping until woken (see
    /// [`sleep_ready`](Self::sleep_ready)); after `deadline`, one last `take` decides.
    /// Spinning makes no system call (the clock is read through the vDSO).
    ///
    /// `take` has one call site, so inlining this costs one copy of it.
    #[inline(always)]
    pub(crate) fn recv_until<S>(
        &self,
        deadline: Option<Instant>,
        mut take: impl FnMut() -> Result<Option<S>>,
    ) -> Result<Option<S>> {
        // Set at the first miss: when the wait began and when spinning ends (`None`: the
        // spin policy says sleep at once).
        let mut wait: Option<(Instant, Option<Instant>)> = None;
        let mut clock: Option<SpinClock> = None;
        let (mut slept, mut last) = (false, false);
        // When it stopped spinning and went to sleep.
        let mut slept_at: Option<Instant> = None;
        loop {
            let sample = take()?;
            if sample.is_some() || last {
                if let Some((start, spun)) = wait {
                    let spun = spun.map(|_| clock.as_mut().is_some_and(|c| c.caught()));
                    self.waited(start, slept_at, spun);
                }
                return Ok(sample);
            }
            let (_, spin_until) = *wait.get_or_insert_with(|| {
                let start = Instant::now();
                let mut spinner = self.spinner.get();
                let until = spinner.begin(start, deadline);
                self.spinner.set(spinner);
                clock = Some(SpinClock::new(start));
                (start, until)
            });
            if let (false, Some(until), Some(clock)) = (slept, spin_until, clock.as_mut()) {
                if !clock.over(until) {
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

    /// After a wait that began at `start` ended: tells the spin policy how it went (see
    /// `spin`): it slept at `slept_at`, or spun and caught its sample (`spun`: whether the
    /// thread lost its CPU while spinning).
    #[inline]
    pub(crate) fn waited(&self, start: Instant, slept_at: Option<Instant>, spun: Option<bool>) {
        if slept_at.is_none() && spun.is_none() {
            return;
        }
        let mut spinner = self.spinner.get();
        spinner.ended(start, slept_at, spun);
        self.spinner.set(spinner);
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

    /// For a waiter that spins on this subscriber among others: whether samples may wait
    /// (or the topic's publishers changed). Like a take's empty poll, it starts loading the
    /// chunk each publisher announced for its next sample, so that the take that follows a
    /// `true` finds the payload on its way (see `SubCore::take_common`).
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        let st = self.state.borrow();
        if self.service.generation() != st.gen {
            return true;
        }
        st.active.iter().any(|&p| {
            let conn = st.pubs[p].as_ref().expect("active connections exist");
            conn.prefetch(conn.next_chunk);
            // SAFETY: the ring lives in our service mapping, alive as long as `self`.
            !conn.pending.is_empty() || !unsafe { conn.delivery.delivery() }.is_empty()
        })
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

#[cfg(all(test, not(loom), target_os = "linux"))]
mod tests {
    use crate::spin::Spinner;
    use crate::Subscriber;
    use std::time::{Duration, Instant};

    /// On a thread pinned to one CPU, a sample found by the first poll after the thread lost
    /// its CPU for a while (when a publisher on that CPU could run) counts as evidence of a
    /// shared CPU, not against it.
    #[test]
    fn a_sample_caught_after_losing_the_cpu_is_evidence_of_sharing_it() {
        let one = crate::spin::tests::one_allowed_cpu();
        std::thread::spawn(move || {
            rustix::thread::sched_setaffinity(None, &one).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let sub = Subscriber::<u64>::builder("t/pre")
                .root(dir.path())
                .create()
                .unwrap();
            let core = sub.core();
            // One short of convinced: the next sample that came soon after a sleep (or while
            // the thread was away) convinces it.
            let mut spinner = Spinner::default();
            for _ in 0..7 {
                spinner.woke(Duration::from_micros(25), Duration::from_micros(5));
            }
            core.spinner.set(spinner);
            let mut polls = 0u32;
            // Ten empty polls, then 300 us away from the CPU, then the sample.
            let got = core
                .recv_until(Some(Instant::now() + Duration::from_secs(5)), || {
                    polls += 1;
                    if polls == 10 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    Ok((polls > 10).then_some(()))
                })
                .unwrap();
            assert!(got.is_some());
            let mut spinner = core.spinner.get();
            assert!(
                spinner.begin(Instant::now(), None).is_none(),
                "convinced: {spinner:?}"
            );
        })
        .join()
        .unwrap();
    }
}
