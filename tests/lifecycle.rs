//! Topics across the lives of real processes: history for late subscribers, type checks
//! between processes, and publishers and subscribers that exit (with samples still queued or
//! not) leaving an empty root behind.
//!
//! Each test spawns this test binary again as children (see `child_main` and
//! `tests/common/mod.rs`); the children do all the shmx work, each with the `SHMX_ROOT` of
//! its test, and the parent sequences them through lines on their stdin/stdout, so no test
//! sleeps and hopes. Every test ends by checking that its root is empty once every process
//! has exited cleanly.

mod common;

use common::messages::{Counted, TestMsg};
use common::{await_parent, emit, roles, Proc, Role, Root, DEADLINE};
use shmx::{Error, Publisher, ShmMessage, Subscriber};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------------

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
        "pub" => roles::publisher(r),
        "sub" => roles::subscriber(r),
        "partial" => partial_role(r),
        "history-sub" => history_subscriber_role(r),
        "type-owner" => type_owner_role(r),
        "type-intruder" => type_intruder_role(r),
        other => panic!("unknown role {other}"),
    });
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
                || requested_type != requested
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
