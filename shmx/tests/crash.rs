//! Processes killed with SIGKILL: the survivors keep working, no chunk is lost, and what the
//! dead left behind is reclaimed. Each test re-executes this binary as its child process.

use shmx::{Overflow, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, root, Kid};

const DEADLINE: Duration = Duration::from_secs(30);

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    seq: u64,
    value: f64,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Other {
    a: u32,
    b: u32,
    c: u64,
}

fn config() -> TopicConfig {
    TopicConfig {
        max_subscribers: 2,
        max_held: 4,
        ..TopicConfig::default()
    }
}

/// Polls `f` until it holds or the deadline passes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child process running role `role` of `child_main` in `root`.
fn start_kid(root: &Path, role: &str) -> Kid {
    Kid::spawn(&[
        ("SHMX_CRASH_ROLE", OsStr::new(role)),
        ("SHMX_ROOT", root.as_os_str()),
    ])
}

#[test]
fn child_main() {
    let Ok(role) = std::env::var("SHMX_CRASH_ROLE") else {
        return;
    };
    let root = std::env::var_os("SHMX_ROOT").unwrap();
    match role.as_str() {
        // Takes samples and holds up to 4 of them, forever.
        "holding-subscriber" => {
            let sub = Subscriber::<Reading>::builder("t")
                .queue_depth(4)
                .topic_config(config())
                .root(&root)
                .create()
                .unwrap();
            println!("ready");
            let mut held = Vec::new();
            loop {
                if let Some(s) = sub.recv_timeout(Duration::from_millis(10)).unwrap() {
                    held.push(s);
                    if held.len() == 4 {
                        println!("holding");
                        held.remove(0);
                    }
                }
            }
        }
        // Publishes 5 samples to a connected subscriber, then waits to be killed.
        "publisher-of-five" => {
            let p = Publisher::<Reading>::builder("t")
                .topic_config(config())
                .root(&root)
                .create()
                .unwrap();
            eventually("a subscriber connects", || p.subscriber_count() == 1);
            for seq in 0..5 {
                p.send(Reading { seq, value: 0.5 }).unwrap();
            }
            println!("sent");
            loop {
                std::thread::park();
            }
        }
        // Opens a publisher and a subscriber of `Reading`, then waits to be killed.
        "owner" => {
            let _p = Publisher::<Reading>::builder("t")
                .root(&root)
                .create()
                .unwrap();
            let _s = Subscriber::<Reading>::builder("t")
                .root(&root)
                .create()
                .unwrap();
            println!("ready");
            loop {
                std::thread::park();
            }
        }
        // Publishes as fast as it can until killed: value = 2 × seq, so a torn sample shows.
        "busy-publisher" => {
            let p = Publisher::<Reading>::builder("t")
                .queue_depth(4)
                .topic_config(config())
                .root(&root)
                .create()
                .unwrap();
            println!("ready");
            for seq in 1u64.. {
                let mut s = p
                    .loan()
                    .unwrap_or_else(|e| panic!("loan {seq}: {e}: {:?}", p.pool_stats()));
                s.seq = seq;
                s.value = seq as f64 * 2.0;
                s.publish().unwrap();
            }
        }
        // Connects, receives one sample and leaves cleanly.
        "read-one" => {
            let sub = Subscriber::<Reading>::builder("t")
                .queue_depth(4)
                .topic_config(config())
                .root(&root)
                .create()
                .unwrap();
            println!("ready");
            let s = sub.recv_timeout(DEADLINE).unwrap().expect("a sample");
            println!("got {}", s.seq);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_killed_subscriber_gives_back_every_chunk_and_blocks_nobody() {
    let dir = root();
    let publisher = Publisher::<Reading>::builder("t")
        .overflow(Overflow::Block)
        .block_timeout(DEADLINE)
        .queue_depth(4)
        .topic_config(config())
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    let mut kid = start_kid(dir.path(), "holding-subscriber");
    kid.expect("ready");
    eventually("the subscriber connects", || {
        publisher.subscriber_count() == 1
    });
    let mut seq = 0;
    // Publish until the child holds samples and its queue is full.
    while publisher.pool_stats().delivered < 8 {
        publisher.send(Reading { seq, value: 1.0 }).unwrap();
        seq += 1;
    }
    kid.expect("holding");
    kid.kill();
    // Block would wait for the dead subscriber forever: it must notice the death instead.
    for _ in 0..100 {
        publisher.send(Reading { seq, value: 2.0 }).unwrap();
        seq += 1;
    }
    eventually("the dead subscriber is gone", || {
        publisher.subscriber_count() == 0
    });
    let st = publisher.pool_stats();
    assert_eq!(st.free, total, "every chunk came back: {st:?}");
    // Its slot can be taken again.
    let sub = Subscriber::<Reading>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(Reading { seq, value: 3.0 }).unwrap();
    assert_eq!(sub.take().unwrap().unwrap().value, 3.0);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn a_killed_publishers_queued_samples_are_still_delivered() {
    let dir = root();
    let sub = Subscriber::<Reading>::builder("t")
        .topic_config(config())
        .root(dir.path())
        .create()
        .unwrap();
    let mut kid = start_kid(dir.path(), "publisher-of-five");
    kid.expect("sent");
    kid.kill();
    let mut got = Vec::new();
    while got.len() < 5 {
        let s = sub
            .recv_timeout(DEADLINE)
            .unwrap()
            .expect("the queued samples");
        got.push(s.seq);
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert!(sub.take().unwrap().is_none());
    eventually("the dead publisher is gone", || sub.publisher_count() == 0);
    drop(sub);
    assert_empty(dir.path());
}

#[test]
fn a_topic_whose_processes_all_died_reopens_with_another_type() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "owner");
    kid.expect("ready");
    kid.kill();
    // The service file still says `Reading`, but nobody alive uses it.
    let publisher = Publisher::<Other>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let sub = Subscriber::<Other>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(Other { a: 1, b: 2, c: 3 }).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), Other { a: 1, b: 2, c: 3 });
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn subscribers_killed_at_random_moments_never_cost_a_chunk() {
    let dir = root();
    let publisher = Publisher::<Reading>::builder("t")
        .queue_depth(4)
        .topic_config(config())
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    let mut seq = 0u64;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut kid = start_kid(dir.path(), "holding-subscriber");
        kid.expect("ready");
        // Publish for a random number of rounds, then kill at that moment.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        for _ in 0..rng % 2000 {
            publisher.send(Reading { seq, value: 0.0 }).unwrap();
            seq += 1;
        }
        kid.kill();
        for _ in 0..10 {
            publisher.send(Reading { seq, value: 0.0 }).unwrap();
            seq += 1;
        }
        eventually("the pool is whole again", || {
            publisher.subscriber_count() == 0 && publisher.pool_stats().free == total
        });
    }
    drop(publisher);
    assert_empty(dir.path());
}

