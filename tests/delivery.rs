//! shmx delivers what is published across real processes: in order, to every subscriber,
//! intact at 1 MiB, dropping the oldest for a slow subscriber, and never across roots.
//!
//! Each test spawns this test binary again as children (see `child_main` and
//! `tests/common/mod.rs`); the children do all the shmx work, each with the `SHMX_ROOT` of
//! its test, and the parent sequences them through lines on their stdin/stdout, so no test
//! sleeps and hopes. Every test ends by checking that its root is empty once every process
//! has exited cleanly.

mod common;

use common::messages::{Counted, TestMsg};
use common::{await_parent, emit, poll, roles, Proc, Role, Root, DEADLINE};
use shmx::{Overflow, Publisher, ShmMessage, Subscriber, TopicConfig};

// ---------------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------------

/// 8-byte words of a [`Big`] message after its two header words: 1 MiB in all.
const BIG_WORDS: usize = (1 << 17) - 2;

/// A 1 MiB message.
#[derive(ShmMessage)]
#[repr(C)]
struct Big {
    seq: u64,
    not_seq: u64,
    words: [u64; BIG_WORDS],
}

const _: () = assert!(std::mem::size_of::<Big>() == 1 << 20);

/// Word `i` of message `seq`: differs between messages at every position.
fn big_word(seq: u64, i: usize) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/// Entry point of every child process; returns at once in the parent (no `SHMX_CHILD`).
#[test]
fn child_main() {
    common::run_child(|r| match r.name.as_str() {
        "pub" => roles::publisher(r),
        "sub" => roles::subscriber(r),
        "drain" => drain_role(r),
        "big-pub" => big_publisher_role(r),
        "big-sub" => big_subscriber_role(r),
        other => panic!("unknown role {other}"),
    });
}

/// `drain topic=`: says `ready`, waits for `go`, takes every sample waiting (never blocks)
/// and says `got seq:counter ...`.
fn drain_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Counted>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    await_parent("go");
    let mut got = Vec::new();
    while let Some(sample) = subscriber.take().expect("take") {
        assert!(sample.intact(), "corrupt sample {sample:?}");
        got.push(format!("{}:{}", sample.sequence(), sample.counter));
    }
    emit(format_args!("got {}", got.join(" ")));
    drop(subscriber);
    0
}

/// Topic limits that keep a pool of 1 MiB chunks small.
fn big_topic() -> TopicConfig {
    TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: 4,
        max_held: 2,
        max_history: 0,
        ..TopicConfig::default()
    }
}

/// `big-pub topic= n=`: waits for one subscriber, publishes `n` 1 MiB messages written in
/// place, says `sent n`.
fn big_publisher_role(r: &Role) -> i32 {
    let publisher = Publisher::<Big>::builder(r.str("topic"))
        .topic_config(big_topic())
        .queue_depth(4)
        .max_loans(2)
        .overflow(Overflow::Block)
        .create()
        .expect("create the publisher");
    let stats = publisher.pool_stats();
    assert!(stats.total <= 8, "pool larger than asked for: {stats:?}");
    poll("the subscriber to connect", || {
        (publisher.subscriber_count() == 1).then_some(())
    });
    let n = r.num("n");
    for seq in 1..=n {
        let mut raw = publisher.loan_uninit().expect("loan");
        let p = raw.as_mut_ptr();
        // SAFETY: `p` points to the loaned chunk's payload, aligned and `size_of::<Big>()`
        // bytes long; every field is written (through raw pointers, never a reference to
        // uninitialised memory) before `assume_init`; `Big` has no padding.
        let sample = unsafe {
            std::ptr::addr_of_mut!((*p).seq).write(seq);
            std::ptr::addr_of_mut!((*p).not_seq).write(!seq);
            let words = std::ptr::addr_of_mut!((*p).words).cast::<u64>();
            for i in 0..BIG_WORDS {
                words.add(i).write(big_word(seq, i));
            }
            raw.assume_init()
        };
        sample
            .publish()
            .unwrap_or_else(|e| panic!("publish {seq}: {e}"));
    }
    emit(format_args!("sent {n}"));
    drop(publisher);
    0
}

