//! `shmx echo TOPIC [-n N] [--timeout SECS]`: print a topic's samples as JSON, one line each.
//!
//! Each line is `{"seq":N,"value":V}`: `seq` is the publisher's sequence number of the sample
//! and `V` the message decoded by the topic's stored schema (see [`crate::codec`] for the
//! JSON form). The output is JSON lines whether or not `--json` is given.

use crate::codec::{self, Ty};
use crate::output::{self, Failure};
use serde_json::{json, Value};
use shmx::inspect::RawSubscriber;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Prints samples of `topic` until `count` have been printed (forever if `None`), or until
/// `timeout` passes without a sample (never if `None`). A timeout before `count` samples
/// arrived is an error; without `count` it ends the command successfully.
pub fn run(
    out: &mut dyn Write,
    root: &Path,
    topic: &str,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> output::Result {
    let subscriber = RawSubscriber::new(root, topic).map_err(|e| output::no_topic(e, topic))?;
    let ty = typed(subscriber.schema(), subscriber.size())?;
    let mut printed = 0u64;
    while count.is_none_or(|n| printed < n) {
        // Without a timeout, wake up every second anyway (a deadline of "forever" would
        // overflow `Instant`).
        let wait = timeout.unwrap_or(Duration::from_secs(1));
        let start = Instant::now();
        let sample = loop {
            let left = wait.saturating_sub(start.elapsed());
            if let Some(sample) = subscriber.recv_timeout(left)? {
                break Some(sample);
            }
            if timeout.is_some() {
                break None;
            }
        };
        let Some(sample) = sample else {
            return match count {
                None => Ok(()),
                Some(n) => Err(Failure::Message(format!(
                    "received {printed} of {n} samples on {topic:?}: nothing for {:?}",
                    wait
                ))),
            };
        };
        let value = codec::decode(&ty, sample.bytes()).map_err(Failure::Message)?;
        let line = json!({"seq": sample.sequence(), "value": value});
        drop(sample);
        write_line(out, &line)?;
        printed += 1;
    }
    Ok(())
}

fn write_line(out: &mut dyn Write, line: &Value) -> output::Result {
    serde_json::to_writer(&mut *out, line)?;
    writeln!(out)?;
    // One line at a time, for whoever reads them live.
    out.flush()?;
    Ok(())
}

/// The topic's message type, parsed from its schema text, checked against its size.
pub fn typed(schema: &str, size: usize) -> output::Result<Ty> {
    let ty = codec::parse(schema).map_err(Failure::Message)?;
    if ty.size() != size {
        return Err(Failure::Message(format!(
            "the topic's schema {schema:?} makes {} bytes, but its messages are {size}",
            ty.size()
        )));
    }
    Ok(ty)
}
