//! A quick smoke test of the benchmark harness (`shmx_suite::bench`), so that it cannot break
//! silently between benchmark runs: every registered contender is started, driven a little
//! and stopped, and nothing may be left behind.
//!
//! ```text
//! cargo test --test bench_smoke      # a few seconds, debug build
//! ```
//!
//! - every ping-pong contender ([`PING_PONG`]): a short batch of round trips at 8 B and at
//!   64 KiB, each of which must take more than 0 ns and less than 1 s;
//! - every throughput contender ([`THROUGHPUT`]): a few thousand messages to 1 subscriber,
//!   which the harness only accepts when the subscriber confirms that it received exactly as
//!   many as were published, in order;
//! - every paced contender ([`PACED`]): a short batch of messages every 100 us, every one of
//!   which must arrive (the harness checks the count and the order) within 1 s;
//! - afterwards, no run directory of this process (`shmx-bench-<pid>-…`) may remain under
//!   `/dev/shm` (or the temp dir, the harness's fallback).
//!
//! Like the benchmarks, this binary re-executes itself for the child processes, so it has
//! its own `main` (`harness = false`) that first hands over to a child role if it is one. It
//! prints one line per contender and ends with `N passed, M failed`; it exits non-zero if any
//! check failed.

use shmx_suite::bench::paced::{Paced, PACED};
use shmx_suite::bench::{
    self, payload_label, PingPong, RunDir, Throughput, PAYLOADS, PING_PONG, THROUGHPUT,
    THROUGHPUT_PAYLOADS,
};
use shmx_suite::format_ns;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Payload sizes of the ping-pong checks.
const PING_PONG_PAYLOADS: [usize; 2] = [8, 64 << 10];
/// Round trips per ping-pong check.
const TRIPS: u64 = 50;
/// The slowest plausible round trip.
const MAX_RTT: Duration = Duration::from_secs(1);
/// Messages of a throughput check, in two batches (as the interleaved runner sends a probe
/// and then a batch): the second one also checks that numbering goes on across batches.
const BATCHES: [u64; 2] = [1_000, 2_000];
/// Subscribers of a throughput check.
const SUBSCRIBERS: usize = 1;
/// Interval, warm-up and measured messages of a paced check.
const PACED_RUN: (Duration, u64, u64) = (Duration::from_micros(100), 20, 200);
/// The whole test gives up after this long instead of hanging CI.
const DEADLINE: Duration = Duration::from_secs(120);
/// How the harness names its run directories (`process::RunDir`): the prefix, the parent's
/// pid, a random suffix.
const RUN_PREFIX: &str = "shmx-bench-";

type Outcome = Result<String, String>;

fn main() {
    // A child process of the benchmark runs its role and exits here.
    bench::run_child_if_requested();
    if std::env::args().any(|a| a == "--list") {
        // For test runners that list tests first (cargo nextest): one test, this binary.
        println!("bench_smoke: test");
        return;
    }
    watchdog();

    let started = Instant::now();
    let mut runs = Vec::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut tally = |outcome: &Outcome| match outcome {
        Ok(_) => passed += 1,
        Err(_) => failed += 1,
    };

    for &contender in PING_PONG {
        let payloads = ping_pong_payloads(contender);
        let mut parts = Vec::new();
        let mut ok = !payloads.is_empty();
        if payloads.is_empty() {
            let e = "FAILED: supports none of the benchmark's payload sizes";
            tally(&Err(e.into()));
            parts.push(e.into());
        }
        for payload in payloads {
            let outcome = guarded(|| ping_pong(contender, payload, &mut runs));
            tally(&outcome);
            ok &= outcome.is_ok();
            parts.push(format!(
                "{}: {}",
                payload_label(payload),
                outcome.unwrap_or_else(|e| format!("FAILED: {e}"))
            ));
        }
        println!(
            "{} ping-pong  {:<12} {}",
            verdict(ok),
            contender.id(),
            parts.join("; ")
        );
    }

    for &contender in THROUGHPUT {
        let outcome = match THROUGHPUT_PAYLOADS
            .into_iter()
            .find(|&p| contender.supports(p, SUBSCRIBERS))
        {
            Some(payload) => guarded(|| throughput(contender, payload, &mut runs)),
            None => Err(format!("supports no payload to {SUBSCRIBERS} subscriber")),
        };
        tally(&outcome);
        println!(
            "{} throughput {:<12} {}",
            verdict(outcome.is_ok()),
            contender.id(),
            outcome.unwrap_or_else(|e| format!("FAILED: {e}"))
        );
    }

    for &contender in PACED {
        let outcome = guarded(|| paced(contender, &mut runs));
        tally(&outcome);
        println!(
            "{} paced      {:<12} {}",
            verdict(outcome.is_ok()),
            contender.id(),
            outcome.unwrap_or_else(|e| format!("FAILED: {e}"))
        );
    }

    let outcome = leftovers(&runs);
    tally(&outcome);
    println!(
        "{} cleanup    {:<12} {}",
        verdict(outcome.is_ok()),
        "run dirs",
        outcome.unwrap_or_else(|e| format!("FAILED: {e}"))
    );

    eprintln!("bench_smoke: {:.2?}", started.elapsed());
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok  "
    } else {
        "FAIL"
    }
}

