//! The "Paced one-way latency" section: a receiver that waits between messages sent every
//! 10 us, 100 us or 1 ms; median and p99, each median also as a ratio to the spinning shmx
//! receiver and to the blocking Unix socket, and the blocking receiver's requirement.

use super::fmt::{format_ns, format_ratio, opt_ratio, verdict};
use super::{paired, paired_range};
use crate::bench::interleave::{PacedBatch, Results};
use crate::bench::paced::{interval_label, SPIN_ID};
use crate::bench::UDS_ID;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Paced one-way latency figures of one contender and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct PacedRow {
    /// Interval between messages.
    pub interval: Duration,
    /// Contender id.
    pub contender: &'static str,
    /// Measured messages, all rounds together.
    pub samples: usize,
    /// Median one-way latency of all samples, in ns.
    pub median: f64,
    /// 99th percentile of all samples, in ns.
    pub p99: f64,
    /// Smallest and largest median of one round, in ns.
    pub round_medians: (f64, f64),
    /// Median over rounds of (this median / shmx-spin's median of the same round and
    /// interval).
    pub vs_spin: Option<f64>,
    /// The same, relative to the blocking Unix socket.
    pub vs_uds: Option<f64>,
    /// Smallest and largest per-round ratio behind `vs_spin`.
    pub vs_spin_range: Option<(f64, f64)>,
    /// Smallest and largest per-round ratio behind `vs_uds`.
    pub vs_uds_range: Option<(f64, f64)>,
    /// Median over rounds of (this p99 / the blocking Unix socket's p99 of the same round
    /// and interval).
    pub p99_vs_uds: Option<f64>,
    /// Achieved mean interval between messages over all batches, in ns (the pacing's check).
    pub mean_gap: f64,
}

/// Median and p99 of a set of latencies, in ns.
fn median_p99(latencies: &[u64]) -> (f64, f64) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    (
        crate::percentile(&sorted, 0.5) as f64,
        crate::percentile(&sorted, 0.99) as f64,
    )
}

