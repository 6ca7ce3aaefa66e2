//! The Rust side of the Python temperature example (`examples/python/temperature.py`): a
//! `Subscriber<f64>` on the topic `temperature`, the very topic that Python's
//! `shmx.Publisher("temperature", 0.0, 5)` publishes on.
//!
//! ```text
//! cargo run --example temperature [-- --count 10]      # terminal 1: waits for readings
//! python examples/python/temperature.py                # terminal 2: publishes them
//! ```
//!
//! Prints `ready` once subscribed, then each reading; gives up after 10 s without one.

use shmx::Subscriber;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = match args.as_slice() {
        [] => 10,
        [flag, n] if flag == "--count" => match n.parse() {
            Ok(n) => n,
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let sub = match Subscriber::<f64>::new("temperature") {
        Ok(sub) => sub,
        Err(e) => {
            eprintln!("temperature: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ready");
    for _ in 0..count {
        match sub.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(t)) => println!("{:.1} °C (sample {})", *t, t.sequence()),
            Ok(None) => {
                eprintln!("temperature: no reading within 10 s");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("temperature: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: temperature [--count N]");
    ExitCode::from(2)
}