/// Runs one check; a panic counts as its failure, and the other checks still run.
fn guarded(check: impl FnOnce() -> Outcome) -> Outcome {
    panic::catch_unwind(AssertUnwindSafe(check)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        Err(format!("panicked: {message}"))
    })
}

/// The payloads a ping-pong contender is checked with: 8 B and 64 KiB, or, if it handles
/// neither, the smallest size it does handle (so that no contender goes unchecked).
fn ping_pong_payloads(contender: &dyn PingPong) -> Vec<usize> {
    let mut payloads: Vec<usize> = PING_PONG_PAYLOADS
        .into_iter()
        .filter(|&p| contender.supports(p))
        .collect();
    if payloads.is_empty() {
        payloads.extend(PAYLOADS.into_iter().find(|&p| contender.supports(p)));
    }
    payloads
}

/// [`TRIPS`] round trips of `contender` at `payload` bytes, in a run directory of their own
/// (recorded in `runs`).
fn ping_pong(contender: &dyn PingPong, payload: usize, runs: &mut Vec<PathBuf>) -> Outcome {
    let run = RunDir::new().map_err(|e| format!("run directory: {e}"))?;
    runs.push(run.path().to_owned());
    let mut session = contender
        .start(payload, &run)
        .map_err(|e| format!("start: {e}"))?;
    let mut rtts = Vec::new();
    let measured = session.round_trips(TRIPS, Some(&mut rtts));
    // Stop the child even if the round trips failed.
    let finished = session.finish();
    let total = measured.map_err(|e| format!("round trips: {e}"))?;
    let children = finished.map_err(|e| format!("finish: {e}"))?;

    if children.len() != 1 {
        return Err(format!("{} child placements, expected 1", children.len()));
    }
    if rtts.len() as u64 != TRIPS {
        return Err(format!("{} round trips recorded of {TRIPS}", rtts.len()));
    }
    let max_ns = MAX_RTT.as_nanos() as u64;
    if let Some((i, &rtt)) = rtts
        .iter()
        .enumerate()
        .find(|&(_, &rtt)| rtt == 0 || rtt >= max_ns)
    {
        return Err(format!(
            "round trip {i} took {} (expected > 0 ns and < {})",
            format_ns(rtt),
            format_ns(max_ns)
        ));
    }
    if total.is_zero() || total >= MAX_RTT * TRIPS as u32 {
        return Err(format!("{TRIPS} round trips took {total:?} in all"));
    }
    rtts.sort_unstable();
    Ok(format!(
        "{TRIPS} rtts, median {}, max {}",
        format_ns(shmx_suite::percentile(&rtts, 0.5)),
        format_ns(rtts[rtts.len() - 1])
    ))
}

