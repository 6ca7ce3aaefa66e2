//! Two "hosts" on one machine: two shmx roots, each with a bridge, talking over Zenoh on
//! loopback (peer mode, explicit endpoints, no multicast scouting): what crosses, and what
//! is refused.

mod common;

use common::{hosts, u64_publisher, u64_subscriber, until_linked, DEADLINE};
use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A message with a relative slice (its elements in the sample's tail).
#[derive(ShmMessage, Debug)]
#[repr(C)]
struct Scan {
    seq: u64,
    ranges: RelSlice<f32>,
}

#[test]
fn typed_values_cross_both_ways_once_and_never_come_back() {
    let h = hosts();
    // A → B: u64. Deep enough for the burst below: the bridge is one more subscriber.
    let pub_a = u64_publisher(h.a.path(), "t/num", 256);
    let sub_b = u64_subscriber(h.b.path(), "t/num", 256);
    let mut got = Vec::new();
    let first = until_linked(
        |i| pub_a.send(i).unwrap(),
        || {
            while let Some(v) = sub_b.take().unwrap() {
                got.push(*v);
            }
            !got.is_empty()
        },
    );
    // Everything after the link is up arrives, once, in order, with the publisher id and
    // sequence numbers a subscriber on A sees.
    let sub_a = u64_subscriber(h.a.path(), "t/num", 256);
    for i in first..first + 100 {
        pub_a.send(i).unwrap();
    }
    let facts = |s: &shmx::Sample<'_, u64>| (**s, s.publisher_id(), s.sequence());
    let on_a: Vec<(u64, u64, u64)> =
        std::iter::from_fn(|| sub_a.take().unwrap().map(|s| facts(&s))).collect();
    assert_eq!(on_a.len(), 100);
    let mut on_b = Vec::new();
    let start = Instant::now();
    while got.last() != Some(&(first + 99)) {
        assert!(start.elapsed() < DEADLINE, "{got:?}");
        if let Some(s) = sub_b.recv_timeout(Duration::from_millis(100)).unwrap() {
            got.push(*s);
            if *s >= first {
                on_b.push(facts(&s));
            }
        }
    }
    let tail: Vec<u64> = got.iter().copied().skip_while(|&v| v < first).collect();
    assert_eq!(tail, (first..first + 100).collect::<Vec<_>>());
    assert_eq!(on_b, on_a);
    // Nothing came back: B's bridge, which publishes them there (relayed), sent none out,
    // and A's received none.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h.bridge_b.stats().sent.load(Ordering::Relaxed), 0);
    assert_eq!(h.bridge_a.stats().received.load(Ordering::Relaxed), 0);
    assert!(sub_b.take().unwrap().is_none(), "a duplicate arrived");

    // B → A: a struct with a relative slice.
    let pub_b = Publisher::<Scan>::builder("t/scan")
        .root(h.b.path())
        .max_tail_bytes(4096)
        .create()
        .unwrap();
    let sub_a = Subscriber::<Scan>::builder("t/scan")
        .root(h.a.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let send_scan = |i: u64| {
        let mut scan = pub_b.loan().unwrap();
        let mut w = scan.writer();
        *w.seq = i;
        let ranges = w.alloc_ranges(100 + i as usize).unwrap();
        for (k, r) in ranges.iter_mut().enumerate() {
            *r = k as f32 * 0.5;
        }
        scan.publish().unwrap();
    };
    let mut scans: Vec<(u64, Vec<f32>)> = Vec::new();
    until_linked(send_scan, || {
        while let Some(s) = sub_a.take().unwrap() {
            scans.push((s.seq, s.ranges().to_vec()));
        }
        !scans.is_empty()
    });
    let (seq, ranges) = &scans[0];
    assert_eq!(ranges.len(), 100 + *seq as usize);
    assert!(ranges.iter().enumerate().all(|(k, &r)| r == k as f32 * 0.5));

    assert!(
        h.bridge_a.problems().is_empty(),
        "{:?}",
        h.bridge_a.problems()
    );
    assert!(
        h.bridge_b.problems().is_empty(),
        "{:?}",
        h.bridge_b.problems()
    );
}

#[test]
fn archived_rkyv_values_cross_both_ways_to_a_topic_the_bridge_makes_and_one_there_already() {
    let h = hosts();
    let pub_b = ArchivePublisher::<String>::builder("t/log")
        .root(h.b.path())
        .max_bytes(256)
        .create()
        .unwrap();
    // No endpoint of it on A yet: A's bridge makes the topic, from B's record of it.
    let start = Instant::now();
    let mut i = 0;
    while shmx::inspect::topic(h.a.path(), "t/log").is_err() {
        assert!(start.elapsed() < DEADLINE, "{:?}", h.bridge_a.problems());
        pub_b.send(&format!("early {i}")).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let sub_a = ArchiveSubscriber::<String>::builder("t/log")
        .root(h.a.path())
        .create()
        .unwrap();
    let mut got = Vec::new();
    until_linked(
        |i| pub_b.send(&format!("line {i}")).unwrap(),
        || {
            while let Some(s) = sub_a.take().unwrap() {
                got.push(s.as_str().to_owned());
            }
            !got.is_empty()
        },
    );
    assert!(got[0].starts_with("line "), "{got:?}");

    // A → B: a derived archive type, into a topic a subscriber on B made first.
    let sub_b = ArchiveSubscriber::<Pose>::builder("t/pose")
        .root(h.b.path())
        .queue_depth(64)
        .create()
        .unwrap();
    // Waiting for the bridge (which may pause, announcing the publisher) rather than
    // dropping the oldest of the burst.
    let pub_a = ArchivePublisher::<Pose>::builder("t/pose")
        .root(h.a.path())
        .max_bytes(1024)
        .overflow(shmx::Overflow::Block)
        .create()
        .unwrap();
    let mut poses = Vec::new();
    let first = until_linked(
        |i| pub_a.send(&pose(i)).unwrap(),
        || {
            while let Some(s) = sub_b.take().unwrap() {
                poses.push(s.frame.to_native());
            }
            !poses.is_empty()
        },
    );
    for i in first..first + 20 {
        pub_a.send(&pose(i)).unwrap();
    }
    let start = Instant::now();
    let mut whole: Vec<Pose> = Vec::new();
    while whole.len() < 20 {
        assert!(
            start.elapsed() < DEADLINE,
            "{} of 20: {:?}; A sent {}, B received {}, dropped {}, problems {:?}",
            whole.len(),
            whole.iter().map(|w| w.frame).collect::<Vec<_>>(),
            h.bridge_a.stats().sent.load(Ordering::Relaxed),
            h.bridge_b.stats().received.load(Ordering::Relaxed),
            h.bridge_b.stats().dropped.load(Ordering::Relaxed),
            h.bridge_b.problems()
        );
        if let Some(s) = sub_b.recv_timeout(Duration::from_millis(100)).unwrap() {
            if u64::from(s.frame.to_native()) >= first {
                whole.push(Pose {
                    frame: s.frame.to_native(),
                    name: s.name.as_str().to_owned(),
                    path: s
                        .path
                        .iter()
                        .map(|p| (p.0.to_native(), p.1.to_native()))
                        .collect(),
                });
            }
        }
    }
    let sent: Vec<Pose> = (first..first + 20).map(pose).collect();
    assert_eq!(whole, sent);
}

/// A derived rkyv type: what crosses is its archive.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, PartialEq)]
struct Pose {
    frame: u32,
    name: String,
    path: Vec<(f32, f32)>,
}

fn pose(i: u64) -> Pose {
    Pose {
        frame: i as u32,
        name: format!("robot-{}", i % 3),
        path: (0..(i % 7) as usize)
            .map(|k| (k as f32, i as f32 * 0.5))
            .collect(),
    }
}

#[test]
fn a_remote_topic_of_another_type_is_refused_naming_both_fingerprints() {
    let h = hosts();
    let pub_a = Publisher::<u64>::builder("t/mixed")
        .root(h.a.path())
        .create()
        .unwrap();
    let sub_b = Subscriber::<u32>::builder("t/mixed")
        .root(h.b.path())
        .create()
        .unwrap();
    let start = Instant::now();
    let mut i = 0;
    while h.bridge_b.problems().is_empty() {
        assert!(start.elapsed() < DEADLINE, "no problem was reported");
        pub_a.send(i).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let problem = h.bridge_b.problems().join("\n");
    for fingerprint in [u64::FINGERPRINT, u32::FINGERPRINT] {
        assert!(
            problem.contains(&format!("{fingerprint:#018x}")),
            "{problem}"
        );
    }
    assert!(
        sub_b.take().unwrap().is_none(),
        "a sample of the other type was delivered"
    );
}

#[test]
fn a_topic_published_on_both_sides_merges() {
    let h = hosts();
    let topic = "t/both";
    let pub_a = Publisher::<u64>::builder(topic)
        .root(h.a.path())
        .create()
        .unwrap();
    let pub_b = Publisher::<u64>::builder(topic)
        .root(h.b.path())
        .create()
        .unwrap();
    let sub_a = u64_subscriber(h.a.path(), topic, 256);
    let sub_b = u64_subscriber(h.b.path(), topic, 256);
    // A's values are even, B's odd; each side must see both kinds, from two publishers.
    let mut seen_a = std::collections::BTreeSet::new();
    let mut seen_b = std::collections::BTreeSet::new();
    let (mut pubs_a, mut pubs_b) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    until_linked(
        |i| {
            pub_a.send(2 * i).unwrap();
            pub_b.send(2 * i + 1).unwrap();
        },
        || {
            while let Some(s) = sub_a.take().unwrap() {
                seen_a.insert(*s % 2);
                pubs_a.insert(s.publisher_id());
            }
            while let Some(s) = sub_b.take().unwrap() {
                seen_b.insert(*s % 2);
                pubs_b.insert(s.publisher_id());
            }
            seen_a.len() == 2 && seen_b.len() == 2
        },
    );
    // The same two publishers, by the same ids, on both sides.
    assert_eq!((pubs_a.len(), pubs_b.len()), (2, 2));
    assert_eq!(pubs_a, pubs_b);
}
