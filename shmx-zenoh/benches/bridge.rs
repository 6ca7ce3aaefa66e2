//! The bridge, measured against plain Zenoh over the same loopback, in one run:
//!
//! - latency: one-way, from a publisher on "host" A (a shmx root and its bridge) to a
//!   subscriber on host B (another root, another bridge, peer mode on loopback), 8 B and
//!   1 MiB, against a Zenoh publisher and subscriber on two sessions doing the same. Each
//!   message carries its send time (one process, one clock); the next goes once the last
//!   arrived (the receiver says so on a channel, outside the measured path);
//! - throughput: a stream of 8 B and 1 MiB messages as fast as the sender can, against
//!   Zenoh's (congestion control: block, on both);
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
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// A message of any length: its bytes in the sample's tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    seq: u64,
    /// When it was sent (ns since [`epoch`]).
    sent: u64,
    data: RelSlice<u8>,
}

const MIB: usize = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(30);
/// Queue depth of the shmx receivers.
const RECEIVER_DEPTH: usize = 4096;
/// Bytes before a Zenoh payload's data: the sequence and send time, as in `Blob`.
const ZHEAD: usize = 16;

/// The clock every message's send time is read on.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn send_blob(p: &Publisher<Blob>, seq: u64, len: usize) {
    let mut m = p.loan().expect("loan");
    let mut w = m.writer();
    *w.seq = seq;
    w.alloc_data(len).expect("tail").fill(seq as u8);
    *w.sent = now_ns();
    m.publish().expect("publish");
}

fn blob_publisher(root: &std::path::Path, topic: &str) -> Publisher<Blob> {
    Publisher::<Blob>::builder(topic)
        .root(root)
        .max_tail_bytes(MIB)
        .queue_depth(256)
        .overflow(shmx::Overflow::Block)
        .block_timeout(DEADLINE)
        .create()
        .expect("publisher")
}

/// A Zenoh payload of `len` data bytes, written as `send_blob` writes a sample.
fn zenoh_payload(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; ZHEAD + len];
    v[ZHEAD..].fill(seq as u8);
    v[..8].copy_from_slice(&seq.to_le_bytes());
    v[8..16].copy_from_slice(&now_ns().to_le_bytes());
    v
}

fn zenoh_facts(bytes: &[u8]) -> (u64, u64) {
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    (word(0), word(8))
}

/// What a receiver reports per message: its sequence number, and when it was sent and
/// arrived (ns since `epoch`).
type Arrival = (u64, u64, u64);

/// Two hosts joined by bridges, and two plain Zenoh sessions beside them.
/// (Fields drop in order: the bridges before their roots.)
struct Setup {
    bridges: (Bridge, Bridge),
    za: zenoh::Session,
    zb: zenoh::Session,
    a: tempfile::TempDir,
    b: tempfile::TempDir,
}

fn setup() -> Setup {
    let (a, b) = (root(), root());
    let port_a = free_port();
    let bridge_a = Bridge::builder()
        .root(a.path())
        .zenoh_config(config(port_a, None))
        .forward(["bench/**"])
        .start()
        .expect("bridge a");
    let bridge_b = Bridge::builder()
        .root(b.path())
        .zenoh_config(config(free_port(), Some(port_a)))
        .receive(["bench/**"])
        .start()
        .expect("bridge b");
    let port_z = free_port();
    let za = zenoh::open(config(port_z, None)).wait().unwrap();
    let zb = zenoh::open(config(free_port(), Some(port_z)))
        .wait()
        .unwrap();
    Setup {
        a,
        b,
        za,
        zb,
        bridges: (bridge_a, bridge_b),
    }
}

/// A shmx receiver on host B's `topic`: a thread that reports every message on `tx`.
fn shmx_receiver(
    root: &std::path::Path,
    topic: &str,
    tx: mpsc::Sender<Arrival>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    // Deep, as a receiver of bursts would make it: the bridge's relay queues as deep as the
    // topic allows.
    let sub = Subscriber::<Blob>::builder(topic)
        .root(root)
        .topic_config(shmx::TopicConfig {
            max_queue_depth: RECEIVER_DEPTH,
            ..shmx::TopicConfig::default()
        })
        .queue_depth(RECEIVER_DEPTH)
        .create()
        .expect("subscriber");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Some(s) = sub.recv_timeout(Duration::from_millis(50)).unwrap() {
                let _ = tx.send((s.seq, s.sent, now_ns()));
            }
        }
    })
}

/// A Zenoh receiver of `key` on `session`, reporting every message on `tx`.
fn zenoh_receiver(
    session: &zenoh::Session,
    key: &str,
    tx: mpsc::Sender<Arrival>,
) -> zenoh::pubsub::Subscriber<()> {
    let tx = std::sync::Mutex::new(tx);
    session
        .declare_subscriber(key.to_owned())
        .callback(move |s| {
            // The first 16 bytes only (the payload may be in pieces: no copy of the rest).
            let mut head = [0u8; ZHEAD];
            let _ = std::io::Read::read_exact(&mut s.payload().reader(), &mut head);
            let (seq, sent) = zenoh_facts(&head);
            let _ = tx.lock().unwrap().send((seq, sent, now_ns()));
        })
        .wait()
        .unwrap()
}

