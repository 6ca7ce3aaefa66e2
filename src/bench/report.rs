//! The Markdown report of an interleaved run: the machine (CPU model from `/proc/cpuinfo`,
//! kernel from `uname`, clock source, load), where the processes ran (affinity masks from
//! `sched_getaffinity`, CPUs from `sched_getcpu`), a latency table (median and p99 of the
//! one-way latency per contender and payload, each also as a ratio to the floor and to the
//! blocking Unix socket), a paced one-way latency table (a receiver that waits between
//! messages sent every 10 us, 100 us or 1 ms: median and p99, each median also as a ratio to
//! the spinning shmx receiver and to the blocking Unix socket), a throughput table and the
//! design's performance targets.
//!
//! Ratios are taken per pair: for each round, the contender's figure over the reference's
//! figure of the same round and payload (batches seconds apart), and the table shows the
//! median of those per-round ratios, which a slow period of the machine during one round does
//! not move much.

use super::interleave::{LatencyBatch, PacedBatch, Results};
use super::paced::{interval_label, SPIN_ID};
use super::process::{cpu_list, Placement};
use super::{payload_label, FLOOR_ID, UDS_ID};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// `sysname release machine` from `uname`.
    pub kernel: String,
    /// `virtual machine (KVM)` and the like, from the `hypervisor` CPU flag and lscpu-like
    /// hints; `None` on bare metal.
    pub virtualization: Option<String>,
    /// The kernel's clock source (`tsc`, `kvm-clock`, …): what a clock reading costs.
    pub clocksource: Option<String>,
    /// `/proc/loadavg` at detection time.
    pub load: Option<String>,
}

impl Machine {
    /// Looks at this machine.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
        };
        let cpu_model = field("model name")
            .or_else(|| field("Processor"))
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let flags = field("flags").unwrap_or_default();
        let virtualization = flags
            .split_whitespace()
            .any(|f| f == "hypervisor")
            .then(|| {
                let vendor = std::fs::read_to_string("/sys/class/dmi/id/sys_vendor")
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty());
                match vendor {
                    Some(v) => format!("virtual machine ({v})"),
                    None => "virtual machine".to_owned(),
                }
            });
        let uname = rustix::system::uname();
        let kernel = format!(
            "{} {} {}",
            uname.sysname().to_string_lossy(),
            uname.release().to_string_lossy(),
            uname.machine().to_string_lossy()
        );
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
        };
        Machine {
            cpu_model,
            cpus: super::process::allowed_cpus().len(),
            kernel,
            virtualization,
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            load: read("/proc/loadavg"),
        }
    }
}

/// Formats nanoseconds with three significant digits: `61.5 ns`, `1.62 us`, `22.1 us`,
/// `4.05 ms`.
///
/// ```
/// use shmx_suite::bench::report::format_ns;
/// assert_eq!(format_ns(61.5), "61.5 ns");
/// assert_eq!(format_ns(1620.0), "1.62 us");
/// assert_eq!(format_ns(22_140.0), "22.1 us");
/// assert_eq!(format_ns(4_050_000.0), "4.05 ms");
/// ```
pub fn format_ns(ns: f64) -> String {
    let (v, unit) = match ns {
        n if n < 1e3 => (n, "ns"),
        n if n < 1e6 => (n / 1e3, "us"),
        n if n < 1e9 => (n / 1e6, "ms"),
        n => (n / 1e9, "s"),
    };
    format!("{} {unit}", sig3(v))
}

/// Formats a rate per second: `3.21 M/s`, `850 k/s`.
///
/// ```
/// use shmx_suite::bench::report::format_rate;
/// assert_eq!(format_rate(3_210_000.0), "3.21 M/s");
/// assert_eq!(format_rate(850_000.0), "850 k/s");
/// ```
pub fn format_rate(per_s: f64) -> String {
    match per_s {
        r if r >= 1e9 => format!("{} G/s", sig3(r / 1e9)),
        r if r >= 1e6 => format!("{} M/s", sig3(r / 1e6)),
        r if r >= 1e3 => format!("{} k/s", sig3(r / 1e3)),
        r => format!("{} /s", sig3(r)),
    }
}

/// Formats a ratio: `1.32×`, `0.0254×`, `41×`.
///
/// ```
/// use shmx_suite::bench::report::format_ratio;
/// assert_eq!(format_ratio(1.324), "1.32×");
/// assert_eq!(format_ratio(0.02541), "0.0254×");
/// assert_eq!(format_ratio(41.2), "41.2×");
/// ```
pub fn format_ratio(r: f64) -> String {
    format!("{}×", sig3(r))
}