/// Soak: `SHMX_SOAK_KILLS` (default 1,000) SIGKILLs of subscriber and publisher processes at
/// random moments, then `SHMX_SOAK_RESTARTS` (default 10,000) subscriber processes that
/// connect, receive and leave cleanly, against one long-lived publisher in this process. Run with
/// `cargo test -p shmx --release --test crash -- --ignored --nocapture`.
#[test]
#[ignore]
fn soak_kills_and_restarts() {
    let count = |var: &str, default: u64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (kills, restarts) = (
        count("SHMX_SOAK_KILLS", 1_000),
        count("SHMX_SOAK_RESTARTS", 10_000),
    );
    let dir = root();
    let started = Instant::now();
    let publisher = Publisher::<Reading>::builder("t")
        .queue_depth(4)
        .topic_config(config())
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    let mut seq = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for k in 0..kills {
        let role = match k % 3 {
            0 => "holding-subscriber",
            1 => "publisher-of-five",
            _ => "busy-publisher",
        };
        let mut kid = start_kid(dir.path(), role);
        // Kill at a random moment: sometimes while it is still connecting.
        let rounds = next() % 3000;
        if rounds % 5 != 0 && role == "holding-subscriber" {
            kid.expect("ready");
        }
        if role == "busy-publisher" {
            kid.expect("ready");
        }
        let sub = (role != "holding-subscriber").then(|| {
            Subscriber::<Reading>::builder("t")
                .queue_depth(4)
                .root(dir.path())
                .create()
                .unwrap()
        });
        for _ in 0..rounds {
            publisher.send(Reading { seq, value: 0.0 }).unwrap();
            seq += 1;
            if let Some(sub) = &sub {
                while let Some(s) = sub.take().unwrap() {
                    let ok = s.value == 0.0 || s.value == 0.5 || s.value == s.seq as f64 * 2.0;
                    assert!(ok, "torn or foreign sample {:?}", *s);
                }
            }
        }
        kid.kill();
        drop(sub);
        eventually("the pool is whole again", || {
            publisher.subscriber_count() == 0 && publisher.pool_stats().free == total
        });
    }
    let killed_in = started.elapsed();
    for _ in 0..restarts {
        let mut kid = start_kid(dir.path(), "read-one");
        kid.expect("ready");
        eventually("the subscriber connects", || {
            publisher.subscriber_count() == 1
        });
        publisher.send(Reading { seq, value: 1.0 }).unwrap();
        seq += 1;
        kid.expect(&format!("got {}", seq - 1));
        kid.finish();
    }
    let st = publisher.pool_stats();
    assert_eq!(st.free, total, "{st:?}");
    println!(
        "soak: {kills} kills in {killed_in:.1?}, {restarts} subscriber process restarts in {:.1?}, \
         {seq} samples published, pool whole ({total} chunks), {} stale returns ignored",
        started.elapsed() - killed_in,
        publisher.ignored_returns()
    );
    drop(publisher);
    assert_empty(dir.path());
}

