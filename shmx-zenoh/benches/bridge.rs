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
//! cargo bench -p shmx-zenoh --bench bridge [-- --rounds 5] [--only latency|throughput|local]
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

/// A Zenoh receiver of `key` on `session` as an application writes one by default: a
/// thread reads the subscriber's channel (Zenoh's default handler) and reports every message
/// on `tx`.
fn zenoh_thread_receiver(
    session: &zenoh::Session,
    key: &str,
    tx: mpsc::Sender<Arrival>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let sub = session.declare_subscriber(key.to_owned()).wait().unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Some(s)) = sub.recv_timeout(Duration::from_millis(50)) {
                let mut head = [0u8; ZHEAD];
                let _ = std::io::Read::read_exact(&mut s.payload().reader(), &mut head);
                let (seq, sent) = zenoh_facts(&head);
                let _ = tx.send((seq, sent, now_ns()));
            }
        }
    })
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

/// A plain Zenoh contender: a publisher and how its messages are received.
struct Plain<'s> {
    name: &'static str,
    publisher: zenoh::pubsub::Publisher<'s>,
    rx: mpsc::Receiver<Arrival>,
}

/// Plain Zenoh's two ways of receiving, each on its own key: on Zenoh's thread (a callback)
/// and on the application's (the default handler, a channel a thread reads).
fn plain_contenders<'s>(
    s: &'s Setup,
    len: usize,
    stop: &Arc<AtomicBool>,
    keep: &mut Vec<Box<dyn std::any::Any>>,
    threads: &mut Vec<std::thread::JoinHandle<()>>,
) -> Vec<Plain<'s>> {
    let publisher = |key: &str| {
        s.za.declare_publisher(key.to_owned())
            .congestion_control(CongestionControl::Block)
            .wait()
            .unwrap()
    };
    let (tx, rx) = mpsc::channel();
    let key = format!("zb/callback/{len}");
    keep.push(Box::new(zenoh_receiver(&s.zb, &key, tx)));
    let callback = Plain {
        name: "Zenoh, callback",
        publisher: publisher(&key),
        rx,
    };
    let (tx, rx) = mpsc::channel();
    let key = format!("zb/thread/{len}");
    threads.push(zenoh_thread_receiver(&s.zb, &key, tx, stop.clone()));
    let thread = Plain {
        name: "Zenoh, receiving thread",
        publisher: publisher(&key),
        rx,
    };
    vec![callback, thread]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    // `--only latency|throughput|local`: one part (to profile it).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let part = |name: &str| only.as_deref().is_none_or(|o| o == name);
    epoch();
    let s = setup();
    let stop = Arc::new(AtomicBool::new(false));
    let (mut keep, mut threads) = (Vec::new(), Vec::new());
    let mut latency_rows = Vec::new();
    let mut throughput_rows = Vec::new();
    for len in [8usize, MIB] {
        let label = if len == 8 { "8 B" } else { "1 MiB" };
        let topic = format!("bench/{len}");
        let (stx, srx) = mpsc::channel();
        threads.push(shmx_receiver(s.b.path(), &topic, stx, stop.clone()));
        let publisher = blob_publisher(s.a.path(), &topic);
        let plain = plain_contenders(&s, len, &stop, &mut keep, &mut threads);
        let mut shmx_send = |seq: u64| send_blob(&publisher, seq, len);
        let zenoh_send = |p: &zenoh::pubsub::Publisher<'_>, seq: u64| {
            p.put(zenoh_payload(seq, len)).wait().unwrap()
        };
        if part("latency") {
            let n = if len == 8 { 2000 } else { 100 };
            let mut shmx_all = Vec::new();
            let mut plain_all = vec![Vec::new(); plain.len()];
            let mut ratios = vec![Vec::new(); plain.len()];
            for _ in 0..rounds {
                let sh = one_way(&mut shmx_send, &srx, n);
                for (k, z) in plain.iter().enumerate() {
                    let ze = one_way(|seq| zenoh_send(&z.publisher, seq), &z.rx, n);
                    ratios[k].push(median(sh.clone()) / median(ze.clone()));
                    plain_all[k].extend(ze);
                }
                shmx_all.extend(sh);
            }
            latency_rows.push(format!(
                "| {label} | shmx, through two bridges | {:.1} µs | {} |",
                median(shmx_all),
                ratios
                    .into_iter()
                    .map(|r| format!("{:.2}x", median(r)))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            for (z, all) in plain.iter().zip(plain_all) {
                latency_rows.push(format!(
                    "| {label} | {} | {:.1} µs | |",
                    z.name,
                    median(all)
                ));
            }
        }
        if !part("throughput") {
            continue;
        }
        // Throughput, the streams numbered on from the latency's.
        let count = if len == 8 { 100_000 } else { 300 };
        let mut first = 1_000_000_000;
        // A stream each first, unmeasured: pools and buffers at their working size.
        stream(&mut shmx_send, &srx, first, count);
        for z in &plain {
            stream(|seq| zenoh_send(&z.publisher, seq), &z.rx, first, count);
        }
        first += count;
        let (mut shmx_rates, mut shmx_lost) = (Vec::new(), 0);
        let mut plain_rates = vec![Vec::new(); plain.len()];
        let mut plain_lost = vec![0; plain.len()];
        let mut ratios = vec![Vec::new(); plain.len()];
        for _ in 0..rounds {
            let (a, got) = stream(&mut shmx_send, &srx, first, count);
            shmx_lost += count - got;
            for (k, z) in plain.iter().enumerate() {
                let (b, got) = stream(|seq| zenoh_send(&z.publisher, seq), &z.rx, first, count);
                plain_lost[k] += count - got;
                ratios[k].push(a / b);
                plain_rates[k].push(b);
            }
            shmx_rates.push(a);
            first += count;
        }
        let rate = |v: Vec<f64>, lost: u64| {
            let m = median(v);
            format!(
                "{m:.0} msg/s ({:.0} MB/s), {lost} lost",
                m * len as f64 / 1e6
            )
        };
        throughput_rows.push(format!(
            "| {label} | shmx, through two bridges | {} | {} |",
            rate(shmx_rates, shmx_lost),
            ratios
                .into_iter()
                .map(|r| format!("{:.2}x", median(r)))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        for ((z, rates), lost) in plain.iter().zip(plain_rates).zip(plain_lost) {
            throughput_rows.push(format!(
                "| {label} | {} | {} | |",
                z.name,
                rate(rates, lost)
            ));
        }
    }
    let ratio_heads = "shmx ÷ Zenoh, callback | shmx ÷ Zenoh, receiving thread";
    if part("latency") {
        println!("## One-way latency: the bridge against plain Zenoh (loopback, peer mode), {rounds} rounds\n");
        println!("| payload | contender | one-way, median | {ratio_heads} (medians of rounds) |");
        println!("|---|---|--:|--:|--:|");
        for row in latency_rows {
            println!("{row}");
        }
    }
    if part("throughput") {
        println!("\n## Throughput (a stream as fast as the sender goes), {rounds} rounds\n");
        println!("| payload | contender | messages a second, median | {ratio_heads} (medians of rounds) |");
        println!("|---|---|--:|--:|--:|");
        for row in throughput_rows {
            println!("{row}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    drop(keep);
    let sent = s.bridges.0.stats().sent.load(Ordering::Relaxed);
    let messages = s.bridges.0.stats().messages.load(Ordering::Relaxed);
    println!(
        "\nBridges: A sent {sent} samples in {messages} Zenoh messages ({:.1} a message), B \
         received {}.",
        sent as f64 / messages.max(1) as f64,
        s.bridges.1.stats().received.load(Ordering::Relaxed)
    );
    if part("local") {
        local_path(s.a.path(), rounds);
    }
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
