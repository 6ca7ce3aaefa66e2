//! Two "hosts" on one machine: two shmx roots, each with a bridge, talking over Zenoh on
//! loopback (peer mode, explicit endpoints, no multicast scouting).

mod common;

use common::{bridge, config, free_port, root, u64_publisher, u64_subscriber};
use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use shmx_zenoh::Bridge;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zenoh::Wait;

const DEADLINE: Duration = Duration::from_secs(30);

/// A message with a relative slice (its elements in the sample's tail).
#[derive(ShmMessage, Debug)]
#[repr(C)]
struct Scan {
    seq: u64,
    ranges: RelSlice<f32>,
}

/// Two hosts, each bridging every topic both ways (the bridges stop before their roots go:
/// fields drop in order).
struct Hosts {
    bridge_a: Bridge,
    bridge_b: Bridge,
    a: tempfile::TempDir,
    b: tempfile::TempDir,
}

fn hosts() -> Hosts {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &["**"]);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &["**"], &["**"]);
    Hosts {
        bridge_a,
        bridge_b,
        a,
        b,
    }
}

/// Calls `send(i)` for i = 0, 1, ... until `arrived()` (the link is up: bridges found the
/// topic and each other), then returns the next `i`.
fn until_linked(mut send: impl FnMut(u64), mut arrived: impl FnMut() -> bool) -> u64 {
    let start = Instant::now();
    let mut i = 0;
    loop {
        send(i);
        i += 1;
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(50) {
            if arrived() {
                return i;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() < DEADLINE, "the bridges never linked");
    }
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
fn a_restarted_bridge_resumes_without_restarting_the_other() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &[]);
    let start_b = || bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let pub_a = Publisher::<u64>::builder("t/re")
        .root(a.path())
        .create()
        .unwrap();
    let sub_b = u64_subscriber(b.path(), "t/re", 64);
    let bridge_b = start_b();
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    // B's bridge goes (as a host that goes away) and comes back; A's runs on.
    bridge_b.stop();
    while sub_b.take().unwrap().is_some() {}
    let bridge_b = start_b();
    let first_after = until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    assert!(first_after >= 1);
    drop(bridge_b);
    drop(bridge_a);
}

#[test]
fn a_bridge_reconnects_when_the_one_it_connects_to_comes_back() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let start_a = || bridge(a.path(), port_a, None, &["**"], &[]);
    let bridge_a = start_a();
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let pub_a = Publisher::<u64>::builder("t/back")
        .root(a.path())
        .create()
        .unwrap();
    let sub_b = u64_subscriber(b.path(), "t/back", 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    bridge_a.stop();
    while sub_b.take().unwrap().is_some() {}
    let bridge_a = start_a();
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    drop(bridge_a);
    drop(bridge_b);
}

#[test]
fn two_bridges_on_one_host_deliver_once_and_one_takes_over_when_the_other_goes() {
    let (a, b) = (root(), root());
    let port_b = free_port();
    let bridge_b = bridge(b.path(), port_b, None, &["**"], &["**"]);
    let on_a = || bridge(a.path(), free_port(), Some(port_b), &["**"], &["**"]);
    let (a1, a2) = (on_a(), on_a());
    // B → A, and A → B, each sample once.
    let pub_b = u64_publisher(b.path(), "t/in", 256);
    let sub_a = u64_subscriber(a.path(), "t/in", 256);
    let pub_a = u64_publisher(a.path(), "t/out", 256);
    let sub_b = u64_subscriber(b.path(), "t/out", 256);
    let first_in = until_linked(
        |i| pub_b.send(i).unwrap(),
        || sub_a.take().unwrap().is_some(),
    );
    let first_out = until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    // Both bridges of A are up (the second one too has seen the topics by now).
    std::thread::sleep(Duration::from_millis(300));
    while sub_a.take().unwrap().is_some() {}
    while sub_b.take().unwrap().is_some() {}
    for i in 0..50 {
        pub_b.send(first_in + 100 + i).unwrap();
        pub_a.send(first_out + 100 + i).unwrap();
    }
    let collect = |sub: &Subscriber<u64>, n: usize| {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < n && start.elapsed() < DEADLINE {
            if let Some(v) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
                got.push(*v);
            }
        }
        // Anything more would be a duplicate.
        std::thread::sleep(Duration::from_millis(300));
        while let Some(v) = sub.take().unwrap() {
            got.push(*v);
        }
        got
    };
    assert_eq!(
        collect(&sub_a, 50),
        (first_in + 100..first_in + 150).collect::<Vec<_>>()
    );
    assert_eq!(
        collect(&sub_b, 50),
        (first_out + 100..first_out + 150).collect::<Vec<_>>()
    );
    // The one that delivers goes; the other takes over (within its retry, a second).
    let sent_by_1 = a1.stats().received.load(Ordering::Relaxed);
    let (gone, stays) = if sent_by_1 > 0 { (a1, a2) } else { (a2, a1) };
    gone.stop();
    until_linked(
        |i| pub_b.send(10_000 + i).unwrap(),
        || sub_a.take().unwrap().is_some_and(|v| *v >= 10_000),
    );
    assert!(stays.stats().received.load(Ordering::Relaxed) > 0);
    drop(stays);
    drop(bridge_b);
}