/// [`BATCHES`] of messages from `contender` to [`SUBSCRIBERS`] subscriber, in a run directory
/// of their own (recorded in `runs`).
///
/// `Stream::send` returns only once every subscriber has answered with the number of
/// messages it received and fails unless that number is the number published so far (each
/// subscriber also checks that the numbers arrive one by one, in order); so a batch that
/// succeeds delivered exactly what was sent. The count itself is not returned.
fn throughput(contender: &dyn Throughput, payload: usize, runs: &mut Vec<PathBuf>) -> Outcome {
    let run = RunDir::new().map_err(|e| format!("run directory: {e}"))?;
    runs.push(run.path().to_owned());
    let mut stream = contender
        .start(payload, SUBSCRIBERS, &run)
        .map_err(|e| format!("start: {e}"))?;
    let measured = BATCHES
        .iter()
        .map(|&n| stream.send(n).map_err(|e| format!("batch of {n}: {e}")))
        .collect::<Result<Vec<Duration>, String>>();
    // Stop the children even if a batch failed.
    let finished = stream.finish();
    let times = measured?;
    let children = finished.map_err(|e| format!("finish: {e}"))?;

    if children.len() != SUBSCRIBERS {
        return Err(format!(
            "{} child placements, expected {SUBSCRIBERS}",
            children.len()
        ));
    }
    if let Some(t) = times.iter().find(|t| t.is_zero()) {
        return Err(format!("a batch took {t:?}"));
    }
    let sent: u64 = BATCHES.iter().sum();
    let elapsed: Duration = times.iter().sum();
    Ok(format!(
        "{sent} x {} to {SUBSCRIBERS}, all delivered in order, {}",
        payload_label(payload),
        shmx_suite::bench::report::format_rate(sent as f64 / elapsed.as_secs_f64())
    ))
}

/// A paced batch of `contender` ([`PACED_RUN`]), in a run directory of its own (recorded in
/// `runs`). The harness fails the batch unless every message arrived, in order.
fn paced(contender: &Paced, runs: &mut Vec<PathBuf>) -> Outcome {
    let run = RunDir::new().map_err(|e| format!("run directory: {e}"))?;
    runs.push(run.path().to_owned());
    let (interval, warmup, count) = PACED_RUN;
    let batch = contender
        .run(&run, interval, warmup, count)
        .map_err(|e| e.to_string())?;
    if batch.latencies.len() as u64 != count {
        return Err(format!("{} latencies of {count}", batch.latencies.len()));
    }
    if batch.placements.len() != 2 {
        return Err(format!("{} placements, expected 2", batch.placements.len()));
    }
    let max_ns = MAX_RTT.as_nanos() as u64;
    if let Some(l) = batch.latencies.iter().find(|&&l| l >= max_ns) {
        return Err(format!("a message took {}", format_ns(*l)));
    }
    let mut sorted = batch.latencies;
    sorted.sort_unstable();
    Ok(format!(
        "{count} x 8 B every {}, median {}, max {}",
        bench::paced::interval_label(interval),
        format_ns(shmx_suite::percentile(&sorted, 0.5)),
        format_ns(sorted[sorted.len() - 1])
    ))
}

/// No run directory of this process remains: neither one that a check used nor any other
/// under the harness's bases.
fn leftovers(runs: &[PathBuf]) -> Outcome {
    let mut left: Vec<PathBuf> = runs.iter().filter(|p| p.exists()).cloned().collect();
    let mine = format!("{RUN_PREFIX}{}-", std::process::id());
    for base in [Path::new("/dev/shm").to_path_buf(), std::env::temp_dir()] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(&mine) && !left.contains(&path) {
                left.push(path);
            }
        }
    }
    if left.is_empty() {
        Ok(format!(
            "{} run directories used, none left ({}*)",
            runs.len(),
            Path::new("/dev/shm").join(&mine).display()
        ))
    } else {
        Err(format!("left behind: {left:?}"))
    }
}

/// Ends the test with a failure if it runs longer than [`DEADLINE`] (a child that hangs
/// without dying would otherwise keep the parent waiting). The children die with it.
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("bench_smoke: still running after {DEADLINE:?}; giving up");
        println!("0 passed, 1 failed");
        std::process::exit(1);
    });
}
