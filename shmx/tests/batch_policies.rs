//! Batched publish and receive across overflow policies, sleeping subscribers and processes.
//!
//! Every test makes its own root directory (`common::root`) and passes it to the builders;
//! none reads or sets `SHMX_ROOT`. The cross-process tests at the end re-execute this binary
//! as a child (`child_main`), as `crash.rs` does, handing it the root in `SHMX_BATCH_ROOT`.

use shmx::{Error, Overflow, Publisher, Subscriber};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::mpsc::{self};
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, pair, root, wait_until_asleep};
use common::{batch::*, Kid};

// ---------------------------------------------------------------------------------------------
// Overflow policies
// ---------------------------------------------------------------------------------------------

/// A child process running role `role` of `child_main` in `root` (passed to the builders;
/// `SHMX_ROOT` stays unset).
fn start_kid(root: &Path, role: &str) -> Kid {
    Kid::spawn(&[(ROLE_VAR, OsStr::new(role)), (ROOT_VAR, root.as_os_str())])
}

#[test]
fn send_many_under_fail_stops_at_the_first_full_queue() {
    let dir = root();
    let sub = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 4, Overflow::Fail, DEADLINE);
    match publisher.send_many(0..10) {
        Err(Error::QueueFull { topic, depth }) => assert_eq!((topic.as_str(), depth), ("t", 4)),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    let got = drain_everything(&sub, usize::MAX, 4);
    assert_eq!(got, [(1, 0), (2, 1), (3, 2), (4, 3)], "exactly 4 published");
    // The failed value took no sequence number: nothing was lost on the way.
    assert_eq!(publisher.send_many(10..12).unwrap(), 2);
    assert_eq!(drain_everything(&sub, usize::MAX, 2), [(5, 10), (6, 11)]);
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn send_many_under_fail_delivers_the_failed_value_to_nobody() {
    let dir = root();
    let roomy = subscriber_t(dir.path(), 16);
    let small = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 16, Overflow::Fail, DEADLINE);
    assert!(matches!(
        publisher.send_many(0..10),
        Err(Error::QueueFull { depth: 4, .. })
    ));
    for sub in [&roomy, &small] {
        assert_eq!(values(&drain_everything(sub, 3, 4)), [0, 1, 2, 3]);
    }
    assert_pool_whole(&publisher);
    drop((roomy, small, publisher));
    assert_empty(dir.path());
}

#[test]
fn send_many_under_block_times_out_after_filling_the_queue() {
    let dir = root();
    let sub = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 4, Overflow::Block, Duration::from_millis(50));
    let t = Instant::now();
    match publisher.send_many(0..10) {
        Err(Error::Timeout { topic, .. }) => assert_eq!(topic, "t"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );
    let got = drain_everything(&sub, usize::MAX, 4);
    assert_eq!(values(&got), [0, 1, 2, 3], "the first queue_depth values");
    assert_eq!(sequences(&got), [1, 2, 3, 4]);
    // It works again once there is room.
    assert_eq!(publisher.send_many(10..13).unwrap(), 3);
    let got = drain_everything(&sub, usize::MAX, 3);
    assert_eq!(values(&got), [10, 11, 12]);
    assert!(got.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

/// Under `Overflow::Block` a publish pushes subscriber by subscriber: the value that times
/// out on the second subscriber's full queue already reached the first, as the docs of
/// `send_many` (and `Overflow::Block`) say. `Overflow::Fail` checks every queue first and
/// is all-or-nothing (tested above).
#[test]
fn send_many_under_block_delivers_the_timed_out_value_to_subscribers_with_room() {
    let dir = root();
    let roomy = subscriber_t(dir.path(), 16);
    let small = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 16, Overflow::Block, Duration::from_millis(50));
    assert!(matches!(
        publisher.send_many(0..10),
        Err(Error::Timeout { .. })
    ));
    let small_got = values(&drain_everything(&small, usize::MAX, 4));
    assert_eq!(small_got, [0, 1, 2, 3]);
    let mut roomy_got = Vec::new();
    roomy.drain(usize::MAX, |s| roomy_got.push(**s)).unwrap();
    assert_eq!(
        roomy_got,
        [0, 1, 2, 3, 4],
        "value 4 timed out on the small queue after it reached the roomy one"
    );
}

// ---------------------------------------------------------------------------------------------
// Waking sleeping subscribers
// ---------------------------------------------------------------------------------------------

/// Moves `sub` into a thread that sleeps in `recv_timeout` until a first sample comes, then
/// drains until `n` samples arrived. Once the thread sleeps, runs `act` (on this thread) and
/// returns how long after the start of `act` the first sample was received, and the values.
///
/// `recv` sleeps at most 1 s at a time before it looks again by itself, so a wake-up that a
/// publisher forgot shows as a first sample about 1 s late: a delay under 500 ms means the
/// publisher woke the subscriber.
fn wake_latency(sub: Subscriber<u64>, n: usize, act: impl FnOnce()) -> (Duration, Vec<u64>) {
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        tx.send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        let first = sub
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("woken within 10 s");
        let woken = Instant::now();
        let mut got = vec![*first];
        drop(first);
        let deadline = Instant::now() + DEADLINE;
        while got.len() < n {
            assert!(Instant::now() < deadline, "only {got:?} arrived");
            if sub.drain(usize::MAX, |s| got.push(**s)).unwrap() == 0 {
                if let Some(s) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
                    got.push(*s);
                }
            }
        }
        (woken, got)
    });
    wait_until_asleep(rx.recv().unwrap());
    let t = Instant::now();
    act();
    let (woken, got) = waiter.join().unwrap();
    (woken.saturating_duration_since(t), got)
}

