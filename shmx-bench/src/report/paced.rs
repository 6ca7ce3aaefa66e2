//! The "Paced one-way latency" section: a receiver that waits between messages sent every
//! 10 us, 100 us or 1 ms; median and p99, each median also as a ratio to the spinning shmx
//! receiver and to the blocking Unix socket, the blocking receiver's requirement, and the
//! targets of the other ways to wait (`WaitSet`, `fd()` in `epoll`, `recv_async()`).

use super::fmt::{format_ns, format_ratio, opt_ratio, verdict};
use super::{paired, paired_range};
use crate::interleave::{PacedBatch, Results};
use crate::paced::{interval_label, RECV_ID, SPIN_ID};
use crate::socket::UDS_EPOLL_ID;
use crate::UDS_ID;
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

/// Per round, (median, p99) of every (interval, contender).
fn per_round(results: &Results) -> PacedPerRound {
    let mut rounds = PacedPerRound::new();
    for b in &results.paced {
        rounds
            .entry((b.interval, b.contender))
            .or_default()
            .insert(b.round, median_p99(&b.latencies));
    }
    rounds
}

/// The paced table's rows, by interval, then in registry order.
pub fn paced_rows(results: &Results) -> Vec<PacedRow> {
    let rounds = per_round(results);
    let mut rows = Vec::new();
    for &interval in &results.options.intervals {
        for c in crate::paced::PACED {
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
    let _ = writeln!(
        s,
        "\n### Paced one-way latency (receiver waiting between messages)\n"
    );
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
        crate::paced::PAYLOAD,
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
    for c in crate::paced::PACED {
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
    let one_cpu = one_cpu(results);
    let checks = waiting_checks(&per_round(results), &o.intervals, one_cpu);
    if !checks.is_empty() {
        let _ = writeln!(
            s,
            "\nWaiting for samples (`WaitSet`, `fd()` in `epoll`, `recv_async()`) against the \
             issue's targets{}:",
            match one_cpu {
                Some(cpu) => format!(" (every process of every batch on CPU {cpu} alone)"),
                None => String::new(),
            }
        );
        for c in checks {
            let _ = writeln!(s, "- {c}");
        }
    }
}

/// The shmx receivers that wait other than by `recv()`: wait set, descriptor, async.
const WAITERS: [&str; 3] = ["shmx-waitset", "shmx-epoll", "shmx-async"];

/// The CPU that every process of every paced batch was confined to, if there is one (a run
/// under `taskset -c N`): then publisher and receiver share it.
fn one_cpu(results: &Results) -> Option<usize> {
    let mut cpus = results
        .paced
        .iter()
        .flat_map(|b| &b.placements)
        .map(|p| match p.affinity[..] {
            [cpu] => Some(cpu),
            _ => None,
        });
    let first = cpus.next()??;
    cpus.all(|c| c == Some(first)).then_some(first)
}

/// Median over rounds of `a`'s median ÷ `b`'s median at `interval`, and the smallest and
/// largest of those per-round ratios.
fn ratio(
    rounds: &PacedPerRound,
    interval: Duration,
    a: &str,
    b: &str,
) -> Option<(f64, Option<(f64, f64)>)> {
    let find = |id: &str| {
        rounds
            .iter()
            .find(|((i, c), _)| *i == interval && *c == id)
            .map(|(_, r)| r)
    };
    let (mine, theirs) = (find(a)?, find(b));
    Some((
        paired(mine, theirs, |x| x.0)?,
        paired_range(mine, theirs, |x| x.0),
    ))
}

/// The targets of the other ways to wait. Dense traffic (every 10 us or less): within 1.2× of
/// `recv()` (which spins then). Sparse (every 1 ms or more): no slower than a Unix socket
/// woken by `epoll`. With every process on one CPU: `recv()`, the wait set and the descriptor
/// no slower than a blocking Unix socket, at every interval.
fn waiting_checks(
    rounds: &PacedPerRound,
    intervals: &[Duration],
    one_cpu: Option<usize>,
) -> Vec<String> {
    let mut out = Vec::new();
    let line = |interval: Duration, a: &str, b: &str, limit: f64, also: Option<&str>| {
        let (x, range) = ratio(rounds, interval, a, b)?;
        let also = also
            .and_then(|c| ratio(rounds, interval, a, c).map(|(y, _)| (c, y)))
            .map(|(c, y)| format!("; ÷ {c} = {}", format_ratio(y)))
            .unwrap_or_default();
        Some(format!(
            "every {}: {a} ÷ {b} = {}{}{also} (target ≤ {}): {}",
            interval_label(interval),
            format_ratio(x),
            rounds_range(range, limit),
            format_ratio(limit),
            verdict(x <= limit)
        ))
    };
    for &interval in intervals {
        let dense = interval <= Duration::from_micros(10);
        let sparse = interval >= Duration::from_millis(1);
        if one_cpu.is_some() {
            for a in [RECV_ID, "shmx-waitset", "shmx-epoll"] {
                out.extend(line(interval, a, UDS_ID, 1.0, None));
            }
        }
        for a in WAITERS {
            if dense {
                out.extend(line(interval, a, RECV_ID, 1.2, Some(SPIN_ID)));
            }
            if sparse {
                out.extend(line(interval, a, UDS_EPOLL_ID, 1.0, Some(UDS_ID)));
            }
        }
        if sparse {
            // Like for like on tokio: informative, no target.
            if let Some((x, _)) = ratio(rounds, interval, "shmx-async", "tokio-uds") {
                out.push(format!(
                    "every {}: shmx-async ÷ tokio-uds = {} (both awaiting on tokio)",
                    interval_label(interval),
                    format_ratio(x)
                ));
            }
        }
    }
    out
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
            options: crate::interleave::Options::new(true),
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
        assert!(waiting_checks(&per_round(&results), &[interval], None).is_empty());
    }

    #[test]
    fn waiting_checks_compare_with_recv_when_dense_and_epoll_when_sparse() {
        let (dense, sparse) = (Duration::from_micros(10), Duration::from_millis(1));
        let mut rounds = PacedPerRound::new();
        fn put(r: &mut PacedPerRound, interval: Duration, id: &'static str, median: f64) {
            r.entry((interval, id))
                .or_default()
                .insert(0, (median, median));
        }
        put(&mut rounds, dense, SPIN_ID, 100.0);
        put(&mut rounds, dense, RECV_ID, 100.0);
        put(&mut rounds, dense, "shmx-waitset", 110.0);
        put(&mut rounds, dense, "shmx-epoll", 300.0);
        put(&mut rounds, sparse, UDS_ID, 1_000.0);
        put(&mut rounds, sparse, UDS_EPOLL_ID, 1_000.0);
        put(&mut rounds, sparse, "shmx-waitset", 900.0);
        let checks = waiting_checks(&rounds, &[dense, sparse], None);
        assert_eq!(checks.len(), 3, "{checks:?}");
        assert!(
            checks[0].contains("shmx-waitset ÷ shmx-recv = 1.10×") && checks[0].ends_with("met")
        );
        assert!(
            checks[1].contains("shmx-epoll ÷ shmx-recv = 3.00×")
                && checks[1].ends_with("**missed**")
        );
        assert!(
            checks[2].contains("shmx-waitset ÷ uds-epoll = 0.900×") && checks[2].ends_with("met")
        );
        // On one CPU, recv, the wait set and the descriptor also face the blocking socket.
        put(&mut rounds, sparse, RECV_ID, 500.0);
        let checks = waiting_checks(&rounds, &[sparse], Some(0));
        assert!(checks[0].contains("shmx-recv ÷ uds = 0.500×"), "{checks:?}");
    }
}
