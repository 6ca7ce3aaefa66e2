//! The sensor network example recorded to MCAP and played back: five processes publish
//! four topics of four types (the lidar's ranges a `RelSlice<f32>` in the sample's tail)
//! while a `Recorder` in this process records them; a `Player` then publishes the
//! recording under a fresh root to typed subscribers (which check each sample's type and
//! relative pointers) and raw ones (which compare every byte and the timing).

#[path = "../../examples/sensor_network/messages.rs"]
#[allow(dead_code)]
mod messages;

use messages::{CameraFrame, Command, Imu, LidarScan, LIDAR_RANGES};
use shmx::inspect::RawSubscriber;
use shmx::{ShmMessage, Subscriber};
use shmx_record::{Entry, Player, Recorder, Recording};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds the example runs.
const SECONDS: u64 = 2;
/// Messages each topic carries in that time (the example's rates).
const EXPECTED: [(&str, u64); 4] = [("camera", 60), ("cmd", 40), ("imu", 200), ("lidar", 20)];

/// A recorded message: topic (its last part), bytes and publish time.
struct Recorded {
    topic: String,
    data: Vec<u8>,
    publish_time: u64,
}

pub fn record_and_play(example: &Path) {
    let root = tempfile::tempdir().expect("a root for the example");
    let files = tempfile::tempdir().expect("a directory for the recording");
    let file = files.path().join("sensors.mcap");

    // Record, on a thread of this process, until the example is done.
    let stop = Arc::new(AtomicBool::new(false));
    let mut recorder = Recorder::builder(&file)
        .root(root.path())
        .topics(["examples/sensor_network/**"])
        .create()
        .expect("create the recorder");
    recorder.poll(Duration::ZERO).expect("first scan");
    let recording = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                recorder.poll(Duration::from_millis(20))?;
            }
            recorder.finish()
        })
    };
    let out = Process::new(example)
        .args(["--seconds", &SECONDS.to_string()])
        .env("SHMX_ROOT", root.path())
        .output()
        .expect("run the sensor network");
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the example failed:\n{log}");
    stop.store(true, Ordering::Relaxed);
    let summary = recording
        .join()
        .expect("recorder thread")
        .expect("recording");

    // Every topic, each message either recorded or counted as dropped (published before
    // the recorder joined the topic, a few milliseconds after it appeared).
    let by_topic: BTreeMap<String, _> = summary
        .topics
        .iter()
        .map(|t| (last_part(&t.topic).to_owned(), t))
        .collect();
    assert_eq!(by_topic.len(), 4, "{:?}\n{log}", summary.topics);
    for (topic, expected) in EXPECTED {
        let t = by_topic[topic];
        assert_eq!(t.messages + t.drops, expected, "{topic}: {t:?}");
        assert!(t.drops <= expected / 4, "{topic}: too many missed: {t:?}");
    }
    let types: Vec<&str> = by_topic.values().map(|t| t.type_name.as_str()).collect();
    assert_eq!(types, ["CameraFrame", "Command", "Imu", "LidarScan"]);

    // The file says the same, read back without shmx.
    let rec = Recording::open(&file).expect("open the recording");
    let info = rec.info().expect("read the recording");
    assert_eq!(info.truncated, None);
    assert_eq!(info.channels.len(), 4);
    for c in &info.channels {
        let t = by_topic[last_part(&c.channel.topic)];
        assert_eq!(
            (c.messages, c.publishers.len()),
            (t.messages, 1),
            "{}",
            c.channel.topic
        );
        assert_eq!(c.channel.schema_name, t.type_name);
        assert!(c.channel.is_raw());
    }
    let recorded = read_messages(&rec);

    // Played back under a fresh root: typed subscribers first (the player must then find
    // the very types the recording names), and raw ones that see every byte.
    let replay_root = tempfile::tempdir().expect("a root for the replay");
    let r = replay_root.path();
    let prefix = topic_prefix(&info.channels[0].channel.topic);
    let lidar = typed::<LidarScan>(r, &prefix, "lidar");
    let camera = typed::<CameraFrame>(r, &prefix, "camera");
    let imu = typed::<Imu>(r, &prefix, "imu");
    let cmd = typed::<Command>(r, &prefix, "cmd");
    let raws: Vec<(String, RawSubscriber)> = ["camera", "cmd", "imu", "lidar"]
        .iter()
        .map(|t| {
            let config = shmx::SubscriberConfig {
                queue_depth: 256,
                ..Default::default()
            };
            let sub = RawSubscriber::open(Some(r), &format!("{prefix}/{t}"), None, config)
                .expect("a raw subscriber");
            (t.to_string(), sub)
        })
        .collect();
    let player = {
        let (file, r) = (file.clone(), r.to_owned());
        std::thread::spawn(move || {
            let config = shmx::PublisherConfig {
                queue_depth: 256,
                ..Default::default()
            };
            Player::new(file).root(r).publisher_config(config).play()
        })
    };
    // Receive until every recorded message came (or a deadline), noting when each arrived.
    let mut played: Vec<(String, Vec<u8>, Instant)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while played.len() < recorded.len() && Instant::now() < deadline {
        let mut any = false;
        for (topic, sub) in &raws {
            while let Some(s) = sub.take().expect("take") {
                played.push((topic.clone(), s.bytes().to_vec(), Instant::now()));
                any = true;
            }
        }
        if !any {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let result = player.join().expect("player thread").expect("play");
    assert_eq!(result.messages, recorded.len() as u64);

    // Every byte, in the recorded order within each topic.
    assert_eq!(played.len(), recorded.len(), "messages played and received");
    for topic in ["camera", "cmd", "imu", "lidar"] {
        let want: Vec<&[u8]> = recorded
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| &m.data[..])
            .collect();
        let got: Vec<&[u8]> = played
            .iter()
            .filter(|p| p.0 == topic)
            .map(|p| &p.1[..])
            .collect();
        assert!(
            got == want,
            "{topic}: the bytes played differ from those recorded"
        );
    }

    // The typed subscribers received the same messages, valid for their types.
    let seqs = |topic: &str| -> Vec<u64> {
        let seq = |m: &Recorded| u64::from_ne_bytes(m.data[..8].try_into().unwrap());
        recorded
            .iter()
            .filter(|m| m.topic == topic)
            .map(seq)
            .collect()
    };
    assert_eq!(drain(&camera, |m| m.seq), seqs("camera"));
    assert_eq!(drain(&cmd, |m| m.seq), seqs("cmd"));
    assert_eq!(drain(&imu, |m| m.seq), seqs("imu"));
    let mut ranges = Vec::new();
    assert_eq!(
        drain(&lidar, |m| {
            ranges.push(m.ranges().len());
            m.seq
        }),
        seqs("lidar")
    );
    assert!(ranges.iter().all(|&n| n == LIDAR_RANGES), "{ranges:?}");

    // The timing: each message played at its recorded publish time's offset, give or take a
    // constant (the
    // start-up of the first publish and take) and a jitter small for a busy machine (the
    // player keeps an absolute schedule, so lateness does not add up).
    let first_time = recorded.iter().map(|m| m.publish_time).min().unwrap();
    let first_arrival = played.iter().map(|p| p.2).min().unwrap();
    let mut lags: Vec<f64> = Vec::new();
    for topic in ["camera", "cmd", "imu", "lidar"] {
        let logs = recorded.iter().filter(|m| m.topic == topic);
        let arrivals = played.iter().filter(|p| p.0 == topic);
        for (m, p) in logs.zip(arrivals) {
            let want = (m.publish_time - first_time) as f64 / 1e9;
            let got = (p.2 - first_arrival).as_secs_f64();
            lags.push(got - want);
        }
    }
    lags.sort_by(f64::total_cmp);
    let lag = lags[lags.len() / 2];
    let mut jitter: Vec<f64> = lags.iter().map(|l| (l - lag).abs()).collect();
    jitter.sort_by(f64::total_cmp);
    let (median, max) = (jitter[jitter.len() / 2], jitter[jitter.len() - 1]);
    assert!(median < 0.002, "median jitter {median} s");
    assert!(max < 0.25, "largest jitter {max} s");
    println!(
        "recorded {} messages; played back with jitter median {:.3} ms, max {:.3} ms",
        recorded.len(),
        median * 1e3,
        max * 1e3
    );
}

/// The last part of a topic name (`.../imu` is `imu`).
fn last_part(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

fn topic_prefix(topic: &str) -> String {
    topic.rsplit_once('/').map(|(p, _)| p.to_owned()).unwrap()
}

fn read_messages(rec: &Recording) -> Vec<Recorded> {
    rec.reader()
        .expect("read the recording")
        .filter_map(|e| match e.expect("a valid record") {
            Entry::Message(m) => Some(Recorded {
                topic: last_part(&m.channel.topic).to_owned(),
                data: m.data,
                publish_time: m.publish_time,
            }),
            Entry::Channel(_) => None,
        })
        .collect()
}

fn typed<T: ShmMessage>(root: &Path, prefix: &str, topic: &str) -> Subscriber<T> {
    Subscriber::<T>::builder(&format!("{prefix}/{topic}"))
        .root(root)
        .queue_depth(256)
        .create()
        .expect("a typed subscriber")
}

/// Every sample waiting, as `f` sees it.
fn drain<T: ShmMessage>(sub: &Subscriber<T>, mut f: impl FnMut(&T) -> u64) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some(s) = sub.take().expect("a valid sample") {
        out.push(f(&s));
    }
    out
}
