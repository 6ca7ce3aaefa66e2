//! `shmx-zenoh`: a bridge between this machine's shmx topics and Zenoh (see the crate's
//! documentation). Runs until Ctrl-C.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "shmx-zenoh",
    version,
    about = "Carry shmx topics to and from other machines over Zenoh"
)]
struct Cli {
    /// Local topics to send (Zenoh key expressions over topic names: `*` one level, `**` any).
    #[arg(long, value_name = "PATTERN")]
    forward: Vec<String>,
    /// Remote topics to publish here.
    #[arg(long, value_name = "PATTERN")]
    receive: Vec<String>,
    /// Zenoh's configuration file (JSON5: mode, endpoints, TLS, access control).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Endpoints to listen on, e.g. tcp/0.0.0.0:7447 (added to the configuration).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Endpoints to connect to, e.g. tcp/192.168.1.10:7447 (added to the configuration).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// No multicast scouting: only the endpoints given.
    #[arg(long)]
    no_multicast: bool,
    /// The first chunk of every key.
    #[arg(long, default_value = "shmx")]
    prefix: String,
    /// The shmx root [default: $SHMX_ROOT, else the defaults file's, else /dev/shm/shmx-$UID].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmx-zenoh: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = match &cli.config {
        Some(file) => zenoh::Config::from_file(file).map_err(|e| e.to_string())?,
        None => zenoh::Config::default(),
    };
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    if !cli.listen.is_empty() {
        config
            .insert_json5("listen/endpoints", &list(&cli.listen))
            .map_err(|e| e.to_string())?;
    }
    if !cli.connect.is_empty() {
        config
            .insert_json5("connect/endpoints", &list(&cli.connect))
            .map_err(|e| e.to_string())?;
    }
    if cli.no_multicast {
        config
            .insert_json5("scouting/multicast/enabled", "false")
            .map_err(|e| e.to_string())?;
    }
    let mut builder = shmx_zenoh::Bridge::builder()
        .zenoh_config(config)
        .prefix(cli.prefix)
        .forward(cli.forward)
        .receive(cli.receive)
        .log(true);
    if let Some(root) = cli.root {
        builder = builder.root(root);
    }
    let bridge = builder.start()?;
    println!("bridging (Ctrl-C to stop)");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = bridge.stats();
    let (sent, received) = (
        stats.sent.load(std::sync::atomic::Ordering::Relaxed),
        stats.received.load(std::sync::atomic::Ordering::Relaxed),
    );
    bridge.stop();
    println!("sent {sent}, received {received}");
    Ok(())
}
