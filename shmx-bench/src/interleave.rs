//! The interleaved runner behind `bench_report` (and `shmx bench`): short batches of every
//! contender in round-robin order, round after round, so that the machine's slow periods
//! (several seconds in which everything is 3-8x slower) hit all contenders alike and every
//! ratio can be taken between batches that ran seconds apart, never minutes.
//!
//! Each round goes through every payload and, for each, through every contender, starting
//! one contender further each round (A B C, B C A, C A B, …). A batch starts fresh processes
//! in a fresh run directory, runs some round trips to warm up (page faults, caches), then
//! records every round trip of the batch, and stops its child; so no idle child spins while
//! another contender is measured. Paced batches ([`super::paced`]: every interval, every
//! contender, in rotating order) follow the latency rounds, and throughput batches follow the
//! same pattern after those.

use super::paced::{self, Paced, PACED};
use super::process::{self, Placement, RunDir};
use super::{PingPong, Result, Throughput, PAYLOADS, PING_PONG, THROUGHPUT};
use super::{THROUGHPUT_PAYLOADS, THROUGHPUT_SUBSCRIBERS};
use std::time::{Duration, Instant, SystemTime};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The short version (about 30 s instead of 2-3 min).
    pub quick: bool,
    /// Rounds of the round robin.
    pub rounds: usize,
    /// Payload sizes of the latency table.
    pub payloads: Vec<usize>,
    /// Contender ids to run (ping-pong and throughput alike); `None`: all of them.
    pub contenders: Option<Vec<String>>,
    /// Run the latency table.
    pub latency: bool,
    /// Run the throughput table.
    pub throughput: bool,
    /// Run the paced one-way latency table ([`super::paced`]).
    pub paced: bool,
    /// Intervals between messages of the paced table.
    pub intervals: Vec<Duration>,
    /// Pin the parent and each child to a CPU of its own ([`process::set_pinning`]).
    pub pin: bool,
}

impl Options {
    /// Everything, full length (`quick == false`) or short.
    pub fn new(quick: bool) -> Options {
        Options {
            quick,
            rounds: if quick { 3 } else { 8 },
            payloads: PAYLOADS.to_vec(),
            contenders: None,
            latency: true,
            throughput: true,
            paced: true,
            intervals: paced::INTERVALS.to_vec(),
            pin: false,
        }
    }

    /// Round trips recorded per latency batch.
    pub fn trips(&self, payload: usize) -> u64 {
        let full = match payload {
            0..=4096 => 2000,
            4097..=65536 => 1000,
            65537..=1048576 => 200,
            _ => 100,
        };
        if self.quick {
            full / 4
        } else {
            full
        }
    }

    /// Round trips run, and not recorded, at the start of each latency batch: enough to
    /// touch every chunk of a ping-pong topic's pool twice (first touches fault pages in).
    pub fn warmup(&self, payload: usize) -> u64 {
        (self.trips(payload) / 10).max(20)
    }

    /// Messages measured per paced batch at `interval`: 5000 up to 50 us, 1000 up to 500 us,
    /// 500 beyond (half as many with `quick`), and never more than 1 s of them (100 at
    /// least). With the default intervals, 8 rounds take ~6 s per contender and 3 quick ones
    /// ~1.2 s (the 8 contenders of a default build: ~50 s, ~10 s quick).
    pub fn paced_messages(&self, interval: Duration) -> u64 {
        let full: u64 = match interval.as_micros() {
            0..=50 => 5000,
            51..=500 => 1000,
            _ => 500,
        };
        let n = if self.quick { full / 2 } else { full };
        let per_second = Duration::from_secs(1).as_nanos() / interval.as_nanos().max(1);
        n.min(per_second as u64).max(100)
    }

    /// Messages sent, and not measured, at the start of each paced batch, so that the
    /// receiver's adaptive spin budget settles (from its initial 20 us, a budget moves by a
    /// factor of 2 per message): 200, or 50 ms of them if that is fewer, 20 at least.
    pub fn paced_warmup(&self, interval: Duration) -> u64 {
        let in_50ms = Duration::from_millis(50).as_nanos() / interval.as_nanos().max(1);
        (in_50ms as u64).clamp(20, 200)
    }

