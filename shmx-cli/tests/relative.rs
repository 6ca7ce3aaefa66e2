//! `shmx echo` and `shmx pub` on types with relative pointers (`RelStr`, `RelSlice`), and on
//! topics of archived rkyv values, against real publishers and subscribers. The harness is in
//! `common/mod.rs`; this file adds roles of its own (see [`child_main`]).

mod common;

use common::*;
use serde_json::{json, Value};
use shmx::archive::ArchivePublisher;
use shmx::inspect::RawPublisher;
use shmx::{Publisher, PublisherConfig, RelSlice, RelStr, ShmMessage, Subscriber};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// A message with a string and a slice in its tail.
#[derive(ShmMessage, Debug)]
#[repr(C)]
pub struct Scan {
    pub seq: u64,
    pub label: RelStr,
    pub values: RelSlice<u16>,
}

const SCAN_SCHEMA: &str = "Scan(24,8){seq@0:u64,label@8:relstr,values@16:rel[u16]}";

/// What a `relpub` child sends once a subscriber appears: (seq, label, values).
fn scans() -> Vec<(u64, &'static str, Vec<u16>)> {
    vec![
        (100, "front", vec![1, 2, 65535]),
        (101, "", vec![]),
        (102, "ünï 🚀", (0..100).collect()),
    ]
}

