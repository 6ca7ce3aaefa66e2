//! shmx across real processes.
//!
//! Each test spawns this test binary again as children (see `child_main` and
//! `tests/common/mod.rs`); the children do all the shmx work, each with the `SHMX_ROOT` of
//! its test, and the parent sequences them through lines on their stdin/stdout, so no test
//! sleeps and hopes. Every test ends by checking that its root is empty once every process
//! has exited cleanly.

mod common;

use common::{await_parent, emit, poll, Proc, Role, Root, DEADLINE};
use shmx::{Error, Overflow, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------------

/// A message the tests can build from a counter and check for integrity.
trait TestMsg: ShmMessage + Copy + std::fmt::Debug + PartialEq {
    fn make(counter: u64) -> Self;
    fn counter(&self) -> u64;
    /// Whether every field is what `make(self.counter())` writes.
    fn intact(&self) -> bool {
        *self == Self::make(self.counter())
    }
}

/// A counter, fields derived from it, and a checksum over all of them.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Counted {
    counter: u64,
    a: u64,
    b: [u32; 4],
    c: f64,
    d: [u8; 8],
    checksum: u64,
}

impl Counted {
    /// FNV-1a over every field but `checksum`.
    fn compute_checksum(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&self.counter.to_le_bytes());
        eat(&self.a.to_le_bytes());
        for x in self.b {
            eat(&x.to_le_bytes());
        }
        eat(&self.c.to_bits().to_le_bytes());
        eat(&self.d);
        h
    }
}

impl TestMsg for Counted {
    fn make(counter: u64) -> Self {
        let a = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut m = Counted {
            counter,
            a,
            b: [0, 1, 2, 3].map(|i: u32| (a >> (8 * i)) as u32 ^ i),
            c: counter as f64 / 3.0,
            d: counter.swap_bytes().to_le_bytes(),
            checksum: 0,
        };
        m.checksum = m.compute_checksum();
        m
    }
    fn counter(&self) -> u64 {
        self.counter
    }
    fn intact(&self) -> bool {
        self.checksum == self.compute_checksum() && *self == Self::make(self.counter)
    }
}

/// A second, unrelated message type (for topics of the same name in other roots).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Alpha {
    value: u32,
    flags: u16,
    _pad: [u8; 2],
    square: u64,
}

impl TestMsg for Alpha {
    fn make(counter: u64) -> Self {
        Alpha {
            value: counter as u32,
            flags: 0xa5a5,
            _pad: [0; 2],
            square: counter * counter,
        }
    }
    fn counter(&self) -> u64 {
        u64::from(self.value)
    }
}

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

/// The type a topic is created with in the type-mismatch test.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct X {
    a: u32,
    b: f32,
}

/// Same size and layout as [`X`], another name and field type.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Y {
    a: u32,
    b: u32,
}

