//! What every stream of the network does around its messages: a publisher waits for its
//! subscriber and publishes at a fixed rate; a subscriber receives until its publisher has
//! left, counting what arrived, what was lost and how late; each prints a summary line.

use crate::{Result, PEER_TIMEOUT, QUEUE_DEPTH};
use shmx::{Publisher, ShmMessage, Subscriber};
use shmx_suite::{format_ns, monotonic_ns, wait_until};
use std::time::{Duration, Instant};

/// Creates a publisher and waits until its subscriber is there.
pub fn connect<T: ShmMessage>(topic: &str, max_tail_bytes: usize) -> Result<Publisher<T>> {
    let publisher = Publisher::<T>::builder(topic)
        .queue_depth(QUEUE_DEPTH)
        .max_tail_bytes(max_tail_bytes)
        .create()?;
    if !wait_until(PEER_TIMEOUT, || publisher.subscriber_count() >= 1) {
        return Err(format!("nobody subscribed to {topic:?} within {PEER_TIMEOUT:?}").into());
    }
    Ok(publisher)
}

/// Calls `publish(seq)` for seq = 1..=count, `1/hz` apart; returns the rate achieved.
pub fn run_paced(hz: f64, count: u64, mut publish: impl FnMut(u64) -> Result<()>) -> Result<f64> {
    let period = Duration::from_secs_f64(1.0 / hz);
    let start = Instant::now();
    for seq in 1..=count {
        // An absolute schedule: a late tick does not delay the ones after it.
        let due = start + period * (seq - 1) as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        publish(seq)?;
    }
    let span = start.elapsed().as_secs_f64();
    Ok(if count > 1 {
        (count - 1) as f64 / span
    } else {
        0.0
    })
}

/// Prints a publisher's summary line.
pub fn report_sent(role: &str, what: &str, count: u64, rate: f64, extra: &str) {
    println!("[{role:<10}] sent {count:>4} {what:<8} @ {rate:>5.1} Hz{extra}");
}

/// What one subscriber thread saw.
#[derive(Debug, Default)]
pub struct StreamStats {
    received: u64,
    lost: u64,
    first_ns: u64,
    last_ns: u64,
    latency_sum_ns: u64,
    latency_max_ns: u64,
}

impl StreamStats {
    /// Accounts for a sample with publisher sequence `seq`, stamped `stamp_ns`.
    fn record(&mut self, seq: u64, stamp_ns: u64) {
        let now = monotonic_ns();
        let latency = now.saturating_sub(stamp_ns);
        if self.received == 0 {
            self.first_ns = now;
        }
        self.lost += seq.saturating_sub(self.received + self.lost + 1);
        self.received += 1;
        self.last_ns = now;
        self.latency_sum_ns += latency;
        self.latency_max_ns = self.latency_max_ns.max(latency);
    }

    /// Prints the summary line and checks that nothing went missing.
    pub fn report(&self, role: &str, what: &str, expected: u64) -> Result<()> {
        let span = self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9;
        let rate = if self.received > 1 && span > 0.0 {
            (self.received - 1) as f64 / span
        } else {
            0.0
        };
        let mean = self.latency_sum_ns.checked_div(self.received).unwrap_or(0);
        println!(
            "[{role:<10}] recv {:>4} {what:<8} @ {rate:>5.1} Hz, lost {}, latency mean {} max {}",
            self.received,
            self.lost,
            format_ns(mean),
            format_ns(self.latency_max_ns)
        );
        if self.received != expected || self.lost != 0 {
            return Err(format!(
                "{what}: expected {expected} messages, received {}",
                self.received
            )
            .into());
        }
        Ok(())
    }
}

/// Receives every sample of `subscriber` until its publisher has left (or `give_up()`),
/// passing each to `on_sample`.
pub fn receive_all<T: ShmMessage>(
    subscriber: &Subscriber<T>,
    give_up: impl Fn() -> bool,
    stamp: impl Fn(&T) -> u64,
    mut on_sample: impl FnMut(&T),
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut connected = false;
    loop {
        match subscriber.recv_timeout(Duration::from_millis(50))? {
            Some(sample) => {
                connected = true;
                stats.record(sample.sequence(), stamp(&sample));
                on_sample(&sample);
            }
            None => {
                // No sample waiting: done once the publisher has come and gone (a publisher
                // that leaves with samples still queued stays counted until they are taken).
                let publishers = subscriber.publisher_count();
                connected |= publishers > 0;
                if (connected && publishers == 0) || give_up() {
                    return Ok(stats);
                }
            }
        }
    }
}
