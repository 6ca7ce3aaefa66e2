//! Publisher ids and sequence numbers: ids are random (apart across machines), and a
//! bridge's relay publishes another machine's samples under that machine's id and numbers.

mod common;

use shmx::inspect::{self, RawPublisher, RawSubscriber};
use shmx::schema_text::MessageType;
use shmx::{Publisher, PublisherConfig, Subscriber};

#[test]
fn publishers_ids_differ_are_never_0_and_tools_see_the_same() {
    let dir = common::root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let a = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let b = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    a.send(1).unwrap();
    b.send(2).unwrap();
    let ids: Vec<u64> = (0..2)
        .map(|_| sub.take().unwrap().unwrap().publisher_id())
        .collect();
    assert!(ids.iter().all(|&id| id != 0), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let mut listed: Vec<u64> = inspect::topic(dir.path(), "t")
        .unwrap()
        .publishers
        .iter()
        .map(|p| p.id)
        .collect();
    let mut seen = ids.clone();
    listed.sort_unstable();
    seen.sort_unstable();
    assert_eq!(listed, seen);
}

#[test]
fn a_relay_keeps_the_remote_id_and_numbers_and_they_only_grow() {
    let dir = common::root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let raw = RawSubscriber::new(dir.path(), "t").unwrap();
    let ty = MessageType::of::<u64>();
    let config = PublisherConfig::default();
    let relay = RawPublisher::open_relay(Some(dir.path()), "t", Some(&ty), config, 77).unwrap();
    // Remote numbers 10 and 12 (11 was lost on the way), then one that went backwards
    // (a confused peer): it gets the next of the relay's own.
    for (seq, v) in [(10, 1u64), (12, 2), (5, 3)] {
        relay.send_relayed(&v.to_ne_bytes(), seq, None).unwrap();
    }
    let got: Vec<(u64, u64, u64)> = (0..3)
        .map(|_| {
            let s = sub.take().unwrap().unwrap();
            (s.publisher_id(), s.sequence(), *s)
        })
        .collect();
    assert_eq!(got, [(77, 10, 1), (77, 12, 2), (77, 13, 3)]);
    let r = raw.take().unwrap().unwrap();
    assert!(r.is_relayed());
    assert_eq!((r.publisher_id(), r.sequence()), (77, 10));
    // A number from afar near the end of the range does not overflow the count.
    relay
        .send_relayed(&4u64.to_ne_bytes(), u64::MAX, None)
        .unwrap();
    relay
        .send_relayed(&5u64.to_ne_bytes(), u64::MAX, None)
        .unwrap();
    let a = sub.take().unwrap().unwrap().sequence();
    let b = sub.take().unwrap().unwrap().sequence();
    assert!(b > a, "{a} then {b}");
    assert_eq!(
        inspect::topic(dir.path(), "t").unwrap().publishers[0].id,
        77
    );
}

#[test]
fn a_relay_with_id_0_is_refused() {
    let dir = common::root();
    let _sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let ty = MessageType::of::<u64>();
    let err = RawPublisher::open_relay(Some(dir.path()), "t", Some(&ty), Default::default(), 0)
        .err()
        .unwrap();
    assert!(matches!(err, shmx::Error::InvalidConfig { .. }), "{err}");
}
