//! The interleaved runner behind `bench_report` (and `shmx bench`): short batches of every
//! contender in round-robin order, round after round, so that the machine's slow periods
//! (several seconds in which everything is 3-8x slower) hit all contenders alike and every
//! ratio can be taken between batches that ran seconds apart, never minutes.
//!
//! Each round goes through every payload and, for each, through every contender, starting
//! one contender further each round (A B C, B C A, C A B, …). A batch starts fresh processes
//! in a fresh run directory, runs some round trips to warm up (page faults, caches), then
//! records every round trip of the batch, and stops its child; so no idle child spins while
//! another contender is measured. Throughput batches follow the same pattern after the
//! latency rounds.

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
        failures: Vec::new(),
    };
    if options.latency {
        run_latency(options, &mut results, &mut progress);
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
}
