//! Batched publish and receive, `Publisher::send_many` and `Subscriber::drain`: round trips,
//! re-entrancy, panics, recycling and limits (`batch_policies.rs` has overflow policies,
//! waking and other processes).
//!
//! Every test makes its own root directory (`common::root`) and passes it to the builders;
//! none reads or sets `SHMX_ROOT`.

use shmx::{Error, Overflow, Publisher, Subscriber, TopicConfig};
use std::panic::{catch_unwind, AssertUnwindSafe};

mod common;
use common::batch::*;
use common::{assert_empty, root};

// ---------------------------------------------------------------------------------------------
// Round trips and counts
// ---------------------------------------------------------------------------------------------

#[test]
fn send_many_and_drain_round_trip_in_order_for_any_max() {
    for max in [1, 7, usize::MAX] {
        let dir = root();
        let (publisher, sub) = fail_pair(dir.path(), 1024);
        let mut next = 0u64;
        for batch in [1u64, 9, 90, 400, 500] {
            let sent = publisher.send_many(next..next + batch).unwrap();
            assert_eq!(sent as u64, batch, "send_many returns how many it sent");
            next += batch;
        }
        let got = drain_everything(&sub, max, 1000);
        assert_eq!(values(&got), (0..1000).collect::<Vec<_>>(), "max {max}");
        assert_eq!(sequences(&got), (1..=1000).collect::<Vec<_>>(), "max {max}");
        assert_pool_whole(&publisher);
        drop((sub, publisher));
        assert_empty(dir.path());
    }
}

