//! The "Throughput" section: messages per second from one publisher process to each count
//! of subscriber processes, each also as a ratio to the bare ring (the floor) and to the Unix
//! socket.

use super::fmt::{format_rate, opt_ratio};
use super::median;
use crate::interleave::Results;
use crate::payload_label;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Id of the throughput table's second reference: Unix domain stream sockets.
const UDS_STREAM_ID: &str = "uds-stream";

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
    /// Median over rounds of (this rate / the bare ring's rate of the same round).
    pub vs_floor: Option<f64>,
    /// Median over rounds of (this rate / `chunk-floor`'s rate of the same round): the
    /// share of what one chunk per message allows (in the targets, not the table).
    pub vs_chunk_floor: Option<f64>,
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
    for payload in crate::THROUGHPUT_PAYLOADS {
        for subscribers in crate::THROUGHPUT_SUBSCRIBERS {
            for c in crate::THROUGHPUT {
                let Some(mine) = by.get(&(payload, subscribers, c.id())) else {
                    continue;
                };
                let rates: Vec<f64> = mine.values().copied().collect();
                // Per round, this rate ÷ the reference's (the median of those ratios).
                let vs = |reference: &str| {
                    let other = by.get(&(payload, subscribers, reference))?;
                    let ratios: Vec<f64> = mine
                        .iter()
                        .filter_map(|(r, x)| Some(x / other.get(r)?))
                        .collect();
                    median(&ratios)
                };
                rows.push(ThroughputRow {
                    payload,
                    subscribers,
                    contender: c.id(),
                    rate: median(&rates).unwrap_or(0.0),
                    round_rates: (
                        rates.iter().copied().fold(f64::INFINITY, f64::min),
                        rates.iter().copied().fold(0.0, f64::max),
                    ),
                    vs_floor: vs(crate::RING_FLOOR_ID),
                    vs_chunk_floor: vs(crate::CHUNK_FLOOR_ID),
                    vs_uds: vs(UDS_STREAM_ID),
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
        "| payload | subscribers | contender | messages/s | deliveries/s | ÷ ring floor | \
         ÷ UDS | round range | rounds |"
    );
    let _ = writeln!(s, "|---|--:|---|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {}–{} | {} |",
            payload_label(r.payload),
            r.subscribers,
            r.contender,
            format_rate(r.rate),
            format_rate(r.rate * r.subscribers as f64),
            opt_ratio(r.vs_floor),
            opt_ratio(r.vs_uds),
            format_rate(r.round_rates.0),
            format_rate(r.round_rates.1),
            r.rounds
        );
    }
    let _ = writeln!(
        s,
        "\nMessages/s: published per second, each received by every subscriber, in order \
         (verified); deliveries/s = messages/s × subscribers. Medians over rounds; the \
         ratios to the bare ring (`ring-floor`) and to the socket (`uds-stream`) are taken per \
         round, so that a slow period of the machine, which slows every contender of its \
         round, cancels out."
    );
    let _ = writeln!(s, "\nContenders:");
    for c in crate::THROUGHPUT {
        if rows.iter().any(|r| r.contender == c.id()) {
            let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interleave::{Options, ThroughputBatch};
    use std::time::{Duration, SystemTime};

    fn batch(round: usize, contender: &'static str, per_second: u64) -> ThroughputBatch {
        ThroughputBatch {
            round,
            payload: 8,
            subscribers: 1,
            contender,
            messages: per_second,
            elapsed: Duration::from_secs(1),
            placements: Vec::new(),
        }
    }

    #[test]
    fn ratios_pair_rounds_so_that_a_slow_round_cancels_out() {
        // Round 1 runs at half speed for everyone: the rates spread, the ratios do not.
        let results = Results {
            options: Options::new(true),
            started: SystemTime::now(),
            elapsed: Duration::ZERO,
            latency: Vec::new(),
            throughput: vec![
                batch(0, "ring-floor", 100),
                batch(0, "shmx-batch", 30),
                batch(1, "shmx-batch", 15),
                batch(1, "ring-floor", 50),
                batch(2, "shmx-batch", 36),
                batch(2, "ring-floor", 120),
            ],
            paced: Vec::new(),
            failures: Vec::new(),
        };
        let rows = throughput_rows(&results);
        let shmx = rows.iter().find(|r| r.contender == "shmx-batch").unwrap();
        assert_eq!(shmx.rate, 30.0);
        assert_eq!(shmx.round_rates, (15.0, 36.0));
        assert!((shmx.vs_floor.unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(shmx.vs_uds, None); // no socket in this run
        let ring = rows.iter().find(|r| r.contender == "ring-floor").unwrap();
        assert_eq!(ring.vs_floor, Some(1.0));
    }
}
