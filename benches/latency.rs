//! Cross-process one-way latency (round trip / 2) of every ping-pong contender but the floor
//! (`benches/floor.rs`), for payloads of 8 B to 4 MiB: shmx spinning on `take()`, blocking in
//! `recv()`, waiting in a `WaitSet` and in `epoll` on `Subscriber::fd()`, Unix domain stream
//! sockets (blocking, busy-polling and woken by `epoll`), TCP loopback with `TCP_NODELAY`, and
//! a pipe; and the whole round trip of the request/response contenders (shmx `Client` and
//! `Server`, spinning and blocking, and a Unix socket), groups `round-trip-<response size>`.
//! (The paced one-way latency of receivers that idle between messages is
//! `benches/paced.rs`.)
//!
//! ```text
//! cargo bench --bench latency                      # everything (~4 min on 2 cores)
//! cargo bench --bench latency -- latency-8B/       # one payload
//! cargo bench --bench latency -- shmx --quick      # shmx only, shorter
//! SHMX_BENCH_PIN=1 cargo bench --bench latency     # parent on one CPU, child on another
//! ```
//!
//! Groups are `latency-<payload>` (`8B`, `64B`, `1KiB`, `64KiB`, `1MiB`, `4MiB`), benchmarks
//! the contenders' ids. Each benchmark starts one child process (this binary again, see
//! `shmx_suite::bench`) and runs every sample against it. Criterion runs benchmarks one after
//! the other, so its figures for two contenders may be taken minutes apart on a machine whose
//! speed varies: for comparisons use `cargo run --release --example bench_report`, which
//! interleaves them.

mod common;

use criterion::{criterion_group, Criterion, SamplingMode};
use shmx_suite::bench::{payload_tag, FLOOR_ID, PAYLOADS, PING_PONG};

fn latency(c: &mut Criterion) {
    for payload in PAYLOADS {
        let mut group = c.benchmark_group(format!("latency-{}", payload_tag(payload)));
        if payload >= 1 << 20 {
            // A 4 MiB round trip over a socket takes milliseconds: fewer, flat samples.
            group.sample_size(20).sampling_mode(SamplingMode::Flat);
        }
        for contender in PING_PONG
            .iter()
            .filter(|c| c.id() != FLOOR_ID && c.request_response().is_none() && c.supports(payload))
        {
            common::ping_pong(&mut group, *contender, payload);
        }
        group.finish();
    }
}

/// Whole round trips of the request/response contenders (a request of min(payload, 1 KiB),
/// a response of the payload), in groups `round-trip-<response size>`.
fn request_response(c: &mut Criterion) {
    for payload in PAYLOADS {
        let mut group = c.benchmark_group(format!("round-trip-{}", payload_tag(payload)));
        if payload >= 1 << 20 {
            group.sample_size(20).sampling_mode(SamplingMode::Flat);
        }
        for contender in PING_PONG
            .iter()
            .filter(|c| c.request_response().is_some() && c.supports(payload))
        {
            common::round_trip(&mut group, *contender, payload);
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = latency, request_response
}

fn main() {
    common::prologue();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
