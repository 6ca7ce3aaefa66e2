//! Sizing the tail of a publisher's chunks: `max_tail_bytes`, `tail_capacity` and
//! `loan_with_tail`.

mod common;

use shmx::{Error, Publisher, RelSlice, ShmMessage, Subscriber};

#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    seq: u64,
    data: RelSlice<u8>,
}

#[test]
fn loan_with_tail_refuses_early_what_the_tail_cannot_hold() {
    let dir = common::root();
    let sub = Subscriber::<Blob>::builder("tail/blob")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<Blob>::builder("tail/blob")
        .root(dir.path())
        .max_tail_bytes(1000)
        .create()
        .unwrap();
    let capacity = publisher.tail_capacity();
    assert!((1000..1000 + 64).contains(&capacity), "{capacity}");

    let err = publisher
        .loan_with_tail(capacity + 1)
        .err()
        .expect("too big");
    match err {
        Error::TailFull {
            requested,
            available,
            ..
        } => assert_eq!((requested, available), (capacity + 1, capacity)),
        other => panic!("expected TailFull, got {other}"),
    }

    let mut sample = publisher.loan_with_tail(capacity).unwrap();
    assert_eq!(sample.tail_capacity(), capacity);
    let mut w = sample.writer();
    *w.seq = 9;
    w.alloc_data(capacity).unwrap().fill(7);
    sample.publish().unwrap();
    let got = sub.take().unwrap().unwrap();
    assert_eq!((got.seq, got.data().len()), (9, capacity));
    assert!(got.data().iter().all(|&b| b == 7));
    drop(got);
    drop((sub, publisher));
    common::assert_empty(dir.path());
}
