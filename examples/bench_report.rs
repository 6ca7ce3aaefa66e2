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

use std::process::ExitCode;

fn main() -> ExitCode {
    // A child process of the benchmark runs its role and exits here.
    shmx_suite::bench::run_child_if_requested();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if cfg!(feature = "compare-iceoryx2") {
        "cargo run --release --example bench_report --features compare-iceoryx2"
    } else {
        "cargo run --release --example bench_report"
    };
    shmx_suite::bench::cli::run(&args, command)
}
