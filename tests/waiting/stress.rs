//! Roles of the stress tests: a publisher and a subscriber that waits on its descriptor
//! (with `poll`, or in a `WaitSet`), both pausing at random.

use super::common::{emit, Role, DEADLINE};
use super::messages::{Rng, Stamped, Tick};
use super::{pause_micros, timespec, STALL};
use rustix::event::{PollFd, PollFlags};
use shmx::waitset::EventKind;
use shmx::{Overflow, Publisher, Subscriber, WaitSet};

/// `stress-pub topic= n= seed=`: waits for one subscriber, sends counters `1..=n` (blocking
/// when its queue is full), mostly one by one and now and then a batch of up to 16
/// (`send_many`), sleeping 0 to 200 µs every 1 to 500 samples; says `sent n`.
pub fn stress_publisher(r: &Role) -> i32 {
    let publisher = Publisher::<Tick>::builder(r.str("topic"))
        .queue_depth(64)
        .overflow(Overflow::Block)
        .block_timeout(DEADLINE)
        .create()
        .expect("create the publisher");
    publisher
        .wait_for_subscribers(1, DEADLINE)
        .expect("wait for the subscriber");
    let mut rng = Rng::new(r.num("seed"));
    let n = r.num("n");
    let mut counter = 1;
    let mut next_pause = 1 + rng.below(500);
    while counter <= n {
        if rng.below(8) == 0 {
            let batch = (1 + rng.below(16)).min(n - counter + 1);
            let sent = publisher
                .send_many((counter..counter + batch).map(|c| Tick::make(0, 0, c)))
                .unwrap_or_else(|e| panic!("send_many from {counter}: {e}"));
            assert_eq!(sent as u64, batch);
            counter += batch;
        } else {
            publisher
                .send(Tick::make(0, 0, counter))
                .unwrap_or_else(|e| panic!("send {counter}: {e}"));
            counter += 1;
        }
        if counter >= next_pause {
            pause_micros(rng.below(200));
            next_pause = counter + 1 + rng.below(500);
        }
    }
    emit(format_args!("sent {n}"));
    drop(publisher);
    0
}

/// `stress-sub topic= n= seed= via=poll|spin|waitset|waitset+fd`: a subscriber with a
/// descriptor; says `ready`, then takes until nothing is left and waits, until counters
/// `1..=n` arrived in order; sleeps 0 to 200 µs every 1 to 500 samples. It waits in `poll` on
/// the descriptor (`via=poll`), first spinning with `Subscriber::spin` (`via=spin`), or in a
/// `WaitSet` (`via=waitset`; `waitset+fd` also asks for the descriptor, so that its takes
/// arm it too), at most [`STALL`] at a time: longer means
/// a lost wake-up. Counts waits and wake-ups with nothing to take (`idle`; `max_idle` of them
/// in a row: a descriptor that stays readable with nothing to take would make the loop
/// spin). Says `received n waits=<w> idle=<i> max_idle=<k>`.
pub fn stress_subscriber(r: &Role) -> i32 {
    let subscriber = Subscriber::<Tick>::builder(r.str("topic"))
        .queue_depth(64)
        .create()
        .expect("create the subscriber");
    let via = r.str("via");
    // A wait set alone arms the descriptor itself, just before it sleeps; the program's own
    // descriptor makes every take that finds nothing arm it.
    let fd = (via != "waitset").then(|| subscriber.fd().expect("the subscriber's descriptor"));
    let mut waitset = match via {
        "poll" | "spin" => None,
        "waitset" | "waitset+fd" => {
            let mut waitset = WaitSet::new().expect("a wait set");
            waitset.attach(&subscriber).expect("attach");
            Some(waitset)
        }
        other => panic!("unknown via={other}"),
    };
    emit("ready");
    let mut rng = Rng::new(r.num("seed"));
    let n = r.num("n");
    let mut next = 1u64;
    let mut next_pause = 1 + rng.below(500);
    let (mut waits, mut idle, mut idle_run, mut max_idle) = (0u64, 0u64, 0u64, 0u64);
    // Whether the last wait reported samples (a wait set also reports publishers).
    let mut woken_for_samples = true;
    let stall = timespec(STALL);
    loop {
        let mut took = 0u64;
        while let Some(sample) = subscriber.take().expect("take") {
            assert_eq!(
                (sample.stamp().2, sample.sequence()),
                (next, next),
                "out of order or lost: {sample:?}"
            );
            assert!(sample.intact(), "corrupt sample {sample:?}");
            next += 1;
            took += 1;
            if next >= next_pause {
                pause_micros(rng.below(200));
                next_pause = next + 1 + rng.below(500);
            }
        }
        if next > n {
            break;
        }
        if waits > 0 && woken_for_samples {
            if took == 0 {
                idle += 1;
                idle_run += 1;
                max_idle = max_idle.max(idle_run);
            } else {
                idle_run = 0;
            }
        }
        if via == "spin" && subscriber.spin() {
            // Samples came while spinning (or a publisher took the arm): take them.
            continue;
        }
        let ready = match &mut waitset {
            None => {
                let fd = fd.as_ref().expect("a descriptor without a wait set");
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                rustix::event::poll(&mut fds, Some(&stall)).expect("poll")
            }
            Some(waitset) => {
                woken_for_samples = false;
                waitset
                    .wait_timeout(STALL, |event| match event.kind {
                        EventKind::Samples => woken_for_samples = true,
                        EventKind::Peer(_) => {}
                        other => panic!("unexpected event {other:?}"),
                    })
                    .expect("wait")
            }
        };
        assert!(
            ready > 0,
            "nothing for {STALL:?} after sample {} of {n} (a lost wake-up?)",
            next - 1
        );
        waits += 1;
    }
    let extra = subscriber.take().expect("take after the last");
    assert!(extra.is_none(), "a sample after the last: {extra:?}");
    drop(extra);
    emit(format_args!(
        "received {} waits={waits} idle={idle} max_idle={max_idle}",
        next - 1
    ));
    drop(waitset);
    drop(subscriber);
    0
}
