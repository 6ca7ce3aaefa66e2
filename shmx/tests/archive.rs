//! rkyv archives through shared memory: values with strings, vectors and maps arrive intact
//! and in place; an archive too large for the chunk is an error that loses no chunk; a
//! corrupted archive is reported as `InvalidSample` and the subscriber recovers; topics of
//! different archived types do not mix.

#![cfg(feature = "rkyv")]

mod common;

use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::Error;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
struct Telemetry {
    robot: String,
    joints: Vec<f32>,
    faults: HashMap<String, u32>,
    mode: Mode,
}

#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
enum Mode {
    Idle,
    Moving { speed: f64 },
}

fn telemetry(i: u32) -> Telemetry {
    Telemetry {
        robot: format!("arm-{i}"),
        joints: (0..6).map(|j| (i * 10 + j) as f32 * 0.5).collect(),
        faults: (0..i % 4).map(|k| (format!("fault-{k}"), k * i)).collect(),
        mode: if i % 2 == 0 {
            Mode::Idle
        } else {
            Mode::Moving {
                speed: f64::from(i),
            }
        },
    }
}

fn check(archived: &ArchivedTelemetry, expected: &Telemetry) {
    assert_eq!(archived.robot.as_str(), expected.robot);
    let joints: Vec<f32> = archived.joints.iter().map(|j| j.to_native()).collect();
    assert_eq!(joints, expected.joints);
    assert_eq!(archived.faults.len(), expected.faults.len());
    for (k, v) in &expected.faults {
        assert_eq!(
            archived.faults.get(k.as_str()).map(|n| n.to_native()),
            Some(*v)
        );
    }
    match (&archived.mode, &expected.mode) {
        (ArchivedMode::Idle, Mode::Idle) => {}
        (ArchivedMode::Moving { speed: a }, Mode::Moving { speed: b }) => {
            assert_eq!(a.to_native(), *b)
        }
        (_, b) => panic!("the archived mode is not {b:?}"),
    }
}

#[test]
fn values_with_strings_vectors_and_maps_arrive_in_place() {
    let dir = common::root();
    let sub = ArchiveSubscriber::<Telemetry>::builder("arch/telemetry")
        .root(dir.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let publisher = ArchivePublisher::<Telemetry>::builder("arch/telemetry")
        .root(dir.path())
        .max_bytes(1024)
        .queue_depth(64)
        .create()
        .unwrap();
    for i in 0..50 {
        publisher.send(&telemetry(i)).unwrap();
    }
    for i in 0..50 {
        let sample = sub.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(sample.sequence(), u64::from(i) + 1);
        assert!(sample.archive_len() > 0 && sample.archive_len() <= 1024 + 64);
        check(&sample, &telemetry(i));
    }
    assert!(sub.take().unwrap().is_none());
    drop((sub, publisher));
    common::assert_empty(dir.path());
}

#[test]
fn an_archive_too_large_is_an_error_and_loses_no_chunk() {
    let dir = common::root();
    let publisher = ArchivePublisher::<Vec<u8>>::builder("arch/big")
        .root(dir.path())
        .max_bytes(256)
        .create()
        .unwrap();
    let sub = ArchiveSubscriber::<Vec<u8>>::builder("arch/big")
        .root(dir.path())
        .create()
        .unwrap();
    // More failures than the pool has chunks: a leaked loan would exhaust it.
    for _ in 0..200 {
        let err = publisher.send(&vec![7u8; 10_000]).unwrap_err();
        assert!(matches!(err, Error::Archive { .. }), "{err}");
        assert!(err.to_string().contains("max_bytes"), "{err}");
    }
    publisher.send(&vec![7u8; 100]).unwrap();
    let sample = sub.take().unwrap().unwrap();
    assert_eq!(sample.as_slice(), &[7u8; 100][..]);
    drop(sample);
    drop((sub, publisher));
    common::assert_empty(dir.path());
}

#[test]
fn different_archived_types_do_not_share_a_topic() {
    let dir = common::root();
    let _publisher = ArchivePublisher::<Telemetry>::builder("arch/typed")
        .root(dir.path())
        .create()
        .unwrap();
    let err = ArchiveSubscriber::<Vec<u32>>::builder("arch/typed")
        .root(dir.path())
        .create()
        .err()
        .expect("a subscriber of another type is refused");
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
}

/// Overwrites the payload of the chunk holding sample `seq` in the topic's only data file,
/// as a corrupt or hostile publisher could.
fn corrupt_sample(root: &Path, topic_dir: &str, seq: u64, f: impl FnOnce(&mut [u8])) {
    let dir = root.join(topic_dir);
    let data = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data.")
        })
        .expect("the publisher's data file");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data)
        .unwrap();
    // SAFETY: the test maps a file that only the (idle) publisher of this test writes; it
    // reads and writes plain bytes.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    let word = |m: &[u8], at: usize| u64::from_ne_bytes(m[at..at + 8].try_into().unwrap());
    // DataParams: chunk_count @40, chunk_stride @48, payload_off @56, chunks_off @80.
    let (count, stride, payload_off, chunks_off) = (
        word(&map, 40) as usize,
        word(&map, 48) as usize,
        word(&map, 56) as usize,
        word(&map, 80) as usize,
    );
    let chunk = (0..count)
        .map(|i| chunks_off + i * stride)
        .find(|&c| word(&map, c) == seq)
        .expect("the chunk of the sample");
    let len = word(&map, chunk + 8) as usize;
    f(&mut map[chunk + payload_off..chunk + payload_off + len]);
}

#[test]
fn a_corrupted_archive_is_an_invalid_sample_and_the_next_one_arrives() {
    let dir = common::root();
    let sub = ArchiveSubscriber::<Telemetry>::builder("arch/corrupt")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = ArchivePublisher::<Telemetry>::builder("arch/corrupt")
        .root(dir.path())
        .max_bytes(1024)
        .create()
        .unwrap();
    publisher.send(&telemetry(3)).unwrap();
    // The root object is at the end of an archive: break the string's relative pointer
    // and length there.
    corrupt_sample(dir.path(), "arch%2Fcorrupt", 1, |bytes| {
        let n = bytes.len();
        bytes[n - 48..].fill(0xff);
    });
    let err = sub.take().err().expect("the corrupted archive is refused");
    match &err {
        Error::InvalidSample {
            sequence, reason, ..
        } => {
            assert_eq!(*sequence, 1);
            assert!(reason.contains("not a valid archive"), "{reason}");
        }
        other => panic!("expected InvalidSample, got {other}"),
    }
    publisher.send(&telemetry(4)).unwrap();
    let sample = sub.take().unwrap().expect("the next sample");
    assert_eq!(sample.sequence(), 2);
    check(&sample, &telemetry(4));
    drop(sample);
    drop((sub, publisher));
    common::assert_empty(dir.path());
}