    /// How long one throughput batch aims to take.
    pub fn throughput_batch(&self) -> Duration {
        Duration::from_millis(if self.quick { 60 } else { 200 })
    }

    /// Whether contender `id` is selected.
    pub fn selected(&self, id: &str) -> bool {
        self.contenders
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|c| c == id))
    }
}

/// One latency batch: one contender, one payload, one round.
#[derive(Debug, Clone)]
pub struct LatencyBatch {
    /// Round number, from 0.
    pub round: usize,
    /// Payload size in bytes.
    pub payload: usize,
    /// The contender's id.
    pub contender: &'static str,
    /// Every recorded round trip, in nanoseconds (one-way latency is half of it).
    pub rtts: Vec<u64>,
    /// Where the parent (first) and the child ran.
    pub placements: Vec<Placement>,
}

/// One paced batch: one contender, one interval, one round.
#[derive(Debug, Clone)]
pub struct PacedBatch {
    /// Round number, from 0.
    pub round: usize,
    /// Interval between messages.
    pub interval: Duration,
    /// The contender's id.
    pub contender: &'static str,
    /// One-way latency of every measured message, in nanoseconds, in order of arrival.
    pub latencies: Vec<u64>,
    /// Time from the first to the last measured message's send stamp, in nanoseconds.
    pub span: u64,
    /// Where the parent (first) and the child ran.
    pub placements: Vec<Placement>,
}

impl PacedBatch {
    /// The achieved mean interval between measured messages, in nanoseconds.
    pub fn mean_gap(&self) -> f64 {
        self.span as f64 / (self.latencies.len().max(2) - 1) as f64
    }
}

/// One throughput batch.
#[derive(Debug, Clone)]
pub struct ThroughputBatch {
    /// Round number, from 0.
    pub round: usize,
    /// Payload size in bytes.
    pub payload: usize,
    /// Number of subscriber processes.
    pub subscribers: usize,
    /// The contender's id.
    pub contender: &'static str,
    /// Messages published, each received by every subscriber (verified).
    pub messages: u64,
    /// Time from the first publish to the last subscriber's confirmation.
    pub elapsed: Duration,
    /// Where the parent (first) and the children ran.
    pub placements: Vec<Placement>,
}

impl ThroughputBatch {
    /// Messages published per second (each delivered to every subscriber).
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// What was asked for.
    pub options: Options,
    /// When the run started.
    pub started: SystemTime,
    /// How long it took.
    pub elapsed: Duration,
    /// Latency batches, in the order they ran.
    pub latency: Vec<LatencyBatch>,
    /// Throughput batches, in the order they ran.
    pub throughput: Vec<ThroughputBatch>,
    /// Paced batches, in the order they ran.
    pub paced: Vec<PacedBatch>,
    /// Batches that failed (contender, payload, error); the run went on without them.
    pub failures: Vec<String>,
}

/// The selected ping-pong contenders, in table order.
pub fn ping_pongs(options: &Options) -> Vec<&'static dyn PingPong> {
    PING_PONG
        .iter()
        .copied()
        .filter(|c| options.selected(c.id()))
        .collect()
}

/// The selected throughput contenders, in table order.
pub fn throughputs(options: &Options) -> Vec<&'static dyn Throughput> {
    THROUGHPUT
        .iter()
        .copied()
        .filter(|c| options.selected(c.id()))
        .collect()
}

/// The selected paced contenders, in table order.
pub fn pacers(options: &Options) -> Vec<&'static Paced> {
    PACED
        .iter()
        .copied()
        .filter(|c| options.selected(c.id()))
        .collect()
}

