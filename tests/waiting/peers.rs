//! Roles of the tests of participants coming and going: a `WaitSet` that reports its
//! topic's publishers, publishers that leave or are killed, and `wait_for_subscribers`.

use super::common::{await_parent, emit, Role, DEADLINE};
use super::messages::{Stamped, Tick};
use shmx::waitset::{EventKind, PeerEvent};
use shmx::{Error, Publisher, Subscriber, WaitSet};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Publishers joining, leaving and dying
// ---------------------------------------------------------------------------------------------

/// `peer-watch topic= events=`: a subscriber attached to a `WaitSet`; says `ready`, then says
/// `peer joined|left|died <pid>` for each of the next `events` peer events (taking every
/// sample meanwhile), and finally `samples <k>`.
pub fn peer_watcher(r: &Role) -> i32 {
    let subscriber = Subscriber::<Tick>::new(r.str("topic")).expect("create the subscriber");
    let mut waitset = WaitSet::new().expect("a wait set");
    let attachment = waitset.attach(&subscriber).expect("attach");
    emit("ready");
    let wanted = r.num("events");
    let (mut events, mut samples) = (0u64, 0u64);
    while events < wanted {
        let n = waitset
            .wait_timeout(DEADLINE, |event| {
                assert!(event.is(attachment));
                match event.kind {
                    EventKind::Samples => {
                        while let Some(s) = subscriber.take().expect("take") {
                            assert!(s.intact(), "corrupt sample {s:?}");
                            samples += 1;
                        }
                    }
                    EventKind::Peer(peer) => {
                        events += 1;
                        match peer {
                            PeerEvent::PublisherJoined { pid } => {
                                emit(format_args!("peer joined {pid}"))
                            }
                            PeerEvent::PublisherLeft { pid } => {
                                emit(format_args!("peer left {pid}"))
                            }
                            PeerEvent::PublisherDied { pid } => {
                                emit(format_args!("peer died {pid}"))
                            }
                        }
                    }
                    other => panic!("unexpected event {other:?}"),
                }
            })
            .expect("wait");
        assert!(n > 0, "no event within {DEADLINE:?} ({events} of {wanted})");
    }
    emit(format_args!("samples {samples}"));
    drop(waitset);
    drop(subscriber);
    0
}

/// `peer-pub topic= n=`: publishes `n` samples (without waiting for subscribers), says
/// `ready`, waits for `leave`, drops the publisher, says `left`, waits for `exit`.
pub fn peer_publisher(r: &Role) -> i32 {
    let publisher = Publisher::<Tick>::new(r.str("topic")).expect("create the publisher");
    for k in 1..=r.num("n") {
        publisher.send(Tick::make(0, 0, k)).expect("send");
    }
    emit("ready");
    await_parent("leave");
    drop(publisher);
    emit("left");
    await_parent("exit");
    0
}

// ---------------------------------------------------------------------------------------------
// Waiting for subscribers
// ---------------------------------------------------------------------------------------------

/// `count-pub topic= n=`: a publisher that first waits 300 ms for one subscriber, alone
/// (must time out: says `alone timeout`), says `waiting`, waits for `n` subscribers (says
/// `count <c>`); then, on `again`, waits 1 s for `n` subscribers once more and says
/// `timeout count=<c>` if that timed out (`c`: the subscribers connected then) or
/// `returned <c>`; waits for `exit`.
pub fn counting_publisher(r: &Role) -> i32 {
    let publisher = Publisher::<Tick>::new(r.str("topic")).expect("create the publisher");
    let n = r.num("n") as usize;
    match publisher.wait_for_subscribers(1, Duration::from_millis(300)) {
        Err(Error::Timeout { .. }) => emit("alone timeout"),
        other => panic!("waiting for a subscriber that does not come: {other:?}"),
    }
    emit("waiting");
    let count = publisher
        .wait_for_subscribers(n, DEADLINE)
        .unwrap_or_else(|e| panic!("wait for {n} subscribers: {e}"));
    emit(format_args!("count {count}"));
    await_parent("again");
    match publisher.wait_for_subscribers(n, Duration::from_secs(1)) {
        Err(Error::Timeout { .. }) => emit(format_args!(
            "timeout count={}",
            publisher.subscriber_count()
        )),
        Ok(c) => emit(format_args!("returned {c}")),
        Err(e) => panic!("wait for {n} subscribers again: {e}"),
    }
    await_parent("exit");
    drop(publisher);
    0
}

/// `idle-sub topic=`: a subscriber with a descriptor (its socket file must go with it, even
/// when it is killed); says `ready`, waits for `exit`.
pub fn idle_subscriber(r: &Role) -> i32 {
    let subscriber = Subscriber::<Tick>::new(r.str("topic")).expect("create the subscriber");
    subscriber.fd().expect("the subscriber's descriptor");
    emit("ready");
    await_parent("exit");
    drop(subscriber);
    0
}
