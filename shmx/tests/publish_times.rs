//! Publish times: subscribers that ask get the publisher's clock per sample; nobody else does.

mod common;

use shmx::inspect::RawSubscriber;
use shmx::{Publisher, Subscriber};
use std::time::{Duration, SystemTime};

#[test]
fn a_subscriber_that_asks_gets_each_samples_publish_time() {
    let dir = common::root();
    let stamped = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .publish_times()
        .create()
        .unwrap();
    let plain = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let mut last = SystemTime::UNIX_EPOCH;
    for i in 0..5 {
        let before = SystemTime::now();
        publisher.send(i).unwrap();
        let after = SystemTime::now();
        let s = stamped.take().unwrap().expect("sent");
        let t = s.publish_time().expect("asked for publish times");
        assert!(before <= t && t <= after, "{t:?} not within the send");
        assert!(t >= last, "publish times go forward");
        last = t;
        // The other subscriber did not ask: it gets none, though the chunk carries one.
        assert_eq!(plain.take().unwrap().expect("sent").publish_time(), None);
    }
}

#[test]
fn history_from_before_the_ask_has_no_publish_time_and_later_samples_do() {
    let dir = common::root();
    let publisher = Publisher::<u32>::builder("t")
        .root(dir.path())
        .history(2)
        .create()
        .unwrap();
    publisher.send(1).unwrap();
    let raw = RawSubscriber::new(dir.path(), "t")
        .unwrap()
        .with_publish_times();
    let old = raw
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("history");
    assert_eq!(
        (old.bytes(), old.publish_time_ns()),
        (&1u32.to_ne_bytes()[..], None)
    );
    drop(old);
    publisher.send(2).unwrap();
    let new = raw.take().unwrap().expect("sent");
    let ns = new.publish_time_ns().expect("stamped after the ask");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        ns <= now && now - ns < 60_000_000_000,
        "{ns} is not a recent time"
    );
}

#[test]
fn a_subscriber_in_a_reused_slot_gets_times_only_if_it_asks() {
    let dir = common::root();
    let publisher = Publisher::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let stamped = RawSubscriber::new(dir.path(), "t")
        .unwrap()
        .with_publish_times();
    publisher.send(1).unwrap();
    assert!(stamped.take().unwrap().unwrap().publish_time_ns().is_some());
    drop(stamped);
    // The same slot, claimed again by a subscriber that does not ask; the stamped samples
    // that a subscriber asking later sees start after it asked.
    let plain = RawSubscriber::new(dir.path(), "t").unwrap();
    publisher.send(2).unwrap();
    assert_eq!(plain.take().unwrap().unwrap().publish_time_ns(), None);
    let late = RawSubscriber::new(dir.path(), "t")
        .unwrap()
        .with_publish_times();
    publisher.send(3).unwrap();
    assert!(late.take().unwrap().unwrap().publish_time_ns().is_some());
    assert_eq!(plain.take().unwrap().unwrap().publish_time_ns(), None);
}

#[test]
fn relayed_samples_say_so_and_carry_their_remote_publish_time() {
    let dir = common::root();
    let typed = Subscriber::<u32>::builder("t")
        .root(dir.path())
        .publish_times()
        .create()
        .unwrap();
    let raw = RawSubscriber::new(dir.path(), "t").unwrap();
    let relay = shmx::inspect::RawPublisher::new(dir.path(), "t").unwrap();
    let remote_time = 1_700_000_000_123_456_789;
    relay
        .send_relayed(&7u32.to_ne_bytes(), 1, Some(remote_time))
        .unwrap();
    relay.send(&8u32.to_ne_bytes()).unwrap();
    let first = raw.take().unwrap().unwrap();
    assert!(first.is_relayed());
    let second = raw.take().unwrap().unwrap();
    assert!(!second.is_relayed());
    let t = typed.take().unwrap().unwrap();
    let ns = t
        .publish_time()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert_eq!((*t, ns), (7, u128::from(remote_time)));
    let local = typed.take().unwrap().unwrap();
    assert!(local.publish_time().unwrap() > t.publish_time().unwrap());
}
