//! Bridges that stop, restart, are killed or lose their link, and remote publishers that go
//! (two roots on loopback, as in `loopback.rs`).

mod common;

use common::{
    bridge, free_port, hosts, root, u64_publisher, u64_subscriber, until_linked, Hosts, DEADLINE,
};
use shmx::{Publisher, Subscriber};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zenoh::Wait;

#[test]
fn a_restarted_bridge_resumes_without_restarting_the_other() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = bridge(a.path(), port_a, None, &["**"], &[]);
    let start_b = || bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let pub_a = Publisher::<u64>::builder("t/re")
        .root(a.path())
        .create()
        .unwrap();
    let sub_b = u64_subscriber(b.path(), "t/re", 64);
    let bridge_b = start_b();
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    // B's bridge goes (as a host that goes away) and comes back; A's runs on.
    bridge_b.stop();
    while sub_b.take().unwrap().is_some() {}
    let bridge_b = start_b();
    let first_after = until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    assert!(first_after >= 1);
    drop(bridge_b);
    drop(bridge_a);
}

#[test]
fn a_bridge_reconnects_when_the_one_it_connects_to_comes_back() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let start_a = || bridge(a.path(), port_a, None, &["**"], &[]);
    let bridge_a = start_a();
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let pub_a = Publisher::<u64>::builder("t/back")
        .root(a.path())
        .create()
        .unwrap();
    let sub_b = u64_subscriber(b.path(), "t/back", 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    bridge_a.stop();
    while sub_b.take().unwrap().is_some() {}
    let bridge_a = start_a();
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    drop(bridge_a);
    drop(bridge_b);
}

#[test]
fn two_bridges_on_one_host_deliver_once_and_one_takes_over_when_the_other_goes() {
    let (a, b) = (root(), root());
    let port_b = free_port();
    let bridge_b = bridge(b.path(), port_b, None, &["**"], &["**"]);
    let on_a = || bridge(a.path(), free_port(), Some(port_b), &["**"], &["**"]);
    let (a1, a2) = (on_a(), on_a());
    // B → A, and A → B, each sample once.
    let pub_b = u64_publisher(b.path(), "t/in", 256);
    let sub_a = u64_subscriber(a.path(), "t/in", 256);
    let pub_a = u64_publisher(a.path(), "t/out", 256);
    let sub_b = u64_subscriber(b.path(), "t/out", 256);
    let first_in = until_linked(
        |i| pub_b.send(i).unwrap(),
        || sub_a.take().unwrap().is_some(),
    );
    let first_out = until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    // Both bridges of A are up (the second one too has seen the topics by now).
    std::thread::sleep(Duration::from_millis(300));
    while sub_a.take().unwrap().is_some() {}
    while sub_b.take().unwrap().is_some() {}
    for i in 0..50 {
        pub_b.send(first_in + 100 + i).unwrap();
        pub_a.send(first_out + 100 + i).unwrap();
    }
    let collect = |sub: &Subscriber<u64>, n: usize| {
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < n && start.elapsed() < DEADLINE {
            if let Some(v) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
                got.push(*v);
            }
        }
        // Anything more would be a duplicate.
        std::thread::sleep(Duration::from_millis(300));
        while let Some(v) = sub.take().unwrap() {
            got.push(*v);
        }
        got
    };
    assert_eq!(
        collect(&sub_a, 50),
        (first_in + 100..first_in + 150).collect::<Vec<_>>()
    );
    assert_eq!(
        collect(&sub_b, 50),
        (first_out + 100..first_out + 150).collect::<Vec<_>>()
    );
    // The one that delivers goes; the other takes over (within its retry, a second).
    let sent_by_1 = a1.stats().received.load(Ordering::Relaxed);
    let (gone, stays) = if sent_by_1 > 0 { (a1, a2) } else { (a2, a1) };
    gone.stop();
    until_linked(
        |i| pub_b.send(10_000 + i).unwrap(),
        || sub_a.take().unwrap().is_some_and(|v| *v >= 10_000),
    );
    assert!(stays.stats().received.load(Ordering::Relaxed) > 0);
    drop(stays);
    drop(bridge_b);
}

/// Starts the `shmx-zenoh` command on `root`, forwarding everything, listening on `port`;
/// returns once it says it is bridging.
fn bridge_process(root: &std::path::Path, port: u16) -> common::Killed {
    let listen = format!("tcp/127.0.0.1:{port}");
    common::bridge_command(&[
        "--forward".as_ref(),
        "**".as_ref(),
        "--no-multicast".as_ref(),
        "--listen".as_ref(),
        listen.as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
    ])
}

