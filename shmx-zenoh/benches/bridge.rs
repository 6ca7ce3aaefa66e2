//! The bridge, measured against plain Zenoh over the same loopback, in one run:
//!
//! - latency: ping-pong between two "hosts" (two shmx roots, a bridge each, peer mode on
//!   loopback), 8 B and 1 MiB, against two Zenoh sessions doing the same ping-pong;
//! - throughput: a one-way stream of 8 B and 1 MiB messages, against Zenoh's;
//! - the local zero-copy path: ping-pong between two threads on one root, on topics a bridge
//!   forwards and on topics it does not.
//!
//! Rounds alternate the contenders; medians over all rounds, ratios per round.
//!
//! ```text
//! cargo bench -p shmx-zenoh --bench bridge [-- --rounds 5]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use common::{config, free_port, root};
use shmx::{Publisher, RelSlice, ShmMessage, Subscriber};
use shmx_zenoh::Bridge;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// A message of any length: its bytes in the sample's tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    seq: u64,
    data: RelSlice<u8>,
}

const MIB: usize = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(30);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn send_blob(p: &Publisher<Blob>, seq: u64, len: usize) {
    let mut m = p.loan().expect("loan");
    let mut w = m.writer();
    *w.seq = seq;
    w.alloc_data(len).expect("tail").fill(seq as u8);
    m.publish().expect("publish");
}

fn blob_publisher(root: &std::path::Path, topic: &str) -> Publisher<Blob> {
    Publisher::<Blob>::builder(topic)
        .root(root)
        .max_tail_bytes(MIB)
        .queue_depth(64)
        .overflow(shmx::Overflow::Block)
        .block_timeout(DEADLINE)
        .create()
        .expect("publisher")
}

fn blob_subscriber(root: &std::path::Path, topic: &str) -> Subscriber<Blob> {
    Subscriber::<Blob>::builder(topic)
        .root(root)
        .queue_depth(64)
        .create()
        .expect("subscriber")
}

/// Round-trip times (µs) of `n` pings of `len` bytes from `ping` to whoever answers on
/// `pong`, after a warm-up that waits for the first answer.
fn shmx_pingpong(
    ping: &Publisher<Blob>,
    pong: &Subscriber<Blob>,
    len: usize,
    n: usize,
) -> Vec<f64> {
    let mut seq = 0u64;
    // Warm up: until answers come (the bridges find each other and the topics).
    let start = Instant::now();
    loop {
        seq += 1;
        send_blob(ping, seq, len);
        if let Some(s) = pong.recv_timeout(Duration::from_millis(100)).unwrap() {
            if s.seq == seq {
                break;
            }
        }
        assert!(start.elapsed() < DEADLINE, "no answer");
    }
    while pong.take().unwrap().is_some() {}
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        seq += 1;
        let t = Instant::now();
        send_blob(ping, seq, len);
        loop {
            let s = pong.recv_timeout(DEADLINE).unwrap().expect("an answer");
            if s.seq == seq {
                break;
            }
        }
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts
}

