//! `shmx record`, `shmx play`, `shmx export` and `shmx info FILE.mcap`: MCAP recordings of
//! topics (the `shmx-record` crate does the work; this is the command line around it).

mod json;

use crate::output::{self, bytes, hex, Failure, Table};
use crate::terminal::printable;
use clap::{Args, ValueEnum};
use serde::Serialize;
use shmx_record::{Compression, Player, Recorder, Recording};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How samples are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// Their bytes, as published, with the topic's schema text: exact, and playable.
    Shmx,
    /// JSON messages with JSON Schema schemas, for tools that show field names (Foxglove);
    /// not playable by `shmx play`.
    Json,
}

/// Chunk compression, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    /// None.
    None,
    /// zstd.
    Zstd,
    /// LZ4.
    Lz4,
}

impl From<Compress> for Compression {
    fn from(c: Compress) -> Compression {
        match c {
            Compress::None => Compression::None,
            Compress::Zstd => Compression::Zstd,
            Compress::Lz4 => Compression::Lz4,
        }
    }
}

/// The options of `shmx record`.
#[derive(Debug, Args)]
pub struct RecordOptions {
    /// The file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE.mcap")]
    output: PathBuf,
    /// How samples are written.
    #[arg(long, value_enum, default_value_t = Encoding::Shmx)]
    encoding: Encoding,
    /// Chunk compression.
    #[arg(long, value_enum, default_value_t = Compress::None)]
    compression: Compress,
    /// Bytes of messages per chunk.
    #[arg(long, value_name = "BYTES", default_value_t = 768 * 1024)]
    chunk_size: u64,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// Stop after this long [default: at Ctrl-C].
    #[arg(long, value_name = "SECS", value_parser = crate::seconds)]
    duration: Option<Duration>,
    /// Seconds between the live lines (0: none).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = crate::seconds)]
    interval: Duration,
}

/// A flag that Ctrl-C (SIGINT) and SIGTERM set.
fn stop_flag() -> output::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| Failure::Message(format!("cannot catch signal {signal}: {e}")))?;
    }
    Ok(flag)
}

fn failure(e: shmx_record::Error) -> Failure {
    match e {
        shmx_record::Error::Shmx(e) => Failure::Shmx(e),
        e => Failure::Message(e.to_string()),
    }
}

/// `shmx record`: records until Ctrl-C, SIGTERM or `--duration`.
pub fn record(
    out: &mut dyn Write,
    root: &Path,
    topics: &[String],
    o: &RecordOptions,
    json: bool,
) -> output::Result {
    let stop = stop_flag()?;
    let mut builder = Recorder::builder(&o.output)
        .root(root)
        .topics(topics.iter().cloned())
        .compression(o.compression.into())
        .chunk_size(o.chunk_size)
        .overwrite(o.force);
    if o.encoding == Encoding::Json {
        builder = builder.transcode(Box::new(json::Json::default()));
    }
    let mut recorder = builder.create().map_err(failure)?;
    let started = Instant::now();
    let mut next_line = started + o.interval;
    let mut reported = 0;
    // Messages per topic at the last live line (for its rate).
    let mut last_counts: Vec<u64> = Vec::new();
    if !json {
        writeln!(
            out,
            "recording {} to {} (Ctrl-C to stop)",
            if topics.is_empty() {
                "every topic".to_owned()
            } else {
                topics.join(" ")
            },
            o.output.display()
        )?;
        out.flush()?;
    }
    while !stop.load(Ordering::Relaxed) && o.duration.is_none_or(|d| started.elapsed() < d) {
        recorder.poll(Duration::from_millis(50)).map_err(failure)?;
        for problem in &recorder.problems()[reported..] {
            eprintln!("shmx record: not recording {}", printable(problem));
        }
        reported = recorder.problems().len();
        if !json && !o.interval.is_zero() && Instant::now() >= next_line {
            next_line += o.interval;
            let secs = started.elapsed().as_secs_f64();
            for (i, t) in recorder.stats().iter().enumerate() {
                if last_counts.len() <= i {
                    last_counts.push(0);
                }
                let rate = (t.messages - last_counts[i]) as f64 / o.interval.as_secs_f64();
                last_counts[i] = t.messages;
                writeln!(
                    out,
                    "[{secs:7.1} s] {}  {} messages ({rate:.1}/s)  {}  {} dropped{}",
                    printable(&t.topic),
                    t.messages,
                    bytes(t.bytes),
                    t.drops,
                    if t.recording {
                        ""
                    } else {
                        "  (publishers left)"
                    }
                )?;
            }
            out.flush()?;
        }
    }
    let summary = recorder.finish().map_err(failure)?;
    let topics: Vec<TopicLine> = summary
        .topics
        .iter()
        .map(|t| TopicLine {
            topic: t.topic.clone(),
            type_name: t.type_name.clone(),
            messages: t.messages,
            bytes: t.bytes,
            drops: t.drops,
            unencodable: t.unencodable,
        })
        .collect();
    if json {
        return output::write_json(
            out,
            &serde_json::json!({
                "file": summary.path,
                "seconds": summary.duration.as_secs_f64(),
                "topics": topics,
                "problems": summary.problems,
            }),
        );
    }
    writeln!(
        out,
        "recorded {} topics in {:.1} s to {}",
        topics.len(),
        summary.duration.as_secs_f64(),
        summary.path.display()
    )?;
    let mut table = Table::new(&["TOPIC", "TYPE", "MESSAGES", "BYTES", "DROPPED"]);
    for t in &topics {
        table.row(vec![
            printable(&t.topic).into_owned(),
            printable(&t.type_name).into_owned(),
            t.messages.to_string(),
            bytes(t.bytes),
            t.drops.to_string(),
        ]);
    }
    table.write(out, "")?;
    Ok(())
}