/// `big-sub topic= n=`: says `ready`, receives `n` 1 MiB messages in order and checks every
/// byte; says `received n`.
fn big_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Big>::builder(r.str("topic"))
        .topic_config(big_topic())
        .queue_depth(4)
        .create()
        .expect("create the subscriber");
    emit("ready");
    let n = r.num("n");
    for seq in 1..=n {
        let sample = subscriber
            .recv_timeout(DEADLINE)
            .expect("receive")
            .unwrap_or_else(|| panic!("no message {seq} within {DEADLINE:?}"));
        assert_eq!(
            (sample.sequence(), sample.seq, sample.not_seq),
            (seq, seq, !seq)
        );
        if let Some(i) = (0..BIG_WORDS).find(|&i| sample.words[i] != big_word(seq, i)) {
            panic!(
                "message {seq}: word {i} is {:#x}, expected {:#x}",
                sample.words[i],
                big_word(seq, i)
            );
        }
    }
    emit(format_args!("received {n}"));
    drop(subscriber);
    0
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn one_to_one_delivers_100k_messages_in_order_with_block() {
    let root = Root::new();
    let n = 100_000;
    let mut sub = Proc::spawn(
        "subscriber",
        &format!("sub type=counted topic=bulk/one n={n} depth=64 recv=mixed"),
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("pub type=counted topic=bulk/one n={n} depth=64 overflow=block"),
        root.path(),
    );
    assert_eq!(sub.expect("received"), n.to_string());
    sub.succeed();
    assert_eq!(publisher.expect("sent"), n.to_string());
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn fan_out_reaches_three_subscriber_processes() {
    let root = Root::new();
    let n = 10_000;
    let mut subs: Vec<Proc> = (0..3)
        .map(|k| {
            Proc::spawn(
                &format!("subscriber {k}"),
                &format!("sub type=counted topic=fan/out n={n}"),
                root.path(),
            )
        })
        .collect();
    for s in &mut subs {
        s.expect("ready");
    }
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("pub type=counted topic=fan/out n={n} subs=3 overflow=block"),
        root.path(),
    );
    for s in &mut subs {
        assert_eq!(s.expect("received"), n.to_string());
    }
    common::all_succeed(&mut subs);
    publisher.expect("sent");
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn one_mib_messages_cross_processes_intact() {
    let root = Root::new();
    let mut sub = Proc::spawn("subscriber", "big-sub topic=big n=200", root.path());
    sub.expect("ready");
    let mut publisher = Proc::spawn("publisher", "big-pub topic=big n=200", root.path());
    assert_eq!(sub.expect("received"), "200");
    sub.succeed();
    publisher.expect("sent");
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn separate_roots_do_not_see_each_other() {
    let roots = [Root::new(), Root::new()];
    let n = 2_000;
    let types = ["counted", "alpha"];
    let mut subs: Vec<Proc> = roots
        .iter()
        .zip(types)
        .map(|(root, ty)| {
            Proc::spawn(
                &format!("{ty} subscriber"),
                &format!("sub type={ty} topic=same/name n={n}"),
                root.path(),
            )
        })
        .collect();
    for s in &mut subs {
        s.expect("ready");
    }
    let mut pubs: Vec<Proc> = roots
        .iter()
        .zip(types)
        .map(|(root, ty)| {
            Proc::spawn(
                &format!("{ty} publisher"),
                &format!("pub type={ty} topic=same/name n={n} overflow=block"),
                root.path(),
            )
        })
        .collect();
    for s in &mut subs {
        assert_eq!(s.expect("received"), n.to_string());
    }
    common::all_succeed(&mut subs);
    for p in &mut pubs {
        p.expect("sent");
    }
    common::all_succeed(&mut pubs);
    for root in &roots {
        root.assert_empty();
    }
}

#[test]
fn drop_oldest_keeps_the_newest_when_a_subscriber_is_slow() {
    let root = Root::new();
    let mut sub = Proc::spawn("subscriber", "drain topic=slow", root.path());
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=slow n=1000 depth=4 overflow=drop check_pool",
        root.path(),
    );
    assert_eq!(publisher.expect("sent"), "1000");
    sub.tell("go");
    assert_eq!(sub.expect("got"), "997:997 998:998 999:999 1000:1000");
    sub.succeed();
    publisher.tell("check");
    let pool = publisher.expect("pool");
    publisher.succeed();
    assert!(
        pool.contains("loaned=0 delivered=0 history=0"),
        "pool after the subscriber left: {pool}"
    );
    root.assert_empty();
}
