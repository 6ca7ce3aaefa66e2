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

#[cfg(feature = "rkyv")]
#[test]
fn an_archived_relay_makes_its_topic_and_refuses_a_text_or_type_that_does_not_fit() {
    use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
    let dir = common::root();
    // The record of a topic of archived Strings, as another machine's bridge would send it.
    let model = ArchivePublisher::<String>::builder("model")
        .root(dir.path())
        .max_bytes(64)
        .create()
        .unwrap();
    let (schema, fingerprint) = {
        let raw = RawSubscriber::new(dir.path(), "model").unwrap();
        (raw.schema().to_owned(), raw.fingerprint())
    };
    drop(model);
    let config = || PublisherConfig {
        max_tail_bytes: 256,
        ..PublisherConfig::default()
    };
    let open = |topic: &str, schema: &str, fingerprint: u64| {
        RawPublisher::open_archived_relay(Some(dir.path()), topic, schema, fingerprint, config(), 5)
    };
    let relay = open("far", &schema, fingerprint).unwrap();
    let sub = ArchiveSubscriber::<String>::builder("far")
        .root(dir.path())
        .create()
        .unwrap();
    // An archive made here, published through the relay, reads back typed.
    {
        let local = ArchivePublisher::<String>::builder("model")
            .root(dir.path())
            .max_bytes(64)
            .create()
            .unwrap();
        let raw = RawSubscriber::new(dir.path(), "model").unwrap();
        local.send(&"hello".to_owned()).unwrap();
        let s = raw.take().unwrap().unwrap();
        relay.send_relayed(s.bytes(), 3, None).unwrap();
    }
    let got = sub.take().unwrap().unwrap();
    assert_eq!((got.as_str(), got.publisher_id()), ("hello", 5));
    // Not an archived type's text; another fingerprint than the topic's.
    for (schema, fingerprint) in [("Pose(8,8){x@0:f64}", fingerprint), ("rkyv:", fingerprint)] {
        let err = open("other", schema, fingerprint).err().unwrap();
        assert!(
            matches!(err, shmx::Error::InvalidConfig { .. }),
            "{schema}: {err}"
        );
    }
    let err = open("far", &schema, fingerprint ^ 1).err().unwrap();
    assert!(matches!(err, shmx::Error::TypeMismatch { .. }), "{err}");
}