#[test]
fn a_bridge_killed_with_sigkill_is_reclaimed_and_another_takes_its_place() {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let pub_a = Publisher::<u64>::builder("t/kill")
        .root(a.path())
        .create()
        .unwrap();
    let mut killed = bridge_process(a.path(), port_a);
    let bridge_b = bridge(b.path(), free_port(), Some(port_a), &[], &["**"]);
    let sub_b = u64_subscriber(b.path(), "t/kill", 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    // Its subscription is a dead process's slot, which cleaning takes back, as any.
    let claims = || {
        std::fs::read_dir(a.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bridge."))
            .count()
    };
    assert_eq!(claims(), 1, "the killed bridge's claim file");
    let report = shmx::inspect::clean(a.path(), false).unwrap();
    assert_eq!(report.reclaimed_slots, 1, "{report:?}");
    // And its claim file, which no bridge holds any more.
    assert_eq!(claims(), 0, "{report:?}");
    // Another bridge takes its place (the claim the dead one held is free).
    let next = bridge_process(a.path(), port_a);
    while sub_b.take().unwrap().is_some() {}
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    drop(next);
    drop(bridge_b);
}

#[test]
fn a_remote_publisher_that_goes_takes_its_relay_with_it() {
    let h = hosts();
    let topic = "t/gone";
    let sub_b = u64_subscriber(h.b.path(), topic, 256);
    let relays_on_b = || {
        shmx::inspect::topic(h.b.path(), topic)
            .map(|t| t.publishers.iter().filter(|p| p.state == "active").count())
            .unwrap_or(0)
    };
    let wait_for_no_relay = |what: &str| {
        let start = Instant::now();
        while relays_on_b() > 0 {
            assert!(start.elapsed() < DEADLINE, "{what}: the relay stayed");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A publisher that leaves.
    let pub_a = u64_publisher(h.a.path(), topic, 64);
    until_linked(
        |i| pub_a.send(i).unwrap(),
        || sub_b.take().unwrap().is_some(),
    );
    assert_eq!(relays_on_b(), 1);
    drop(pub_a);
    wait_for_no_relay("a publisher dropped");
    // Its last samples are still read; none arrives after.
    while sub_b.take().unwrap().is_some() {}
    // A publisher whose host (the bridge) goes.
    let pub_a = u64_publisher(h.a.path(), topic, 64);
    until_linked(
        |i| pub_a.send(1000 + i).unwrap(),
        || sub_b.take().unwrap().is_some_and(|v| *v >= 1000),
    );
    assert_eq!(relays_on_b(), 1);
    let Hosts {
        bridge_a,
        bridge_b,
        a,
        b,
    } = h;
    bridge_a.stop();
    let start = Instant::now();
    while shmx::inspect::topic(b.path(), topic)
        .map(|t| t.publishers.iter().filter(|p| p.state == "active").count())
        .unwrap_or(0)
        > 0
    {
        assert!(
            start.elapsed() < DEADLINE,
            "a bridge stopped: the relay stayed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(bridge_b.stats().relays_removed.load(Ordering::Relaxed), 2);
    drop((pub_a, sub_b, bridge_b, a, b));
}

/// A link that breaks takes the liveliness tokens of the other side's publishers with it,
/// and brings them back when it comes back: a publisher whose token came back is delivered
/// again. (A plain Zenoh peer plays the forwarding bridge, so that its token can go and
/// come back without a restart.)
#[test]
fn a_publisher_whose_token_goes_with_a_link_and_comes_back_is_delivered_again() {
    let (b, _, bridge_b, peer) = common::receiver_and_peer();
    let ty = shmx::schema_text::MessageType::of::<u64>();
    let schema = ty.schema().to_owned();
    let _schemas = peer
        .declare_queryable("shmx-schema/*")
        .callback(move |q| {
            let _ = q.reply(q.key_expr().clone(), schema.clone()).wait();
        })
        .wait()
        .unwrap();
    let (origin, id) = (0x0b1d_9e00_u64, 0x1234_u64);
    let alive = format!("shmx-alive/{origin:016x}/{id:016x}/t/back");
    let record = |seq: u64| {
        let header = shmx_zenoh::wire::Header {
            fingerprint: ty.fingerprint(),
            size: 8,
            sequence: seq,
            publisher_id: id,
            origin,
            publish_time: 0,
            len: 8,
        };
        let mut payload = Vec::new();
        shmx_zenoh::wire::append(&mut payload, &header, &seq.to_ne_bytes());
        payload
    };
    let sub_b = u64_subscriber(b.path(), "t/back", 64);
    let stats = bridge_b.stats();
    // Puts records, from sequence `seq` on, until one arrives on B.
    let mut seq = 1;
    let mut until_delivered = |what: &str| {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: {:?}",
                bridge_b.problems()
            );
            peer.put("shmx/t/back", record(seq)).wait().unwrap();
            seq += 1;
            if sub_b
                .recv_timeout(Duration::from_millis(50))
                .unwrap()
                .is_some()
            {
                while sub_b.take().unwrap().is_some() {}
                return;
            }
        }
    };
    let token = peer.liveliness().declare_token(&alive).wait().unwrap();
    until_delivered("never delivered");
    // The link breaks: the token goes, and the relay with it.
    token.undeclare().wait().unwrap();
    let start = Instant::now();
    while stats.relays_removed.load(Ordering::Relaxed) == 0 {
        assert!(start.elapsed() < DEADLINE, "the relay stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // It comes back.
    let _token = peer.liveliness().declare_token(&alive).wait().unwrap();
    until_delivered("never delivered again once its token came back");
}
