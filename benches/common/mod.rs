//! Criterion glue shared by the cross-process benchmarks: the configuration, and one
//! criterion benchmark per contender whose child process is started on first use (so that
//! benchmarks that a filter skips start nothing) and serves every sample.
//!
//! All contender logic lives in `shmx_suite::bench`; see its module doc.

#![allow(dead_code)] // each bench uses part of it

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use shmx_suite::bench::{PingPong, RunDir, Session, Stream, Throughput};
use std::time::Duration;

/// Runs the child role if this process is a benchmark child (and then exits), and turns
/// pinning on if `SHMX_BENCH_PIN=1`. First thing in every bench's `main`.
pub fn prologue() {
    shmx_suite::bench::run_child_if_requested();
    if let Err(e) = shmx_suite::bench::process::pin_from_env() {
        eprintln!("cannot pin: {e}");
    }
}

/// Short measurements, so that the whole `cargo bench` stays within ~15 min on 2 cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .nresamples(20_000)
        .without_plots()
}

fn fail(what: &str, e: shmx_suite::bench::Error) -> ! {
    panic!("{what}: {e}")
}

/// Benchmarks the one-way latency of `contender` for `payload` bytes under the name
/// `<group>/<contender id>`: criterion gets the round trips' total time, halved.
pub fn ping_pong(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: &dyn PingPong,
    payload: usize,
) {
    session(group, contender, payload, 2);
}

/// Benchmarks the whole round trip of `contender` (a request/response contender: a request
/// of min(`payload`, 1 KiB), a response of `payload` bytes) under `<group>/<contender id>`.
pub fn round_trip(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: &dyn PingPong,
    payload: usize,
) {
    session(group, contender, payload, 1);
}

/// One benchmark of `contender`'s round trips, criterion given their total time / `divisor`.
fn session(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: &dyn PingPong,
    payload: usize,
    divisor: u32,
) {
    let id = contender.id();
    let mut live: Option<(Box<dyn Session>, RunDir)> = None;
    group.bench_function(id, |b| {
        let (session, _) = live.get_or_insert_with(|| {
            let run = RunDir::new().unwrap_or_else(|e| fail("run directory", e));
            let session = contender
                .start(payload, &run)
                .unwrap_or_else(|e| fail(&format!("starting {id}"), e));
            (session, run)
        });
        b.iter_custom(|iters| {
            session
                .round_trips(iters, None)
                .unwrap_or_else(|e| fail(id, e))
                / divisor
        });
    });
    if let Some((session, run)) = live {
        session
            .finish()
            .unwrap_or_else(|e| fail(&format!("stopping {id}"), e));
        drop(run);
    }
}

/// Benchmarks the messages per second of `contender` for `payload` bytes to `subscribers`
/// subscriber processes (set `Throughput::Elements(1)` on the group: one element per
/// message published, each delivered to every subscriber).
pub fn stream(
    group: &mut BenchmarkGroup<'_, WallTime>,
    contender: &dyn Throughput,
    payload: usize,
    subscribers: usize,
) {
    let id = contender.id();
    let mut live: Option<(Box<dyn Stream>, RunDir)> = None;
    group.bench_function(id, |b| {
        let (stream, _) = live.get_or_insert_with(|| {
            let run = RunDir::new().unwrap_or_else(|e| fail("run directory", e));
            let stream = contender
                .start(payload, subscribers, &run)
                .unwrap_or_else(|e| fail(&format!("starting {id}"), e));
            (stream, run)
        });
        b.iter_custom(|iters| stream.send(iters).unwrap_or_else(|e| fail(id, e)));
    });
    if let Some((stream, run)) = live {
        stream
            .finish()
            .unwrap_or_else(|e| fail(&format!("stopping {id}"), e));
        drop(run);
    }
}
