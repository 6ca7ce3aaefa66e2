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
    /// Drop samples of the local topics that match when the network cannot take more,
    /// instead of waiting (frames that are stale a moment later).
    #[arg(long = "drop", value_name = "PATTERN")]
    drop_when_congested: Vec<String>,
    /// Send the local topics that match best-effort (Zenoh may use a link that loses samples,
    /// UDP where configured) instead of reliably.
    #[arg(long, value_name = "PATTERN")]
    best_effort: Vec<String>,
    /// Send at most HZ samples a second of the local topics that match (PATTERN=HZ).
    #[arg(long, value_name = "PATTERN=HZ")]
    max_rate: Vec<String>,
    /// Remote samples longer than this many bytes are not published here (a bound on the
    /// shared memory each sample of a peer's can take).
    #[arg(long, value_name = "BYTES", default_value_t = shmx_zenoh::DEFAULT_MAX_SAMPLE_BYTES)]
    max_sample_bytes: u64,
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
    // Options by pattern, in the order given.
    let mut options: Vec<(String, shmx_zenoh::TopicOptions)> = Vec::new();
    fn option<'o>(
        options: &'o mut Vec<(String, shmx_zenoh::TopicOptions)>,
        pattern: &str,
    ) -> &'o mut shmx_zenoh::TopicOptions {
        let i = match options.iter().position(|(p, _)| p == pattern) {
            Some(i) => i,
            None => {
                options.push((pattern.to_owned(), shmx_zenoh::TopicOptions::default()));
                options.len() - 1
            }
        };
        &mut options[i].1
    }
    for pattern in &cli.drop_when_congested {
        option(&mut options, pattern).drop_when_congested = true;
    }
    for pattern in &cli.best_effort {
        option(&mut options, pattern).best_effort = true;
    }
    for spec in &cli.max_rate {
        let (pattern, hz) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("--max-rate wants PATTERN=HZ, not {spec:?}"))?;
        let hz: f64 = hz
            .parse()
            .map_err(|e| format!("--max-rate {spec:?}: {e}"))?;
        if !(hz.is_finite() && hz > 0.0) {
            return Err(format!("--max-rate {spec:?}: the rate must be a positive number").into());
        }
        option(&mut options, pattern).max_rate_hz = Some(hz);
    }
    let mut builder = shmx_zenoh::Bridge::builder()
        .zenoh_config(config)
        .prefix(cli.prefix)
        .forward(cli.forward)
        .receive(cli.receive)
        .max_sample_bytes(cli.max_sample_bytes)
        .log(true);
    for (pattern, o) in options {
        builder = builder.options(pattern, o);
    }
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
