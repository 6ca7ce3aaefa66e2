//! Paced one-way latency (see `shmx_suite::bench::paced`): the parent publishes an 8-byte
//! send stamp every 10 us (dense) or every 1 ms (sparse) and a child process that waits for
//! each message measures how long it took. Every paced contender: shmx's receivers
//! (spinning, `recv()`, `WaitSet`, `fd()` in `epoll`, `recv_async()`) and the Unix sockets
//! (blocking, `epoll`, tokio).
//!
//! ```text
//! cargo bench --bench paced                                   # everything (~1 min)
//! cargo bench --bench paced -- 'shmx-(recv|waitset)'          # WaitSet against recv()
//! cargo bench --bench paced -- paced-10us/                    # dense only
//! ```
//!
//! Groups are `paced-<interval>` (`paced-10us`, `paced-1ms`), benchmarks the contenders'
//! ids. A paced message takes an interval of wall time whatever its latency, so a criterion
//! sample here is one batch of a bounded number of messages (a child process each, after a
//! short warm-up that lets the adaptive spin budgets settle), and the time it reports for
//! `iters` iterations is `iters` times the batch's **median** one-way latency: criterion's
//! figure is the mean over samples of a batch's median, whose tail (the machine's other
//! work) does not swamp it. Criterion runs benchmarks one after the other, minutes apart: for
//! comparisons use `cargo run --release --example bench_report -- --no-latency
//! --no-throughput`, which interleaves them.

mod common;

use criterion::{criterion_group, Criterion, SamplingMode};
use shmx_suite::bench::paced::{interval_label, PACED};
use shmx_suite::bench::RunDir;
use std::time::Duration;

/// Per interval: warm-up messages of a batch, and the fewest and most measured messages of a
/// batch (criterion's iteration count, bounded). The most take 50 ms at 10 us and 300 ms at
/// 1 ms, so a benchmark of 10 samples takes ~1 s and ~4 s.
const SETTINGS: [(Duration, u64, u64, u64); 2] = [
    (Duration::from_micros(10), 200, 500, 5000),
    (Duration::from_millis(1), 20, 50, 300),
];

fn paced(c: &mut Criterion) {
    for (interval, warmup, fewest, most) in SETTINGS {
        let mut group = c.benchmark_group(format!(
            "paced-{}",
            interval_label(interval).replace(' ', "")
        ));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_millis(500));
        for contender in PACED {
            group.bench_function(contender.id(), |b| {
                b.iter_custom(|iters| {
                    let run = RunDir::new().unwrap_or_else(|e| panic!("run directory: {e}"));
                    let batch = contender
                        .run(&run, interval, warmup, iters.clamp(fewest, most))
                        .unwrap_or_else(|e| panic!("{}: {e}", contender.id()));
                    let mut sorted = batch.latencies;
                    sorted.sort_unstable();
                    let median = shmx_suite::percentile(&sorted, 0.5);
                    Duration::from_nanos(median.saturating_mul(iters))
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = paced
}

fn main() {
    common::prologue();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