#[test]
fn interleaved_batches_and_partial_drains_keep_order() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 64);
    let mut got = Vec::new();
    let mut next = 0u64;
    for round in 0..300u64 {
        let n = 1 + round % 11;
        assert_eq!(publisher.send_many(next..next + n).unwrap() as u64, n);
        next += n;
        let waiting = next as usize - got.len();
        let k = sub.drain(7, |s| got.push((s.sequence(), **s))).unwrap();
        assert_eq!(k, waiting.min(7), "round {round}");
    }
    let waiting = next as usize - got.len();
    got.extend(drain_everything(&sub, usize::MAX, waiting));
    assert_eq!(values(&got), (0..next).collect::<Vec<_>>());
    assert_eq!(sequences(&got), (1..=next).collect::<Vec<_>>());
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn drain_respects_max_and_returns_zero_when_nothing_waits() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 16);
    let mut calls = 0;
    assert_eq!(sub.drain(usize::MAX, |_| calls += 1).unwrap(), 0, "empty");
    assert_eq!(sub.drain(1, |_| calls += 1).unwrap(), 0, "empty");
    assert_eq!(sub.drain(0, |_| calls += 1).unwrap(), 0, "empty, max 0");
    assert_eq!(calls, 0);

    assert_eq!(publisher.send_many(0..10).unwrap(), 10);
    assert_eq!(
        sub.drain(0, |_| calls += 1).unwrap(),
        0,
        "max 0 takes nothing"
    );
    assert_eq!(calls, 0);
    let mut got = Vec::new();
    assert_eq!(sub.drain(3, |s| got.push(**s)).unwrap(), 3);
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(sub.drain(0, |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);
    // Neither `max = 0` call consumed anything: the next sample is still 3.
    assert_eq!(*sub.take().unwrap().expect("sample 3"), 3);
    got.clear();
    assert_eq!(sub.drain(4, |s| got.push(**s)).unwrap(), 4);
    assert_eq!(got, [4, 5, 6, 7]);
    got.clear();
    assert_eq!(sub.drain(100, |s| got.push(**s)).unwrap(), 2, "only 2 left");
    assert_eq!(got, [8, 9]);
    assert_eq!(sub.drain(usize::MAX, |_| calls += 1).unwrap(), 0);
    assert_eq!(sub.drain(1, |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);

    // An empty batch publishes nothing.
    assert_eq!(publisher.send_many(std::iter::empty()).unwrap(), 0);
    assert_eq!(publisher.send_many(Vec::new()).unwrap(), 0);
    assert_eq!(sub.drain(usize::MAX, |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);
    // ... and uses no sequence number.
    assert_eq!(publisher.send_many([42]).unwrap(), 1);
    let s = sub.take().unwrap().expect("42");
    assert_eq!((*s, s.sequence()), (42, 11));
    drop(s);

    // A subscriber of a topic without publishers.
    let lonely = Subscriber::<u64>::builder("lonely")
        .root(dir.path())
        .create()
        .unwrap();
    assert_eq!(lonely.drain(usize::MAX, |_| calls += 1).unwrap(), 0);
    assert_eq!(calls, 0);
    assert_pool_whole(&publisher);
    drop((lonely, sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn drain_delivers_every_sample_of_two_publishers_each_in_order() {
    let dir = root();
    let sub = Subscriber::<Tagged>::builder("t")
        .queue_depth(1024)
        .topic_config(deep_topic())
        .root(dir.path())
        .create()
        .unwrap();
    let make = || {
        Publisher::<Tagged>::builder("t")
            .queue_depth(1024)
            .overflow(Overflow::Fail)
            .topic_config(deep_topic())
            .root(dir.path())
            .create()
            .unwrap()
    };
    let publishers = [make(), make()];
    let mut sent = [0u64; 2];
    let send = |sent: &mut [u64; 2], source: usize, n: u64| {
        let first = sent[source];
        let batch = (first..first + n).map(|index| Tagged {
            source: source as u64,
            index,
        });
        assert_eq!(publishers[source].send_many(batch).unwrap() as u64, n);
        sent[source] += n;
    };
    let mut got: Vec<(u64, u64, Tagged)> = Vec::new();
    let mut record = |s: &shmx::Sample<'_, Tagged>| got.push((s.publisher_id(), s.sequence(), **s));

    // Phase 1: 500 each, in interleaved batches, drained 5 at a time.
    for round in 0..20 {
        send(&mut sent, 0, 25);
        send(&mut sent, 1, 10 + round % 3 * 10);
    }
    let rest = 500 - sent[1];
    send(&mut sent, 1, rest);
    assert_eq!(sent, [500, 500]);
    let mut calls = 0;
    loop {
        let n = sub.drain(5, &mut record).unwrap();
        calls += 1;
        if n == 0 {
            break;
        }
        assert_eq!(n, 5, "1,000 samples waiting, 5 at a time");
    }
    assert_eq!(calls, 201);

    // Phase 2: more of both, drained at once.
    send(&mut sent, 1, 100);
    send(&mut sent, 0, 100);
    send(&mut sent, 1, 7);
    assert_eq!(sub.drain(usize::MAX, &mut record).unwrap(), 207);
    assert_eq!(sub.drain(usize::MAX, &mut record).unwrap(), 0);

    assert_eq!(got.len(), 1207);
    let ids: Vec<u64> = [0, 1]
        .map(|source| {
            let (id, _, _) = got
                .iter()
                .find(|g| g.2.source == source)
                .unwrap_or_else(|| panic!("no sample of publisher {source}"));
            *id
        })
        .to_vec();
    assert_ne!(ids[0], ids[1], "publisher_id tells the publishers apart");
    for source in 0..2usize {
        let mine: Vec<_> = got.iter().filter(|g| g.2.source == source as u64).collect();
        assert!(
            mine.iter().all(|g| g.0 == ids[source]),
            "every sample of publisher {source} carries its publisher_id"
        );
        let indexes: Vec<u64> = mine.iter().map(|g| g.2.index).collect();
        let seqs: Vec<u64> = mine.iter().map(|g| g.1).collect();
        assert_eq!(indexes, (0..sent[source]).collect::<Vec<_>>(), "{source}");
        assert_eq!(seqs, (1..=sent[source]).collect::<Vec<_>>(), "{source}");
    }
    drop(publishers);
    drop(sub);
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------------
// Re-entrancy and panics
// ---------------------------------------------------------------------------------------------

#[test]
fn drains_closure_may_take_and_drain_the_same_subscriber() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 64);
    assert_eq!(publisher.send_many(0..40).unwrap(), 40);
    let mut seen = Vec::new();
    let (mut taken, mut nested) = (0, 0);
    let outer = sub
        .drain(usize::MAX, |s| {
            seen.push(**s);
            match **s % 4 {
                0 => {
                    // The outer sample is still held meanwhile.
                    if let Some(t) = sub.take().unwrap() {
                        seen.push(*t);
                        taken += 1;
                    }
                }
                1 => nested += sub.drain(2, |t| seen.push(**t)).unwrap(),
                2 => {
                    nested += sub
                        .drain(1, |t| {
                            seen.push(**t);
                            if let Some(u) = sub.take().unwrap() {
                                seen.push(*u);
                                taken += 1;
                            }
                        })
                        .unwrap()
                }
                _ => {}
            }
        })
        .unwrap();
    assert_eq!(
        seen,
        (0..40).collect::<Vec<_>>(),
        "each sample exactly once, in order"
    );
    assert!(
        taken > 0 && nested > 0,
        "both kinds of re-entry happened: {taken} {nested}"
    );
    assert_eq!(outer + nested + taken, 40);
    assert_eq!(
        sub.drain(usize::MAX, |_| panic!("nothing is left"))
            .unwrap(),
        0
    );
    assert_pool_whole(&publisher);
    assert_holds_nothing(&publisher, &sub, TopicConfig::default().max_held);
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn a_panic_in_drains_closure_gives_the_sample_back() {
    // Panic on the first sample (taken the general way) and on the third (taken on the
    // fast path that stays on one publisher's queue).
    for panic_at in [1usize, 3] {
        let dir = root();
        let (publisher, sub) = fail_pair(dir.path(), 16);
        assert_eq!(publisher.send_many(0..10).unwrap(), 10);
        let mut seen = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            sub.drain(usize::MAX, |s| {
                seen.push(**s);
                if seen.len() == panic_at {
                    panic!("boom on sample {panic_at}");
                }
            })
        }));
        let payload = result.expect_err("the panic reaches the caller");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(format!("boom on sample {panic_at}").as_str())
        );
        assert_eq!(seen, (0..panic_at as u64).collect::<Vec<_>>());
        // The sample that panicked is consumed and back with the publisher; the rest wait.
        let st = publisher.pool_stats();
        assert_eq!(st.delivered, 10 - panic_at, "{st:?}");
        let rest = drain_everything(&sub, usize::MAX, 10 - panic_at);
        assert_eq!(values(&rest), (panic_at as u64..10).collect::<Vec<_>>());
        assert_eq!(
            sequences(&rest),
            (panic_at as u64 + 1..=10).collect::<Vec<_>>()
        );
        assert_pool_whole(&publisher);
        // The subscriber's count of held samples is right again, and it keeps working.
        assert_holds_nothing(&publisher, &sub, TopicConfig::default().max_held);
        assert_pool_whole(&publisher);
        drop((sub, publisher));
        assert_empty(dir.path());
    }
}

#[test]
fn send_manys_iterator_may_use_the_publisher() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 64);
    // While producing value 2, the iterator publishes 100, 101 and 102 itself.
    let values_sent = (0..6u64).inspect(|&i| {
        if i == 2 {
            publisher.send(100).unwrap();
            assert_eq!(publisher.send_many([101, 102]).unwrap(), 2);
            let _ = publisher.pool_stats();
        }
    });
    assert_eq!(publisher.send_many(values_sent).unwrap(), 6);
    let got = drain_everything(&sub, usize::MAX, 9);
    assert_eq!(values(&got), [0, 1, 100, 101, 102, 2, 3, 4, 5]);
    assert_eq!(sequences(&got), (1..=9).collect::<Vec<_>>());
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn a_publisher_that_leaves_during_drain_still_delivers_its_queued_samples() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 16);
    assert_eq!(publisher.send_many(0..10).unwrap(), 10);
    let mut publisher = Some(publisher);
    let mut got = Vec::new();
    let n = sub
        .drain(usize::MAX, |s| {
            got.push(**s);
            if **s == 3 {
                publisher = None; // leaves while this sample is held and 6 are queued
            }
        })
        .unwrap();
    assert_eq!((n, got), (10, (0..10).collect::<Vec<_>>()));
    assert!(publisher.is_none());
    eventually("the departed publisher is let go", || {
        sub.publisher_count() == 0
    });
    drop(sub);
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------------
// Recycling, history and limits
// ---------------------------------------------------------------------------------------------

