//! The adaptive spin before sleeping, shared by every way to wait (`Subscriber::recv`,
//! [`WaitSet`](crate::WaitSet), `recv_async`): how long to spin, and whether to spin at all.
//!
//! **How long.** A wait spins for its budget before it sleeps. A sample that arrives while
//! spinning keeps the budget; one that arrives soon after going to sleep (within
//! [`MAX_SPIN`]) doubles it to cover such gaps next time; a long wait halves it, down to
//! [`MIN_SPIN`], so that sparse traffic costs little CPU.
//!
//! **Whether.** On a thread pinned to one CPU whose publisher shares that CPU, spinning keeps
//! the publisher off the CPU for the rest of the time slice (~50 us), while a wake-up preempts
//! it at once. The evidence: samples never arrive while spinning, but arrive right after
//! going to sleep. Once convinced, a wait sleeps at once; a thread pinned to a CPU of its own
//! keeps spinning (its samples arrive while it spins); one that stopped tries spinning again
//! every 256 waits.

use std::time::{Duration, Instant};

/// Shortest spin before sleeping: sparse traffic costs about this much CPU per receive.
pub const MIN_SPIN: Duration = Duration::from_micros(1);
/// Longest spin before sleeping: gaps between samples up to this long are bridged by spinning
/// once the subscriber has seen them.
pub const MAX_SPIN: Duration = Duration::from_micros(100);

/// One waiter's spin policy (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spinner {
    /// How long a wait spins before it sleeps.
    budget: Duration,
    /// Waits in a row that slept after spinning and got their sample soon after (on a thread
    /// pinned to one CPU).
    evidence: u8,
    /// Waits that skipped spinning since the last retry (wraps at 256).
    skipped: u8,
}

impl Default for Spinner {
    fn default() -> Spinner {
        Spinner {
            budget: Duration::from_micros(20),
            evidence: 0,
            skipped: 0,
        }
    }
}

impl Spinner {
    /// Evidence enough to stop spinning.
    const CONVINCED: u8 = 8;

    /// At the first look of a wait that found nothing: when spinning ends (`now` plus the
    /// budget, at most `deadline`), or `None` to sleep at once (the evidence says the
    /// publisher waits for this thread's one CPU).
    #[inline]
    pub(crate) fn begin(&mut self, now: Instant, deadline: Option<Instant>) -> Option<Instant> {
        if self.evidence >= Self::CONVINCED && pinned_to_one_cpu() {
            self.skipped = self.skipped.wrapping_add(1);
            if self.skipped != 0 {
                return None;
            }
            // A retry: spin this once; its outcome goes on as evidence.
            self.evidence = Self::CONVINCED - 1;
        }
        let until = now + self.budget;
        Some(deadline.map_or(until, |d| d.min(until)))
    }

    /// A wait that began at `start` ended with a sample: it slept at `slept_at`, or spun and
    /// caught it (`spun`: whether the thread lost its CPU while spinning), or neither (found
    /// at its first look: nothing to learn).
    #[inline]
    pub(crate) fn ended(&mut self, start: Instant, slept_at: Option<Instant>, spun: Option<bool>) {
        match (slept_at, spun) {
            (Some(at), _) => self.woke_at(start, at),
            (None, Some(preempted)) => self.caught_spinning(preempted),
            (None, None) => {}
        }
    }

    /// A sample arrived while spinning: the publisher runs elsewhere, unless this thread
    /// lost its CPU meanwhile (`preempted`, see [`SpinClock`]): then, on a thread pinned to
    /// one CPU, the publisher may well have run in its place, which counts as evidence that
    /// they share it.
    #[inline]
    pub(crate) fn caught_spinning(&mut self, preempted: bool) {
        if !preempted {
            self.evidence = 0;
        } else if pinned_to_one_cpu() {
            self.evidence = self.evidence.saturating_add(1);
        }
    }

    /// A sample arrived after the wait slept: the wait began at `start` and went to sleep at
    /// `slept_at`. A gap that spinning could have bridged doubles the budget, a long
    /// one halves it; a sample right after going to sleep, on a thread pinned to one CPU,
    /// counts as evidence that the publisher waited for that CPU.
    #[cold]
    pub(crate) fn woke_at(&mut self, start: Instant, slept_at: Instant) {
        let now = Instant::now();
        self.woke(now - start, now - slept_at);
    }

    /// [`woke_at`](Self::woke_at) with the durations.
    pub(crate) fn woke(&mut self, waited: Duration, asleep: Duration) {
        // A later sample is a gap of the traffic's own: no evidence either way.
        if asleep < SOON_AFTER_SLEEP && pinned_to_one_cpu() {
            self.evidence = self.evidence.saturating_add(1);
        }
        self.budget = if waited < MAX_SPIN {
            (waited * 2).clamp(MIN_SPIN, MAX_SPIN)
        } else {
            (self.budget / 2).max(MIN_SPIN)
        };
    }

    /// The current budget.
    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }
}

/// The clock of a spinning wait: read every 64 polls, so that spinning makes no system call
/// and few clock reads; a gap between two reads much longer than 64 polls take says the
/// thread lost its CPU in between.
pub(crate) struct SpinClock {
    polls: u32,
    last: Instant,
    /// The thread lost its CPU while spinning.
    pub(crate) preempted: bool,
}

