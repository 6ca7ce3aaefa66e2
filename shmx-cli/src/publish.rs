//! `shmx pub TOPIC JSON [--rate HZ] [--count N]`: publish a message given as JSON on an
//! existing topic, encoded by the topic's stored schema (see [`crate::codec`]).

use crate::codec;
use crate::output::{self, Failure};
use serde::Serialize;
use shmx::inspect::RawPublisher;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// What `--json` shows.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// The topic.
    topic: &'a str,
    /// Samples published.
    published: u64,
    /// Subscribers connected when the last sample was published.
    subscribers: usize,
}

/// Publishes `json` on `topic` `count` times, `rate` times a second (as fast as possible if
/// `None`).
pub fn run(
    out: &mut dyn Write,
    root: &Path,
    topic: &str,
    json_text: &str,
    count: u64,
    rate: Option<f64>,
    json: bool,
) -> output::Result {
    let value: serde_json::Value = serde_json::from_str(json_text)
        .map_err(|e| Failure::Message(format!("the message is not valid JSON: {e}")))?;
    let publisher = RawPublisher::new(root, topic).map_err(|e| output::no_topic(e, topic))?;
    let ty = crate::echo::typed(publisher.schema(), publisher.size())?;
    let mut bytes = vec![0; ty.size()];
    codec::encode(&ty, &value, &mut bytes).map_err(Failure::Message)?;

    let start = Instant::now();
    for i in 0..count {
        if let Some(hz) = rate {
            // Paced against the start, so that sleeping late does not add up.
            let due = Duration::try_from_secs_f64(i as f64 / hz)
                .ok()
                .and_then(|d| start.checked_add(d))
                .ok_or_else(|| Failure::Message(format!("a rate of {hz} Hz is too low")))?;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        publisher.send(&bytes)?;
    }
    let subscribers = publisher.subscriber_count();
    if json {
        return output::write_json(
            out,
            &Report {
                topic,
                published: count,
                subscribers,
            },
        );
    }
    writeln!(
        out,
        "published {count} sample(s) on {topic:?} ({subscribers} subscriber(s))"
    )?;
    Ok(())
}
