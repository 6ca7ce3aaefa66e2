//! Roles of the tests over many topics: publisher processes feeding a set of topics in bursts
//! and pauses, a process writing a foreign socket, and the receivers: a `WaitSet` over every
//! topic, and an `epoll` loop over every subscriber's descriptor and the socket.

use super::common::{await_parent, emit, Role};
use super::messages::{PubSet, Rng, SubSet, Tracker};
use super::{pause_micros, timespec, STALL};
use rustix::event::epoll;
use rustix::fd::AsFd;
use shmx::waitset::{EventKind, PeerEvent};
use shmx::WaitSet;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Feeding many topics
// ---------------------------------------------------------------------------------------------

/// `feed prefix= topics= source= n= seed=`: publishes on every topic of the set (waiting
/// for one subscriber on each), says `ready`, waits for `go`, then sends counters `1..=n`,
/// each to a random topic, in bursts of 1 to 100 samples separated by pauses: mostly short
/// (under 200 µs: receivers still spin), every fourth 1 to 5 ms (receivers go to sleep).
/// Says `sent n`, waits for `exit`.
pub fn feed(r: &Role) -> i32 {
    let topics = r.num("topics") as u32;
    let source = r.num("source") as u32;
    let set = PubSet::create(r.str("prefix"), topics);
    set.wait_for_subscribers(1);
    emit("ready");
    await_parent("go");
    let mut rng = Rng::new(r.num("seed"));
    let n = r.num("n");
    let mut burst = 0;
    for counter in 1..=n {
        if burst == 0 {
            burst = 1 + rng.below(100);
            if rng.below(4) == 0 {
                pause_micros(1000 + rng.below(4000));
            } else {
                pause_micros(rng.below(200));
            }
        }
        burst -= 1;
        set.send(source, rng.below(u64::from(topics)) as u32, counter);
    }
    emit(format_args!("sent {n}"));
    await_parent("exit");
    drop(set);
    0
}

/// `sock-writer sock= n= seed=`: sends datagrams `1` to `n` to the socket at `sock`, with
/// random pauses of up to 1 ms; says `sent n`.
pub fn socket_writer(r: &Role) -> i32 {
    let socket = UnixDatagram::unbound().expect("a datagram socket");
    let mut rng = Rng::new(r.num("seed"));
    let n = r.num("n");
    for k in 1..=n {
        pause_micros(rng.below(1000));
        socket
            .send_to(k.to_string().as_bytes(), r.str("sock"))
            .unwrap_or_else(|e| panic!("send datagram {k}: {e}"));
    }
    emit(format_args!("sent {n}"));
    0
}

// ---------------------------------------------------------------------------------------------
// Receiving many topics
// ---------------------------------------------------------------------------------------------

/// `waitset-sub prefix= topics= sources= n=`: subscribes to every topic of the set, attaches
/// them all to one `WaitSet`, says `ready`, and receives until every source's `n` samples
/// arrived (see [`Tracker`]); says `received <total> waits=<w> joined=<j>` (`j`: the
/// `PublisherJoined` events). Then waits until every publisher left or died and says
/// `departed <d>`.
pub fn waitset_subscriber(r: &Role) -> i32 {
    /// What the events told so far.
    struct Seen {
        tracker: Tracker,
        joined: u64,
        departed: u64,
    }
    let subs = SubSet::create(r.str("prefix"), r.num("topics") as u32);
    let sources = r.num("sources") as u32;
    let publishers = u64::from(sources) * u64::from(subs.len());
    let mut seen = Seen {
        tracker: Tracker::new(sources, r.num("n")),
        joined: 0,
        departed: 0,
    };
    let mut waitset = WaitSet::new().expect("a wait set");
    let topics = subs.attach(&mut waitset);
    emit("ready");
    let on_event = |event: shmx::waitset::Event, seen: &mut Seen| {
        let topic = topics[&event.attachment];
        match event.kind {
            EventKind::Samples => {
                subs.take_all(topic, &mut seen.tracker);
            }
            EventKind::Peer(PeerEvent::PublisherJoined { .. }) => seen.joined += 1,
            EventKind::Peer(PeerEvent::PublisherLeft { .. } | PeerEvent::PublisherDied { .. }) => {
                seen.departed += 1
            }
            other => panic!("unexpected event {other:?} on topic {topic}"),
        }
    };
    let mut waits = 0u64;
    while !seen.tracker.complete() {
        waits += 1;
        let n = waitset
            .wait_timeout(STALL, |e| on_event(e, &mut seen))
            .expect("wait");
        assert!(n > 0, "nothing for {STALL:?}: {}", seen.tracker.progress());
    }
    // The last publishers' joins may not have been looked at yet.
    while waitset
        .wait_timeout(Duration::ZERO, |e| on_event(e, &mut seen))
        .expect("wait")
        > 0
    {}
    emit(format_args!(
        "received {} waits={waits} joined={}",
        seen.tracker.total, seen.joined
    ));
    while seen.departed < publishers {
        let n = waitset
            .wait_timeout(STALL, |e| on_event(e, &mut seen))
            .expect("wait");
        assert!(
            n > 0,
            "{} of {publishers} publishers departed after {STALL:?}",
            seen.departed
        );
    }
    emit(format_args!("departed {}", seen.departed));
    drop(waitset);
    drop(subs);
    0
}