impl SpinClock {
    /// A clock for a spin that starts at `now`.
    #[inline]
    pub(crate) fn new(now: Instant) -> SpinClock {
        SpinClock {
            polls: 0,
            last: now,
            preempted: false,
        }
    }

    /// After a poll that found nothing: whether `until` has passed (the clock is read every
    /// 64 calls).
    #[inline(always)]
    pub(crate) fn over(&mut self, until: Instant) -> bool {
        self.polls = self.polls.wrapping_add(1);
        if self.polls % 64 != 0 {
            return false;
        }
        self.check(until)
    }

    /// [`over`](Self::over), reading the clock at every call.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn over_now(&mut self, until: Instant) -> bool {
        self.check(until)
    }

    /// A poll found a sample: whether the thread lost its CPU during this spin, the time
    /// since the last clock read included (the gap most likely to have let a publisher on
    /// this CPU run).
    #[cold]
    pub(crate) fn caught(&mut self) -> bool {
        let now = Instant::now();
        if now.saturating_duration_since(self.last) > PREEMPTED {
            self.preempted = true;
        }
        self.preempted
    }

    #[inline(never)]
    fn check(&mut self, until: Instant) -> bool {
        let now = Instant::now();
        if now.saturating_duration_since(self.last) > PREEMPTED {
            self.preempted = true;
        }
        self.last = now;
        now >= until
    }
}

/// A gap between two clock reads of a spin (64 polls, a few microseconds) longer than this
/// means the thread was off its CPU.
const PREEMPTED: Duration = Duration::from_micros(20);

/// A sample that comes this soon after the waiter went to sleep counts as evidence that its
/// publisher waited for the waiter's CPU (a wake-up and two context switches take a few
/// microseconds).
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn budget_follows_the_gaps() {
        let mut s = Spinner::default();
        s.woke(Duration::from_micros(30), Duration::from_micros(10));
        assert_eq!(s.budget(), Duration::from_micros(60));
        s.woke(Duration::from_micros(80), Duration::from_micros(10));
        assert_eq!(s.budget(), MAX_SPIN);
        s.woke(Duration::from_millis(5), Duration::from_millis(5));
        assert_eq!(s.budget(), MAX_SPIN / 2);
        for _ in 0..20 {
            s.woke(Duration::from_millis(5), Duration::from_millis(5));
        }
        assert_eq!(s.budget(), MIN_SPIN);
    }

    #[test]
    fn spin_ends_at_the_budget_or_the_deadline() {
        let mut s = Spinner::default();
        let now = Instant::now();
        assert_eq!(s.begin(now, None), Some(now + s.budget()));
        let soon = now + Duration::from_micros(3);
        assert_eq!(s.begin(now, Some(soon)), Some(soon));
    }

    /// Pinned to one CPU, samples that come right after each sleep stop the spinning; a
    /// sample caught while spinning (after a retry) starts it again.
    #[cfg(target_os = "linux")]
    #[test]
    fn shared_cpu_evidence_stops_and_restarts_spinning() {
        let one = one_allowed_cpu();
        // In a thread of its own, so that the test's thread keeps its affinity.
        std::thread::spawn(move || {
            rustix::thread::sched_setaffinity(None, &one).unwrap();
            assert!(pinned_to_one_cpu());
            let mut s = Spinner::default();
            let now = Instant::now();
            for _ in 0..Spinner::CONVINCED {
                assert!(s.begin(now, None).is_some());
                s.woke(Duration::from_micros(25), Duration::from_micros(5));
            }
            let mut spun = 0;
            for _ in 0..256 {
                if s.begin(now, None).is_some() {
                    spun += 1;
                }
            }
            assert_eq!(spun, 1, "one retry in 256 waits");
            // A sample caught while the thread lost its CPU is no sign of another CPU.
            s.caught_spinning(true);
            assert_eq!(s.evidence, Spinner::CONVINCED);
            s.caught_spinning(false);
            assert!(s.begin(now, None).is_some());
        })
        .join()
        .unwrap();
    }

    /// The first CPU this thread may run on, alone. (Not `sched_getcpu`, whose vDSO lookup
    /// valgrind cannot follow.)
    #[cfg(target_os = "linux")]
    pub(crate) fn one_allowed_cpu() -> rustix::thread::CpuSet {
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
            .find(|&c| allowed.is_set(c))
            .expect("a CPU to run on");
        let mut one = rustix::thread::CpuSet::new();
        one.set(cpu);
        one
    }

    #[test]
    fn a_long_gap_between_clock_reads_is_a_preemption() {
        let start = Instant::now();
        let mut clock = SpinClock::new(start);
        let far = start + Duration::from_secs(60);
        for _ in 0..640 {
            assert!(!clock.over(far));
        }
        // (Whether those polls saw a gap depends on the machine: under valgrind, or on a
        // loaded one, they may well have.)
        std::thread::sleep(PREEMPTED * 2);
        for _ in 0..64 {
            assert!(!clock.over(far));
        }
        assert!(clock.preempted);
        assert!((0..64).any(|_| clock.over(start)), "past `until`");
    }
}
