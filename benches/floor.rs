//! The floor: the one-way latency (round trip / 2) of a ping-pong of two atomic counters in a
//! shared mapping between two processes, with no library at all. Nothing crosses between
//! processes faster; the design wants shmx within 1.5x of it.
//!
//! ```text
//! cargo bench --bench floor
//! ```

mod common;

use criterion::{criterion_group, Criterion};

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    common::ping_pong(&mut group, &shmx_suite::bench::floor::Floor, 8);
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = floor
}

fn main() {
    common::prologue();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