/// `epoll-sub prefix= topics= sources= n= sock= msgs=`: subscribes to every topic of the
/// set and binds a datagram socket at `sock`; one `epoll` instance watches every
/// subscriber's `fd()` and the socket. Says `ready`, then loops: wait in `epoll` (at most
/// [`STALL`]), take every sample of each subscriber that is readable (until `take` finds
/// nothing, which arms it again), read every datagram, until every sample (see [`Tracker`])
/// and datagrams `1..=msgs`, in order, arrived. Counts wake-ups, and wake-ups where a readable
/// subscriber had nothing to take twice in a row (`max_idle`: a descriptor that stays readable
/// with nothing to take would make the loop spin). Then checks that the loop blocks: after
/// at most one more empty take, nothing is readable for 300 ms. Says `received <samples> msgs=<m> wakes=<w> idle=<i>
/// max_idle=<k>`.
pub fn epoll_subscriber(r: &Role) -> i32 {
    let subs = SubSet::create(r.str("prefix"), r.num("topics") as u32);
    let mut tracker = Tracker::new(r.num("sources") as u32, r.num("n"));
    let socket = UnixDatagram::bind(r.str("sock")).expect("bind the datagram socket");
    socket.set_nonblocking(true).expect("non-blocking socket");
    let msgs = r.num("msgs");
    const SOCKET: u64 = u64::MAX;

    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll_create");
    for t in 0..subs.len() {
        epoll::add(
            &ep,
            subs.fd(t),
            epoll::EventData::new_u64(t.into()),
            epoll::EventFlags::IN,
        )
        .expect("epoll_ctl (a subscriber)");
        // Nothing to take yet: arms the descriptor.
        subs.take_all(t, &mut tracker);
    }
    epoll::add(
        &ep,
        socket.as_fd(),
        epoll::EventData::new_u64(SOCKET),
        epoll::EventFlags::IN,
    )
    .expect("epoll_ctl (the socket)");
    emit("ready");

    let mut events = Vec::with_capacity(16);
    let mut got_msgs = 0u64;
    let (mut wakes, mut idle, mut max_idle) = (0u64, 0u64, 0u64);
    // Per subscriber: wake-ups in a row that found it readable and empty.
    let mut idle_run = vec![0u64; subs.len() as usize];
    let read_socket = |got: &mut u64| {
        let mut buf = [0u8; 32];
        loop {
            match socket.recv(&mut buf) {
                Ok(len) => {
                    let k: u64 = std::str::from_utf8(&buf[..len])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_else(|| panic!("bad datagram {:?}", &buf[..len]));
                    assert_eq!(k, *got + 1, "datagrams out of order");
                    *got = k;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("recv: {e}"),
            }
        }
    };
    while !tracker.complete() || got_msgs < msgs {
        events.clear();
        let n = epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timespec(STALL)),
        )
        .expect("epoll_wait");
        assert!(
            n > 0,
            "nothing readable for {STALL:?}: {}; datagrams {got_msgs} of {msgs}",
            tracker.progress()
        );
        wakes += 1;
        for event in &events {
            let data = event.data.u64();
            if data == SOCKET {
                read_socket(&mut got_msgs);
                continue;
            }
            let t = data as u32;
            if subs.take_all(t, &mut tracker) == 0 {
                idle += 1;
                idle_run[t as usize] += 1;
                max_idle = max_idle.max(idle_run[t as usize]);
            } else {
                idle_run[t as usize] = 0;
            }
        }
    }
    // Everything arrived and every subscriber's last take found nothing: the loop must block
    // now. (A descriptor readable with nothing to take is cleared by the next empty take.)
    for t in 0..subs.len() {
        assert_eq!(subs.take_all(t, &mut tracker), 0, "a sample after the last");
    }
    for round in 0..2 {
        events.clear();
        let n = epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timespec(Duration::from_millis(300))),
        )
        .expect("epoll_wait");
        if n == 0 {
            break;
        }
        let which: Vec<u64> = events.iter().map(|e| e.data.u64()).collect();
        assert_eq!(
            round, 0,
            "descriptors {which:?} stay readable with nothing to take or read (the loop would spin)"
        );
        for t in which {
            assert_ne!(t, SOCKET, "a datagram after the last");
            assert_eq!(
                subs.take_all(t as u32, &mut tracker),
                0,
                "a sample after the last"
            );
        }
    }
    emit(format_args!(
        "received {} msgs={got_msgs} wakes={wakes} idle={idle} max_idle={max_idle}",
        tracker.total
    ));
    drop(socket);
    let _ = std::fs::remove_file(r.str("sock"));
    drop(subs);
    0
}
