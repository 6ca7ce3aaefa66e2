//! async/await on tokio (feature `tokio`): a subscriber moved into `tokio::spawn` on the
//! multi-threaded runtime receives what a publisher in another process sends; `select!` over
//! two topics, a socket and a timer; cancelled receives lose no sample; a waiting receive
//! never blocks the runtime's thread.

mod common;

use common::messages::{Counted, TestMsg};
use common::{roles, Proc, Root, DEADLINE};
use futures_core::Stream;
use shmx::{Overflow, Publisher, Subscriber};
use std::pin::Pin;
use std::time::Duration;

/// Entry point of every child process; returns at once in the parent (no `SHMX_CHILD`).
#[test]
fn child_main() {
    common::run_child(|r| match r.name.as_str() {
        "pub" => roles::publisher(r),
        other => panic!("unknown role {other}"),
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_subscriber_moved_into_a_spawned_task_receives_from_another_process() {
    let root = Root::new();
    let n = 2000u64;
    let rt = runtime();
    let mut subscriber = Subscriber::<Counted>::builder("async/counted")
        .root(root.path())
        .create()
        .unwrap();
    let task = rt.spawn(async move {
        let mut next = 1;
        while next <= n {
            let sample = tokio::time::timeout(DEADLINE, subscriber.recv_async())
                .await
                .expect("a sample within the deadline")
                .expect("a valid sample");
            assert!(sample.intact());
            assert_eq!((sample.counter(), sample.sequence()), (next, next));
            next += 1;
        }
        next - 1
    });
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("pub type=counted topic=async/counted n={n}"),
        root.path(),
    );
    publisher.expect("sent");
    assert_eq!(rt.block_on(task).unwrap(), n);
    publisher.succeed();
    drop(rt);
    root.assert_empty();
}

#[test]
fn select_over_two_topics_a_socket_and_a_timer() {
    let root = Root::new();
    let rt = runtime();
    let mut a = Subscriber::<u64>::builder("async/a")
        .root(root.path())
        .create()
        .unwrap();
    let mut b = Subscriber::<u32>::builder("async/b")
        .root(root.path())
        .create()
        .unwrap();
    let pa = Publisher::<u64>::builder("async/a")
        .overflow(Overflow::Block)
        .root(root.path())
        .create()
        .unwrap();
    let pb = Publisher::<u32>::builder("async/b")
        .overflow(Overflow::Block)
        .root(root.path())
        .create()
        .unwrap();
    let (here, there) = std::os::unix::net::UnixDatagram::pair().unwrap();
    here.set_nonblocking(true).unwrap();
    let n = 300u64;
    let feeder = std::thread::spawn(move || {
        for i in 1..=n {
            pa.send(i).unwrap();
            if i % 3 == 0 {
                pb.send(i as u32).unwrap();
            }
            if i % 50 == 0 {
                there.send(&i.to_ne_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let (got_a, got_b, got_sock, ticks) = rt.block_on(async move {
        let sock = tokio::net::UnixDatagram::from_std(here).unwrap();
        let mut timer = tokio::time::interval(Duration::from_millis(5));
        let (mut got_a, mut got_b, mut got_sock, mut ticks) = (0u64, 0u64, 0u64, 0u64);
        let mut buf = [0u8; 8];
        let deadline = tokio::time::sleep(DEADLINE);
        tokio::pin!(deadline);
        while got_a < n || got_b < n / 3 || got_sock < n / 50 {
            tokio::select! {
                s = a.recv_async() => {
                    got_a += 1;
                    assert_eq!(*s.unwrap(), got_a, "topic a in order");
                }
                s = b.recv_async() => {
                    got_b += 1;
                    assert_eq!(u64::from(*s.unwrap()), got_b * 3, "topic b in order");
                }
                r = sock.recv(&mut buf) => {
                    r.unwrap();
                    got_sock += 1;
                    assert_eq!(u64::from_ne_bytes(buf), got_sock * 50);
                }
                _ = timer.tick() => ticks += 1,
                _ = &mut deadline => panic!("not everything arrived: a {got_a}, b {got_b}, socket {got_sock}"),
            }
        }
        (got_a, got_b, got_sock, ticks)
    });
    feeder.join().unwrap();
    assert_eq!((got_a, got_b, got_sock), (n, n / 3, n / 50));
    assert!(ticks >= 1);
    drop(rt);
    root.assert_empty();
}

#[test]
fn cancelled_receives_lose_no_sample() {
    let root = Root::new();
    let rt = runtime();
    let mut subscriber = Subscriber::<u64>::builder("async/cancel")
        .root(root.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("async/cancel")
        .overflow(Overflow::Block)
        .root(root.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let n = 5000u64;
    let feeder = std::thread::spawn(move || {
        for i in 1..=n {
            publisher.send(i).unwrap();
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    });
    let cancelled = rt.block_on(async move {
        let mut next = 1;
        let mut cancelled = 0u64;
        let start = tokio::time::Instant::now();
        while next <= n {
            assert!(start.elapsed() < DEADLINE, "stalled at {next}");
            // A timeout that often fires first: each cancelled receive must leave its
            // sample for the next one.
            match tokio::time::timeout(Duration::from_micros(50), subscriber.recv_async()).await {
                Ok(sample) => {
                    assert_eq!(*sample.unwrap(), next);
                    next += 1;
                }
                Err(_) => cancelled += 1,
            }
        }
        cancelled
    });
    feeder.join().unwrap();
    println!("{cancelled} receives were cancelled");
    drop(rt);
    root.assert_empty();
}

#[test]
fn a_waiting_receive_leaves_its_thread_to_other_tasks() {
    let root = Root::new();
    // One thread: if the receive blocked it, the ticking task could never run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut subscriber = Subscriber::<u64>::builder("async/thread")
        .root(root.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("async/thread")
        .root(root.path())
        .create()
        .unwrap();
    let value = rt.block_on(async move {
        let ticker = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // Only now, after the receive has waited through five ticks, publish.
            publisher.send(9).unwrap();
            publisher
        });
        let sample = tokio::time::timeout(DEADLINE, subscriber.recv_async())
            .await
            .expect("the ticker ran, then published")
            .unwrap();
        let value = *sample;
        drop(sample);
        drop(ticker.await.unwrap());
        value
    });
    assert_eq!(value, 9);
    drop(rt);
    root.assert_empty();
}

#[test]
fn a_stream_yields_every_sample_in_order() {
    let root = Root::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut subscriber = Subscriber::<u64>::builder("async/stream")
        .root(root.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("async/stream")
        .overflow(Overflow::Block)
        .root(root.path())
        .create()
        .unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 1..=500u64 {
            publisher.send(i).unwrap();
        }
        publisher.wait_for_subscribers(0, DEADLINE).unwrap();
    });
    let sum = rt.block_on(async {
        let mut stream = subscriber.stream();
        let mut sum = 0;
        for expected in 1..=500u64 {
            let next = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx));
            let sample = tokio::time::timeout(DEADLINE, next)
                .await
                .expect("a sample within the deadline")
                .expect("the stream never ends")
                .unwrap();
            assert_eq!(*sample, expected);
            sum += *sample;
        }
        sum
    });
    feeder.join().unwrap();
    assert_eq!(sum, 500 * 501 / 2);
    drop(subscriber);
    drop(rt);
    root.assert_empty();
}
