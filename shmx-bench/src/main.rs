//! `shmx-bench`: the benchmark report (see the crate's documentation and the README,
//! "Benchmarks"). `shmx bench` runs this program; `examples/bench_report.rs` is the same
//! report from the workspace.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A child process of the benchmark runs its role and exits here.
    shmx_bench::run_child_if_requested();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if cfg!(feature = "compare-iceoryx2") {
        "shmx-bench (built with --features compare-iceoryx2)"
    } else {
        "shmx-bench"
    };
    shmx_bench::cli::run(&args, command)
}
