//! The command line of the benchmark report, shared by `examples/bench_report.rs` and the
//! `shmx bench` command: options, `--list`, and the run itself.

use crate::interleave::{self, Options};
use crate::paced::{interval_label, parse_interval, PACED};
use crate::report::{markdown, Machine};
use crate::{parse_payload, payload_label, PING_PONG, THROUGHPUT};
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
                   (paced ratios: `shmx-spin` and `uds`; request/response ratios:
                   each one's ping-pong, see --list, and `shmx-rr-spin`)
  --no-latency     skip the latency and request/response tables
  --no-paced       skip the paced one-way latency table (~50 s, ~10 s with --quick)
  --no-throughput  skip the throughput table
  --pin            pin the parent to the first allowed CPU and each child to the next
  --list           list the contenders and exit";

/// Runs the report with command-line `args` (without the program name); `command` is how
/// the report names the command that produced it, without the options (e.g. `shmx bench`:
/// the report adds ` -- <args>`). Call
/// [`run_child_if_requested`](crate::run_child_if_requested) first thing in `main`.
pub fn run(args: &[String], command: &str) -> ExitCode {
    let args = args.to_vec();
    let options = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let machine = Machine::detect();
    eprintln!(
        "bench: {} on {} ({} CPUs); progress below, the report on stdout",
        machine.kernel, machine.cpu_model, machine.cpus
    );
    let results = match interleave::run(&options, |line| eprintln!("  {line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = command.to_owned();
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
                            .filter(|n| crate::PAYLOADS.contains(n))
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
                for c in PING_PONG.iter().filter(|c| c.request_response().is_none()) {
                    println!("  {:<12} {}", c.id(), c.describe());
                }
                println!(
                    "request/response round trip, request min(payload, 1 KiB), response of the \
                     payload, in the latency rounds:"
                );
                for c in PING_PONG {
                    if let Some(twin) = c.request_response() {
                        println!("  {:<12} {} (against {twin})", c.id(), c.describe());
                    }
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
    crate::paced::INTERVALS.map(interval_label).join(", ")
}

fn payloads() -> String {
    crate::PAYLOADS.map(payload_label).join(", ")
}
