//! Small helpers of the harness that the examples and tests use too (re-exported by the
//! root package): cross-process timestamps, percentiles, waiting with a deadline.

use std::time::{Duration, Instant};

/// Nanoseconds since an arbitrary, system-wide point in time (`CLOCK_MONOTONIC`).
///
/// Unlike [`Instant`], the value is comparable between processes on the same machine, so a
/// publisher can write it into a message and a subscriber subtract it from its own reading to
/// get the one-way latency. Read through the vDSO: no system call.
///
/// ```
/// let a = shmx_bench::monotonic_ns();
/// let b = shmx_bench::monotonic_ns();
/// assert!(b >= a);
/// ```
pub fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // CLOCK_MONOTONIC never reads negative.
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The value at quantile `q` (`0.0..=1.0`) of `sorted` (ascending), by the nearest-rank
/// method: the smallest value that at least `q` of the samples do not exceed. Returns 0 for
/// an empty slice.
///
/// ```
/// let sorted: Vec<u64> = (1..=1000).collect();
/// assert_eq!(shmx_bench::percentile(&sorted, 0.5), 500);
/// assert_eq!(shmx_bench::percentile(&sorted, 0.999), 999);
/// assert_eq!(shmx_bench::percentile(&sorted, 1.0), 1000);
/// ```
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
///
/// For waiting on another process with a deadline (say, until
/// `publisher.subscriber_count() >= 1`): it checks often (yielding at first, then sleeping
/// 100 us to 1 ms between checks), so it returns soon after the condition holds, and it never
/// waits forever for a peer that died.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut round = 0u32;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        round = round.saturating_add(1);
        match round {
            0..100 => std::thread::yield_now(),
            100..1_000 => std::thread::sleep(Duration::from_micros(100)),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}