/// Round-trip times (µs) of Zenoh puts of `len` bytes answered by an echo on another session.
fn zenoh_pingpong(a: &zenoh::Session, len: usize, n: usize) -> Vec<f64> {
    let publisher = a
        .declare_publisher("zb/ping")
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let pong = a.declare_subscriber("zb/pong").wait().unwrap();
    let payload = vec![7u8; len];
    let start = Instant::now();
    loop {
        publisher.put(payload.clone()).wait().unwrap();
        if pong
            .recv_timeout(Duration::from_millis(100))
            .unwrap()
            .is_some()
        {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no echo");
    }
    while pong.try_recv().unwrap().is_some() {}
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        publisher.put(payload.clone()).wait().unwrap();
        pong.recv_timeout(DEADLINE).unwrap().expect("an echo");
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = Bridge::builder()
        .root(a.path())
        .zenoh_config(config(port_a, None))
        .forward(["bench/ping/**"])
        .receive(["bench/pong/**"])
        .start()
        .expect("bridge a");
    let bridge_b = Bridge::builder()
        .root(b.path())
        .zenoh_config(config(free_port(), Some(port_a)))
        .forward(["bench/pong/**"])
        .receive(["bench/ping/**"])
        .start()
        .expect("bridge b");
    // Plain Zenoh: two sessions on the same loopback, the second echoing.
    let port_z = free_port();
    let za = zenoh::open(config(port_z, None)).wait().unwrap();
    let zb = zenoh::open(config(free_port(), Some(port_z)))
        .wait()
        .unwrap();
    // Both ways block rather than drop when congested, as the bridges do.
    let echo_pub = zb
        .declare_publisher("zb/pong")
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let _echo = zb
        .declare_subscriber("zb/ping")
        .callback(move |s| {
            let _ = echo_pub.put(s.payload().clone()).wait();
        })
        .wait()
        .unwrap();
    // The shmx echo on host B: every ping answered with a pong of the same length.
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (root_b, stop) = (b.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            let pings =
                [8usize, MIB].map(|len| blob_subscriber(&root_b, &format!("bench/ping/{len}")));
            let pongs =
                [8usize, MIB].map(|len| blob_publisher(&root_b, &format!("bench/pong/{len}")));
            while !stop.load(Ordering::Relaxed) {
                let mut any = false;
                for (k, sub) in pings.iter().enumerate() {
                    while let Some(s) = sub.take().unwrap() {
                        send_blob(&pongs[k], s.seq, s.data().len());
                        any = true;
                    }
                }
                if !any {
                    std::hint::spin_loop();
                }
            }
        })
    };
    println!("## The bridge against plain Zenoh (loopback, peer mode), {rounds} rounds\n");
    println!("| payload | contender | one-way median | ÷ Zenoh (median of rounds) |");
    println!("|---|---|--:|--:|");
    for len in [8usize, MIB] {
        let n = if len == 8 { 2000 } else { 100 };
        let ping = blob_publisher(a.path(), &format!("bench/ping/{len}"));
        let pong = blob_subscriber(a.path(), &format!("bench/pong/{len}"));
        let (mut shmx_all, mut zenoh_all, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let s = shmx_pingpong(&ping, &pong, len, n);
            let z = zenoh_pingpong(&za, len, n);
            ratios.push(median(s.clone()) / median(z.clone()));
            shmx_all.extend(s);
            zenoh_all.extend(z);
        }
        let label = if len == 8 { "8 B" } else { "1 MiB" };
        println!(
            "| {label} | shmx through two bridges | {:.1} µs | {:.2}x |",
            median(shmx_all) / 2.0,
            median(ratios)
        );
        println!(
            "| {label} | Zenoh put/subscribe | {:.1} µs | 1.00x |",
            median(zenoh_all) / 2.0
        );
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    println!(
        "\nBridges: A sent {}, B received {}.",
        bridge_a.stats().sent.load(Ordering::Relaxed),
        bridge_b.stats().received.load(Ordering::Relaxed)
    );
    local_path(a.path(), rounds);
}

/// Local ping-pong between two threads of one root, on a topic a bridge forwards and on one
/// it does not: what forwarding costs the zero-copy path.
fn local_path(root: &std::path::Path, rounds: usize) {
    let forwarded = Bridge::builder()
        .root(root)
        .forward(["local/fwd/**"])
        .zenoh_config(config(free_port(), None))
        .start()
        .expect("a local bridge");
    let run = |prefix: &str| -> Vec<f64> {
        let ping = Publisher::<u64>::builder(&format!("{prefix}/ping"))
            .root(root)
            .create()
            .unwrap();
        let pong_sub = Subscriber::<u64>::builder(&format!("{prefix}/pong"))
            .root(root)
            .create()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let echo = {
            let (root, prefix, stop) = (root.to_owned(), prefix.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let sub = Subscriber::<u64>::builder(&format!("{prefix}/ping"))
                    .root(&root)
                    .create()
                    .unwrap();
                let publisher = Publisher::<u64>::builder(&format!("{prefix}/pong"))
                    .root(&root)
                    .create()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(v) = sub.take().unwrap() {
                        publisher.send(*v).unwrap();
                    }
                }
            })
        };
        let mut rtts = Vec::new();
        let mut seq = 0;
        // Until the echo is there (and the bridge has joined the forwarded topics).
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) || pong_sub.take().unwrap().is_none() {
            ping.send(seq).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        while pong_sub.take().unwrap().is_some() {}
        for _ in 0..20_000 {
            seq += 1;
            let t = Instant::now();
            ping.send(seq).unwrap();
            loop {
                if let Some(v) = pong_sub.take().unwrap() {
                    if *v == seq {
                        break;
                    }
                }
            }
            rtts.push(t.elapsed().as_secs_f64() * 1e9);
        }
        stop.store(true, Ordering::Relaxed);
        echo.join().unwrap();
        rtts
    };
    let (mut fwd, mut quiet, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let f = run(&format!("local/fwd/{r}"));
        let q = run(&format!("local/quiet/{r}"));
        ratios.push(median(f.clone()) / median(q.clone()));
        fwd.extend(f);
        quiet.extend(q);
    }
    println!("\n## The local zero-copy path while a bridge forwards the topic, {rounds} rounds\n");
    println!("| topic | one-way median (8 B, two threads) | ÷ not forwarded (median of rounds) |");
    println!("|---|--:|--:|");
    println!(
        "| forwarded by a bridge | {:.0} ns | {:.2}x |",
        median(fwd) / 2.0,
        median(ratios)
    );
    println!("| not forwarded | {:.0} ns | 1.00x |", median(quiet) / 2.0);
    drop(forwarded);
}
