//! The Markdown report of an interleaved run: the machine (CPU model from `/proc/cpuinfo`,
//! kernel from `uname`, clock source, load), where the processes ran (affinity masks from
//! `sched_getaffinity`, CPUs from `sched_getcpu`), a latency table (median and p99 of the
//! one-way latency per contender and payload, each also as a ratio to the floor and to the
//! blocking Unix socket), a request/response table (whole round trips, each also as a ratio
//! to the ping-pong of the same transport and to shmx's request/response), a paced one-way
//! latency table (a receiver that waits between messages sent every 10 us, 100 us or 1 ms:
//! median and p99, each median also as a ratio to the spinning shmx receiver and to the
//! blocking Unix socket), a throughput table and the design's performance targets.
//!
//! Ratios are taken per pair: for each round, the contender's figure over the reference's
//! figure of the same round and payload (batches seconds apart), and the table shows the
//! median of those per-round ratios, which a slow period of the machine during one round does
//! not move much.
//!
//! One file per part of the report: `machine` (the machine and the processes' placement),
//! `latency`, `request`, `paced`, `throughput` and `targets` (a section each, with the rows
//! behind its table) and `fmt` (number and date formatting). This file holds the whole
//! report, [`markdown`], and the per-round pairing the sections share.

mod fmt;
mod latency;
mod machine;
mod paced;
mod request;
mod targets;
mod throughput;

pub use fmt::{format_ns, format_rate, format_ratio, format_utc};
pub use latency::{latency_rows, LatencyRow};
pub use machine::Machine;
pub use paced::{paced_rows, PacedRow};
pub use request::{request_rows, RequestRow};
pub use throughput::{throughput_rows, ThroughputRow};

use super::interleave::Results;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The median of `values` (mean of the middle two for an even count); `None` if empty.
///
/// ```
/// use shmx_bench::report::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
/// assert_eq!(median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median over the rounds both have of `pick(a) / pick(b)`.
fn paired(
    a: &BTreeMap<usize, (f64, f64)>,
    b: Option<&BTreeMap<usize, (f64, f64)>>,
    pick: fn(&(f64, f64)) -> f64,
) -> Option<f64> {
    let b = b?;
    let ratios: Vec<f64> = a
        .iter()
        .filter_map(|(r, x)| Some(pick(x) / pick(b.get(r)?)))
        .collect();
    median(&ratios)
}

/// Smallest and largest of `pick(a) / pick(b)` over the rounds both have.
fn paired_range(
    a: &BTreeMap<usize, (f64, f64)>,
    b: Option<&BTreeMap<usize, (f64, f64)>>,
    pick: fn(&(f64, f64)) -> f64,
) -> Option<(f64, f64)> {
    let b = b?;
    a.iter()
        .filter_map(|(r, x)| Some(pick(x) / pick(b.get(r)?)))
        .fold(None, |acc, x| match acc {
            None => Some((x, x)),
            Some((lo, hi)) => Some((f64::min(lo, x), f64::max(hi, x))),
        })
}

/// The whole report, in Markdown. `command` is how the run was started.
pub fn markdown(results: &Results, machine: &Machine, command: &str) -> String {
    let o = &results.options;
    let mut s = String::new();
    let _ = writeln!(s, "## shmx benchmarks, {}\n", format_utc(results.started));
    let _ = writeln!(s, "Command: `{command}`  ");
    let _ = writeln!(
        s,
        "Run: {} rounds, interleaved (every contender and payload once per round, in rotating \
         order), {:.1} s in all{}.\n",
        o.rounds,
        results.elapsed.as_secs_f64(),
        if o.quick { ", quick" } else { "" }
    );
    machine::section(&mut s, results, machine);

    let rows = latency_rows(results);
    if !rows.is_empty() {
        latency::section(&mut s, results, &rows);
    }

    let rrows = request_rows(results);
    if !rrows.is_empty() {
        request::section(&mut s, results, &rrows);
    }

    let prows = paced_rows(results);
    if !prows.is_empty() {
        paced::section(&mut s, results, &prows);
    }

    let trows = throughput_rows(results);
    if !trows.is_empty() {
        throughput::section(&mut s, &trows);
    }

    targets::section(&mut s, results, &rows, &trows);
    if !results.failures.is_empty() {
        let _ = writeln!(s, "\n### Failed batches\n");
        for f in &results.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_batches_of_the_same_round() {
        let a = BTreeMap::from([(0, (10.0, 20.0)), (1, (30.0, 60.0)), (2, (5.0, 5.0))]);
        let b = BTreeMap::from([(0, (5.0, 10.0)), (1, (10.0, 10.0))]);
        assert_eq!(paired(&a, Some(&b), |x| x.0), Some(2.5));
        assert_eq!(paired(&a, Some(&b), |x| x.1), Some(4.0));
        assert_eq!(paired(&a, None, |x| x.0), None);
    }
}
