//! `shmx`: look at shmx topics from the command line, and clean up after dead processes.
//!
//! Every command prints a table for people by default and one JSON document with `--json`.
//! The root directory is `--root DIR`, else `$SHMX_ROOT`, else `/dev/shm/shmx`, exactly as
//! the library resolves it ([`shmx::name::root_dir`]).
//!
//! Errors go to stderr as `shmx: <error>` with exit code 1; usage errors are clap's (exit
//! code 2).

mod clean;
mod info;
mod list;
mod output;

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "shmx",
    version,
    about = "Inspect and clean shmx shared-memory topics"
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
    /// The shmx root directory [default: $SHMX_ROOT, else /dev/shm/shmx].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Every topic: type, publishers and subscribers with their pids and liveness.
    List,
    /// One topic: limits, schema, and every publisher and subscriber slot.
    Info {
        /// The topic's name, e.g. `robot/pose`.
        topic: String,
    },
    /// Remove what dead processes left; never touches what a live process uses.
    Clean {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.common.root.unwrap_or_else(shmx::name::root_dir);
    let json = cli.common.json;
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::List => list::run(&mut out, &root, json),
        Command::Info { topic } => info::run(&mut out, &root, &topic, json),
        Command::Clean { dry_run } => clean::run(&mut out, &root, dry_run, json),
    }
    .and_then(|()| out.flush().map_err(output::Failure::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`shmx list | head`) is not an error.
        Err(output::Failure::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shmx: {e}");
            ExitCode::FAILURE
        }
    }
}
