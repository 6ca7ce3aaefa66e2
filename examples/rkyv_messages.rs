//! Dynamic messages with rkyv: strings, vectors and maps between two processes, zero-copy.
//!
//! ```text
//! cargo run --release --example rkyv_messages
//! ```
//!
//! Run without arguments, the program starts itself as a **subscriber** and a **publisher**
//! of three topics and waits for both:
//!
//! - `.../log`: a `String` per message;
//! - `.../cloud`: a point cloud, `Vec<f32>` of x, y, z triples of varying length;
//! - `.../config`: a struct with a `HashMap<String, f64>` of parameters, a `Vec<String>` of
//!   names and an enum with data.
//!
//! The publisher archives each value straight into a loaned chunk of shared memory
//! (`ArchivePublisher::send`: rkyv's writer *is* the chunk, no intermediate buffer). The
//! subscriber gets `&Archived<T>` pointing into that chunk after rkyv's validator checked it
//! (`ArchiveSubscriber::recv_timeout`), reads it in place, and checks every value against
//! what the publisher must have sent. The types use the `rkyv` that shmx re-exports
//! (`#[rkyv(crate = shmx::rkyv)]`), so this program needs no rkyv dependency of its own.
//!
//! Roles by hand: `rkyv_messages subscriber PREFIX` and `rkyv_messages publisher PREFIX`.

use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::rkyv;
use shmx::Overflow;
use shmx_suite::{spawn_self, topic_dir, unique_topic, wait_all, wait_until};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

/// Controller settings, as a configuration service would push them.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
#[rkyv(crate = shmx::rkyv)]
struct Config {
    revision: u32,
    params: HashMap<String, f64>,
    joints: Vec<String>,
    mode: Mode,
}

#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
#[rkyv(crate = shmx::rkyv)]
enum Mode {
    Manual,
    Track { target: String, gain: f32 },
}

/// Messages per topic.
const COUNT: u32 = 200;
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn log_line(i: u32) -> String {
    format!(
        "[{i:>4}] controller: tracking error {:.3} mm",
        f64::from(i % 17) * 0.125
    )
}

fn cloud(i: u32) -> Vec<f32> {
    let points = 16 + (i * 37) % 500;
    (0..points * 3)
        .map(|k| (k as f32) * 0.01 + i as f32)
        .collect()
}

fn config(i: u32) -> Config {
    Config {
        revision: i,
        params: (0..1 + i % 6)
            .map(|k| (format!("gain.{k}"), f64::from(k) * 0.5 + f64::from(i)))
            .collect(),
        joints: (0..6).map(|j| format!("joint_{j}")).collect(),
        mode: if i.is_multiple_of(3) {
            Mode::Manual
        } else {
            Mode::Track {
                target: format!("marker-{}", i % 5),
                gain: i as f32 * 0.25,
            }
        },
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => parent(),
        [role, prefix] if role == "subscriber" => subscriber(prefix),
        [role, prefix] if role == "publisher" => publisher(prefix),
        _ => {
            eprintln!("usage: rkyv_messages [subscriber|publisher PREFIX]");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<()> {
    let prefix = unique_topic("examples/rkyv");
    println!("shmx rkyv_messages: {COUNT} messages on each of {prefix}/{{log,cloud,config}}");
    let mut children = Vec::new();
    for role in ["subscriber", "publisher"] {
        children.push((role.to_owned(), spawn_self([role, prefix.as_str()])?));
    }
    let ok = wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(5));
    for topic in ["log", "cloud", "config"] {
        let dir = topic_dir(&format!("{prefix}/{topic}"))?;
        if dir.exists() {
            return Err(format!("{} was left behind", dir.display()).into());
        }
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: every archive arrived intact, and no files were left behind");
    Ok(())
}

fn publisher(prefix: &str) -> Result<()> {
    let log = ArchivePublisher::<String>::builder(&format!("{prefix}/log"))
        .max_bytes(256)
        .overflow(Overflow::Block)
        .create()?;
    let cloud_pub = ArchivePublisher::<Vec<f32>>::builder(&format!("{prefix}/cloud"))
        .max_bytes(8 * 1024)
        .overflow(Overflow::Block)
        .create()?;
    let config_pub = ArchivePublisher::<Config>::builder(&format!("{prefix}/config"))
        .max_bytes(2048)
        .overflow(Overflow::Block)
        .create()?;
    let all_there = || {
        log.subscriber_count() >= 1
            && cloud_pub.subscriber_count() >= 1
            && config_pub.subscriber_count() >= 1
    };
    if !wait_until(PEER_TIMEOUT, all_there) {
        return Err("the subscriber did not connect".into());
    }
    for i in 0..COUNT {
        log.send(&log_line(i))?;
        cloud_pub.send(&cloud(i))?;
        config_pub.send(&config(i))?;
    }
    println!("[pub] archived {} values in place", 3 * COUNT);
    Ok(())
}

fn subscriber(prefix: &str) -> Result<()> {
    let log = ArchiveSubscriber::<String>::new(&format!("{prefix}/log"))?;
    let cloud_sub = ArchiveSubscriber::<Vec<f32>>::new(&format!("{prefix}/cloud"))?;
    let config_sub = ArchiveSubscriber::<Config>::new(&format!("{prefix}/config"))?;
    let mut bytes = 0usize;
    for i in 0..COUNT {
        let line = log.recv_timeout(PEER_TIMEOUT)?.ok_or("no log line")?;
        if line.as_str() != log_line(i) {
            return Err(format!("log line {i}: {:?}", line.as_str()).into());
        }
        let points = cloud_sub.recv_timeout(PEER_TIMEOUT)?.ok_or("no cloud")?;
        let expected = cloud(i);
        if points.len() != expected.len()
            || points
                .iter()
                .zip(&expected)
                .any(|(a, b)| a.to_native() != *b)
        {
            return Err(format!("cloud {i} differs").into());
        }
        let cfg = config_sub.recv_timeout(PEER_TIMEOUT)?.ok_or("no config")?;
        let want = config(i);
        let params_ok = cfg.params.len() == want.params.len()
            && want
                .params
                .iter()
                .all(|(k, v)| cfg.params.get(k.as_str()).map(|x| x.to_native()) == Some(*v));
        let joints_ok = cfg.joints.iter().map(|j| j.as_str()).eq(want.joints.iter());
        let mode_ok = match (&cfg.mode, &want.mode) {
            (ArchivedMode::Manual, Mode::Manual) => true,
            (ArchivedMode::Track { target, gain }, Mode::Track { target: t, gain: g }) => {
                target.as_str() == t && gain.to_native() == *g
            }
            _ => false,
        };
        if cfg.revision.to_native() != want.revision || !params_ok || !joints_ok || !mode_ok {
            return Err(format!("config {i} differs").into());
        }
        bytes += line.archive_len() + points.archive_len() + cfg.archive_len();
        if i < 2 || i + 1 == COUNT {
            println!(
                "[sub] #{i}: log {:?}; cloud of {} points; config rev {} with {} params, mode {}",
                line.as_str(),
                points.len() / 3,
                cfg.revision,
                cfg.params.len(),
                match &cfg.mode {
                    ArchivedMode::Manual => "manual".to_owned(),
                    ArchivedMode::Track { target, .. } => format!("track {}", target.as_str()),
                }
            );
        }
    }
    println!(
        "[sub] received {} archives ({bytes} bytes) and read each in place",
        3 * COUNT
    );
    Ok(())
}
