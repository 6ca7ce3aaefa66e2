//! The "Request/response round trip" section: median and p99 of whole round trips (one
//! request, one response) of the request/response contenders ([`PingPong::request_response`]),
//! each as a ratio to the ping-pong round trip of the same transport and to `shmx-rr-spin`,
//! and their two targets.
//!
//! [`PingPong::request_response`]: crate::PingPong::request_response

use super::fmt::{format_ns, format_ratio, format_ratio_against, opt_ratio, verdict};
use super::latency::per_round;
use super::paired;
use crate::interleave::Results;
use crate::request::{exchange_label, SPIN_ID};
use crate::{payload_label, PING_PONG};
use std::fmt::Write as _;

/// Round-trip figures of one request/response contender and payload (the response's size).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRow {
    /// Response size in bytes (the request's is `request::request_bytes` of it).
    pub payload: usize,
    /// Contender id.
    pub contender: &'static str,
    /// The ping-pong it is compared with (same transport, same way of waiting).
    pub twin: &'static str,
    /// Recorded round trips, all rounds together.
    pub samples: usize,
    /// Median round trip of all samples, in ns.
    pub median: f64,
    /// 99th percentile round trip of all samples, in ns.
    pub p99: f64,
    /// Smallest and largest median round trip of one round, in ns.
    pub round_medians: (f64, f64),
    /// Median over rounds of (this median / the twin's median round trip of the same round).
    pub vs_twin: Option<f64>,
    /// Median over rounds of (this median / `shmx-rr-spin`'s of the same round).
    pub vs_shmx: Option<f64>,
}

/// The request/response rows, by payload, then in registry order.
pub fn request_rows(results: &Results) -> Vec<RequestRow> {
    let rounds = per_round(&results.latency);
    let mut rows = Vec::new();
    for &payload in &results.options.payloads {
        for c in PING_PONG {
            let Some(twin) = c.request_response() else {
                continue;
            };
            let id = c.id();
            let Some(mine) = rounds.get(&(payload, id)) else {
                continue;
            };
            let mut all: Vec<u64> = results
                .latency
                .iter()
                .filter(|b| b.payload == payload && b.contender == id)
                .flat_map(|b| b.rtts.iter().copied())
                .collect();
            all.sort_unstable();
            // `per_round` holds one-way figures (round trip / 2): ratios are the same.
            let meds: Vec<f64> = mine.values().map(|x| x.0 * 2.0).collect();
            rows.push(RequestRow {
                payload,
                contender: id,
                twin,
                samples: all.len(),
                median: crate::percentile(&all, 0.5) as f64,
                p99: crate::percentile(&all, 0.99) as f64,
                round_medians: (
                    meds.iter().copied().fold(f64::INFINITY, f64::min),
                    meds.iter().copied().fold(0.0, f64::max),
                ),
                vs_twin: paired(mine, rounds.get(&(payload, twin)), |x| x.0),
                vs_shmx: paired(mine, rounds.get(&(payload, SPIN_ID)), |x| x.0),
            });
        }
    }
    rows
}

/// The "Request/response round trip" section, of `rows` (not empty).
pub(super) fn section(s: &mut String, results: &Results, rows: &[RequestRow]) {
    let o = &results.options;
    let _ = writeln!(s, "\n### Request/response round trip\n");
    let _ = writeln!(
        s,
        "| request → response | contender | median | p99 | ÷ its ping-pong | ÷ {SPIN_ID} \
         | round medians | samples |"
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let twin = r.vs_twin.map_or_else(
            || "–".to_owned(),
            |x| format!("{} (`{}`)", format_ratio(x), r.twin),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {}–{} | {} |",
            exchange_label(r.payload),
            r.contender,
            format_ns(r.median),
            format_ns(r.p99),
            twin,
            opt_ratio(r.vs_shmx),
            format_ns(r.round_medians.0),
            format_ns(r.round_medians.1),
            r.samples
        );
    }
    let _ = writeln!(
        s,
        "\nWhole round trips (not halved): the client sends a request of min(payload, 1 KiB), \
         the server answers with one response of the payload's size that ends the stream, the \
         client checks its counter. \"÷ its ping-pong\" is the median of per-round ratios to \
         the round trip of the ping-pong of the same transport and waiting in the same round \
         (for shmx, two topics used by hand: two pub/sub one-way latencies; that ping-pong \
         carries the payload's size both ways). shmx requests and responses of up to 64 B are \
         sent whole (`send(value)`, `respond_last(value)`); larger ones are loaned \
         with the chunk's bytes as they are (`Client::loan_recycled()`, \
         `loan_response_recycled()`) and get an 8-byte counter written in place; iceoryx2 \
         loans both uninitialised and writes the counter; \
         the socket carries every byte. Round trips per batch: {}.",
        o.payloads
            .iter()
            .map(|&p| format!("{} {}", payload_label(p), o.trips(p)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(s, "\nContenders:");
    for c in PING_PONG {
        if rows.iter().any(|r| r.contender == c.id()) {
            let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
        }
    }
}

/// The request/response targets this run measured, for the 8 B → 8 B and 1 KiB → 4 MiB
/// exchanges: every shmx request/response round trip within 1.2× of its ping-pong's (two
/// pub/sub one-way latencies), and iceoryx2's request/response at least 3× slower than
/// `shmx-rr-spin` (only when iceoryx2 ran).
pub(super) fn targets(results: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for r in request_rows(results)
        .iter()
        .filter(|r| r.payload == 8 || r.payload == 4 << 20)
    {
        let what = exchange_label(r.payload);
        if r.contender.starts_with("shmx-") {
            if let Some(x) = r.vs_twin {
                out.push(format!(
                    "{what} request/response round trip, {} ÷ {} (two pub/sub one-way \
                     latencies, same run) = {} (target ≤ 1.2×): {}",
                    r.contender,
                    r.twin,
                    format_ratio_against(x, 1.2),
                    verdict(x <= 1.2)
                ));
            }
        } else if r.contender.starts_with("iceoryx2") {
            if let Some(x) = r.vs_shmx {
                out.push(format!(
                    "{what} request/response round trip, {} ÷ {SPIN_ID} = {} (target ≥ 3×): {}",
                    r.contender,
                    format_ratio_against(x, 3.0),
                    verdict(x >= 3.0)
                ));
            }
        }
    }
    out
}
