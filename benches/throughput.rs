//! Throughput from one publisher process to one and to four subscriber processes, 8 B and
//! 1 KiB payloads: shmx (`Overflow::Block`, subscribers spinning on `take()`, or batches
//! through `send_many`/`drain`) against Unix domain stream sockets (one per subscriber), and
//! at 8 B the no-library references: a bare ring (`ring-floor`) and a ring of chunk indices
//! with a chunk per message (`chunk-floor`, one subscriber). Criterion reports elements per second: one
//! element is one message published and received by every subscriber, in order (each batch
//! is verified).
//!
//! ```text
//! cargo bench --bench throughput
//! cargo bench --bench throughput -- throughput-8B-1sub/
//! ```

mod common;

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use shmx_suite::bench::{payload_tag, THROUGHPUT, THROUGHPUT_PAYLOADS, THROUGHPUT_SUBSCRIBERS};

fn throughput(c: &mut Criterion) {
    for payload in THROUGHPUT_PAYLOADS {
        for subscribers in THROUGHPUT_SUBSCRIBERS {
            let name = format!("throughput-{}-{subscribers}sub", payload_tag(payload));
            let mut group = c.benchmark_group(name);
            group
                .throughput(Throughput::Elements(1))
                .sampling_mode(SamplingMode::Flat)
                .sample_size(20);
            for contender in THROUGHPUT
                .iter()
                .filter(|c| c.supports(payload, subscribers))
            {
                common::stream(&mut group, *contender, payload, subscribers);
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = throughput
}

fn main() {
    common::prologue();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
