//! The benchmark report: a short, interleaved run of every contender, printed as Markdown.
//!
//! ```text
//! cargo run --release --example bench_report              # ~2-3 min on 2 cores
//! cargo run --release --example bench_report -- --quick   # ~30 s
//! cargo run --release --example bench_report -- --payloads 8,4M --contenders floor,shmx-spin,uds
//! cargo run --release --example bench_report -- --quick --no-latency --no-throughput  # paced only
//! ```
//!
//! For each round, each payload and each contender (in rotating order: A B C, B C A, …) it
//! starts the contender's child process, warms up, records a batch of round trips and stops
//! the child; then the paced contenders (a message every 10 us, 100 us and 1 ms to a receiver
//! that waits for it), then the throughput contenders, the same way. The report (stdout) gives
//! the machine (CPU, kernel, where each process ran), the median and p99 one-way latency of
//! every contender and payload with their ratios to the floor and to a blocking Unix socket
//! (medians of per-round ratios), the paced one-way latency per interval with its ratios to
//! the spinning shmx receiver and to the socket, the throughput table, and the design's
//! performance targets.
//! Progress goes to stderr. All the work is in `shmx_suite::bench`; this file only reads the
//! command line.

use shmx_suite::bench::interleave::{self, Options};
use shmx_suite::bench::paced::{interval_label, parse_interval, PACED};
use shmx_suite::bench::report::{markdown, Machine};
use shmx_suite::bench::{parse_payload, payload_label, PING_PONG, THROUGHPUT};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: bench_report [--quick] [--rounds N] [--payloads 8,64,1K,64K,1M,4M]
                    [--intervals 10us,100us,1ms] [--contenders ID,ID,...] [--no-latency]
                    [--no-paced] [--no-throughput] [--pin] [--list]

  --quick          short run (~30 s): 3 rounds, quarter-size batches
  --rounds N       rounds of the round robin (default 8, or 3 with --quick)
  --payloads LIST  latency payload sizes (default: all of 8,64,1K,64K,1M,4M)
  --intervals LIST paced intervals, with units (default: 10us,100us,1ms)
  --contenders L   only these contender ids (see --list); ratios need `floor` and `uds`
                   (paced ratios: `shmx-spin` and `uds`)
  --no-latency     skip the latency table
  --no-paced       skip the paced one-way latency table (~20 s, ~5 s with --quick)
  --no-throughput  skip the throughput table
  --pin            pin the parent to the first allowed CPU and each child to the next
  --list           list the contenders and exit";

fn main() -> ExitCode {
    // A child process of the benchmark runs its role and exits here.
    shmx_suite::bench::run_child_if_requested();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_report: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let machine = Machine::detect();
    eprintln!(
        "bench_report: {} on {} ({} CPUs); progress below, the report on stdout",
        machine.kernel, machine.cpu_model, machine.cpus
    );
    let results = match interleave::run(&options, |line| eprintln!("  {line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_report: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = String::from("cargo run --release --example bench_report");
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    print!("{}", markdown(&results, &machine, &command));
    if results.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The options, or `None` when the command was `--list` or `--help`.
fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options::new(quick);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--quick" => {}
            "--rounds" => {
                o.rounds = value("--rounds")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--rounds needs a positive number")?;
            }
            "--payloads" => {
                o.payloads = value("--payloads")?
                    .split(',')
                    .map(|p| {
                        parse_payload(p)
                            .filter(|n| shmx_suite::bench::PAYLOADS.contains(n))
                            .ok_or_else(|| format!("unknown payload size {p:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--intervals" => {
                o.intervals = value("--intervals")?
                    .split(',')
                    .map(|i| {
                        parse_interval(i)
                            .filter(|d| {
                                (Duration::from_micros(1)..=Duration::from_millis(100)).contains(d)
                            })
                            .ok_or_else(|| {
                                format!("bad interval {i:?} (1us to 100ms, with a unit)")
                            })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--contenders" => {
                let ids: Vec<String> = value("--contenders")?
                    .split(',')
                    .map(str::to_owned)
                    .collect();
                for id in &ids {
                    let known = PING_PONG.iter().any(|c| c.id() == id)
                        || THROUGHPUT.iter().any(|c| c.id() == id)
                        || PACED.iter().any(|c| c.id() == id);
                    if !known {
                        return Err(format!("unknown contender {id:?} (see --list)"));
                    }
                }
                o.contenders = Some(ids);
            }
            "--no-latency" => o.latency = false,
            "--no-paced" => o.paced = false,
            "--no-throughput" => o.throughput = false,
            "--pin" => o.pin = true,
            "--list" => {
                println!("latency (ping-pong), payloads {}:", payloads());
                for c in PING_PONG {
                    println!("  {:<12} {}", c.id(), c.describe());
                }
                println!("paced one-way latency, 8 B every {}:", intervals());
                for c in PACED {
                    println!("  {:<12} {}", c.id(), c.describe());
                }
                println!("throughput, 8 B and 1 KiB to 1 and 4 subscribers:");
                for c in THROUGHPUT {
                    println!("  {:<12} {}", c.id(), c.describe());
                }
                return Ok(None);
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(o))
}

fn intervals() -> String {
    shmx_suite::bench::paced::INTERVALS
        .map(interval_label)
        .join(", ")
}

fn payloads() -> String {
    shmx_suite::bench::PAYLOADS.map(payload_label).join(", ")
}