mod renamed {
    /// Also called `X`, same field types as `super::X`, but its second field has another
    /// name.
    #[derive(shmx::ShmMessage, Clone, Copy)]
    #[repr(C)]
    pub struct X {
        pub a: u32,
        pub c: f32,
    }
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/// Entry point of every child process; returns at once in the parent (no `SHMX_CHILD`).
#[test]
fn child_main() {
    common::run_child(|r| match r.name.as_str() {
        "pub" => match r.str("type") {
            "counted" => publisher_role::<Counted>(r),
            "alpha" => publisher_role::<Alpha>(r),
            t => panic!("unknown type {t}"),
        },
        "sub" => match r.str("type") {
            "counted" => subscriber_role::<Counted>(r),
            "alpha" => subscriber_role::<Alpha>(r),
            t => panic!("unknown type {t}"),
        },
        "drain" => drain_role(r),
        "partial" => partial_role(r),
        "history-sub" => history_subscriber_role(r),
        "big-pub" => big_publisher_role(r),
        "big-sub" => big_subscriber_role(r),
        "type-owner" => type_owner_role(r),
        "type-intruder" => type_intruder_role(r),
        other => panic!("unknown role {other}"),
    });
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

/// `partial topic= take=`: says `ready`, waits for `go`, receives `take` samples (1, 2, ...),
/// says `took`, waits for `exit` and leaves without touching the subscriber again.
fn partial_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Counted>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    await_parent("go");
    for i in 1..=r.num("take") {
        let sample = subscriber
            .recv_timeout(DEADLINE)
            .expect("receive")
            .unwrap_or_else(|| panic!("no sample {i} within {DEADLINE:?}"));
        assert_eq!((sample.sequence(), sample.counter), (i, i));
    }
    emit("took");
    await_parent("exit");
    drop(subscriber);
    0
}

/// `history-sub topic= expect=a,b,c`: connects late (says `connected`) and must receive
/// exactly those samples (value and sequence) and then nothing; says `history a b c`.
fn history_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Counted>::new(r.str("topic")).expect("create the subscriber");
    emit("connected");
    let mut got = Vec::new();
    for want in r
        .str("expect")
        .split(',')
        .map(|v| v.parse::<u64>().unwrap())
    {
        let sample = subscriber
            .recv_timeout(DEADLINE)
            .expect("receive history")
            .unwrap_or_else(|| panic!("history sample {want} not received; got {got:?}"));
        assert!(sample.intact(), "corrupt sample {sample:?}");
        assert_eq!(
            (sample.sequence(), sample.counter),
            (want, want),
            "history samples so far {got:?}"
        );
        got.push(want);
    }
    // The publisher publishes nothing more: anything else would be a stale or repeated sample.
    let extra = subscriber
        .recv_timeout(Duration::from_millis(200))
        .expect("receive after the history");
    assert!(
        extra.is_none(),
        "more than the history: {extra:?} after {got:?}"
    );
    drop(extra);
    let got: Vec<_> = got.iter().map(u64::to_string).collect();
    emit(format_args!("history {}", got.join(" ")));
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

/// `type-owner topic=`: publishes type `X` on the topic, says `ready`, waits for `exit`.
fn type_owner_role(r: &Role) -> i32 {
    let publisher = Publisher::<X>::new(r.str("topic")).expect("create the publisher of X");
    emit("ready");
    await_parent("exit");
    drop(publisher);
    0
}

/// `type-intruder topic=`: opens the topic of `X` with `Y` and with another `X` (one field
/// renamed); each must fail with `TypeMismatch` naming both types. Says `mismatch <error>`
/// for each; exits with 42 if all were refused as they should be. A subscriber of the right
/// type connects (`control ok`).
fn type_intruder_role(r: &Role) -> i32 {
    let topic = r.str("topic");
    let mut ok = true;
    let mut check = |what: &str, result: Result<(), Error>, requested: &str| match result {
        Err(e @ Error::TypeMismatch { .. }) => {
            let Error::TypeMismatch {
                existing_type,
                requested_type,
                existing_fingerprint,
                requested_fingerprint,
                ..
            } = &e
            else {
                unreachable!()
            };
            if existing_type != "X"
                || *requested_type != requested
                || existing_fingerprint == requested_fingerprint
            {
                ok = false;
            }
            emit(format_args!("mismatch {what}: {e}"));
        }
        Err(e) => {
            ok = false;
            emit(format_args!("wrong-error {what}: {e:?}"));
        }
        Ok(()) => {
            ok = false;
            emit(format_args!("accepted {what}"));
        }
    };
    check("sub Y", Subscriber::<Y>::new(topic).map(drop), "Y");
    check("pub Y", Publisher::<Y>::new(topic).map(drop), "Y");
    check(
        "sub renamed::X",
        Subscriber::<renamed::X>::new(topic).map(drop),
        "X",
    );
    let control = Subscriber::<X>::new(topic).expect("a subscriber of the topic's own type");
    assert_eq!(control.publisher_count(), 1);
    drop(control);
    emit("control ok");
    if ok {
        42
    } else {
        1
    }
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
fn late_subscriber_receives_history() {
    let root = Root::new();
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=late n=10 subs=0 history=3 hold",
        root.path(),
    );
    publisher.expect("sent");
    let mut sub = Proc::spawn(
        "late subscriber",
        "history-sub topic=late expect=8,9,10",
        root.path(),
    );
    sub.expect("connected");
    assert_eq!(sub.expect("history"), "8 9 10");
    sub.succeed();
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn late_subscriber_receives_history_then_live_samples_in_order() {
    let root = Root::new();
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=late/live n=10 subs=0 history=3 more=5 hold",
        root.path(),
    );
    publisher.expect("sent");
    let mut sub = Proc::spawn(
        "late subscriber",
        "history-sub topic=late/live expect=8,9,10,11,12,13,14,15",
        root.path(),
    );
    sub.expect("connected");
    publisher.tell("more");
    publisher.expect("sent-more");
    assert_eq!(sub.expect("history"), "8 9 10 11 12 13 14 15");
    sub.succeed();
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn type_mismatch_between_two_processes_is_reported() {
    let root = Root::new();
    let mut owner = Proc::spawn("owner", "type-owner topic=typed", root.path());
    owner.expect("ready");
    let mut intruder = Proc::spawn("intruder", "type-intruder topic=typed", root.path());
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(intruder.expect("mismatch"));
    }
    intruder.expect("control");
    assert_eq!(intruder.exit_code(), 42, "{lines:?}");
    for line in &lines {
        assert!(
            line.contains("`X`"),
            "the error names the topic's type: {line}"
        );
    }
    for line in &lines[..2] {
        assert!(
            line.contains("`Y`"),
            "the error names the requested type: {line}"
        );
    }
    owner.tell("exit");
    owner.succeed();
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
fn roots_are_empty_after_every_process_exits_cleanly() {
    let root = Root::new();
    let at = root.path();

    // The subscriber creates the topic and leaves first; then the publisher.
    let mut sub = Proc::spawn("s1", "sub type=counted topic=a/b/c n=500", at);
    sub.expect("ready");
    let mut publisher = Proc::spawn("p1", "pub type=counted topic=a/b/c n=500 hold", at);
    publisher.expect("sent");
    sub.expect("received");
    sub.succeed();
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();

    // The publisher creates the topic (with history) and leaves first; then the subscriber.
    let mut publisher = Proc::spawn(
        "p2",
        "pub type=counted topic=a/b/c n=5 subs=0 history=2 hold",
        at,
    );
    publisher.expect("sent");
    let mut sub = Proc::spawn("s2", "partial topic=a/b/c take=0", at);
    sub.expect("ready");
    publisher.tell("exit");
    publisher.succeed();
    sub.tell("go");
    sub.expect("took");
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();

    // Two topics of different types in one root at once.
    let mut subs = vec![
        Proc::spawn("s3", "sub type=counted topic=x n=300", at),
        Proc::spawn("s4", "sub type=alpha topic=y/z n=300", at),
    ];
    for s in &mut subs {
        s.expect("ready");
    }
    let mut pubs = vec![
        Proc::spawn("p3", "pub type=counted topic=x n=300", at),
        Proc::spawn("p4", "pub type=alpha topic=y/z n=300", at),
    ];
    for s in &mut subs {
        assert_eq!(s.expect("received"), "300");
    }
    common::all_succeed(&mut subs);
    for p in &mut pubs {
        assert_eq!(p.expect("sent"), "300");
    }
    common::all_succeed(&mut pubs);
    root.assert_empty();

    // Lonely participants: a subscriber with no publisher, a publisher with no subscriber.
    let mut sub = Proc::spawn("s5", "sub type=counted topic=lonely n=0", at);
    sub.expect("ready");
    sub.expect("received");
    sub.succeed();
    root.assert_empty();
    let mut publisher = Proc::spawn("p5", "pub type=counted topic=lonely n=3 subs=0", at);
    publisher.expect("sent");
    publisher.succeed();
    root.assert_empty();
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

#[test]
fn publisher_exit_does_not_lose_queued_samples() {
    let root = Root::new();
    let mut sub = Proc::spawn(
        "subscriber",
        "sub type=counted topic=gone n=5 go",
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=gone n=5 overflow=block",
        root.path(),
    );
    publisher.expect("sent");
    publisher.succeed();
    sub.tell("go");
    assert_eq!(sub.expect("received"), "5");
    sub.succeed();
    root.assert_empty();
}

#[test]
fn publisher_exit_after_a_subscriber_left_unread_samples_leaves_the_root_empty() {
    let root = Root::new();
    let mut sub = Proc::spawn("subscriber", "partial topic=unread take=0", root.path());
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=unread n=5 hold",
        root.path(),
    );
    publisher.expect("sent");
    // The subscriber leaves with 5 samples still queued for it...
    sub.tell("go");
    sub.expect("took");
    sub.tell("exit");
    sub.succeed();
    // ...then the publisher, the last participant, leaves too.
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn subscriber_exit_after_its_publisher_left_unread_samples_leaves_the_root_empty() {
    let root = Root::new();
    let mut sub = Proc::spawn("subscriber", "partial topic=unread take=2", root.path());
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        "pub type=counted topic=unread n=5 hold",
        root.path(),
    );
    publisher.expect("sent");
    // The subscriber reads 2 of the 5 samples while the publisher is still there...
    sub.tell("go");
    sub.expect("took");
    // ...the publisher leaves with 3 samples queued...
    publisher.tell("exit");
    publisher.succeed();
    // ...and the subscriber, now the last participant, leaves without reading them.
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();
}
