//! The "Performance targets" section: the design's targets that a run measured, each with
//! its figure and verdict.

use super::fmt::{format_rate, format_ratio, format_ratio_against, verdict};
use super::latency::{per_round, LatencyRow};
use super::paired;
use super::throughput::ThroughputRow;
use crate::interleave::Results;
use crate::CHUNK_FLOOR_ID;
use std::fmt::Write as _;

/// The design's targets that this run measured, each with its figure and verdict.
fn targets(results: &Results, rows: &[LatencyRow], trows: &[ThroughputRow]) -> Vec<String> {
    let mut out = Vec::new();
    let row = |p: usize, id: &str| rows.iter().find(|r| r.payload == p && r.contender == id);
    if let Some(r) = row(8, "shmx-spin") {
        if let Some(x) = r.vs_floor {
            out.push(format!(
                "8 B one-way, shmx-spin ÷ floor = {} (target ≤ 2×): {}; (aim ≤ 1.5×): {}",
                format_ratio_against(x, 2.0),
                verdict(x <= 2.0),
                verdict(x <= 1.5)
            ));
        }
        if let Some(x) = r.vs_uds {
            out.push(format!(
                "8 B one-way, blocking UDS ÷ shmx-spin = {} (target ≥ 20×): {}",
                format_ratio_against(1.0 / x, 20.0),
                verdict(1.0 / x >= 20.0)
            ));
        }
    }
    // iceoryx2 against shmx at 8 B, per round (only with the `compare-iceoryx2` feature).
    if let (Some(ice), Some(shmx)) = (
        rounds_of(results, 8, "iceoryx2"),
        rounds_of(results, 8, "shmx-spin"),
    ) {
        if let Some(x) = paired(&ice, Some(&shmx), |x| x.0) {
            out.push(format!(
                "8 B one-way, iceoryx2 ÷ shmx-spin = {} (target ≥ 3×): {}",
                format_ratio_against(x, 3.0),
                verdict(x >= 3.0)
            ));
        }
    }
    // Request/response against two topics by hand, and against iceoryx2's.
    out.extend(super::request::targets(results));
    // 4 MiB against 8 B, per round.
    let rounds = per_round(&results.latency);
    if let (Some(big), Some(small)) = (
        rounds.get(&(4 << 20, "shmx-spin")),
        rounds.get(&(8, "shmx-spin")),
    ) {
        if let Some(x) = paired(big, Some(small), |x| x.0) {
            out.push(format!(
                "shmx-spin one-way, 4 MiB ÷ 8 B = {} (target ≤ 1.5×): {}",
                format_ratio_against(x, 1.5),
                verdict(x <= 1.5)
            ));
        }
    }
    // Both ways of streaming: a message at a time, and in batches.
    for contender in ["shmx-stream", "shmx-batch"] {
        if let Some(t) = trows
            .iter()
            .find(|t| t.payload == 8 && t.subscribers == 1 && t.contender == contender)
        {
            out.push(format!(
                "8 B to one subscriber, {contender}: {} (target > 30 M/s; rounds {}–{}): {}",
                format_rate(t.rate),
                format_rate(t.round_rates.0),
                format_rate(t.round_rates.1),
                verdict(t.rate > 30e6)
            ));
            // What the machine allowed in the same rounds: its slow periods cut the
            // throughput of every design that moves a cache line per message alike (the
            // bare ring, eight messages to a line, much less), so this ratio shows how much
            // of that ceiling shmx reaches whatever the period.
            let ceiling = trows
                .iter()
                .find(|c| c.payload == 8 && c.subscribers == 1 && c.contender == CHUNK_FLOOR_ID);
            if let (Some(x), Some(c)) = (t.vs_chunk_floor, ceiling) {
                out.push(format!(
                    "  - per round, {contender} ÷ `{CHUNK_FLOOR_ID}` = {} (the ceiling of one \
                     chunk per message; it ran at {}–{})",
                    format_ratio(x),
                    format_rate(c.round_rates.0),
                    format_rate(c.round_rates.1),
                ));
            }
        }
    }
    out
}

/// The "Performance targets" section; nothing if the run measured none of them.
pub(super) fn section(
    s: &mut String,
    results: &Results,
    rows: &[LatencyRow],
    trows: &[ThroughputRow],
) {
    let targets = targets(results, rows, trows);
    if !targets.is_empty() {
        let _ = writeln!(s, "\n### Performance targets (DESIGN.md)\n");
        for t in targets {
            if t.starts_with(' ') {
                let _ = writeln!(s, "{t}"); // a detail of the target above
            } else {
                let _ = writeln!(s, "- {t}");
            }
        }
    }
}

/// Per round: (median, p99) of one payload and contender, if the run measured it.
fn rounds_of(
    results: &Results,
    payload: usize,
    id: &str,
) -> Option<std::collections::BTreeMap<usize, (f64, f64)>> {
    per_round(&results.latency)
        .into_iter()
        .find(|((p, c), _)| *p == payload && *c == id)
        .map(|(_, r)| r)
}