#[test]
fn clean_removes_what_dead_processes_left_and_nothing_alive() {
    use shmx::inspect;
    let dir = root();
    let mut kid = start_kid(dir.path(), "owner");
    kid.expect("ready");
    let live = Publisher::<Other>::builder("alive")
        .root(dir.path())
        .create()
        .unwrap();
    kid.kill();
    let topics = inspect::topics(dir.path()).unwrap();
    let names: Vec<_> = topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alive", "t"]);
    let dead = &topics[1];
    assert_eq!(
        (dead.type_name.as_str(), dead.schema.as_str()),
        ("Reading", "Reading(16,8){seq@0:u64,value@8:f64}")
    );
    assert!(!dead.publishers[0].alive && !dead.subscribers[0].alive);
    assert!(topics[0].publishers[0].alive);
    let dry = inspect::clean(dir.path(), true).unwrap();
    assert_eq!(dry.reclaimed_slots, 2);
    assert!(
        dry.removed.iter().any(|p| p.ends_with("t/service")),
        "{dry:?}"
    );
    assert!(dir.path().join("t").exists(), "a dry run changes nothing");
    let done = inspect::clean(dir.path(), false).unwrap();
    assert_eq!(done.reclaimed_slots, 2);
    assert!(!dir.path().join("t").exists());
    assert!(
        inspect::topic(dir.path(), "alive").is_ok(),
        "a live topic stays"
    );
    drop(live);
    assert_empty(dir.path());
}

#[test]
fn publishers_killed_while_publishing_never_deliver_a_torn_or_repeated_sample() {
    let dir = root();
    let sub = Subscriber::<Reading>::builder("t")
        .queue_depth(4)
        .topic_config(config())
        .root(dir.path())
        .create()
        .unwrap();
    let mut rng = 0x1234_5678_9abc_def1u64;
    for _ in 0..10 {
        let mut kid = start_kid(dir.path(), "busy-publisher");
        kid.expect("ready");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wanted = 1 + rng % 500;
        let mut last = 0;
        let mut got = 0;
        while got < wanted {
            if let Some(s) = sub.recv_timeout(DEADLINE).unwrap() {
                assert!(
                    s.seq > last,
                    "repeated or out of order: {} after {last}",
                    s.seq
                );
                assert_eq!(s.value, s.seq as f64 * 2.0, "torn sample");
                assert_eq!(s.sequence(), s.seq, "the publisher's sequence");
                last = s.seq;
                got += 1;
            }
        }
        // Kill it in the middle of its loop (loaning, writing or publishing).
        kid.kill();
        while let Some(s) = sub.take().unwrap() {
            assert!(s.seq > last && s.value == s.seq as f64 * 2.0);
            last = s.seq;
        }
        eventually("the dead publisher is gone", || sub.publisher_count() == 0);
    }
    // The subscriber still works with a new publisher.
    let publisher = Publisher::<Reading>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(Reading { seq: 1, value: 2.0 }).unwrap();
    assert_eq!(sub.take().unwrap().unwrap().value, 2.0);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn clean_removes_the_claims_no_bridge_holds_and_keeps_the_held_ones() {
    let dir = common::root();
    let _sub = shmx::Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let held = dir.path().join(".bridge.out.t");
    let stale = dir.path().join(".bridge.in.t");
    let holder = std::fs::File::create(&held).unwrap();
    holder.try_lock().unwrap();
    std::fs::File::create(&stale).unwrap();
    let report = shmx::inspect::clean(dir.path(), true).unwrap();
    assert!(report.removed.contains(&stale) && !report.removed.contains(&held));
    shmx::inspect::clean(dir.path(), false).unwrap();
    assert!(held.exists() && !stale.exists());
    drop(holder);
    std::fs::remove_file(&held).unwrap();
}
