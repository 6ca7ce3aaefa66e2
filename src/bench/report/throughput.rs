//! The "Throughput" section: messages per second from one publisher process to each count
//! of subscriber processes, each also as a ratio to the Unix socket.

use super::fmt::{format_rate, opt_ratio};
use super::median;
use crate::bench::interleave::Results;
use crate::bench::payload_label;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Throughput figures of one contender, payload and subscriber count.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputRow {
    /// Payload size in bytes.
    pub payload: usize,
    /// Subscriber processes.
    pub subscribers: usize,
    /// Contender id.
    pub contender: &'static str,
    /// Median over rounds of messages published per second (each delivered to every
    /// subscriber).
    pub rate: f64,
    /// Smallest and largest rate of one round.
    pub round_rates: (f64, f64),
    /// Median over rounds of (this rate / the Unix socket's rate of the same round).
    pub vs_uds: Option<f64>,
    /// Rounds measured.
    pub rounds: usize,
}

/// The throughput table's rows.
pub fn throughput_rows(results: &Results) -> Vec<ThroughputRow> {
    let mut by: BTreeMap<(usize, usize, &'static str), BTreeMap<usize, f64>> = BTreeMap::new();
    for b in &results.throughput {
        by.entry((b.payload, b.subscribers, b.contender))
            .or_default()
            .insert(b.round, b.rate());
    }
    let mut rows = Vec::new();
    for payload in crate::bench::THROUGHPUT_PAYLOADS {
        for subscribers in crate::bench::THROUGHPUT_SUBSCRIBERS {
            for c in crate::bench::THROUGHPUT {
                let Some(mine) = by.get(&(payload, subscribers, c.id())) else {
                    continue;
                };
                let rates: Vec<f64> = mine.values().copied().collect();
                let uds = by.get(&(payload, subscribers, "uds-stream"));
                let ratios: Vec<f64> = uds
                    .map(|u| {
                        mine.iter()
                            .filter_map(|(r, x)| Some(x / u.get(r)?))
                            .collect()
                    })
                    .unwrap_or_default();
                rows.push(ThroughputRow {
                    payload,
                    subscribers,
                    contender: c.id(),
                    rate: median(&rates).unwrap_or(0.0),
                    round_rates: (
                        rates.iter().copied().fold(f64::INFINITY, f64::min),
                        rates.iter().copied().fold(0.0, f64::max),
                    ),
                    vs_uds: median(&ratios),
                    rounds: rates.len(),
                });
            }
        }
    }
    rows
}

/// The "Throughput" section, of `rows` (not empty).
pub(super) fn section(s: &mut String, rows: &[ThroughputRow]) {
    let _ = writeln!(s, "\n### Throughput, one publisher process\n");
    let _ = writeln!(
        s,
        "| payload | subscribers | contender | messages/s | deliveries/s | ÷ UDS | round \
         range | rounds |"
    );
    let _ = writeln!(s, "|---|--:|---|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {}–{} | {} |",
            payload_label(r.payload),
            r.subscribers,
            r.contender,
            format_rate(r.rate),
            format_rate(r.rate * r.subscribers as f64),
            opt_ratio(r.vs_uds),
            format_rate(r.round_rates.0),
            format_rate(r.round_rates.1),
            r.rounds
        );
    }
    let _ = writeln!(
        s,
        "\nMessages/s: published per second, each received by every subscriber, in order \
         (verified); deliveries/s = messages/s × subscribers. Medians over rounds; ÷ UDS \
         per round."
    );
    let _ = writeln!(s, "\nContenders:");
    for c in crate::bench::THROUGHPUT {
        if rows.iter().any(|r| r.contender == c.id()) {
            let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
        }
    }
}
