//! A `WaitSet` in one process: detaching stops an attachment's events and frees its place,
//! and a wait that finds nothing sleeps until its timeout.

#![cfg(target_os = "linux")]

use shmx::waitset::EventKind;
use shmx::{Publisher, Subscriber, WaitSet};
use std::time::Duration;

/// The attachments that reported samples in one wait (at most `timeout` long).
fn ready(waitset: &mut WaitSet<'_>, timeout: Duration) -> Vec<shmx::waitset::Attachment> {
    let mut got = Vec::new();
    waitset
        .wait_timeout(timeout, |event| {
            if event.kind == EventKind::Samples {
                got.push(event.attachment);
            }
        })
        .expect("wait");
    got
}

#[test]
fn detached_subscribers_and_descriptors_are_not_reported_and_their_places_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let sub = |name: &str| {
        Subscriber::<u64>::builder(name)
            .root(dir.path())
            .create()
            .unwrap()
    };
    let publisher = |name: &str| {
        Publisher::<u64>::builder(name)
            .root(dir.path())
            .create()
            .unwrap()
    };
    let (a, b, c) = (sub("ws/a"), sub("ws/b"), sub("ws/c"));
    let (pa, pb, pc) = (publisher("ws/a"), publisher("ws/b"), publisher("ws/c"));
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut waitset = WaitSet::new().unwrap();
    let at_a = waitset.attach(&a).unwrap();
    let at_b = waitset.attach(&b).unwrap();
    let at_fd = {
        use std::os::fd::AsFd;
        waitset.attach_fd(reader.as_fd()).unwrap()
    };
    // (Publishers that were there when a subscriber was attached are not news.)
    assert!(ready(&mut waitset, Duration::ZERO).is_empty());

    pa.send(1).unwrap();
    pb.send(2).unwrap();
    let mut got = ready(&mut waitset, Duration::from_secs(5));
    got.sort_by_key(|x| format!("{x:?}"));
    let mut want = vec![at_a, at_b];
    want.sort_by_key(|x| format!("{x:?}"));
    assert_eq!(got, want);
    assert_eq!(*a.take().unwrap().unwrap(), 1);

    // `b` still has its sample, but once detached it is not reported; nor is it woken for.
    waitset.detach(at_b);
    waitset.detach(at_b); // twice: ignored
    assert!(ready(&mut waitset, Duration::from_millis(50)).is_empty());
    pb.send(3).unwrap();
    assert!(ready(&mut waitset, Duration::from_millis(50)).is_empty());

    // A new attachment takes the freed place and is reported under it.
    let at_c = waitset.attach(&c).unwrap();
    assert_eq!(at_c, at_b, "the detached place is reused");
    pc.send(4).unwrap();
    assert_eq!(ready(&mut waitset, Duration::from_secs(5)), vec![at_c]);
    assert_eq!(*c.take().unwrap().unwrap(), 4);

    // A detached descriptor is out of the epoll set: readable, but not reported.
    use std::io::Write;
    (&writer).write_all(b"x").unwrap();
    let mut readable = Vec::new();
    waitset
        .wait_timeout(Duration::from_secs(5), |e| {
            if e.kind == EventKind::Readable {
                readable.push(e.attachment)
            }
        })
        .unwrap();
    assert_eq!(readable, vec![at_fd]);
    waitset.detach(at_fd);
    assert_eq!(
        waitset
            .wait_timeout(Duration::from_millis(50), |e| panic!("unexpected {e:?}"))
            .unwrap(),
        0
    );
    // `b`'s samples are all still there for whoever takes them.
    assert_eq!(*b.take().unwrap().unwrap(), 2);
    assert_eq!(*b.take().unwrap().unwrap(), 3);
}
