//! The "One-way latency" section: median and p99 of the one-way latency (round trip / 2)
//! per contender and payload, each also as a ratio to the floor and to the blocking Unix
//! socket.

use super::fmt::{format_ns, format_ratio, opt_ratio};
use super::paired;
use crate::interleave::{LatencyBatch, Results};
use crate::{payload_label, FLOOR_ID, UDS_ID};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One-way median and p99 (round trip / 2) of a set of round trips, in ns.
fn one_way(rtts: &[u64]) -> (f64, f64) {
    let mut sorted = rtts.to_vec();
    sorted.sort_unstable();
    (
        crate::percentile(&sorted, 0.5) as f64 / 2.0,
        crate::percentile(&sorted, 0.99) as f64 / 2.0,
    )
}

/// Latency figures of one contender and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// Payload size in bytes.
    pub payload: usize,
    /// Contender id.
    pub contender: &'static str,
    /// Recorded round trips, all rounds together.
    pub samples: usize,
    /// One-way median of all samples, in ns.
    pub median: f64,
    /// One-way 99th percentile of all samples, in ns.
    pub p99: f64,
    /// Smallest and largest median of one round, in ns.
    pub round_medians: (f64, f64),
    /// Median over rounds of (this median / the floor's median of the same round).
    pub vs_floor: Option<f64>,
    /// The same, relative to the blocking Unix socket.
    pub vs_uds: Option<f64>,
    /// Median over rounds of (this p99 / the floor's p99 of the same round).
    pub p99_vs_floor: Option<f64>,
    /// The same, relative to the blocking Unix socket.
    pub p99_vs_uds: Option<f64>,
}

/// Per round: (median, p99) of each (payload, contender).
pub(super) type PerRound = BTreeMap<(usize, &'static str), BTreeMap<usize, (f64, f64)>>;

pub(super) fn per_round(batches: &[LatencyBatch]) -> PerRound {
    let mut m = PerRound::new();
    for b in batches {
        m.entry((b.payload, b.contender))
            .or_default()
            .insert(b.round, one_way(&b.rtts));
    }
    m
}

/// The latency table's rows, by payload, then in registry order.
pub fn latency_rows(results: &Results) -> Vec<LatencyRow> {
    let rounds = per_round(&results.latency);
    let mut rows = Vec::new();
    for &payload in &results.options.payloads {
        // Request/response contenders have a table of their own (`request`).
        for c in crate::PING_PONG
            .iter()
            .filter(|c| c.request_response().is_none())
        {
            let id = c.id();
            let mut all: Vec<u64> = Vec::new();
            for b in results
                .latency
                .iter()
                .filter(|b| b.payload == payload && b.contender == id)
            {
                all.extend_from_slice(&b.rtts);
            }
            let Some(mine) = rounds.get(&(payload, id)) else {
                continue;
            };
            let (median, p99) = one_way(&all);
            let meds: Vec<f64> = mine.values().map(|x| x.0).collect();
            let floor = rounds.get(&(payload, FLOOR_ID));
            let uds = rounds.get(&(payload, UDS_ID));
            rows.push(LatencyRow {
                payload,
                contender: id,
                samples: all.len(),
                median,
                p99,
                round_medians: (
                    meds.iter().copied().fold(f64::INFINITY, f64::min),
                    meds.iter().copied().fold(0.0, f64::max),
                ),
                vs_floor: paired(mine, floor, |x| x.0),
                vs_uds: paired(mine, uds, |x| x.0),
                p99_vs_floor: paired(mine, floor, |x| x.1),
                p99_vs_uds: paired(mine, uds, |x| x.1),
            });
        }
    }
    rows
}

/// The "One-way latency" section, of `rows` (not empty).
pub(super) fn section(s: &mut String, results: &Results, rows: &[LatencyRow]) {
    let o = &results.options;
    let _ = writeln!(s, "\n### One-way latency (round trip / 2)\n");
    let _ = writeln!(
        s,
        "| payload | contender | median | p99 | median ÷ floor | median ÷ UDS | p99 ÷ floor \
         | p99 ÷ UDS | round medians | samples |"
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}–{} | {} |",
            payload_label(r.payload),
            r.contender,
            format_ns(r.median),
            format_ns(r.p99),
            opt_ratio(r.vs_floor),
            opt_ratio(r.vs_uds),
            opt_ratio(r.p99_vs_floor),
            opt_ratio(r.p99_vs_uds),
            format_ns(r.round_medians.0),
            format_ns(r.round_medians.1),
            r.samples
        );
    }
    let _ = writeln!(
        s,
        "\nMedian and p99 pool every recorded round trip of all rounds; ratios are medians \
         of per-round ratios (each against the reference's batch of the same round and \
         payload). Each round trip was timed on its own, which adds one clock reading \
         (~20 ns with a TSC clock) to it. Sockets and pipes carry the whole payload each \
         way; shmx writes an 8-byte counter in place and moves no payload bytes (except \
         `shmx-copy`, whose subscribers copy each payload on take). Round trips per batch: \
         {}.",
        o.payloads
            .iter()
            .map(|&p| format!("{} {}", payload_label(p), o.trips(p)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(line) = copy_cost(results) {
        let _ = writeln!(s, "\n{line}");
    }
    let _ = writeln!(s, "\nContenders:");
    for c in crate::PING_PONG {
        if rows.iter().any(|r| r.contender == c.id()) {
            let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
        }
    }
}

/// What `copy_on_take()` costs, beside the zero-copy path: `shmx-copy` ÷ `shmx-spin` per
/// payload (medians of per-round ratios), if the run measured both.
fn copy_cost(results: &Results) -> Option<String> {
    use crate::shmx_pingpong::{COPY_ID, SPIN_ID};
    let rounds = per_round(&results.latency);
    let parts: Vec<String> = results
        .options
        .payloads
        .iter()
        .filter_map(|&p| {
            let x = paired(rounds.get(&(p, COPY_ID))?, rounds.get(&(p, SPIN_ID)), |x| {
                x.0
            })?;
            Some(format!("{} {}", payload_label(p), format_ratio(x)))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "`copy_on_take()` costs, one-way median `{COPY_ID}` ÷ `{SPIN_ID}` (per round): {}.",
            parts.join(", ")
        )
    })
}
