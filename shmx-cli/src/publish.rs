//! `shmx pub TOPIC JSON [--rate HZ] [--count N] [--max-tail-bytes N]`: publish a message
//! given as JSON on an existing topic, encoded by the topic's stored schema (see
//! [`crate::codec`]).
//!
//! For a type with relative pointers (`rel[..]`, `relstr`), JSON arrays and strings go to
//! the tail of the sample, after the message; the publisher's chunks hold a tail of
//! [`Options::max_tail_bytes`] bytes ([`DEFAULT_MAX_TAIL_BYTES`] unless given), and each
//! sample is published with exactly the message and the part of the tail it uses.
//! Topics of archived rkyv values (schema `rkyv:Name`) are refused.

use crate::codec;
use crate::output::{self, Failure};
use serde::Serialize;
use shmx::inspect::RawPublisher;
use shmx::PublisherConfig;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The tail of each chunk by default, for a type with relative pointers (64 KiB).
pub const DEFAULT_MAX_TAIL_BYTES: usize = 64 * 1024;

/// How `shmx pub` publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Bytes after the message in each chunk, for the data of its relative pointers
    /// (`rel[..]` arrays and `relstr` strings) [default: 65536 when the topic's type has
    /// relative pointers, else 0].
    #[arg(long, value_name = "BYTES")]
    pub max_tail_bytes: Option<usize>,
}

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
#[allow(clippy::too_many_arguments)]
pub fn run(
    out: &mut dyn Write,
    root: &Path,
    topic: &str,
    json_text: &str,
    count: u64,
    rate: Option<f64>,
    json: bool,
    options: &Options,
) -> output::Result {
    let value: serde_json::Value = serde_json::from_str(json_text)
        .map_err(|e| Failure::Message(format!("the message is not valid JSON: {e}")))?;
    // The type decides the tail, which is fixed when the publisher is made: look first.
    let info = shmx::inspect::topic(root, topic).map_err(|e| output::no_topic(e, topic))?;
    let ty = checked_type(topic, &info.schema, info.type_size)?;
    let config = PublisherConfig {
        max_tail_bytes: options.max_tail_bytes.unwrap_or(if ty.has_relative() {
            DEFAULT_MAX_TAIL_BYTES
        } else {
            0
        }),
        ..PublisherConfig::default()
    };
    let publisher =
        RawPublisher::with_config(root, topic, config).map_err(|e| output::no_topic(e, topic))?;
    // The topic may have been made anew in between: encode by what the publisher got.
    let ty = if publisher.schema() == info.schema {
        ty
    } else {
        checked_type(topic, publisher.schema(), publisher.size() as u64)?
    };
    let tail = publisher.capacity().saturating_sub(publisher.size());
    let bytes = codec::encode(&ty, &value, tail).map_err(Failure::Message)?;

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

/// The type of `topic`'s messages by its schema text; archived (rkyv) topics are refused.
fn checked_type(topic: &str, schema: &str, size: u64) -> output::Result<codec::Ty> {
    if codec::is_archived(schema) {
        return Err(Failure::Message(format!(
            "topic {topic:?} carries archived rkyv values ({schema}): shmx pub cannot encode \
             them; publish them from Rust"
        )));
    }
    let size = usize::try_from(size)
        .map_err(|_| Failure::Message(format!("topic {topic:?}: a message of {size} bytes")))?;
    crate::echo::typed(schema, size)
}
