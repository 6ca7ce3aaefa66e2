//! Roles of the tests of silences and intervals: a publisher on a schedule, a subscriber
//! that watches its silence, and a wait set that counts its ticks.

use super::common::{await_parent, emit, Role, DEADLINE};
use super::messages::{Stamped, Tick};
use shmx::waitset::EventKind;
use shmx::{Publisher, Subscriber, WaitSet};
use std::time::{Duration, Instant};

/// `metronome topic= subs= n= period_ms=`: waits for `subs` subscribers, says `ready`, sends
/// counters `1..=n` one every `period_ms`, says `sent n`, waits for `exit` (still connected,
/// silent).
pub fn metronome(r: &Role) -> i32 {
    let publisher = Publisher::<Tick>::new(r.str("topic")).expect("create the publisher");
    publisher
        .wait_for_subscribers(r.num("subs") as usize, DEADLINE)
        .expect("wait for the subscribers");
    emit("ready");
    let period = Duration::from_millis(r.num("period_ms"));
    let n = r.num("n");
    let start = Instant::now();
    for k in 1..=n {
        // On a schedule, so that a late wake-up of ours does not stretch the next gap.
        let due = start + period * (k as u32 - 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        publisher.send(Tick::make(0, 0, k)).expect("send");
    }
    emit(format_args!("sent {n}"));
    await_parent("exit");
    drop(publisher);
    0
}

/// `silence-sub topic= n= after_ms= [deadline_first]`: a subscriber attached to a `WaitSet`
/// and its silence (`attach_deadline`, `after_ms`), in that order or, with
/// `deadline_first`, the other; says `ready`, receives counters `1..=n`, counting `Silent`
/// events between the first sample and the last (`during`), then waits for two more
/// `Silent`s; says `silent during=<d> first_ms=<f> second_ms=<s>` (`f`: from the last sample
/// to the first `Silent`; `s`: between the two), and waits for `exit`.
pub fn silence_subscriber(r: &Role) -> i32 {
    let subscriber = Subscriber::<Tick>::new(r.str("topic")).expect("create the subscriber");
    let mut waitset = WaitSet::new().expect("a wait set");
    let after = Duration::from_millis(r.num("after_ms"));
    let (samples, silence) = if r.flag("deadline_first") {
        let silence = waitset.attach_deadline(&subscriber, after);
        (waitset.attach(&subscriber), silence)
    } else {
        let samples = waitset.attach(&subscriber);
        (samples, waitset.attach_deadline(&subscriber, after))
    };
    let (samples, silence) = (samples.expect("attach"), silence.expect("attach_deadline"));
    emit("ready");
    let n = r.num("n");
    let mut next = 1u64;
    let mut last_sample: Option<Instant> = None;
    let mut silences: Vec<Instant> = Vec::new();
    let mut during = 0u64;
    while silences.len() < 2 {
        let got = waitset
            .wait_timeout(DEADLINE, |event| {
                if event.is(samples) {
                    match event.kind {
                        EventKind::Samples => {
                            while let Some(s) = subscriber.take().expect("take") {
                                assert_eq!(s.stamp().2, next, "lost or out of order");
                                next += 1;
                                last_sample = Some(Instant::now());
                            }
                        }
                        // The publisher joining.
                        EventKind::Peer(_) => {}
                        other => panic!("unexpected event {other:?}"),
                    }
                } else {
                    assert!(event.is(silence));
                    assert_eq!(event.kind, EventKind::Silent);
                    if next > n {
                        silences.push(Instant::now());
                    } else if next > 1 {
                        during += 1;
                    }
                }
            })
            .expect("wait");
        assert!(got > 0, "nothing for {DEADLINE:?}");
    }
    let last = last_sample.expect("samples were received");
    emit(format_args!(
        "silent during={during} first_ms={} second_ms={}",
        (silences[0] - last).as_millis(),
        (silences[1] - silences[0]).as_millis()
    ));
    // Another subscriber leaving the topic would count as news for this one's silence.
    await_parent("exit");
    drop(waitset);
    drop(subscriber);
    0
}

/// `ticker topic= period_ms= for_ms=`: a `WaitSet` with an interval (and an idle subscriber
/// attached); counts `Tick`s for `for_ms`; says `ticks <k>`.
pub fn ticker(r: &Role) -> i32 {
    let subscriber = Subscriber::<Tick>::new(r.str("topic")).expect("create the subscriber");
    let mut waitset = WaitSet::new().expect("a wait set");
    waitset.attach(&subscriber).expect("attach");
    let tick = waitset
        .attach_interval(Duration::from_millis(r.num("period_ms")))
        .expect("attach_interval");
    let end = Instant::now() + Duration::from_millis(r.num("for_ms"));
    let mut ticks = 0u64;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        waitset
            .wait_timeout(left, |event| {
                assert!(event.is(tick), "unexpected event {event:?}");
                assert_eq!(event.kind, EventKind::Tick);
                ticks += 1;
            })
            .expect("wait");
    }
    emit(format_args!("ticks {ticks}"));
    drop(waitset);
    drop(subscriber);
    0
}