#[test]
fn a_small_pool_serves_many_batches() {
    let dir = root();
    let topic = TopicConfig {
        max_subscribers: 1,
        ..TopicConfig::default()
    };
    let (publisher, sub) = fail_pair_in(dir.path(), 4, topic);
    let total = publisher.pool_stats().total;
    assert!(total <= 32, "a small pool: {total} chunks");
    let (mut next, mut expected) = (0u64, 0u64);
    for round in 0..2500u64 {
        let n = 1 + round % 4;
        match publisher.send_many(next..next + n) {
            Ok(k) => assert_eq!(k as u64, n),
            Err(e) => panic!("round {round}: {e} ({:?})", publisher.pool_stats()),
        }
        next += n;
        let k = sub
            .drain(usize::MAX, |s| {
                assert_eq!((**s, s.sequence()), (expected, expected + 1));
                expected += 1;
            })
            .unwrap();
        assert_eq!(k as u64, n, "round {round}");
    }
    assert_eq!(expected, next);
    assert!(
        next > 100 * total as u64,
        "{next} values through {total} chunks"
    );
    assert_pool_whole(&publisher);

    // Nobody reads: drop-oldest recycles the stolen chunks within the batch.
    let dropper = Publisher::<u64>::builder("t")
        .queue_depth(4)
        .topic_config(topic)
        .root(dir.path())
        .create()
        .unwrap();
    let dropper_total = dropper.pool_stats().total;
    assert_eq!(dropper.send_many(0..10_000).unwrap(), 10_000);
    let mut got = Vec::new();
    assert_eq!(
        sub.drain(usize::MAX, |s| got.push((s.sequence(), **s)))
            .unwrap(),
        4
    );
    assert_eq!(
        got,
        [(9997, 9996), (9998, 9997), (9999, 9998), (10_000, 9999)]
    );
    let st = dropper.pool_stats();
    assert_eq!(st.free, dropper_total, "{st:?}");
    drop(sub);
    // No subscriber at all.
    assert_eq!(dropper.send_many(0..10_000).unwrap(), 10_000);
    assert_eq!(dropper.pool_stats().free, dropper_total);
    drop((dropper, publisher));
    assert_empty(dir.path());
}