#[test]
fn send_many_wakes_a_sleeping_subscriber() {
    let dir = root();
    let (sub, publisher) = pair::<u64>(dir.path());
    let (latency, got) = wake_latency(sub, 3, || {
        assert_eq!(publisher.send_many([7, 8, 9]).unwrap(), 3)
    });
    assert_eq!(got, [7, 8, 9]);
    assert!(
        latency < Duration::from_millis(500),
        "woken by send_many, not by the subscriber's own timeout: {latency:?}"
    );
    drop(publisher);
    assert_empty(dir.path());
}

#[test]
fn send_many_under_block_wakes_the_subscriber_before_it_waits() {
    let dir = root();
    let sub = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 4, Overflow::Block, DEADLINE);
    // The batch fills the queue at value 4 and must wake the subscriber before it blocks:
    // otherwise it only goes on when the subscriber wakes up by itself.
    let (latency, got) = wake_latency(sub, 10, || {
        assert_eq!(publisher.send_many(0..10).unwrap(), 10)
    });
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert!(
        latency < Duration::from_millis(500),
        "woken before the publisher blocked: {latency:?}"
    );
    drop(publisher);
    assert_empty(dir.path());
}

#[test]
fn send_many_under_block_keeps_pace_with_a_reader_on_another_thread() {
    let dir = root();
    let sub = subscriber_t(dir.path(), 4);
    let publisher = publisher_t(dir.path(), 4, Overflow::Block, DEADLINE);
    const N: u64 = 20_000;
    let reader = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(N as usize);
        let deadline = Instant::now() + DEADLINE;
        while (got.len() as u64) < N {
            assert!(Instant::now() < deadline, "{} of {N} arrived", got.len());
            let s = sub.recv_timeout(Duration::from_millis(100)).unwrap();
            if let Some(s) = s {
                got.push((s.sequence(), *s));
            }
            sub.drain(usize::MAX, |s| got.push((s.sequence(), **s)))
                .unwrap();
        }
        got
    });
    let mut next = 0;
    while next < N {
        let n = (1 + next % 50).min(N - next);
        assert_eq!(publisher.send_many(next..next + n).unwrap() as u64, n);
        next += n;
    }
    let got = reader.join().unwrap();
    assert_eq!(values(&got), (0..N).collect::<Vec<_>>());
    assert_eq!(sequences(&got), (1..=N).collect::<Vec<_>>());
    drop(publisher);
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------------
// Across processes
// ---------------------------------------------------------------------------------------------

/// The role of a child process (see `child_main`).
const ROLE_VAR: &str = "SHMX_BATCH_ROLE";
/// The root directory a child uses (passed to the builders; `SHMX_ROOT` stays unset).
const ROOT_VAR: &str = "SHMX_BATCH_ROOT";
/// Messages sent across processes in each test.
const CROSS: u64 = 20_000;