/// Three significant digits, no exponent.
fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let a = v.abs();
    let decimals = match a {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 || a == 0.0 => 2,
        a => (2 - a.log10().floor() as i32).clamp(2, 9) as usize,
    };
    format!("{v:.decimals$}")
}

/// The median of `values` (mean of the middle two for an even count); `None` if empty.
///
/// ```
/// use shmx_suite::bench::report::median;
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
type PerRound = BTreeMap<(usize, &'static str), BTreeMap<usize, (f64, f64)>>;

fn per_round(batches: &[LatencyBatch]) -> PerRound {
    let mut m = PerRound::new();
    for b in batches {
        m.entry((b.payload, b.contender))
            .or_default()
            .insert(b.round, one_way(&b.rtts));
    }
    m
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

/// The latency table's rows, by payload, then in registry order.
pub fn latency_rows(results: &Results) -> Vec<LatencyRow> {
    let rounds = per_round(&results.latency);
    let mut rows = Vec::new();
    for &payload in &results.options.payloads {
        for c in super::PING_PONG {
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
        for c in super::paced::PACED {
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
    for payload in super::THROUGHPUT_PAYLOADS {
        for subscribers in super::THROUGHPUT_SUBSCRIBERS {
            for c in super::THROUGHPUT {
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

fn opt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), format_ratio)
}

/// `2026-11-23 18:40 UTC`.
pub fn format_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Where the processes of all batches were allowed to run, and ran.
fn placement_summary(results: &Results) -> Vec<String> {
    let all = results
        .latency
        .iter()
        .map(|b| &b.placements)
        .chain(results.paced.iter().map(|b| &b.placements))
        .chain(results.throughput.iter().map(|b| &b.placements));
    let mut affinity: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut seen: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let (mut batches, mut shared) = (0, 0);
    for ps in all {
        batches += 1;
        for p in ps {
            affinity
                .entry(p.role.as_str())
                .or_default()
                .insert(cpu_list(&p.affinity));
            seen.entry(p.role.as_str()).or_default().insert(p.cpu);
        }
        let parent: Vec<&Placement> = ps.iter().filter(|p| p.role == "parent").collect();
        if ps
            .iter()
            .filter(|p| p.role == "child")
            .any(|c| parent.iter().any(|p| p.cpu == c.cpu))
        {
            shared += 1;
        }
    }
    let mut lines = Vec::new();
    for role in ["parent", "child"] {
        let (Some(a), Some(s)) = (affinity.get(role), seen.get(role)) else {
            continue;
        };
        let masks: Vec<String> = a.iter().map(|m| format!("{{{m}}}")).collect();
        let cpus: Vec<usize> = s.iter().copied().collect();
        lines.push(format!(
            "{}: affinity {}; last seen on CPU {} (sampled at the end of each batch)",
            if role == "parent" {
                "parent (measuring) process"
            } else {
                "child processes"
            },
            masks.join(" or "),
            cpu_list(&cpus)
        ));
    }
    lines.push(format!(
        "batches whose parent and a child were last seen on the same CPU: {shared} of {batches}"
    ));
    lines
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
    let _ = writeln!(s, "- CPU: {} ({} CPUs)", machine.cpu_model, machine.cpus);
    let _ = writeln!(
        s,
        "- Kernel: {}{}",
        machine.kernel,
        machine
            .virtualization
            .as_ref()
            .map_or(String::new(), |v| format!(", {v}"))
    );
    if let Some(c) = &machine.clocksource {
        let _ = writeln!(s, "- Clock source: {c}");
    }
    if let Some(l) = &machine.load {
        let _ = writeln!(s, "- Load average at start: {l}");
    }
    let _ = writeln!(
        s,
        "- Placement: {}",
        if o.pin {
            "pinned (parent on the first allowed CPU, each child on the next)"
        } else {
            "left to the scheduler (--pin pins)"
        }
    );
    for line in placement_summary(results) {
        let _ = writeln!(s, "  - {line}");
    }

    let rows = latency_rows(results);
    if !rows.is_empty() {
        let _ = writeln!(s, "\n### One-way latency (round trip / 2)\n");
        let _ = writeln!(
            s,
            "| payload | contender | median | p99 | median ÷ floor | median ÷ UDS | p99 ÷ floor \
             | p99 ÷ UDS | round medians | samples |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        for r in &rows {
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
             way; shmx writes an 8-byte counter in place and moves no payload bytes. Round \
             trips per batch: {}.",
            o.payloads
                .iter()
                .map(|&p| format!("{} {}", payload_label(p), o.trips(p)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "\nContenders:");
        for c in super::PING_PONG {
            if rows.iter().any(|r| r.contender == c.id()) {
                let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
            }
        }
    }

    let prows = paced_rows(results);
    if !prows.is_empty() {
        paced_section(&mut s, results, &prows);
    }

    let trows = throughput_rows(results);
    if !trows.is_empty() {
        let _ = writeln!(s, "\n### Throughput, one publisher process\n");
        let _ = writeln!(
            s,
            "| payload | subscribers | contender | messages/s | deliveries/s | ÷ UDS | round \
             range | rounds |"
        );
        let _ = writeln!(s, "|---|--:|---|--:|--:|--:|--:|--:|");
        for r in &trows {
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
        for c in super::THROUGHPUT {
            if trows.iter().any(|r| r.contender == c.id()) {
                let _ = writeln!(s, "- `{}`: {}", c.id(), c.describe());
            }
        }
    }

    let targets = targets(results, &rows, &trows);
    if !targets.is_empty() {
        let _ = writeln!(s, "\n### Performance targets (DESIGN.md)\n");
        for t in targets {
            let _ = writeln!(s, "- {t}");
        }
    }
    if !results.failures.is_empty() {
        let _ = writeln!(s, "\n### Failed batches\n");
        for f in &results.failures {
            let _ = writeln!(s, "- {f}");
        }
    }
    s
}

/// The "Paced one-way latency" section.
fn paced_section(s: &mut String, results: &Results, rows: &[PacedRow]) {
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
        super::paced::PAYLOAD,
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
    for c in super::paced::PACED {
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

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// The design's targets that this run measured, each with its figure and verdict.
fn targets(results: &Results, rows: &[LatencyRow], trows: &[ThroughputRow]) -> Vec<String> {
    let mut out = Vec::new();
    let row = |p: usize, id: &str| rows.iter().find(|r| r.payload == p && r.contender == id);
    if let Some(r) = row(8, "shmx-spin") {
        if let Some(x) = r.vs_floor {
            out.push(format!(
                "8 B one-way, shmx-spin ÷ floor = {} (target ≤ 1.5×, 2× at the very least): {}",
                format_ratio(x),
                verdict(x <= 1.5)
            ));
        }
        if let Some(x) = r.vs_uds {
            out.push(format!(
                "8 B one-way, blocking UDS ÷ shmx-spin = {} (target ≥ 20×): {}",
                format_ratio(1.0 / x),
                verdict(1.0 / x >= 20.0)
            ));
        }
    }
    // 4 MiB against 8 B, per round.
    let rounds = per_round(&results.latency);
    if let (Some(big), Some(small)) = (
        rounds.get(&(4 << 20, "shmx-spin")),
        rounds.get(&(8, "shmx-spin")),
    ) {
        if let Some(x) = paired(big, Some(small), |x| x.0) {
            out.push(format!(
                "shmx-spin one-way, 4 MiB ÷ 8 B = {} (target ≤ 1.5×): {}",
                format_ratio(x),
                verdict(x <= 1.5)
            ));
        }
    }
    if let Some(t) = trows
        .iter()
        .find(|t| t.payload == 8 && t.subscribers == 1 && t.contender == "shmx-stream")
    {
        out.push(format!(
            "8 B to one subscriber, shmx-stream: {} (target > 30 M/s): {}",
            format_rate(t.rate),
            verdict(t.rate > 30e6)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_453_260);
        assert_eq!(format_utc(t), "2026-11-23 17:01 UTC");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(format_utc(leap), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn ratios_pair_batches_of_the_same_round() {
        let a = BTreeMap::from([(0, (10.0, 20.0)), (1, (30.0, 60.0)), (2, (5.0, 5.0))]);
        let b = BTreeMap::from([(0, (5.0, 10.0)), (1, (10.0, 10.0))]);
        assert_eq!(paired(&a, Some(&b), |x| x.0), Some(2.5));
        assert_eq!(paired(&a, Some(&b), |x| x.1), Some(4.0));
        assert_eq!(paired(&a, None, |x| x.0), None);
    }

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
            options: super::super::interleave::Options::new(true),
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

    #[test]
    fn significant_digits() {
        assert_eq!(format_ns(999.4), "999 ns");
        assert_eq!(format_ns(0.0), "0.00 ns");
        assert_eq!(format_rate(31_400_000.0), "31.4 M/s");
        assert_eq!(format_ratio(0.5), "0.500×");
    }
}