/// Per round: (median, p99) of each (interval, contender).
type PacedPerRound = BTreeMap<(Duration, &'static str), BTreeMap<usize, (f64, f64)>>;

/// The paced table's rows, by interval, then in registry order.
pub fn paced_rows(results: &Results) -> Vec<PacedRow> {
    let mut rounds = PacedPerRound::new();
    for b in &results.paced {
        rounds
            .entry((b.interval, b.contender))
            .or_default()
            .insert(b.round, median_p99(&b.latencies));
    }
    let mut rows = Vec::new();
    for &interval in &results.options.intervals {
        for c in crate::bench::paced::PACED {
            let id = c.id();
            let Some(mine) = rounds.get(&(interval, id)) else {
                continue;
            };
            let batches: Vec<&PacedBatch> = results
                .paced
                .iter()
                .filter(|b| b.interval == interval && b.contender == id)
                .collect();
            let all: Vec<u64> = batches
                .iter()
                .flat_map(|b| b.latencies.iter().copied())
                .collect();
            let (median, p99) = median_p99(&all);
            let meds: Vec<f64> = mine.values().map(|x| x.0).collect();
            let spin = rounds.get(&(interval, SPIN_ID));
            let uds = rounds.get(&(interval, UDS_ID));
            let gaps: u64 = batches
                .iter()
                .map(|b| b.latencies.len().max(1) as u64 - 1)
                .sum();
            rows.push(PacedRow {
                interval,
                contender: id,
                samples: all.len(),
                median,
                p99,
                round_medians: (
                    meds.iter().copied().fold(f64::INFINITY, f64::min),
                    meds.iter().copied().fold(0.0, f64::max),
                ),
                vs_spin: paired(mine, spin, |x| x.0),
                vs_uds: paired(mine, uds, |x| x.0),
                vs_spin_range: paired_range(mine, spin, |x| x.0),
                vs_uds_range: paired_range(mine, uds, |x| x.0),
                p99_vs_uds: paired(mine, uds, |x| x.1),
                mean_gap: batches.iter().map(|b| b.span).sum::<u64>() as f64 / gaps.max(1) as f64,
            });
        }
    }
    rows
}

/// The "Paced one-way latency" section.
pub(super) fn section(s: &mut String, results: &Results, rows: &[PacedRow]) {
    let o = &results.options;
    let _ = writeln!(s, "\n### Paced one-way latency (receiver blocking)\n");
    let _ = writeln!(
        s,
        "| interval | contender | median | p99 | median ÷ shmx-spin | median ÷ UDS | p99 ÷ UDS \
         | round medians | mean gap | samples |"
    );
    let _ = writeln!(s, "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {}–{} | {} | {} |",
            interval_label(r.interval),
            r.contender,
            format_ns(r.median),
            format_ns(r.p99),
            opt_ratio(r.vs_spin),
            opt_ratio(r.vs_uds),
            opt_ratio(r.p99_vs_uds),
            format_ns(r.round_medians.0),
            format_ns(r.round_medians.1),
            format_ns(r.mean_gap),
            r.samples
        );
    }
    let _ = writeln!(
        s,
        "\nThe parent publishes an {} B message every interval (busy-waiting on \
         CLOCK_MONOTONIC; each message carries its send time, and the next one leaves an \
         interval after it, so no gap is shorter); the child receives and subtracts the send \
         time from its own clock reading: one-way latency, no round trip. Median and p99 pool \
         every measured message of all rounds; ratios are medians of per-round ratios (same \
         interval, same round). Mean gap: the achieved interval. Messages per batch, after \
         a warm-up that lets the receiver's adaptive spin budget settle: {}.",
        crate::bench::paced::PAYLOAD,
        o.intervals
            .iter()
            .map(|&i| format!(
                "{} {} (+{} warm-up)",
                interval_label(i),
                o.paced_messages(i),
                o.paced_warmup(i)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "\nContenders:");
    for c in crate::bench::paced::PACED {
        if rows.iter().any(|r| r.contender == c.id()) {
            let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
        }
    }
    let checks = paced_checks(rows);
    if !checks.is_empty() {
        let _ = writeln!(s, "\nBlocking `recv()` against the issue's requirement:");
        for c in checks {
            let _ = writeln!(s, "- {c}");
        }
    }
}

/// How the blocking receiver compares: near the spinning figure at the densest interval
/// (10 us or less), no worse than the blocking Unix socket at the sparsest (1 ms or more).
fn paced_checks(rows: &[PacedRow]) -> Vec<String> {
    let mut out = Vec::new();
    let recv = |dense: bool| {
        rows.iter()
            .filter(|r| r.contender == "shmx-recv")
            .filter(|r| {
                if dense {
                    r.interval <= Duration::from_micros(10)
                } else {
                    r.interval >= Duration::from_millis(1)
                }
            })
            .collect::<Vec<_>>()
    };
    for r in recv(true) {
        if let Some(x) = r.vs_spin {
            out.push(format!(
                "every {}: shmx-recv ÷ shmx-spin = {}{} (median {}; \"near the spinning \
                 figure\", taken here as ≤ 1.5×): {}",
                interval_label(r.interval),
                format_ratio(x),
                rounds_range(r.vs_spin_range, 1.5),
                format_ns(r.median),
                verdict(x <= 1.5)
            ));
        }
    }
    for r in recv(false) {
        if let Some(x) = r.vs_uds {
            out.push(format!(
                "every {}: shmx-recv ÷ UDS = {}{} (median {}; \"no worse than a blocking Unix \
                 socket\", ≤ 1×): {}",
                interval_label(r.interval),
                format_ratio(x),
                rounds_range(r.vs_uds_range, 1.0),
                format_ns(r.median),
                verdict(x <= 1.0)
            ));
        }
    }
    out
}

/// `, rounds 0.82×–1.10×`, and whether the rounds fall on both sides of `limit`.
fn rounds_range(range: Option<(f64, f64)>, limit: f64) -> String {
    match range {
        Some((lo, hi)) if lo < hi => format!(
            ", rounds {}–{}{}",
            format_ratio(lo),
            format_ratio(hi),
            if lo <= limit && limit < hi {
                ", on both sides of the limit"
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn paced_rows_pair_rounds_of_the_same_interval() {
        let interval = Duration::from_micros(10);
        let batch = |round, contender, latency| PacedBatch {
            round,
            interval,
            contender,
            latencies: vec![latency; 10],
            span: 9 * 10_000,
            placements: Vec::new(),
        };
        let results = Results {
            options: crate::bench::interleave::Options::new(true),
            started: UNIX_EPOCH,
            elapsed: Duration::ZERO,
            latency: Vec::new(),
            throughput: Vec::new(),
            paced: vec![
                batch(0, SPIN_ID, 100),
                batch(0, "shmx-recv", 150),
                batch(0, UDS_ID, 1_000),
                batch(1, SPIN_ID, 200),
                batch(1, "shmx-recv", 200),
                batch(1, UDS_ID, 100),
            ],
            failures: Vec::new(),
        };
        let rows = paced_rows(&results);
        assert_eq!(rows.len(), 3);
        let recv = rows.iter().find(|r| r.contender == "shmx-recv").unwrap();
        assert_eq!(recv.vs_spin, Some(1.25));
        assert_eq!(recv.vs_spin_range, Some((1.0, 1.5)));
        assert_eq!(recv.vs_uds, Some(1.075));
        assert_eq!((recv.samples, recv.mean_gap), (20, 10_000.0));
        let checks = paced_checks(&rows);
        assert_eq!(checks.len(), 1);
        assert!(checks[0].contains("1.25×") && checks[0].ends_with("met"));
    }
}
