//! Delivery semantics within one process: overflow policies, history, limits, recycling.
//! (Cross-process behaviour is tested in the workspace's top-level `tests/`.)

use shmx::{Error, Overflow, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, pair, root, wait_until_asleep};

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Pose {
    seq: u64,
    x: f64,
    y: f64,
    z: f64,
}

fn pose(seq: u64) -> Pose {
    Pose {
        seq,
        x: seq as f64,
        y: -(seq as f64),
        z: 0.5,
    }
}

#[test]
fn loan_write_publish_take_round_trip() {
    let dir = root();
    let sub = Subscriber::<Pose>::builder("robot/pose")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<Pose>::builder("robot/pose")
        .root(dir.path())
        .create()
        .unwrap();
    assert!(sub.take().unwrap().is_none());
    let mut s = publisher.loan().unwrap();
    assert_eq!(
        *s,
        Pose {
            seq: 0,
            x: 0.0,
            y: 0.0,
            z: 0.0
        },
        "loan() is zeroed"
    );
    s.seq = 1;
    s.x = 1.5;
    s.publish().unwrap();
    publisher.send(pose(2)).unwrap();
    let raw = publisher.loan_uninit().unwrap();
    raw.write(pose(3)).publish().unwrap();
    let mut raw = publisher.loan_uninit().unwrap();
    // SAFETY: every field of Pose is written before assume_init.
    let s = unsafe {
        let p = raw.as_mut_ptr();
        std::ptr::addr_of_mut!((*p).seq).write(4);
        std::ptr::addr_of_mut!((*p).x).write(4.0);
        std::ptr::addr_of_mut!((*p).y).write(-4.0);
        std::ptr::addr_of_mut!((*p).z).write(0.5);
        raw.assume_init()
    };
    s.publish().unwrap();
    let got: Vec<(u64, Pose)> =
        std::iter::from_fn(|| sub.take().unwrap().map(|s| (s.sequence(), *s))).collect();
    assert_eq!(
        got[0],
        (
            1,
            Pose {
                seq: 1,
                x: 1.5,
                y: 0.0,
                z: 0.0
            }
        )
    );
    assert_eq!(&got[1..], &[(2, pose(2)), (3, pose(3)), (4, pose(4))]);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn dropping_a_loan_unpublished_returns_the_chunk() {
    let dir = root();
    let publisher = Publisher::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    for _ in 0..3 * total {
        let s = publisher.loan().unwrap();
        assert_eq!(publisher.pool_stats().loaned, 1);
        drop(s);
    }
    assert_eq!(publisher.pool_stats().free, total);
}

#[test]
fn drop_oldest_keeps_the_newest_samples() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .queue_depth(4)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    for i in 1..=100 {
        publisher.send(i).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| sub.take().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![97, 98, 99, 100]);
    let st = publisher.pool_stats();
    assert_eq!(st.free, st.total, "stolen chunks are reclaimed: {st:?}");
}

#[test]
fn fail_policy_reports_queue_full_and_delivers_to_nobody() {
    let dir = root();
    let a = Subscriber::<u64>::builder("t")
        .queue_depth(2)
        .root(dir.path())
        .create()
        .unwrap();
    let b = Subscriber::<u64>::builder("t")
        .queue_depth(8)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .overflow(Overflow::Fail)
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(1).unwrap();
    publisher.send(2).unwrap();
    match publisher.send(3) {
        Err(Error::QueueFull { topic, depth }) => assert_eq!((topic.as_str(), depth), ("t", 2)),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    let got_b: Vec<u64> = std::iter::from_fn(|| b.take().unwrap().map(|s| *s)).collect();
    assert_eq!(got_b, vec![1, 2], "a failed publish reaches no subscriber");
    assert_eq!(*a.take().unwrap().unwrap(), 1);
    publisher.send(4).unwrap();
    let st = publisher.pool_stats();
    assert_eq!(st.delivered, 2, "chunks of samples 2 and 4: {st:?}");
}

#[test]
fn block_policy_times_out_when_nobody_reads() {
    let dir = root();
    let _sub = Subscriber::<u64>::builder("t")
        .queue_depth(1)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .overflow(Overflow::Block)
        .block_timeout(Duration::from_millis(50))
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(1).unwrap();
    let t = Instant::now();
    assert!(matches!(publisher.send(2), Err(Error::Timeout { .. })));
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn block_policy_waits_for_a_reader_on_another_thread() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .queue_depth(2)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .overflow(Overflow::Block)
        .root(dir.path())
        .create()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 10_000 {
            got.push(*sub.recv().unwrap());
        }
        got
    });
    for i in 0..10_000 {
        publisher.send(i).unwrap();
    }
    assert_eq!(reader.join().unwrap(), (0..10_000).collect::<Vec<_>>());
}