/// Runs everything `options` selects; `progress` gets a line of news now and then (for
/// stderr).
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Results> {
    if options.pin {
        process::set_pinning(true)?;
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut results = Results {
        options: options.clone(),
        started,
        elapsed: Duration::ZERO,
        latency: Vec::new(),
        throughput: Vec::new(),
        paced: Vec::new(),
        failures: Vec::new(),
    };
    if options.latency {
        run_latency(options, &mut results, &mut progress);
    }
    if options.paced {
        run_paced(options, &mut results, &mut progress);
    }
    if options.throughput {
        run_throughput(options, &mut results, &mut progress);
    }
    if options.pin {
        process::set_pinning(false)?;
    }
    results.elapsed = clock.elapsed();
    Ok(results)
}

fn rotated<T: Copy>(items: &[T], by: usize) -> Vec<T> {
    let mut v = items.to_vec();
    if !v.is_empty() {
        let k = by % v.len();
        v.rotate_left(k);
    }
    v
}

fn run_latency(options: &Options, results: &mut Results, progress: &mut impl FnMut(&str)) {
    let contenders = ping_pongs(options);
    for round in 0..options.rounds {
        for &payload in &options.payloads {
            let here: Vec<_> = contenders
                .iter()
                .copied()
                .filter(|c| c.supports(payload))
                .collect();
            let mut line = format!(
                "round {}/{} {:>7}:",
                round + 1,
                options.rounds,
                super::payload_label(payload)
            );
            for c in rotated(&here, round) {
                match latency_batch(options, c, payload) {
                    Ok((rtts, placements)) => {
                        let mut sorted = rtts.clone();
                        sorted.sort_unstable();
                        let median = crate::percentile(&sorted, 0.5) as f64 / 2.0;
                        line.push_str(&format!(" {} {}", c.id(), super::report::format_ns(median)));
                        results.latency.push(LatencyBatch {
                            round,
                            payload,
                            contender: c.id(),
                            rtts,
                            placements,
                        });
                    }
                    Err(e) => {
                        line.push_str(&format!(" {} FAILED", c.id()));
                        results.failures.push(format!(
                            "latency, {}, {}: {e}",
                            c.id(),
                            super::payload_label(payload)
                        ));
                    }
                }
            }
            progress(&line);
        }
    }
}

fn latency_batch(
    options: &Options,
    contender: &dyn PingPong,
    payload: usize,
) -> Result<(Vec<u64>, Vec<Placement>)> {
    let run = RunDir::new()?;
    let mut session = contender.start(payload, &run)?;
    let measured = (|| {
        session.round_trips(options.warmup(payload), None)?;
        let mut rtts = Vec::with_capacity(options.trips(payload) as usize);
        session.round_trips(options.trips(payload), Some(&mut rtts))?;
        Ok::<_, super::Error>(rtts)
    })();
    let parent = Placement::here("parent");
    let children = session.finish();
    let rtts = measured?;
    let mut placements = vec![parent];
    placements.extend(children?);
    Ok((rtts, placements))
}

fn run_paced(options: &Options, results: &mut Results, progress: &mut impl FnMut(&str)) {
    let contenders = pacers(options);
    if contenders.is_empty() {
        return;
    }
    for round in 0..options.rounds {
        for &interval in &options.intervals {
            let mut line = format!(
                "round {}/{} paced {:>6}:",
                round + 1,
                options.rounds,
                paced::interval_label(interval)
            );
            for c in rotated(&contenders, round) {
                let batch = RunDir::new().and_then(|run| {
                    c.run(
                        &run,
                        interval,
                        options.paced_warmup(interval),
                        options.paced_messages(interval),
                    )
                });
                match batch {
                    Ok(r) => {
                        let mut sorted = r.latencies.clone();
                        sorted.sort_unstable();
                        let median = crate::percentile(&sorted, 0.5) as f64;
                        line.push_str(&format!(" {} {}", c.id(), super::report::format_ns(median)));
                        results.paced.push(PacedBatch {
                            round,
                            interval,
                            contender: c.id(),
                            latencies: r.latencies,
                            span: r.span,
                            placements: r.placements,
                        });
                    }
                    Err(e) => {
                        line.push_str(&format!(" {} FAILED", c.id()));
                        results.failures.push(format!(
                            "paced, {}, every {}: {e}",
                            c.id(),
                            paced::interval_label(interval)
                        ));
                    }
                }
            }
            progress(&line);
        }
    }
}

fn run_throughput(options: &Options, results: &mut Results, progress: &mut impl FnMut(&str)) {
    let contenders = throughputs(options);
    for round in 0..options.rounds {
        for payload in THROUGHPUT_PAYLOADS {
            for subscribers in THROUGHPUT_SUBSCRIBERS {
                let here: Vec<_> = contenders
                    .iter()
                    .copied()
                    .filter(|c| c.supports(payload, subscribers))
                    .collect();
                let mut line = format!(
                    "round {}/{} {:>7} to {subscribers}:",
                    round + 1,
                    options.rounds,
                    super::payload_label(payload)
                );
                for c in rotated(&here, round) {
                    match throughput_batch(options, c, payload, subscribers) {
                        Ok(batch) => {
                            line.push_str(&format!(
                                " {} {}",
                                c.id(),
                                super::report::format_rate(
                                    batch.messages as f64 / batch.elapsed.as_secs_f64()
                                )
                            ));
                            results.throughput.push(ThroughputBatch { round, ..batch });
                        }
                        Err(e) => {
                            line.push_str(&format!(" {} FAILED", c.id()));
                            results.failures.push(format!(
                                "throughput, {}, {} to {subscribers}: {e}",
                                c.id(),
                                super::payload_label(payload)
                            ));
                        }
                    }
                }
                progress(&line);
            }
        }
    }
}

fn throughput_batch(
    options: &Options,
    contender: &dyn Throughput,
    payload: usize,
    subscribers: usize,
) -> Result<ThroughputBatch> {
    let run = RunDir::new()?;
    let mut stream = contender.start(payload, subscribers, &run)?;
    let measured = (|| {
        // Warm up, and size the batch from the rate seen.
        let probe = 2000;
        let t = stream.send(probe)?;
        let rate = probe as f64 / t.as_secs_f64().max(1e-9);
        let n = (rate * options.throughput_batch().as_secs_f64()).clamp(2000.0, 50e6) as u64;
        let elapsed = stream.send(n)?;
        Ok::<_, super::Error>((n, elapsed))
    })();
    let parent = Placement::here("parent");
    let children = stream.finish();
    let (messages, elapsed) = measured?;
    let mut placements = vec![parent];
    placements.extend(children?);
    Ok(ThroughputBatch {
        round: 0,
        payload,
        subscribers,
        contender: contender.id(),
        messages,
        elapsed,
        placements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_one_further_each_round() {
        assert_eq!(rotated(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(rotated(&[1, 2, 3], 1), [2, 3, 1]);
        assert_eq!(rotated(&[1, 2, 3], 5), [3, 1, 2]);
        assert!(rotated::<u8>(&[], 3).is_empty());
    }

    #[test]
    fn quick_batches_are_shorter() {
        let (q, f) = (Options::new(true), Options::new(false));
        for p in PAYLOADS {
            assert!(q.trips(p) < f.trips(p) && q.warmup(p) >= 20);
        }
    }

    #[test]
    fn paced_runs_fit_their_time_budget() {
        // Every contender sends warm-up and measured messages at each interval, each round.
        let per_contender = |o: &Options| {
            let per_round: Duration = o
                .intervals
                .iter()
                .map(|&i| i * (o.paced_warmup(i) + o.paced_messages(i)) as u32)
                .sum();
            per_round * o.rounds as u32
        };
        let (q, f) = (Options::new(true), Options::new(false));
        assert!(
            per_contender(&q) <= Duration::from_millis(1250),
            "{:?}",
            per_contender(&q)
        );
        assert!(
            per_contender(&f) <= Duration::from_secs(6),
            "{:?}",
            per_contender(&f)
        );
        // Every contender of a default build: about a minute at most, a quarter of it quick.
        let all = PACED.len() as u32;
        assert!(per_contender(&f) * all <= Duration::from_secs(60));
        assert!(per_contender(&q) * all <= Duration::from_secs(15));
        for i in paced::INTERVALS {
            assert!(q.paced_messages(i) < f.paced_messages(i) && f.paced_warmup(i) >= 20);
        }
    }
}