/// One-way latencies (µs) of `n` messages: `send(seq)` each once the last arrived on `rx`,
/// after a warm-up that waits for the first one.
fn one_way(mut send: impl FnMut(u64), rx: &mpsc::Receiver<Arrival>, n: usize) -> Vec<f64> {
    let mut seq = 0u64;
    let start = Instant::now();
    loop {
        seq += 1;
        send(seq);
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "nothing arrived");
    }
    while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        seq += 1;
        send(seq);
        loop {
            let (got, sent, arrived) = rx.recv_timeout(DEADLINE).expect("an arrival");
            if got == seq {
                lat.push(arrived.saturating_sub(sent) as f64 / 1e3);
                break;
            }
        }
    }
    lat
}

/// Messages a second of a stream of `n` sent as fast as `send` goes: from the first sent to
/// the last that arrived on `rx` (the stream's last, `last`), and how many arrived.
fn stream(
    mut send: impl FnMut(u64),
    rx: &mpsc::Receiver<Arrival>,
    first: u64,
    n: u64,
) -> (f64, u64) {
    let start = Instant::now();
    for seq in first..first + n {
        send(seq);
    }
    let last = first + n - 1;
    let mut arrived = 0;
    let mut end = Instant::now();
    while let Ok((seq, _, _)) = rx.recv_timeout(Duration::from_secs(2)) {
        if seq >= first {
            arrived += 1;
            end = Instant::now();
        }
        if seq == last {
            break;
        }
    }
    (arrived as f64 / (end - start).as_secs_f64(), arrived)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    epoch();
    let s = setup();
    let stop = Arc::new(AtomicBool::new(false));
    println!("## The bridge against plain Zenoh (loopback, peer mode), {rounds} rounds\n");
    println!("| payload | contender | one-way latency, median | ÷ Zenoh (median of rounds) |");
    println!("|---|---|--:|--:|");
    let mut receivers = Vec::new();
    let mut throughput_rows = Vec::new();
    for len in [8usize, MIB] {
        let label = if len == 8 { "8 B" } else { "1 MiB" };
        let topic = format!("bench/{len}");
        let (stx, srx) = mpsc::channel();
        receivers.push(shmx_receiver(s.b.path(), &topic, stx, stop.clone()));
        let publisher = blob_publisher(s.a.path(), &topic);
        let key = format!("zb/{len}");
        let (ztx, zrx) = mpsc::channel();
        let _zsub = zenoh_receiver(&s.zb, &key, ztx);
        let zpub =
            s.za.declare_publisher(key)
                .congestion_control(CongestionControl::Block)
                .wait()
                .unwrap();
        let mut shmx_send = |seq: u64| send_blob(&publisher, seq, len);
        let mut zenoh_send = |seq: u64| zpub.put(zenoh_payload(seq, len)).wait().unwrap();
        let n = if len == 8 { 2000 } else { 100 };
        let (mut shmx_all, mut zenoh_all, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let sh = one_way(&mut shmx_send, &srx, n);
            let ze = one_way(&mut zenoh_send, &zrx, n);
            ratios.push(median(sh.clone()) / median(ze.clone()));
            shmx_all.extend(sh);
            zenoh_all.extend(ze);
        }
        println!(
            "| {label} | shmx through two bridges | {:.1} µs | {:.2}x |",
            median(shmx_all),
            median(ratios)
        );
        println!(
            "| {label} | Zenoh put/subscribe | {:.1} µs | 1.00x |",
            median(zenoh_all)
        );
        // Throughput, the stream numbered on from the latency's.
        let count = if len == 8 { 100_000 } else { 300 };
        let (mut sr, mut zr, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut s_lost, mut z_lost) = (0, 0);
        let mut first = 1_000_000_000;
        // A stream each first, unmeasured: pools and buffers at their working size.
        stream(&mut shmx_send, &srx, first, count);
        stream(&mut zenoh_send, &zrx, first, count);
        first += count;
        for _ in 0..rounds {
            let (a, got_s) = stream(&mut shmx_send, &srx, first, count);
            let (b, got_z) = stream(&mut zenoh_send, &zrx, first, count);
            s_lost += count - got_s;
            z_lost += count - got_z;
            first += count;
            ratios.push(a / b);
            sr.push(a);
            zr.push(b);
        }
        throughput_rows.push(format!(
            "| {label} | {:.0} msg/s ({:.0} MB/s), {s_lost} lost | {:.0} msg/s ({:.0} MB/s), {z_lost} lost | {:.2}x |",
            median(sr.clone()),
            median(sr) * len as f64 / 1e6,
            median(zr.clone()),
            median(zr) * len as f64 / 1e6,
            median(ratios)
        ));
    }
    println!("\n## Throughput (a stream as fast as the sender goes), {rounds} rounds\n");
    println!("| payload | shmx through two bridges | Zenoh put/subscribe | shmx ÷ Zenoh (median of rounds) |");
    println!("|---|--:|--:|--:|");
    for row in throughput_rows {
        println!("{row}");
    }
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        r.join().unwrap();
    }
    let sent = s.bridges.0.stats().sent.load(Ordering::Relaxed);
    let messages = s.bridges.0.stats().messages.load(Ordering::Relaxed);
    println!(
        "\nBridges: A sent {sent} samples in {messages} Zenoh messages ({:.1} a message), B \
         received {}.",
        sent as f64 / messages.max(1) as f64,
        s.bridges.1.stats().received.load(Ordering::Relaxed)
    );
    local_path(s.a.path(), rounds);
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
