//! How samples are delivered across the bridges: rate limits, payloads that are not whole
//! records, full queues far away, and frames too large to share a Zenoh message (two roots
//! on loopback, as in `loopback.rs`).

mod common;

use common::{
    bridge, config, free_port, root, u64_publisher, u64_subscriber, until_linked, DEADLINE,
};
use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use shmx_zenoh::Bridge;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zenoh::Wait;

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
fn large_frames_cross_whole_and_in_order() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &[]);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    // Frames larger than a Zenoh batch: each goes alone, fragmented by Zenoh (a few chunks,
    // so that the publisher reuses them while frames are on their way).
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
    drop(bridge_b);
}
