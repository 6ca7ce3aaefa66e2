//! The `pub` and `sub` roles, which both test binaries run: a publisher and a subscriber of
//! a [`TestMsg`] type named by the role's `type=` argument (`counted` or `alpha`).

use super::messages::{Alpha, Counted, TestMsg};
use super::{await_parent, emit, poll, Role, DEADLINE};
use shmx::{Overflow, Publisher, Subscriber, TopicConfig};

/// `pub type=counted|alpha ...`: [`publisher_role`] with that message type.
pub fn publisher(r: &Role) -> i32 {
    match r.str("type") {
        "counted" => publisher_role::<Counted>(r),
        "alpha" => publisher_role::<Alpha>(r),
        t => panic!("unknown type {t}"),
    }
}

/// `sub type=counted|alpha ...`: [`subscriber_role`] with that message type.
pub fn subscriber(r: &Role) -> i32 {
    match r.str("type") {
        "counted" => subscriber_role::<Counted>(r),
        "alpha" => subscriber_role::<Alpha>(r),
        t => panic!("unknown type {t}"),
    }
}

/// Topic limits from the role's arguments (`max_subs`, `max_depth`, `max_held`,
/// `max_history`), defaults otherwise.
fn topic_config(r: &Role) -> TopicConfig {
    let d = TopicConfig::default();
    TopicConfig {
        max_subscribers: r.num_or("max_subs", d.max_subscribers as u64) as usize,
        max_queue_depth: r.num_or("max_depth", d.max_queue_depth as u64) as usize,
        max_held: r.num_or("max_held", d.max_held as u64) as usize,
        max_history: r.num_or("max_history", d.max_history as u64) as usize,
        ..d
    }
}

/// `pub type= topic= n= [subs=1] [overflow=block|drop|fail] [depth=16] [history=0]
/// [check_pool] [more=0] [hold]`: waits for `subs` subscribers, publishes `make(1..=n)`
/// (through `loan`, `loan_uninit` and `send` in turn), says `sent n`; with `check_pool`,
/// waits for the parent's `check` and then until every chunk is free and no subscriber is
/// left, and says `pool ...`; with `more`, waits for the parent's `more` and publishes `more`
/// samples after the first `n` (`sent-more`); with `hold`, waits for the parent's `exit`
/// before leaving.
fn publisher_role<M: TestMsg>(r: &Role) -> i32 {
    let overflow = match r.opt("overflow").unwrap_or("block") {
        "block" => Overflow::Block,
        "drop" => Overflow::DropOldest,
        "fail" => Overflow::Fail,
        o => panic!("unknown overflow {o}"),
    };
    let publisher = Publisher::<M>::builder(r.str("topic"))
        .queue_depth(r.num_or("depth", 16) as usize)
        .history(r.num_or("history", 0) as usize)
        .overflow(overflow)
        .topic_config(topic_config(r))
        .create()
        .expect("create the publisher");
    let subs = r.num_or("subs", 1) as usize;
    poll(&format!("{subs} subscribers to connect"), || {
        (publisher.subscriber_count() == subs).then_some(())
    });
    let n = r.num("n");
    for i in 1..=n {
        let value = M::make(i);
        let result = match i % 3 {
            0 => publisher.send(value),
            1 => publisher.loan().and_then(|mut s| {
                *s = value;
                s.publish()
            }),
            _ => publisher
                .loan_uninit()
                .and_then(|s| s.write(value).publish()),
        };
        result.unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
    emit(format_args!("sent {n}"));
    if r.flag("check_pool") {
        await_parent("check");
        let stats = poll("every chunk to be free after the subscriber left", || {
            let st = publisher.pool_stats();
            (st.free == st.total && publisher.subscriber_count() == 0).then_some(st)
        });
        emit(format_args!(
            "pool total={} free={} loaned={} delivered={} history={}",
            stats.total, stats.free, stats.loaned, stats.delivered, stats.history
        ));
    }
    let more = r.num_or("more", 0);
    if more > 0 {
        await_parent("more");
        for i in n + 1..=n + more {
            publisher
                .send(M::make(i))
                .unwrap_or_else(|e| panic!("publish {i}: {e}"));
        }
        emit(format_args!("sent-more {more}"));
    }
    if r.flag("hold") {
        await_parent("exit");
    }
    drop(publisher);
    0
}

/// `sub type= topic= n= [depth=16] [go] [recv=timeout|mixed]`: says `ready`, (with `go`
/// waits for the parent's `go`), then receives `n` samples that must carry counters and
/// sequence numbers `1..=n` in order, intact, and nothing after them; says `received n`.
fn subscriber_role<M: TestMsg>(r: &Role) -> i32 {
    let subscriber = Subscriber::<M>::builder(r.str("topic"))
        .queue_depth(r.num_or("depth", 16) as usize)
        .topic_config(topic_config(r))
        .create()
        .expect("create the subscriber");
    emit("ready");
    if r.flag("go") {
        await_parent("go");
    }
    let mixed = r.opt("recv") == Some("mixed");
    let n = r.num("n");
    for i in 1..=n {
        let sample = if mixed && i % 2 == 1 {
            subscriber.recv()
        } else {
            subscriber
                .recv_timeout(DEADLINE)
                .map(|s| s.unwrap_or_else(|| panic!("no sample {i} within {DEADLINE:?}")))
        }
        .unwrap_or_else(|e| panic!("receive sample {i}: {e}"));
        assert_eq!(sample.counter(), i, "samples out of order: {sample:?}");
        assert_eq!(sample.sequence(), i, "sequence of {sample:?}");
        assert!(sample.intact(), "corrupt sample {sample:?}");
    }
    let extra = subscriber.take().expect("take after the last sample");
    assert!(extra.is_none(), "a sample after the last one: {extra:?}");
    drop(extra);
    emit(format_args!("received {n}"));
    drop(subscriber);
    0
}
