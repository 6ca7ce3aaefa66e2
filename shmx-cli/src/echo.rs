//! `shmx echo TOPIC [-n N] [--timeout SECS] [--max-elements N] [--copy-on-take]`: print a
//! topic's samples as JSON, one line each.
//!
//! Each line is `{"seq":N,"value":V}`: `seq` is the publisher's sequence number of the sample
//! and `V` the message decoded by the topic's stored schema (see [`crate::codec`] for the
//! JSON form; relative slices show at most [`Options::max_elements`] elements). The output is
//! JSON lines whether or not `--json` is given.
//!
//! A sample that does not decode (a relative pointer out of bounds or misaligned, a string
//! that is not UTF-8: shared memory is not trusted) prints `{"seq":N,"len":L,"error":E}`
//! instead, with its length in bytes and what is wrong, and echo goes on.
//!
//! Topics of archived rkyv values (schema `rkyv:Name`) cannot be decoded: each sample prints
//! `{"seq":N,"len":L,"hex":H}`, with its first [`HEX_PREFIX`] bytes in hex.
//!
//! With `--copy-on-take` ([`Options::copy_on_take`]), each sample is copied into echo's own
//! memory before it is decoded (`RawSubscriber::copy_on_take`), so a publisher that rewrites
//! its chunk meanwhile cannot make one line mix two versions of a sample. The output is the
//! same.

use crate::codec::{self, Ty};
use crate::output::{self, Failure};
use serde_json::{json, Value};
use shmx::inspect::RawSubscriber;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Elements of a relative slice shown by default.
pub const DEFAULT_MAX_ELEMENTS: usize = 64;

/// Bytes of an undecodable (rkyv) sample shown in hex.
pub const HEX_PREFIX: usize = 32;

/// How `shmx echo` shows what it decodes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// Show at most N elements of each relative slice (a `rel[..]` field); when there are
    /// more, a last element `{"...": M}` counts the M left out. Strings are shown whole.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ELEMENTS)]
    pub max_elements: usize,
    /// Copy each sample into echo's own memory before decoding it, and give its chunk back
    /// at once: for publishers that are not trusted (one that rewrites a chunk while it is
    /// decoded cannot change what is printed). Costs a copy of each sample.
    #[arg(long)]
    pub copy_on_take: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_elements: DEFAULT_MAX_ELEMENTS,
            copy_on_take: false,
        }
    }
}

/// Prints samples of `topic` until `count` have been printed (forever if `None`), or until
/// `timeout` passes without a sample (never if `None`). A timeout before `count` samples
/// arrived is an error; without `count` it ends the command successfully.
pub fn run(
    out: &mut dyn Write,
    root: &Path,
    topic: &str,
    count: Option<u64>,
    timeout: Option<Duration>,
    options: &Options,
) -> output::Result {
    let subscriber = RawSubscriber::new(root, topic).map_err(|e| output::no_topic(e, topic))?;
    let subscriber = if options.copy_on_take {
        subscriber.copy_on_take()
    } else {
        subscriber
    };
    // `None` for archived (rkyv) samples, which are shown as bytes.
    let ty = if codec::is_archived(subscriber.schema()) {
        None
    } else {
        Some(typed(subscriber.schema(), subscriber.size())?)
    };
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
        let line = line(ty.as_ref(), sample.sequence(), sample.bytes(), options);
        drop(sample);
        write_line(out, &line)?;
        printed += 1;
    }
    Ok(())
}

/// The line for sample `seq` of `bytes`: decoded by `ty`, or (`None`) shown as bytes.
pub fn line(ty: Option<&Ty>, seq: u64, bytes: &[u8], options: &Options) -> Value {
    let Some(ty) = ty else {
        let shown = &bytes[..bytes.len().min(HEX_PREFIX)];
        let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
        return json!({"seq": seq, "len": bytes.len(), "hex": hex});
    };
    match codec::decode(ty, bytes, options.max_elements) {
        Ok(value) => json!({"seq": seq, "value": value}),
        Err(error) => json!({"seq": seq, "len": bytes.len(), "error": error}),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_values_errors_and_archives() {
        let options = Options::default();
        let ty = codec::parse("S(12,4){a@0:u16,_pad@2:[u8;2],s@4:relstr}").unwrap();
        // `s` points 8 bytes past itself (byte 12), 2 bytes: "hi".
        let mut bytes = vec![7, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, b'h', b'i'];
        if cfg!(target_endian = "big") {
            bytes[..2].reverse();
            bytes[4..8].reverse();
            bytes[8..12].reverse();
        }
        assert_eq!(
            line(Some(&ty), 3, &bytes, &options),
            json!({"seq": 3, "value": {"a": 7, "_pad": [0, 0], "s": "hi"}})
        );
        let short = &bytes[..13];
        let bad = line(Some(&ty), 4, short, &options);
        assert_eq!(
            (bad["seq"].clone(), bad["len"].clone()),
            (json!(4), json!(13))
        );
        let error = bad["error"].as_str().unwrap();
        assert!(
            error.starts_with(r#"field "s": relative pointer (offset 8, 2 elements) runs past"#),
            "{error}"
        );
        assert_eq!(
            line(None, 5, &[0xde, 0xad, 0xbe, 0xef], &options),
            json!({"seq": 5, "len": 4, "hex": "deadbeef"})
        );
        let long = line(None, 6, &[0xab; 100], &options);
        assert_eq!(long["len"], 100);
        assert_eq!(long["hex"], "ab".repeat(HEX_PREFIX));
    }
}