#[test]
fn drain_hands_out_history_then_live_samples() {
    let dir = root();
    let publisher = Publisher::<u64>::builder("t")
        .history(3)
        .root(dir.path())
        .create()
        .unwrap();
    assert_eq!(publisher.send_many(0..10).unwrap(), 10);
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    assert_eq!(publisher.send_many(10..12).unwrap(), 2);
    let got = drain_everything(&sub, 2, 5);
    assert_eq!(values(&got), [7, 8, 9, 10, 11]);
    assert_eq!(sequences(&got), [8, 9, 10, 11, 12]);
    // (`pinned` counts free chunks the pool found pinned when it last looked, and it looks
    // again only when it runs out of other chunks: not asserted here; `take` does the same.)
    let st = publisher.pool_stats();
    assert_eq!(
        (st.delivered, st.history, st.loaned, st.free + st.history),
        (0, 3, 0, st.total),
        "{st:?}"
    );
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn drain_fails_with_held_limit_when_the_subscriber_holds_max_held() {
    let dir = root();
    let topic = TopicConfig {
        max_held: 3,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<u64>::builder("t")
        .topic_config(topic)
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .topic_config(topic)
        .root(dir.path())
        .create()
        .unwrap();
    assert_eq!(publisher.send_many(0..10).unwrap(), 10);
    let mut held: Vec<_> = (0..3).map(|_| sub.take().unwrap().unwrap()).collect();
    let mut calls = 0;
    match sub.drain(usize::MAX, |_| calls += 1) {
        Err(Error::HeldLimit { topic, max_held }) => {
            assert_eq!((topic.as_str(), max_held), ("t", 3))
        }
        other => panic!("expected HeldLimit, got {other:?}"),
    }
    assert!(
        matches!(sub.drain(0, |_| calls += 1), Ok(0)),
        "max 0 takes nothing"
    );
    assert_eq!(calls, 0);
    // One below the limit, drain goes through everything: each sample is given back before
    // the next is taken.
    held.pop();
    let mut got = Vec::new();
    assert_eq!(sub.drain(usize::MAX, |s| got.push(**s)).unwrap(), 7);
    assert_eq!(got, (3..10).collect::<Vec<_>>());
    drop(held);
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn send_many_stops_at_the_loan_limit() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .max_loans(1)
        .root(dir.path())
        .create()
        .unwrap();
    let loan = publisher.loan().unwrap();
    assert!(matches!(
        publisher.send_many(0..5),
        Err(Error::LoanLimit { max_loans: 1, .. })
    ));
    assert_eq!(
        sub.drain(usize::MAX, |_| {}).unwrap(),
        0,
        "nothing was sent"
    );
    drop(loan);
    assert_eq!(publisher.send_many(5..8).unwrap(), 3);
    let got = drain_everything(&sub, usize::MAX, 3);
    assert_eq!(got, [(1, 5), (2, 6), (3, 7)]);
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

/// Batches must take back returned chunks as they go, as single publishes do: otherwise the
/// subscriber's return ring fills up, chunks it gave back stay with it (not with the
/// publisher) until its next receive call, and `drain` loses its fast path meanwhile.
#[test]
fn batches_take_back_returned_chunks_as_they_go() {
    let dir = root();
    let topic = TopicConfig {
        max_queue_depth: 1024,
        ..TopicConfig::default()
    };
    let (publisher, sub) = fail_pair_in(dir.path(), 1024, topic);
    let mut expected = 0u64;
    for round in 0..10 {
        let first = round * 1000;
        assert_eq!(publisher.send_many(first..first + 1000).unwrap(), 1000);
        let n = sub
            .drain(usize::MAX, |s| {
                assert_eq!(**s, expected);
                expected += 1;
            })
            .unwrap();
        assert_eq!(n, 1000);
    }
    // The subscriber holds nothing and nothing is queued: every chunk is the publisher's.
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}

/// A panic of `send_many`'s iterator leaves what it sent published and the pool whole.
#[test]
fn a_panic_in_send_manys_iterator_keeps_what_was_sent() {
    let dir = root();
    let (publisher, sub) = fail_pair(dir.path(), 16);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        publisher.send_many((0..10u64).inspect(|&i| assert!(i < 3, "the iterator fails at 3")))
    }));
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert_eq!(values(&drain_everything(&sub, usize::MAX, 3)), [0, 1, 2]);
    assert_eq!(publisher.pool_stats().loaned, 0);
    assert_eq!(publisher.send_many([3]).unwrap(), 1);
    assert_eq!(values(&drain_everything(&sub, usize::MAX, 1)), [3]);
    assert_pool_whole(&publisher);
    drop((sub, publisher));
    assert_empty(dir.path());
}