#[test]
fn late_subscriber_receives_history_without_new_publishes() {
    let dir = root();
    let publisher = Publisher::<u64>::builder("t")
        .history(3)
        .root(dir.path())
        .create()
        .unwrap();
    for i in 1..=10 {
        publisher.send(i * 10).unwrap();
    }
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let got: Vec<(u64, u64)> =
        std::iter::from_fn(|| sub.take().unwrap().map(|s| (s.sequence(), *s))).collect();
    assert_eq!(got, vec![(8, 80), (9, 90), (10, 100)]);
    // New samples follow, with no duplicates of the history.
    publisher.send(110).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), 110);
    assert!(sub.take().unwrap().is_none());
    drop(sub);
    // The pinned chunks come back once the subscriber has gone.
    let st = publisher.pool_stats();
    assert_eq!((st.history, st.free + st.history), (3, st.total), "{st:?}");
}

#[test]
fn history_and_live_samples_interleave_without_duplicates() {
    let dir = root();
    let publisher = Publisher::<u64>::builder("t")
        .history(4)
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(1).unwrap();
    publisher.send(2).unwrap();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    for i in 3..=6 {
        publisher.send(i).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| sub.take().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_subscriber_there_before_the_publisher_gets_every_sample_once_whatever_its_history() {
    let dir = root();
    // The subscriber connects to the publisher on its first receive, after all five were
    // queued for it: the history (4, 5) must not replace the queue.
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .history(2)
        .root(dir.path())
        .create()
        .unwrap();
    for i in 1..=5 {
        publisher.send(i).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| sub.take().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
}

#[test]
fn holding_too_many_samples_is_an_error_not_a_stall() {
    let dir = root();
    let cfg = TopicConfig {
        max_held: 2,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<u64>::builder("t")
        .topic_config(cfg)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    for i in 0..5 {
        publisher.send(i).unwrap();
    }
    let a = sub.take().unwrap().unwrap();
    let b = sub.take().unwrap().unwrap();
    assert!(matches!(
        sub.take(),
        Err(Error::HeldLimit { max_held: 2, .. })
    ));
    drop(a);
    let c = sub.take().unwrap().unwrap();
    assert_eq!((*b, *c), (1, 2));
}

#[test]
fn loaning_more_than_max_loans_is_an_error() {
    let dir = root();
    let publisher = Publisher::<u64>::builder("t")
        .max_loans(2)
        .root(dir.path())
        .create()
        .unwrap();
    let _a = publisher.loan().unwrap();
    let _b = publisher.loan().unwrap();
    assert!(matches!(
        publisher.loan(),
        Err(Error::LoanLimit { max_loans: 2, .. })
    ));
}

#[test]
fn chunks_are_recycled_under_steady_traffic() {
    let dir = root();
    let subs: Vec<_> = (0..3)
        .map(|_| {
            Subscriber::<Pose>::builder("t")
                .queue_depth(4)
                .root(dir.path())
                .create()
                .unwrap()
        })
        .collect();
    let publisher = Publisher::<Pose>::builder("t")
        .history(2)
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    let mut held = Vec::new();
    for i in 0..20_000u64 {
        publisher.send(pose(i)).unwrap();
        for (k, sub) in subs.iter().enumerate() {
            // Subscriber 0 keeps up, 1 reads every other round, 2 holds samples for a while.
            if k == 0 || (k == 1 && i % 2 == 0) {
                while let Some(s) = sub.take().unwrap() {
                    assert_eq!(s.seq, s.sequence() - 1);
                }
            }
        }
        if i % 5 == 0 {
            held.clear();
        }
        if let Some(s) = subs[2].take().unwrap() {
            held.push(s);
        }
        let st = publisher.pool_stats();
        assert_eq!(st.total, total);
        assert!(st.free > 0, "pool ran dry at {i}: {st:?}");
    }
    drop(held);
    drop(subs);
    let st = publisher.pool_stats();
    assert_eq!(st.free + st.history, total, "{st:?}");
    assert_eq!(publisher.ignored_returns(), 0);
}

#[test]
fn many_publishers_and_subscribers_keep_per_publisher_order() {
    let dir = root();
    let subs: Vec<_> = (0..3)
        .map(|_| {
            Subscriber::<[u64; 2]>::builder("t")
                .queue_depth(256)
                .root(dir.path())
                .create()
                .unwrap()
        })
        .collect();
    let pubs: Vec<_> = (0..3)
        .map(|_| {
            Publisher::<[u64; 2]>::builder("t")
                .queue_depth(256)
                .overflow(Overflow::Block)
                .root(dir.path())
                .create()
                .unwrap()
        })
        .collect();
    for p in &pubs {
        assert_eq!(p.subscriber_count(), 3);
    }
    for i in 0..100u64 {
        for (k, p) in pubs.iter().enumerate() {
            p.send([k as u64, i]).unwrap();
        }
    }
    for sub in &subs {
        assert_eq!(sub.publisher_count(), 3);
        let mut next = [0u64; 3];
        while let Some(s) = sub.take().unwrap() {
            let [k, i] = *s;
            assert_eq!(i, next[k as usize], "publisher {k} out of order");
            next[k as usize] += 1;
        }
        assert_eq!(next, [100; 3]);
    }
    drop((subs, pubs));
    assert_empty(dir.path());
}

#[test]
fn a_departed_publishers_queued_samples_are_still_delivered() {
    let dir = root();
    let (sub, publisher) = pair::<u64>(dir.path());
    for i in 0..5 {
        publisher.send(i).unwrap();
    }
    drop(publisher);
    let got: Vec<u64> = std::iter::from_fn(|| sub.take().unwrap().map(|s| *s)).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    // A new publisher can take over the slot and the subscriber follows.
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(7).unwrap();
    let s = sub.take().unwrap().unwrap();
    assert_eq!((*s, s.sequence()), (7, 1));
    drop(s);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn recv_timeout_returns_none_when_nothing_comes() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let t = Instant::now();
    assert!(sub
        .recv_timeout(Duration::from_millis(30))
        .unwrap()
        .is_none());
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_sleeping_subscriber_is_woken_by_a_publish() {
    let dir = root();
    let (sub, publisher) = pair::<u64>(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tx.send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        *sub.recv_timeout(Duration::from_secs(60))
            .unwrap()
            .expect("woken")
    });
    // Wait until the waiter has stopped spinning and sleeps in the kernel.
    wait_until_asleep(rx.recv().unwrap());
    let t = Instant::now();
    publisher.send(42).unwrap();
    assert_eq!(waiter.join().unwrap(), 42);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "woken by the publish, not by the timeout"
    );
}

#[test]
fn files_are_private_to_their_owner_by_default_and_shareable_on_request() {
    use std::os::unix::fs::PermissionsExt;
    let dir = root();
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let _p = Publisher::<u64>::builder("private")
        .root(dir.path())
        .create()
        .unwrap();
    let topic = dir.path().join("private");
    assert_eq!(mode_of(&topic), 0o700);
    for f in std::fs::read_dir(&topic).unwrap().flatten() {
        assert_eq!(mode_of(&f.path()), 0o600, "{:?}", f.path());
    }
    let cfg = TopicConfig {
        mode: 0o660,
        ..TopicConfig::default()
    };
    let _q = Publisher::<u64>::builder("shared")
        .topic_config(cfg)
        .root(dir.path())
        .create()
        .unwrap();
    let topic = dir.path().join("shared");
    assert_eq!(mode_of(&topic), 0o770);
    for f in std::fs::read_dir(&topic).unwrap().flatten() {
        assert_eq!(mode_of(&f.path()), 0o660, "{:?}", f.path());
    }
}

#[test]
fn a_fast_drop_oldest_publisher_never_exhausts_its_pool() {
    let dir = root();
    let cfg = TopicConfig {
        max_subscribers: 2,
        max_held: 4,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<[u64; 2]>::builder("t")
        .queue_depth(4)
        .topic_config(cfg)
        .root(dir.path())
        .create()
        .unwrap();
    let root_path = dir.path().to_owned();
    let publisher = std::thread::spawn(move || {
        let p = Publisher::<[u64; 2]>::builder("t")
            .queue_depth(4)
            .topic_config(cfg)
            .root(&root_path)
            .create()
            .unwrap();
        for i in 0..200_000u64 {
            let mut s = p
                .loan()
                .unwrap_or_else(|e| panic!("loan {i}: {e} {:?}", p.pool_stats()));
            *s = [i, i * 2];
            s.publish().unwrap();
        }
    });
    let mut last = None;
    while !publisher.is_finished() {
        if let Some(s) = sub.take().unwrap() {
            assert_eq!(s[1], s[0] * 2);
            assert!(last.is_none_or(|l| s[0] > l));
            last = Some(s[0]);
        }
    }
    publisher.join().unwrap();
}