/// Starts the `shmx-zenoh` command on `root`, forwarding everything, listening on `port`;
/// returns once it says it is bridging.
fn bridge_process(root: &std::path::Path, port: u16) -> common::Killed {
    let listen = format!("tcp/127.0.0.1:{port}");
    common::bridge_command(&[
        "--forward".as_ref(),
        "**".as_ref(),
        "--no-multicast".as_ref(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
    ])
}

#[test]
fn a_bridge_killed_with_sigkill_is_reclaimed_and_another_takes_its_place() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let pub_a = Publisher::<u64>::builder("t/kill")
        .root(a.path())
        .create()
        .unwrap();
    let mut killed = bridge_process(a.path(), port_a);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let sub_b = u64_subscriber(b.path(), "t/kill", 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    // Its subscription is a dead process's slot, which cleaning takes back, as any.
    let claims = || {
        std::fs::read_dir(a.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bridge."))
            .count()
    };
    assert_eq!(claims(), 1, "the killed bridge's claim file");
    let report = shmx::inspect::clean(a.path(), false).unwrap();
    assert_eq!(report.reclaimed_slots, 1, "{report:?}");
    // And its claim file, which no bridge holds any more.
    assert_eq!(claims(), 0, "{report:?}");
    // Another bridge takes its place (the claim the dead one held is free).
    let next = bridge_process(a.path(), port_a);
    while sub_b.take().unwrap().is_some() {}
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    drop(next);
    drop(bridge_b);
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

#[test]
fn a_remote_publisher_that_goes_takes_its_relay_with_it() {
    let h = hosts();
    let topic = "t/gone";
    let sub_b = u64_subscriber(h.b.path(), topic, 256);
    let relays_on_b = || {
        shmx::inspect::topic(h.b.path(), topic)
            .map(|t| t.publishers.iter().filter(|p| p.state == "active").count())
            .unwrap_or(0)
    };
    let wait_for_no_relay = |what: &str| {
        let start = Instant::now();
        while relays_on_b() > 0 {
            assert!(start.elapsed() < DEADLINE, "{what}: the relay stayed");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A publisher that leaves.
    let pub_a = u64_publisher(h.a.path(), topic, 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    assert_eq!(relays_on_b(), 1);
    drop(pub_a);
    wait_for_no_relay("a publisher dropped");
    // Its last samples are still read; none arrives after.
    while sub_b.take().unwrap().is_some() {}
    // A publisher whose host (the bridge) goes.
    let pub_a = u64_publisher(h.a.path(), topic, 64);
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    assert_eq!(relays_on_b(), 1);
    let Hosts {
        bridge_a,
        bridge_b,
        a,
        b,
    } = h;
    bridge_a.stop();
    let start = Instant::now();
    while shmx::inspect::topic(b.path(), topic)
        .map(|t| t.publishers.iter().filter(|p| p.state == "active").count())
        .unwrap_or(0)
        > 0
    {
        assert!(
            start.elapsed() < DEADLINE,
            "a bridge stopped: the relay stayed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(bridge_b.stats().relays_removed.load(Ordering::Relaxed), 2);
    drop((pub_a, sub_b, bridge_b, a, b));
}

#[test]
fn a_rate_limit_sends_at_most_that_many_samples_a_second() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = Bridge::builder()
        .root(a.path())
        .zenoh_config(config(port_a, None))
        .forward(["**"])
        .options(
            "t/frames",
            shmx_zenoh::TopicOptions {
                max_rate_hz: Some(10.0),
                drop_when_congested: true,
                best_effort: true,
            },
        )
        .start()
        .expect("bridge a");
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let pub_a = u64_publisher(a.path(), "t/frames", 256);
    let sub_b = u64_subscriber(b.path(), "t/frames", 256);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    while sub_b.take().unwrap().is_some() {}
    // 100 samples over about half a second, at 200 Hz: at most ~10 Hz of them go.
    let start = Instant::now();
    for i in 0..100 {
        pub_a.send(1000 + i).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let mut got = 0;
    while sub_b.take().unwrap().is_some() {
        got += 1;
    }
    let most = (elapsed * 10.0).ceil() as u64 + 1;
    assert!(got >= 1 && got <= most, "{got} samples in {elapsed:.2} s");
    assert!(bridge_a.stats().rate_limited.load(Ordering::Relaxed) >= 100 - most);
    drop(bridge_b);
}

#[test]
fn what_a_zenoh_peer_puts_that_is_not_whole_records_is_counted_and_never_published() {
    let (b, _, bridge_b, peer) = common::receiver_and_peer();
    let header = |len: u64| shmx_zenoh::wire::Header {
        fingerprint: u64::FINGERPRINT,
        size: 8,
        sequence: 1,
        publisher_id: 9,
        origin: 12345,
        publish_time: 0,
        len,
    };
    let mut too_long = header(8).encode().to_vec();
    too_long.extend_from_slice(&[1, 2, 3]);
    let mut wrapping = header(u64::MAX - 3).encode().to_vec();
    wrapping.extend_from_slice(&[0; 8]);
    let mut bad_version = header(8).encode().to_vec();
    bad_version[4] ^= 0xff;
    bad_version.extend_from_slice(&[0; 8]);
    let garbage: Vec<Vec<u8>> = vec![
        b"x".to_vec(),
        vec![0xff; 200],
        too_long,
        wrapping,
        bad_version,
    ];
    let n = garbage.len() as u64;
    let start = Instant::now();
    // Until the peers are linked, puts may go nowhere: repeat until every kind was counted.
    while bridge_b.stats().malformed.load(Ordering::Relaxed) < n {
        assert!(start.elapsed() < DEADLINE, "the garbage was not counted");
        for g in &garbage {
            peer.put("shmx/t/garbage", g.clone()).wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bridge_b.stats().received.load(Ordering::Relaxed), 0);
    assert!(
        shmx::inspect::topic(b.path(), "t/garbage").is_err(),
        "a topic was made"
    );
    assert!(bridge_b.problems().is_empty(), "{:?}", bridge_b.problems());
    peer.close().wait().unwrap();
    drop(bridge_b);
}

#[test]
fn a_full_queue_far_away_keeps_the_newest_as_a_local_one_does() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &[]);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let received = || bridge_b.stats().received.load(Ordering::Relaxed);
    let publisher = u64_publisher(a.path(), "t/latest", 256);
    // Four deep: a burst overruns it at once.
    let subscriber = u64_subscriber(b.path(), "t/latest", 4);
    let first = until_linked(
        |i| publisher.send(i).unwrap(),
        || subscriber.take().unwrap().is_some(),
    );
    // Everything sent while linking arrived, and was taken: up to a last one.
    publisher.send(first).unwrap();
    let start = Instant::now();
    while subscriber
        .recv_timeout(Duration::from_millis(100))
        .unwrap()
        .is_none_or(|v| *v != first)
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the last of the link never came"
        );
    }
    let first = first + 1;
    // The four-deep queue is not read during a burst of 200. A deep subscriber beside it
    // sees what B's relay published; once it saw the last of the markers sent after the
    // burst one at a time, nothing is on its way, and the four-deep queue holds the last
    // four published (the relay, as a local publisher of the default policy, drops the
    // oldest of a full queue).
    let observer = u64_subscriber(b.path(), "t/latest", 256);
    let before = received();
    for i in 0..200 {
        publisher.send(first + i).unwrap();
    }
    let mut seen = Vec::new();
    let mut marker = first + 200;
    let start = Instant::now();
    'quiet: loop {
        assert!(start.elapsed() < DEADLINE, "no marker arrived");
        publisher.send(marker).unwrap();
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(100) {
            if let Some(v) = observer.recv_timeout(Duration::from_millis(10)).unwrap() {
                seen.push(*v);
                if *v == marker {
                    break 'quiet;
                }
            }
        }
        marker += 1;
    }
    let kept: Vec<u64> = std::iter::from_fn(|| subscriber.take().unwrap().map(|v| *v)).collect();
    assert!(seen.len() > 4, "{seen:?}");
    assert_eq!(kept, seen[seen.len() - 4..]);
    assert!(received() - before > 4);
    drop(bridge_a);
}

/// A frame of any length: its bytes in the sample's tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Frame {
    seq: u64,
    data: RelSlice<u8>,
}

#[test]
fn large_frames_cross_whole_and_in_order_their_bytes_lent_to_zenoh_uncopied() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &[]);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    // Frames larger than a Zenoh batch: each goes alone, lent (a few chunks, so that the
    // publisher reuses them while frames are on their way).
    let publisher = Publisher::<Frame>::builder("t/frames")
        .root(a.path())
        .max_tail_bytes(256 << 10)
        .queue_depth(4)
        .overflow(shmx::Overflow::Block)
        .block_timeout(DEADLINE)
        .create()
        .unwrap();
    // Deep enough for the whole burst, however slowly the test takes.
    let subscriber = Subscriber::<Frame>::builder("t/frames")
        .root(b.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let byte = |seq: u64, k: usize| (seq as usize * 7 + k) as u8;
    let send = |publisher: &Publisher<Frame>, seq: u64| {
        let mut frame = publisher.loan().unwrap();
        let mut w = frame.writer();
        *w.seq = seq;
        let len = (200 << 10) + seq as usize % 1000;
        for (k, d) in w.alloc_data(len).unwrap().iter_mut().enumerate() {
            *d = byte(seq, k);
        }
        frame.publish().unwrap();
    };
    let first = until_linked(
        |seq| send(&publisher, seq),
        || subscriber.take().unwrap().is_some(),
    );
    let sender = std::thread::scope(|scope| {
        let sending = scope.spawn(move || {
            for seq in first..first + 40 {
                send(&publisher, seq);
            }
        });
        let mut next = first;
        let start = Instant::now();
        while next < first + 40 {
            assert!(start.elapsed() < DEADLINE, "frame {next} never came");
            let Some(frame) = subscriber.recv_timeout(Duration::from_millis(100)).unwrap() else {
                continue;
            };
            if frame.seq < first {
                continue;
            }
            assert_eq!(frame.seq, next, "a frame was lost");
            let data = frame.data.as_slice();
            assert_eq!(data.len(), (200 << 10) + next as usize % 1000);
            assert!(
                data.iter().enumerate().all(|(k, d)| *d == byte(next, k)),
                "frame {next} arrived torn"
            );
            next += 1;
        }
        sending.join()
    });
    sender.unwrap();
    assert!(bridge_a.problems().is_empty(), "{:?}", bridge_a.problems());
    assert!(bridge_a.stats().lent.load(Ordering::Relaxed) >= 40);
    drop(bridge_b);
}

/// A link that breaks takes the liveliness tokens of the other side's publishers with it,
/// and brings them back when it comes back: a publisher whose token came back is delivered
/// again. (A plain Zenoh peer plays the forwarding bridge, so that its token can go and
/// come back without a restart.)
#[test]
fn a_publisher_whose_token_goes_with_a_link_and_comes_back_is_delivered_again() {
    let (b, _, bridge_b, peer) = common::receiver_and_peer();
    let ty = shmx::schema_text::MessageType::of::<u64>();
    let schema = ty.schema().to_owned();
    let _schemas = peer
        .declare_queryable("shmx-schema/*")
        .callback(move |q| {
            let _ = q.reply(q.key_expr().clone(), schema.clone()).wait();
        })
        .wait()
        .unwrap();
    let (origin, id) = (0x0b1d_9e00_u64, 0x1234_u64);
    let alive = format!("shmx-alive/{origin:016x}/{id:016x}/t/back");
    let record = |seq: u64| {
        let header = shmx_zenoh::wire::Header {
            fingerprint: ty.fingerprint(),
            size: 8,
            sequence: seq,
            publisher_id: id,
            origin,
            publish_time: 0,
            len: 8,
        };
        let mut payload = Vec::new();
        shmx_zenoh::wire::append(&mut payload, &header, &seq.to_ne_bytes());
        payload
    };
    let sub_b = u64_subscriber(b.path(), "t/back", 64);
    let stats = bridge_b.stats();
    // Puts records, from sequence `seq` on, until one arrives on B.
    let mut seq = 1;
    let mut until_delivered = |what: &str| {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: {:?}",
                bridge_b.problems()
            );
            peer.put("shmx/t/back", record(seq)).wait().unwrap();
            seq += 1;
            if sub_b
                .recv_timeout(Duration::from_millis(50))
                .unwrap()
                .is_some()
            {
                while sub_b.take().unwrap().is_some() {}
                return;
            }
        }
    };
    let token = peer.liveliness().declare_token(&alive).wait().unwrap();
    until_delivered("never delivered");
    // The link breaks: the token goes, and the relay with it.
    token.undeclare().wait().unwrap();
    let start = Instant::now();
    while stats.relays_removed.load(Ordering::Relaxed) == 0 {
        assert!(start.elapsed() < DEADLINE, "the relay stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // It comes back.
    let _token = peer.liveliness().declare_token(&alive).wait().unwrap();
    until_delivered("never delivered again once its token came back");
}
