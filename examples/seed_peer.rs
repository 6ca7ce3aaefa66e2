//! The Rust side of the Python binding's cross-language tests (`shmx-python/tests`): the
//! seed's primitive topics from Rust, `Publisher<f64>`/`Subscriber<f64>` and the like.
//!
//! ```text
//! seed_peer sub <f64|i64|bool> TOPIC N      # prints each of N values received, one a line
//! seed_peer pub <f64|i64|bool> TOPIC V...   # waits for a subscriber, publishes the values
//! ```
//!
//! The root is `$SHMX_ROOT`, as for any shmx program. A subscriber prints `ready` once it
//! is connected; every wait is bounded (10 s), after which it fails.

use shmx::{Publisher, ShmMessage, Subscriber};
use std::fmt::Display;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn subscribe<T: ShmMessage + Copy + Display>(topic: &str, n: usize) -> shmx::Result<()> {
    let sub = Subscriber::<T>::new(topic)?;
    println!("ready");
    for _ in 0..n {
        let sample = sub.recv_timeout(WAIT)?.ok_or(shmx::Error::Timeout {
            topic: topic.to_owned(),
            operation: "waiting for a value",
        })?;
        println!("{}", *sample);
    }
    Ok(())
}

fn publish<T: ShmMessage + FromStr>(topic: &str, values: &[String]) -> shmx::Result<()> {
    let publisher = Publisher::<T>::new(topic)?;
    publisher.wait_for_subscribers(1, WAIT)?;
    for v in values {
        let Ok(value) = v.parse::<T>() else {
            eprintln!("not a value: {v}");
            std::process::exit(2);
        };
        publisher.send(value)?;
    }
    // Stay until the subscriber took them all: the topic goes with its last participant.
    let deadline = std::time::Instant::now() + WAIT;
    while publisher.pool_stats().delivered > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("sub"), Some(kind)) if args.len() == 4 => {
            let n = args[3].parse().unwrap_or(0);
            match kind {
                "f64" => subscribe::<f64>(&args[2], n),
                "i64" => subscribe::<i64>(&args[2], n),
                "bool" => subscribe::<bool>(&args[2], n),
                _ => return usage(),
            }
        }
        (Some("pub"), Some(kind)) if args.len() >= 3 => match kind {
            "f64" => publish::<f64>(&args[2], &args[3..]),
            "i64" => publish::<i64>(&args[2], &args[3..]),
            "bool" => publish::<bool>(&args[2], &args[3..]),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_peer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: seed_peer sub <f64|i64|bool> TOPIC N | seed_peer pub <f64|i64|bool> TOPIC V..."
    );
    ExitCode::from(2)
}
