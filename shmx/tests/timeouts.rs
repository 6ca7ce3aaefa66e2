//! Any `Duration` is a valid timeout: one that ends past the clock's range means "forever",
//! never a panic ("overflow when adding duration to instant").

mod common;

use common::root;
use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::inspect::RawSubscriber;
use shmx::{Overflow, Publisher, Subscriber};
use std::time::Duration;

/// Runs `publish` on another thread once `wait` has started waiting (a short pause makes
/// the waiter block first in the usual case; either order must work).
fn later(publish: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        publish();
    })
}

#[test]
fn recv_timeout_of_duration_max_waits_for_the_sample() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let raw = RawSubscriber::new(dir.path(), "t").unwrap();
    let path = dir.path().to_owned();
    let publisher = later(move || {
        let p = Publisher::<u64>::builder("t").root(&path).create().unwrap();
        p.send(7).unwrap(); // queued samples outlive their publisher
    });
    let got = sub.recv_timeout(Duration::MAX).unwrap().map(|s| *s);
    assert_eq!(got, Some(7));
    let bytes = raw
        .recv_timeout(Duration::MAX)
        .unwrap()
        .map(|s| s.bytes().to_vec());
    assert_eq!(bytes, Some(7u64.to_ne_bytes().to_vec()));
    publisher.join().unwrap();
}

#[test]
fn an_archive_recv_timeout_of_duration_max_waits_for_the_archive() {
    let dir = root();
    let sub = ArchiveSubscriber::<String>::builder("a")
        .root(dir.path())
        .create()
        .unwrap();
    let path = dir.path().to_owned();
    let publisher = later(move || {
        let p = ArchivePublisher::<String>::builder("a")
            .root(&path)
            .create()
            .unwrap();
        p.send(&"far".to_owned()).unwrap();
    });
    let got = sub.recv_timeout(Duration::MAX).unwrap();
    assert_eq!(got.map(|s| s.as_str().to_owned()).as_deref(), Some("far"));
    publisher.join().unwrap();
}

#[test]
fn a_block_timeout_of_duration_max_blocks_until_there_is_room() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .queue_depth(1)
        .root(dir.path())
        .create()
        .unwrap();
    let path = dir.path().to_owned();
    let publisher = std::thread::spawn(move || {
        let p = Publisher::<u64>::builder("t")
            .queue_depth(1)
            .overflow(Overflow::Block)
            .block_timeout(Duration::MAX)
            .root(&path)
            .create()
            .unwrap();
        p.send(1).unwrap();
        p.send(2).unwrap(); // blocks until the subscriber took 1
    });
    let got: Vec<u64> = (0..2)
        .map(|_| {
            let s = sub.recv_timeout(Duration::from_secs(30)).unwrap();
            *s.expect("the blocked publisher went on")
        })
        .collect();
    assert_eq!(got, [1, 2]);
    publisher.join().unwrap();
}
