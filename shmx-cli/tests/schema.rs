//! The schema text says everything, and the tool lays samples out exactly as the derive does:
//! elements of `#[repr(align(N))]` types in a `RelSlice` (once published misaligned by
//! `shmx pub` and rejected by typed subscribers), type names that are paths (once undecodable),
//! and type names longer than 128 bytes (once cut), each between the real `shmx` binary and
//! typed endpoints of this process.

mod common;

use common::*;
use serde_json::{json, Value};
use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use std::path::Path;
use std::time::{Duration, Instant};

/// A pair aligned more strictly than its fields.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C, align(8))]
pub struct Pair8 {
    pub a: u32,
    pub b: u32,
}

/// An element aligned to a cache line: more than a chunk's payload is aligned by default.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Line64 {
    pub a: u32,
    pub _pad: [u8; 60],
}

/// A message aligned to 4 whose tail holds elements aligned to 8 and 64.
#[derive(ShmMessage, Debug)]
#[repr(C)]
pub struct Cloud {
    pub id: u32,
    pub pairs: RelSlice<Pair8>,
    pub lines: RelSlice<Line64>,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(name = "geo::Pose")]
pub struct GeoPose {
    pub x: f64,
    pub y: f64,
}

const LONG_NAME: &str = "very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::sensors::lidar::PointCloudWithIntensityAndRingAndTimestamp";

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[shm(
    name = "very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::very_long_module_name_for_a_robot_stack::sensors::lidar::PointCloudWithIntensityAndRingAndTimestamp"
)]
pub struct LongNamed {
    pub value: u64,
}

/// Polls `count` until it reaches `n`, within the deadline.
fn wait_for(n: usize, count: impl Fn() -> usize) {
    let start = Instant::now();
    while count() < n {
        assert!(start.elapsed() < DEADLINE, "no subscriber came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `shmx echo topic -n 1` in a thread; returns its output once it exits.
fn echo_one(root: &Path, topic: &str) -> std::thread::JoinHandle<String> {
    let (root, topic) = (root.to_owned(), topic.to_owned());
    std::thread::spawn(move || shmx(&root, &["echo", &topic, "-n", "1", "--timeout", "30"]).ok())
}

fn the_value(echoed: &str) -> Value {
    let line: Value =
        serde_json::from_str(echoed.trim()).unwrap_or_else(|e| panic!("{e}: {echoed}"));
    line["value"].clone()
}

#[test]
fn aligned_tail_elements_published_by_the_tool_are_what_the_typed_subscriber_reads() {
    let root = fresh_root();
    let subscriber = Subscriber::<Cloud>::builder("lidar/cloud")
        .root(root.path())
        .create()
        .unwrap();
    let info = shmx(root.path(), &["info", "lidar/cloud", "--json"]).json();
    assert_eq!(info["schema"], Cloud::SCHEMA.describe());
    assert_eq!(
        info["schema"],
        "Cloud(20,4){id@0:u32,pairs@4:rel[Pair8(8,8){a@0:u32,b@4:u32}],\
         lines@12:rel[Line64(64,64){a@0:u32,_pad@4:[u8;60]}]}"
    );

    let pad = vec![0; 60];
    let sent = json!({
        "id": 7,
        "pairs": [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}],
        "lines": [{"a": 10, "_pad": pad}, {"a": 11, "_pad": pad}],
    });
    shmx(
        root.path(),
        &[
            "pub",
            "lidar/cloud",
            &sent.to_string(),
            "--max-tail-bytes",
            "1024",
        ],
    )
    .ok();
    let cloud = subscriber
        .recv_timeout(DEADLINE)
        .expect("a valid sample: every element aligned as the Rust type needs")
        .expect("the sample `shmx pub` sent");
    assert_eq!(cloud.id, 7);
    assert_eq!(
        cloud.pairs(),
        [
            Pair8 { a: 1, b: 2 },
            Pair8 { a: 3, b: 4 },
            Pair8 { a: 5, b: 6 }
        ]
    );
    assert_eq!(cloud.lines().len(), 2);
    assert_eq!((cloud.lines()[0].a, cloud.lines()[1].a), (10, 11));
    assert_eq!(cloud.lines().as_ptr() as usize % 64, 0);
    drop(cloud);

    // And back: what a typed publisher writes, the tool decodes.
    let publisher = Publisher::<Cloud>::builder("lidar/cloud")
        .max_tail_bytes(1024)
        .root(root.path())
        .create()
        .unwrap();
    let echo = echo_one(root.path(), "lidar/cloud");
    wait_for(2, || publisher.subscriber_count());
    let mut sample = publisher.loan().unwrap();
    let mut w = sample.writer();
    *w.id = 7;
    w.set_pairs(&[
        Pair8 { a: 1, b: 2 },
        Pair8 { a: 3, b: 4 },
        Pair8 { a: 5, b: 6 },
    ])
    .unwrap();
    let line = |a| Line64 { a, _pad: [0; 60] };
    w.set_lines(&[line(10), line(11)]).unwrap();
    sample.publish().unwrap();
    assert_eq!(the_value(&echo.join().unwrap()), sent);
}

#[test]
fn a_type_named_by_a_path_is_listed_echoed_and_published() {
    let root = fresh_root();
    let subscriber = Subscriber::<GeoPose>::builder("geo/pose")
        .root(root.path())
        .create()
        .unwrap();
    let list = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topic_named(&list, "geo/pose")["type_name"], "geo::Pose");
    assert_eq!(
        shmx(root.path(), &["info", "geo/pose", "--json"]).json()["schema"],
        "geo::Pose(16,8){x@0:f64,y@8:f64}"
    );
    shmx(root.path(), &["pub", "geo/pose", r#"{"x":1.5,"y":-2}"#]).ok();
    let pose = subscriber.recv_timeout(DEADLINE).unwrap().unwrap();
    assert_eq!(*pose, GeoPose { x: 1.5, y: -2.0 });
    drop(pose);

    let publisher = Publisher::<GeoPose>::builder("geo/pose")
        .root(root.path())
        .create()
        .unwrap();
    let echo = echo_one(root.path(), "geo/pose");
    wait_for(2, || publisher.subscriber_count());
    publisher.send(GeoPose { x: 0.25, y: 3.0 }).unwrap();
    assert_eq!(
        the_value(&echo.join().unwrap()),
        json!({"x": 0.25, "y": 3.0})
    );
}

#[test]
fn a_type_name_longer_than_128_bytes_is_stored_whole() {
    assert!(LONG_NAME.len() > 200);
    assert_eq!(LongNamed::TYPE_NAME, LONG_NAME);
    let root = fresh_root();
    let _subscriber = Subscriber::<LongNamed>::builder("long/name")
        .root(root.path())
        .create()
        .unwrap();
    let info = shmx(root.path(), &["info", "long/name", "--json"]).json();
    assert_eq!(info["type_name"], LONG_NAME);
    let list = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topic_named(&list, "long/name")["type_name"], LONG_NAME);
    // A second endpoint of the same type joins: the whole name is compared, not a prefix.
    Publisher::<LongNamed>::builder("long/name")
        .root(root.path())
        .create()
        .unwrap();
}