/// The children's entry point: the roles of this file (`relpub`: a publisher of [`Scan`]
/// that sends [`scans`] once a subscriber appears; `rkyvpub`: a publisher of archived
/// `String`s that sends two once a subscriber appears), else those of
/// [`common::run_child_role`]. An ordinary (empty) test when [`common::ROLE_VAR`] is unset.
#[test]
fn child_main() {
    let role = std::env::var(ROLE_VAR).unwrap_or_default();
    match role.split_once(' ') {
        Some(("relpub", topic)) => {
            let publisher = Publisher::<Scan>::builder(topic)
                .max_tail_bytes(4096)
                .create()
                .expect("create the publisher");
            println!("ready");
            wait_for_subscriber(|| publisher.subscriber_count());
            for (seq, label, values) in scans() {
                let mut sample = publisher.loan().expect("loan");
                let mut scan = sample.writer();
                *scan.seq = seq;
                scan.set_label(label).expect("set the label");
                scan.set_values(&values).expect("set the values");
                sample.publish().expect("publish");
            }
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        Some(("rkyvpub", topic)) => {
            let publisher = ArchivePublisher::<String>::builder(topic)
                .create()
                .expect("create the publisher");
            println!("ready");
            wait_for_subscriber(|| publisher.subscriber_count());
            for text in ["hello rkyv", "again"] {
                publisher.send(&text.to_owned()).expect("publish");
            }
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        _ => run_child_role(),
    }
}

fn wait_for_subscriber(count: impl Fn() -> usize) {
    let start = Instant::now();
    while count() == 0 {
        assert!(start.elapsed() < DEADLINE, "no subscriber came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The lines of `out`, as JSON.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Runs `shmx echo topic -n count` in a thread, and returns once it has subscribed (the
/// topic then has `subscribers` subscribers).
fn echo_in_background(
    root: &Path,
    topic: &str,
    count: usize,
    subscribers: usize,
) -> std::thread::JoinHandle<String> {
    let (echo_root, echo_topic) = (root.to_owned(), topic.to_owned());
    let n = count.to_string();
    let echo = std::thread::spawn(move || {
        shmx(
            &echo_root,
            &["echo", &echo_topic, "-n", &n, "--timeout", "30"],
        )
        .ok()
    });
    let start = Instant::now();
    loop {
        let t = shmx(root, &["info", topic, "--json"]).json();
        if t["subscribers"].as_array().map(Vec::len) == Some(subscribers) {
            return echo;
        }
        assert!(start.elapsed() < DEADLINE, "echo never subscribed: {t:#}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_decodes_strings_and_slices_from_the_tail() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "relpub", "robot/scan");
    let info = shmx(root.path(), &["info", "robot/scan", "--json"]).json();
    assert_eq!(info["schema"], SCAN_SCHEMA, "{info:#}");

    // The child publishes once `echo` has subscribed.
    let out = shmx(
        root.path(),
        &[
            "echo",
            "robot/scan",
            "--count",
            "3",
            "--json",
            "--timeout",
            "30",
        ],
    )
    .ok();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0]["value"],
        json!({"seq": 100, "label": "front", "values": [1, 2, 65535]}),
        "{out}"
    );
    assert_eq!(
        lines[1]["value"],
        json!({"seq": 101, "label": "", "values": []}),
        "{out}"
    );
    // At most 64 elements by default, then a count of the rest.
    let mut shown: Vec<Value> = (0..64).map(|i| json!(i)).collect();
    shown.push(json!({"...": 36}));
    assert_eq!(
        lines[2]["value"],
        json!({"seq": 102, "label": "ünï 🚀", "values": shown}),
        "{out}"
    );
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    child.finish();
}

#[test]
fn pub_writes_strings_and_arrays_into_the_tail() {
    let root = fresh_root();
    let subscriber = Subscriber::<Scan>::builder("robot/scan")
        .root(root.path())
        .create()
        .expect("create the subscriber");
    let values: Vec<u16> = (0..1000).map(|i| i * 65).collect();
    let message = json!({"seq": 7, "label": "héllo, wörld", "values": values});
    let out = shmx(root.path(), &["pub", "robot/scan", &message.to_string()]).ok();
    assert!(out.starts_with("published 1 sample(s)"), "{out}");
    let scan = subscriber
        .recv_timeout(DEADLINE)
        .expect("receive")
        .expect("a sample");
    assert_eq!(scan.seq, 7);
    assert_eq!(scan.label(), "héllo, wörld");
    assert_eq!(scan.values(), &values[..]);
    drop(scan);

    // Empty ones, twice.
    let empty = json!({"seq": 8, "label": "", "values": []});
    shmx(
        root.path(),
        &["pub", "robot/scan", &empty.to_string(), "--count", "2"],
    )
    .ok();
    for _ in 0..2 {
        let scan = subscriber
            .recv_timeout(DEADLINE)
            .expect("receive")
            .expect("a sample");
        assert_eq!((scan.seq, scan.label(), scan.values()), (8, "", &[][..]));
    }

    // `echo` shows what `pub` wrote.
    let echo = echo_in_background(root.path(), "robot/scan", 1, 2);
    let small = json!({"seq": 9, "label": "x", "values": [3, 2, 1]});
    shmx(root.path(), &["pub", "robot/scan", &small.to_string()]).ok();
    let out = echo.join().expect("echo");
    assert_eq!(json_lines(&out)[0]["value"], small, "{out}");

    // The default tail is 64 KiB: a longer string does not fit, and nothing is published.
    let long = json!({"seq": 10, "label": "x".repeat(70_000), "values": []});
    let run = shmx(root.path(), &["pub", "robot/scan", &long.to_string()]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("shmx: field \"label\": the tail is full: 70000 element(s)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--max-tail-bytes"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // A wrong type names the field.
    let bad = json!({"seq": 11, "label": ["a"], "values": []});
    let run = shmx(root.path(), &["pub", "robot/scan", &bad.to_string()]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "shmx: field \"label\": expected a string, found [\"a\"]\n"
    );
    let seq = subscriber
        .recv_timeout(Duration::from_millis(100))
        .expect("receive")
        .map(|s| s.seq);
    assert_eq!(seq, Some(9), "the sample echo saw; nothing after it");
    assert!(subscriber.take().expect("take").is_none());
}

#[test]
fn echo_reports_a_hostile_sample_and_goes_on() {
    let root = fresh_root();
    // The subscriber makes the topic; `echo` is a second one.
    let subscriber = Subscriber::<Scan>::builder("robot/scan")
        .root(root.path())
        .create()
        .expect("create the subscriber");
    let echo = echo_in_background(root.path(), "robot/scan", 2, 2);
    let config = PublisherConfig {
        max_tail_bytes: 64,
        ..PublisherConfig::default()
    };
    let raw = RawPublisher::with_config(root.path(), "robot/scan", config).expect("publisher");
    let mut sample = vec![0u8; 24];
    sample[..8].copy_from_slice(&5u64.to_ne_bytes());
    // `label` points 16 bytes past itself (byte 24), 4 bytes; only 2 were published.
    sample[8..12].copy_from_slice(&16u32.to_ne_bytes());
    sample[12..16].copy_from_slice(&4u32.to_ne_bytes());
    sample.extend_from_slice(b"ab");
    raw.send(&sample).expect("send the hostile sample");
    // The same, whole.
    sample.extend_from_slice(b"cd");
    raw.send(&sample).expect("send the good sample");

    let lines = json_lines(&echo.join().expect("echo"));
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["len"], 26);
    assert_eq!(
        lines[0]["error"],
        "field \"label\": relative pointer (offset 16, 4 elements) runs past the end of \
         the sample (26 bytes)"
    );
    assert_eq!(
        lines[1],
        json!({"seq": 2, "value": {"seq": 5, "label": "abcd", "values": []}})
    );
    // The typed subscriber refuses the hostile one, then takes the good one.
    match subscriber.take() {
        Err(shmx::Error::InvalidSample { sequence: 1, .. }) => {}
        other => panic!(
            "expected the invalid sample 1, got {:?}",
            other.map(|s| s.is_some())
        ),
    }
    let scan = subscriber.take().expect("take").expect("the good sample");
    assert_eq!((scan.seq, scan.label()), (5, "abcd"));
    drop(scan);

    // Too short or too long for the publisher: refused, nothing sent.
    assert!(raw.send(&sample[..23]).is_err());
    assert!(raw.send(&vec![0; raw.capacity() + 1]).is_err());
    assert!(raw.capacity() >= 24 + 64);
}

#[test]
fn archived_topics_echo_as_bytes_and_refuse_pub() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "rkyvpub", "logs/text");
    let info = shmx(root.path(), &["info", "logs/text", "--json"]).json();
    let schema = info["schema"].as_str().expect("a schema").to_owned();
    assert!(schema.starts_with("rkyv:"), "{info:#}");
    // `list` and `info` show it like any other topic.
    let list = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topic_named(&list, "logs/text")["schema"], schema.as_str());
    let table = shmx(root.path(), &["info", "logs/text"]).ok();
    assert!(table.contains(&schema), "{table}");
    shmx(root.path(), &["list"]).ok();

    let out = shmx(
        root.path(),
        &["echo", "logs/text", "-n", "2", "--timeout", "30"],
    )
    .ok();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    for line in &lines {
        let obj = line.as_object().expect("an object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, ["seq", "len", "hex"], "{line}");
        let len = line["len"].as_u64().expect("len") as usize;
        let hex = line["hex"].as_str().expect("hex");
        assert!(len > 0, "{line}");
        assert_eq!(hex.len(), 2 * len.min(32), "{line}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    }
    // The short string is stored inline in rkyv's archived `String`.
    assert!(
        lines[0]["hex"]
            .as_str()
            .is_some_and(|h| h.contains(&hex_of(b"hello rkyv"))),
        "{out}"
    );

    let run = shmx(root.path(), &["pub", "logs/text", "\"hi\""]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "shmx: topic \"logs/text\" carries archived rkyv values ({schema}): shmx pub \
             cannot encode them; publish them from Rust\n"
        )
    );
    child.finish();
}

#[test]
fn echo_with_copy_on_take_prints_the_same_json_as_without() {
    let help = shmx(Path::new("/nonexistent"), &["echo", "--help"]).ok();
    assert!(help.contains("--copy-on-take"), "{help}");
    let root = fresh_root();
    // Each run with a fresh publisher (sequence numbers from 1), which sends once `echo` has
    // subscribed: strings and slices in the tail, and archived rkyv values.
    for (role, topic, n) in [("relpub", "robot/scan", "3"), ("rkyvpub", "logs/text", "2")] {
        let outs: Vec<String> = [&[][..], &["--copy-on-take"][..]]
            .into_iter()
            .map(|flags| {
                let mut child = Participant::start_as(root.path(), role, topic);
                let mut args = vec!["echo", topic, "-n", n, "--timeout", "30"];
                args.extend_from_slice(flags);
                let out = shmx(root.path(), &args).ok();
                child.finish();
                out
            })
            .collect();
        assert_eq!(json_lines(&outs[0]).len().to_string(), n, "{}", outs[0]);
        assert_eq!(
            outs[0], outs[1],
            "{role}: without, then with --copy-on-take"
        );
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn max_elements_and_max_tail_bytes_options() {
    let echo_help = shmx(Path::new("/nonexistent"), &["echo", "--help"]).ok();
    assert!(echo_help.contains("--max-elements <N>"), "{echo_help}");
    assert!(echo_help.contains("[default: 64]"), "{echo_help}");
    let pub_help = shmx(Path::new("/nonexistent"), &["pub", "--help"]).ok();
    assert!(pub_help.contains("--max-tail-bytes <BYTES>"), "{pub_help}");

    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "relpub", "robot/scan");
    let out = shmx(
        root.path(),
        &[
            "echo",
            "robot/scan",
            "-n",
            "3",
            "--timeout",
            "30",
            "--max-elements",
            "2",
        ],
    )
    .ok();
    let values: Vec<Value> = json_lines(&out)
        .iter()
        .map(|l| l["value"]["values"].clone())
        .collect();
    assert_eq!(
        values,
        [
            json!([1, 2, {"...": 1}]),
            json!([]),
            json!([0, 1, {"...": 98}])
        ],
        "{out}"
    );
    child.finish();

    let subscriber = Subscriber::<Scan>::builder("robot/tail")
        .root(root.path())
        .create()
        .expect("create the subscriber");
    let with_label = |n: usize| json!({"seq": 1, "label": "y".repeat(n), "values": []}).to_string();
    let run = shmx(
        root.path(),
        &[
            "pub",
            "robot/tail",
            &with_label(2000),
            "--max-tail-bytes",
            "1000",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("the tail is full"), "{}", run.stderr);
    let run = shmx(
        root.path(),
        &[
            "pub",
            "robot/tail",
            &with_label(100),
            "--max-tail-bytes",
            "0",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    shmx(
        root.path(),
        &[
            "pub",
            "robot/tail",
            &with_label(900),
            "--max-tail-bytes",
            "1000",
        ],
    )
    .ok();
    let scan = subscriber
        .recv_timeout(DEADLINE)
        .expect("receive")
        .expect("a sample");
    assert_eq!(scan.label(), "y".repeat(900));
}