#[derive(Serialize)]
struct TopicLine {
    topic: String,
    #[serde(rename = "type")]
    type_name: String,
    messages: u64,
    bytes: u64,
    drops: u64,
    unencodable: u64,
}

/// The options of `shmx play`.
#[derive(Debug, Args)]
pub struct PlayOptions {
    /// Speed: 2.0 plays twice as fast; `max` as fast as it can.
    #[arg(long, value_name = "X", default_value = "1", value_parser = play_rate)]
    rate: f64,
    /// Play again and again, until Ctrl-C.
    #[arg(long = "loop")]
    repeat: bool,
    /// Skip what was recorded in the first SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = crate::seconds)]
    start: Option<Duration>,
    /// Stop at what was recorded SECS seconds after the start of the recording.
    #[arg(long, value_name = "SECS", value_parser = crate::seconds)]
    end: Option<Duration>,
    /// Only these topics (names or glob patterns; repeat or separate with commas).
    #[arg(long, value_name = "TOPIC", value_delimiter = ',')]
    topics: Vec<String>,
    /// Wait up to SECS seconds for every topic to have a subscriber before playing.
    #[arg(long, value_name = "SECS", value_parser = crate::seconds)]
    wait_subscribers: Option<Duration>,
    /// Queue depth of each topic's publisher.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue_depth: usize,
}

fn play_rate(text: &str) -> Result<f64, String> {
    if text == "max" {
        return Ok(f64::INFINITY);
    }
    crate::rate(text)
}

/// `shmx play FILE`.
pub fn play(
    out: &mut dyn Write,
    root: &Path,
    file: &Path,
    o: &PlayOptions,
    json: bool,
) -> output::Result {
    let stop = stop_flag()?;
    let config = shmx::PublisherConfig {
        queue_depth: o.queue_depth,
        ..shmx::PublisherConfig::default()
    };
    let mut player = Player::new(file)
        .root(root)
        .rate(o.rate)
        .repeat(o.repeat)
        .topics(o.topics.iter().cloned())
        .publisher_config(config)
        .stop_flag(stop);
    if let Some(s) = o.start {
        player = player.start(s);
    }
    if let Some(e) = o.end {
        player = player.end(e);
    }
    if let Some(w) = o.wait_subscribers {
        player = player.wait_for_subscribers(w);
    }
    let started = Instant::now();
    let played = player.play().map_err(failure)?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        return output::write_json(
            out,
            &serde_json::json!({
                "messages": played.messages,
                "bytes": played.bytes,
                "passes": played.passes,
                "skipped": played.skipped,
                "seconds": secs,
            }),
        );
    }
    writeln!(
        out,
        "played {} messages ({}) in {secs:.2} s, {} pass(es); {} skipped",
        played.messages,
        bytes(played.bytes),
        played.passes,
        played.skipped
    )?;
    Ok(())
}

