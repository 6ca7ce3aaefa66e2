//! `shmx`: look at shmx topics from the command line, and clean up after dead processes.
//!
//! Every command prints a table for people by default and one JSON document with `--json`;
//! `echo` always prints JSON lines.
//! The root directory is `--root DIR`, else `$SHMX_ROOT`, else the defaults file's `root`, else
//! `/dev/shm/shmx-<uid>`, exactly as the library resolves it
//! ([`shmx::defaults::Defaults::root`]); a defaults file that cannot be used is an error
//! (`shmx config show` says what each setting is and where it comes from).
//!
//! Errors go to stderr as `shmx: <error>` with exit code 1; usage errors are clap's (exit
//! code 2).

mod bench;
mod call;
mod clean;
mod codec;
mod config;
mod echo;
mod info;
mod list;
mod monitor;
mod output;
mod publish;
mod recording;
mod services;
mod terminal;

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "shmx",
    version,
    about = "Inspect, echo, publish on and clean shmx shared-memory topics"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes (before or after the command's name).
#[derive(Debug, Args)]
struct Common {
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The shmx root directory [default: $SHMX_ROOT, else the defaults file's root, else
    /// /dev/shm/shmx-$UID].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks: shmx against the raw shared-memory floor, Unix sockets, TCP and pipes,
    /// interleaved, printed as a Markdown report (the same as `cargo run --release --example
    /// bench_report`): runs the `shmx-bench` program (`SHMX_BENCH`, beside `shmx`, or on
    /// PATH). Options go after `--`: `shmx bench -- --quick`, `-- --list`, `-- --help`.
    Bench {
        /// Options of the report: --quick, --rounds N, --payloads 8,4M, --contenders ID,...,
        /// --no-latency, --no-paced, --no-throughput, --pin, --list.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "OPTIONS"
        )]
        args: Vec<String>,
    },
    /// Every topic: type, publishers and subscribers with their pids and liveness.
    List,
    /// The defaults file (shmx.toml) and the settings that programs started here get.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// One topic: limits, schema, and every publisher and subscriber slot; or a recording
    /// (a FILE.mcap): its topics, types, message counts and duration.
    Info {
        /// The topic's name, e.g. `robot/pose`, or a recording's file (ending in `.mcap`,
        /// or any file that exists).
        topic: String,
    },
    /// Record topics to an MCAP file until Ctrl-C (or --duration): each sample's bytes as
    /// published, with its publish time, sequence number and publisher, one channel per
    /// topic with its schema. Topics that appear while recording and match are joined.
    ///
    /// Prints a line per topic every second (messages, bytes, samples dropped: gaps in the
    /// publishers' sequence numbers), and a summary at the end. A recorder that is killed
    /// leaves a file readable up to its last complete chunk (at most ~1 s is lost), which
    /// `shmx info` reads and says was cut off.
    ///
    /// shmx record 'robot/*' -o run.mcap
    Record {
        /// Topics to record: names or glob patterns (`*` within one level of `/`, `**`
        /// across levels, `?` one character) [default: every topic].
        topics: Vec<String>,
        #[command(flatten)]
        options: recording::RecordOptions,
    },
    /// Play a recording: recreate each topic with its recorded type and publish each sample
    /// at its recorded time. A topic that exists with another type is an error naming both
    /// fingerprints.
    Play {
        /// The recording.
        file: PathBuf,
        #[command(flatten)]
        options: recording::PlayOptions,
    },
    /// Write a recording again with JSON messages and JSON Schema schemas (for Foxglove and
    /// other MCAP tools); the same as `shmx record --encoding json` would have written.
    Export {
        /// The recording (as `shmx record` writes it).
        input: PathBuf,
        /// The file to write (must not exist).
        #[arg(short = 'o', long = "output", value_name = "FILE.mcap")]
        output: PathBuf,
        /// Chunk compression.
        #[arg(long, value_enum, default_value_t = recording::Compress::None)]
        compression: recording::Compress,
    },
    /// Remove what dead processes left; never touches what a live process uses.
    Clean {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// A live view of every topic: publish rates, queue fill, liveness (Ctrl-C to stop).
    Monitor {
        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
        interval: Duration,
        /// Stop after this many refreshes [default: never].
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Print an existing topic's samples as JSON lines, decoded by its stored schema.
    ///
    /// Each line is `{"seq":N,"value":...}`: the publisher's sequence number and the message
    /// (structs as objects, arrays as arrays, enums as a variant's name, u128/i128 as
    /// strings, NaN and infinities as "NaN", "inf", "-inf"; relative strings as strings and
    /// relative slices as arrays, cut short by --max-elements).
    ///
    /// A sample whose relative pointers are out of bounds, misaligned or not UTF-8 prints
    /// `{"seq":N,"len":BYTES,"error":"..."}` instead. Topics of archived rkyv values
    /// (schema `rkyv:...`) are not decoded: each sample prints
    /// `{"seq":N,"len":BYTES,"hex":"<its first 32 bytes>"}`.
    Echo {
        /// The topic's name.
        topic: String,
        /// Stop after this many samples [default: never].
        #[arg(short = 'n', long = "count", value_name = "N")]
        count: Option<u64>,
        /// Stop when no sample arrives for this long (an error if fewer than N arrived)
        /// [default: wait forever].
        #[arg(long, value_name = "SECS", value_parser = seconds)]
        timeout: Option<Duration>,
        #[command(flatten)]
        options: echo::Options,
    },
    /// Publish a message given as JSON on an existing topic, encoded by its stored schema.
    ///
    /// Structs are objects (`_pad` fields may be left out), arrays are arrays, enums are a
    /// variant's name or number, u128/i128 may be strings; relative strings (`relstr`) are
    /// strings and relative slices (`rel[..]`) arrays of any length, written to the tail of
    /// the sample (see --max-tail-bytes). Topics of archived rkyv values are refused. For
    /// example:
    ///
    /// shmx pub robot/pose '{"seq":1,"x":1.5,"y":0,"heading":0.5,"flags":0}'
    #[command(name = "pub")]
    Pub {
        /// The topic's name.
        topic: String,
        /// The message, as JSON.
        message: String,
        /// Publish this many times a second [default: as fast as possible].
        #[arg(long, value_name = "HZ", value_parser = rate)]
        rate: Option<f64>,
        /// Publish the message this many times.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        #[command(flatten)]
        options: publish::Options,
    },
    /// Send one request to a service, given as JSON and encoded by the service's stored
    /// request schema (as `shmx pub` encodes), and print each response as a JSON line
    /// `{"value":...}` (decoded as `shmx echo` decodes) until the server ends the stream.
    ///
    /// shmx call robot/params '{"op":"Get","value":0,"name":"speed"}'
    Call {
        /// The service's name.
        service: String,
        /// The request, as JSON.
        request: String,
        /// Give up (an error) if the stream has not ended after this long.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
        timeout: Duration,
        /// Print at most this many elements of each relative slice of a response.
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_elements: usize,
    },
}

/// What `shmx config` does.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the defaults file used and every effective setting with its source.
    ///
    /// The file is the first found of: $SHMX_CONFIG (set empty: none), ./shmx.toml, the
    /// user's $XDG_CONFIG_HOME/shmx/shmx.toml (else ~/.config/shmx/shmx.toml), and
    /// /etc/shmx/shmx.toml. Sources are built-in, FILE:LINE, environment SHMX_ROOT, or
    /// command line --root. A file that cannot be used is an error naming its line.
    Show,
}

/// A duration in seconds, e.g. `2` or `0.5`.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

/// A rate in Hz: a positive number.
fn rate(text: &str) -> Result<f64, String> {
    let hz: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if hz.is_finite() && hz > 0.0 {
        Ok(hz)
    } else {
        Err("the rate must be a positive number".to_owned())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Bench { args } = &cli.command {
        return bench::run(args);
    }
    // Everything printed goes through the sanitizer: names in topic files are not ours.
    let mut out = terminal::Sanitizer::new(std::io::stdout().lock());
    let result = run(cli, &mut out).and_then(|()| out.flush().map_err(output::Failure::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`shmx list | head`) is not an error.
        Err(output::Failure::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shmx: {}", terminal::printable(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Runs every command but `bench`.
fn run<W: Write>(cli: Cli, out: &mut terminal::Sanitizer<W>) -> output::Result {
    let json = cli.common.json;
    let given = cli.common.root;
    let root = || -> output::Result<PathBuf> {
        match &given {
            Some(root) => Ok(root.clone()),
            None => Ok(shmx::defaults::Defaults::get()?.root()),
        }
    };
    match cli.command {
        Command::List => list::run(out, &root()?, json),
        Command::Info { topic } if recording::is_recording(&topic, root().ok().as_deref()) => {
            recording::info(out, topic.as_ref(), json)
        }
        Command::Info { topic } => info::run(out, &root()?, &topic, json),
        Command::Record { topics, options } => {
            recording::record(out, &root()?, &topics, &options, json)
        }
        Command::Play { file, options } => recording::play(out, &root()?, &file, &options, json),
        Command::Export {
            input,
            output,
            compression,
        } => recording::export(out, &input, &output, compression, json),
        Command::Clean { dry_run } => clean::run(out, &root()?, dry_run, json),
        Command::Monitor { interval, count } => monitor::run(out, &root()?, interval, count, json),
        Command::Echo {
            topic,
            count,
            timeout,
            options,
        } => echo::run(out, &root()?, &topic, count, timeout, &options),
        Command::Pub {
            topic,
            message,
            rate,
            count,
            options,
        } => publish::run(out, &root()?, &topic, &message, count, rate, json, &options),
        Command::Call {
            service,
            request,
            timeout,
            max_elements,
        } => call::run(out, &root()?, &service, &request, timeout, max_elements),
        Command::Config {
            command: ConfigCommand::Show,
        } => config::show(out, given.as_deref(), json),
        Command::Bench { .. } => unreachable!("bench runs before the output is set up"),
    }
}