/// Receives `n` samples with `recv_timeout` and `drain`; returns (publisher id, sequence,
/// message) of each.
fn receive_tagged(sub: &Subscriber<Tagged>, n: u64) -> Vec<(u64, u64, Tagged)> {
    let mut got = Vec::with_capacity(n as usize);
    let deadline = Instant::now() + DEADLINE;
    while (got.len() as u64) < n {
        assert!(Instant::now() < deadline, "{} of {n} arrived", got.len());
        if let Some(s) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
            got.push((s.publisher_id(), s.sequence(), *s));
        }
        sub.drain(usize::MAX, |s| {
            got.push((s.publisher_id(), s.sequence(), **s))
        })
        .unwrap();
    }
    got
}

/// Checks that `got` is messages `0..n` of source 7 from one publisher, with sequences
/// `1..=n`.
fn check_tagged(got: &[(u64, u64, Tagged)], n: u64) {
    assert_eq!(got.len() as u64, n);
    for (i, &(id, seq, msg)) in got.iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            (seq, msg),
            (
                i + 1,
                Tagged {
                    source: 7,
                    index: i
                }
            )
        );
        assert_eq!(id, got[0].0, "one publisher");
    }
}

/// Sends `0..n` (source 7) in batches of 1 to 37 values; every `send_many` must send them all.
fn send_tagged(publisher: &Publisher<Tagged>, n: u64) {
    let mut next = 0;
    while next < n {
        let k = (1 + next % 37).min(n - next);
        let batch = (next..next + k).map(|index| Tagged { source: 7, index });
        assert_eq!(publisher.send_many(batch).unwrap() as u64, k);
        next += k;
    }
}

fn cross_publisher(root: &Path) -> Publisher<Tagged> {
    Publisher::<Tagged>::builder("x")
        .queue_depth(8)
        .overflow(Overflow::Block)
        .block_timeout(DEADLINE)
        .root(root)
        .create()
        .unwrap()
}

fn cross_subscriber(root: &Path) -> Subscriber<Tagged> {
    Subscriber::<Tagged>::builder("x")
        .queue_depth(8)
        .root(root)
        .create()
        .unwrap()
}

/// Entry point of the child processes; does nothing in a normal test run.
#[test]
fn child_main() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let root = std::path::PathBuf::from(std::env::var_os(ROOT_VAR).expect("SHMX_BATCH_ROOT"));
    match role.as_str() {
        // Sends CROSS messages with send_many to the one subscriber, then leaves.
        "publisher" => {
            let publisher = cross_publisher(&root);
            eventually("the subscriber connects", || {
                publisher.subscriber_count() == 1
            });
            send_tagged(&publisher, CROSS);
            println!("sent {CROSS}");
        }
        // Receives CROSS messages with drain, checks them, then leaves.
        "subscriber" => {
            let sub = cross_subscriber(&root);
            println!("ready");
            let got = receive_tagged(&sub, CROSS);
            check_tagged(&got, CROSS);
            println!("got {CROSS}");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn send_many_in_another_process_reaches_drain_here() {
    let dir = root();
    let sub = cross_subscriber(dir.path());
    let mut kid = start_kid(dir.path(), "publisher");
    let got = receive_tagged(&sub, CROSS);
    check_tagged(&got, CROSS);
    kid.expect(&format!("sent {CROSS}"));
    kid.finish();
    eventually("the publisher is gone", || sub.publisher_count() == 0);
    assert!(sub.take().unwrap().is_none());
    drop(sub);
    assert_empty(dir.path());
}

#[test]
fn send_many_here_reaches_drain_in_another_process() {
    let dir = root();
    let publisher = cross_publisher(dir.path());
    let total = publisher.pool_stats().total;
    let mut kid = start_kid(dir.path(), "subscriber");
    kid.expect("ready");
    eventually("the subscriber connects", || {
        publisher.subscriber_count() == 1
    });
    send_tagged(&publisher, CROSS);
    kid.expect(&format!("got {CROSS}"));
    kid.finish();
    eventually("the subscriber is gone", || {
        publisher.subscriber_count() == 0
    });
    let st = publisher.pool_stats();
    assert_eq!(st.free, total, "{st:?}");
    drop(publisher);
    assert_empty(dir.path());
}