/// Whether `shmx info` names a recording rather than a topic: a file that exists and ends
/// in `.mcap` or begins with the MCAP magic bytes, or a name ending in `.mcap` that no topic
/// under `root` has (then the error says that the file does not exist).
pub fn is_recording(target: &str, root: Option<&Path>) -> bool {
    let path = Path::new(target);
    if path.is_file() {
        let mut magic = [0u8; 8];
        let starts_mcap = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok_and(|()| magic == *b"\x89MCAP0\r\n");
        return starts_mcap || target.ends_with(".mcap");
    }
    target.ends_with(".mcap") && root.is_none_or(|r| shmx::inspect::topic(r, target).is_err())
}

/// `shmx info FILE.mcap`.
pub fn info(out: &mut dyn Write, file: &Path, json: bool) -> output::Result {
    let info = Recording::open(file)
        .and_then(|r| r.info())
        .map_err(failure)?;
    let seconds = match (info.start, info.end) {
        (Some(s), Some(e)) => e.saturating_sub(s) as f64 / 1e9,
        _ => 0.0,
    };
    let channels: Vec<ChannelLine> = info
        .channels
        .iter()
        .map(|c| ChannelLine {
            topic: c.channel.topic.clone(),
            type_name: c.channel.schema_name.clone(),
            fingerprint: c.channel.fingerprint(),
            schema_encoding: c.channel.schema_encoding.clone(),
            message_encoding: c.channel.message_encoding.clone(),
            messages: c.messages,
            bytes: c.bytes,
            publishers: c.publishers.len(),
        })
        .collect();
    if json {
        return output::write_json(
            out,
            &serde_json::json!({
                "file": info.path,
                "profile": info.profile,
                "library": info.library,
                "messages": info.messages,
                "bytes": info.bytes,
                "start_ns": info.start,
                "end_ns": info.end,
                "seconds": seconds,
                "truncated": info.truncated,
                "channels": channels,
            }),
        );
    }
    let mut head = Table::new(&["file", &printable(&info.path.display().to_string())]);
    head.row(vec![
        "written by".into(),
        format!(
            "{} (profile {:?})",
            printable(&info.library),
            printable(&info.profile)
        ),
    ]);
    head.row(vec![
        "messages".into(),
        format!(
            "{} ({}) over {seconds:.3} s",
            info.messages,
            bytes(info.bytes)
        ),
    ]);
    if let Some(t) = &info.truncated {
        head.row(vec!["CUT OFF".into(), t.clone()]);
    }
    head.write(out, "")?;
    writeln!(out)?;
    let mut table = Table::new(&[
        "TOPIC",
        "TYPE",
        "FINGERPRINT",
        "ENCODING",
        "MESSAGES",
        "BYTES",
        "RATE",
        "PUBLISHERS",
    ]);
    for c in &channels {
        let rate = if seconds >= 0.001 {
            format!("{:.1}/s", c.messages as f64 / seconds)
        } else {
            "-".to_owned()
        };
        table.row(vec![
            printable(&c.topic).into_owned(),
            printable(&c.type_name).into_owned(),
            c.fingerprint.map_or_else(|| "-".to_owned(), hex),
            printable(&c.message_encoding).into_owned(),
            c.messages.to_string(),
            bytes(c.bytes),
            rate,
            c.publishers.to_string(),
        ]);
    }
    table.write(out, "")?;
    Ok(())
}

#[derive(Serialize)]
struct ChannelLine {
    topic: String,
    #[serde(rename = "type")]
    type_name: String,
    fingerprint: Option<u64>,
    schema_encoding: String,
    message_encoding: String,
    messages: u64,
    bytes: u64,
    publishers: usize,
}

/// `shmx export IN -o OUT`: a recording written again as JSON.
pub fn export(
    out: &mut dyn Write,
    input: &Path,
    output_file: &Path,
    compression: Compress,
    json_out: bool,
) -> output::Result {
    let done = shmx_record::convert(
        input,
        output_file,
        &mut json::Json::default(),
        compression.into(),
    )
    .map_err(failure)?;
    for s in &done.skipped {
        eprintln!("shmx export: left out {}", printable(s));
    }
    if json_out {
        return output::write_json(
            out,
            &serde_json::json!({
                "channels": done.channels,
                "messages": done.messages,
                "unencodable": done.unencodable,
                "skipped": done.skipped,
                "truncated": done.truncated,
            }),
        );
    }
    writeln!(
        out,
        "wrote {} channels, {} messages as JSON to {}{}",
        done.channels,
        done.messages,
        output_file.display(),
        match done.unencodable {
            0 => String::new(),
            n => format!(" ({n} messages could not be decoded and were left out)"),
        }
    )?;
    Ok(())
}
