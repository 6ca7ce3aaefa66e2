//! Recording throughput, measured: another process publishes a 1 kHz topic of 1 KiB
//! readings and a 30 Hz topic of 6 MB frames (1920x1080x3 bytes, a `RelSlice<u8>` in the
//! sample's tail) for some seconds while a [`Recorder`] in this process writes both to a file
//! on tmpfs; then the readings are played back as fast as they go, and read back without
//! shmx.
//!
//! ```text
//! cargo bench -p shmx-record --bench recording [-- --seconds 10]
//! ```
//!
//! Prints, as Markdown: samples published and recorded, drops, bytes and file size, the
//! recorder's CPU time over the wall time (one core = 100%), and the rates of playing back
//! and of reading the file.

use shmx::{Overflow, Publisher, PublisherConfig, RelSlice, ShmMessage, Subscriber};
use shmx_record::{Entry, Player, Recorder, Recording};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "SHMX_RECORD_BENCH_CHILD";
const READING_HZ: f64 = 1000.0;
const FRAME_HZ: f64 = 30.0;
const FRAME_BYTES: usize = 1920 * 1080 * 3;

/// A 1 KiB reading.
#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Reading {
    seq: u64,
    stamp_ns: u64,
    values: [u8; 1008],
}

/// A 6 MB frame.
#[derive(ShmMessage)]
#[repr(C)]
struct Frame {
    seq: u64,
    stamp_ns: u64,
    pixels: RelSlice<u8>,
}

fn main() {
    if let Ok(seconds) = std::env::var(CHILD) {
        publish(seconds.parse().expect("seconds"));
        return;
    }
    // `cargo bench` passes `--bench`; ours is `--seconds N`.
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(10.0);
    let root = bench_root();
    let files = bench_root();
    let file = files.path().join("load.mcap");
    record(root.path(), &file, seconds);
    replay(&file);
    small_messages(files.path());
}

/// 8-byte messages as fast as a publisher thread sends them (`Overflow::Block`: none is
/// lost), recorded, then played back as fast as they go, and read back.
fn small_messages(dir: &Path) {
    const N: u64 = 500_000;
    let root = bench_root();
    let file = dir.join("small.mcap");
    let mut recorder = Recorder::builder(&file)
        .root(root.path())
        .create()
        .expect("recorder");
    let config = PublisherConfig {
        queue_depth: 256,
        overflow: Overflow::Block,
        block_timeout: Some(Duration::from_secs(30)),
        ..PublisherConfig::default()
    };
    let publisher = Publisher::<u64>::builder("small")
        .root(root.path())
        .queue_depth(256)
        .overflow(Overflow::Block)
        .block_timeout(Duration::from_secs(30))
        .create()
        .expect("publisher");
    while recorder.stats().is_empty() {
        recorder.poll(Duration::from_millis(1)).expect("poll");
    }
    let (wall, cpu) = (Instant::now(), cpu_time());
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            publisher.send(i).expect("send");
        }
    });
    while recorder.stats()[0].messages < N {
        recorder.poll(Duration::from_millis(10)).expect("poll");
    }
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    sender.join().expect("sender");
    let summary = recorder.finish().expect("finish");
    println!("\n## Small messages\n");
    println!(
        "Recorded {} 8-byte messages ({} dropped) sent as fast as a thread sends them: {:.2} s, {:.2} M msg/s; CPU of both threads {:.2} s.",
        summary.topics[0].messages,
        summary.topics[0].drops,
        wall.as_secs_f64(),
        N as f64 / wall.as_secs_f64() / 1e6,
        cpu.as_secs_f64(),
    );
    let replay_root = bench_root();
    let counter = count_received::<u64>(replay_root.path(), "small");
    let start = Instant::now();
    let played = Player::new(&file)
        .root(replay_root.path())
        .rate(f64::INFINITY)
        .publisher_config(config)
        .play()
        .expect("play");
    let took = start.elapsed();
    let received = counter.join().expect("counter");
    let start = Instant::now();
    let read = Recording::open(&file)
        .expect("open")
        .reader()
        .expect("read")
        .filter(|e| matches!(e, Ok(Entry::Message(_))))
        .count();
    let read_took = start.elapsed();
    println!(
        "Played them back as fast as they go: {:.2} s, {:.2} M msg/s (received {received}); read back without shmx: {:.2} M msg/s ({read}).",
        took.as_secs_f64(),
        played.messages as f64 / took.as_secs_f64() / 1e6,
        read as f64 / read_took.as_secs_f64() / 1e6,
    );
}

/// Publishes readings and frames, paced, for `seconds` once a subscriber (the recorder) is
/// on both; prints how many.
fn publish(seconds: f64) {
    let readings = Publisher::<Reading>::builder("load/readings")
        .queue_depth(256)
        .create()
        .expect("publisher");
    let frames = Publisher::<Frame>::builder("load/frames")
        .queue_depth(8)
        .max_tail_bytes(FRAME_BYTES)
        .create()
        .expect("publisher");
    let start = Instant::now();
    while readings.subscriber_count() == 0 || frames.subscriber_count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "no recorder");
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    let (mut r, mut f) = (0u64, 0u64);
    let end = Duration::from_secs_f64(seconds);
    loop {
        let now = start.elapsed();
        if now >= end {
            break;
        }
        let due_r = Duration::from_secs_f64(r as f64 / READING_HZ);
        let due_f = Duration::from_secs_f64(f as f64 / FRAME_HZ);
        if due_f <= now {
            f += 1;
            let mut frame = frames.loan().expect("loan");
            let mut w = frame.writer();
            *w.seq = f;
            *w.stamp_ns = now.as_nanos() as u64;
            w.alloc_pixels(FRAME_BYTES).expect("tail").fill(f as u8);
            frame.publish().expect("publish");
        } else if due_r <= now {
            r += 1;
            let reading = Reading {
                seq: r,
                stamp_ns: now.as_nanos() as u64,
                values: [r as u8; 1008],
            };
            readings.send(reading).expect("publish");
        } else {
            std::thread::sleep(due_r.min(due_f) - now);
        }
    }
    println!("sent {r} {f}");
}

/// A fresh root (or directory) under /dev/shm, removed when dropped.
fn bench_root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shmx-bench-")
        .tempdir_in("/dev/shm")
        .expect("a root")
}

/// A thread that counts the samples of `topic` under `root` until none comes for 2 s.
fn count_received<T: ShmMessage>(root: &Path, topic: &str) -> std::thread::JoinHandle<u64> {
    let sub = Subscriber::<T>::builder(topic)
        .root(root)
        .queue_depth(256)
        .create()
        .expect("subscriber");
    std::thread::spawn(move || {
        let mut n = 0u64;
        while let Some(s) = sub.recv_timeout(Duration::from_secs(2)).expect("recv") {
            n += 1;
            std::hint::black_box(&*s);
        }
        n
    })
}

fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn record(root: &Path, file: &Path, seconds: f64) {
    let mut recorder = Recorder::builder(file)
        .root(root)
        .create()
        .expect("recorder");
    let mut child = Command::new(std::env::current_exe().expect("this program"))
        .env(CHILD, seconds.to_string())
        .env("SHMX_ROOT", root)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the publisher");
    let (wall, cpu) = (Instant::now(), cpu_time());
    loop {
        recorder.poll(Duration::from_millis(50)).expect("poll");
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success());
            // What it sent is queued or taken: take the rest.
            for _ in 0..10 {
                recorder.poll(Duration::from_millis(10)).expect("poll");
            }
            break;
        }
    }
    let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
    let out = child.wait_with_output().expect("its output");
    let sent = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = recorder.finish().expect("finish");
    let size = std::fs::metadata(file).expect("the file").len();
    println!("## Recording throughput ({seconds} s, file on tmpfs)\n");
    println!("Publisher process: {}", sent.trim());
    println!("\n| topic | recorded | dropped | bytes |");
    println!("|---|--:|--:|--:|");
    let mut bytes = 0;
    for t in &summary.topics {
        println!(
            "| {} | {} | {} | {:.1} MB |",
            t.topic,
            t.messages,
            t.drops,
            t.bytes as f64 / 1e6
        );
        bytes += t.bytes;
    }
    println!(
        "\nRecorder: {:.1} MB/s of samples to a {:.1} MB file; CPU {:.2} s over {:.2} s wall = {:.1}% of one core.",
        bytes as f64 / 1e6 / wall.as_secs_f64(),
        size as f64 / 1e6,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
}

fn replay(file: &Path) {
    let root = bench_root();
    let counter = count_received::<Reading>(root.path(), "load/readings");
    let start = Instant::now();
    let played = Player::new(file)
        .root(root.path())
        .topics(["load/readings"])
        .rate(f64::INFINITY)
        .publisher_config(PublisherConfig {
            queue_depth: 256,
            overflow: Overflow::Block,
            ..PublisherConfig::default()
        })
        .play()
        .expect("play");
    let took = start.elapsed();
    let received = counter.join().expect("counter");
    // Reading alone (no publishing): every message of both topics.
    let start = Instant::now();
    let mut read = 0u64;
    for e in Recording::open(file).expect("open").reader().expect("read") {
        if let Entry::Message(m) = e.expect("record") {
            read += 1;
            std::hint::black_box(m.data.len());
        }
    }
    let read_took = start.elapsed();
    println!("\n## Replay\n");
    println!(
        "Played {} readings (1 KiB) as fast as they go: {:.2} s, {:.0} k msg/s (received {}; the file is read twice: once for the topics' types, once to play).",
        played.messages,
        took.as_secs_f64(),
        played.messages as f64 / took.as_secs_f64() / 1e3,
        received
    );
    println!(
        "Read every message of the file without shmx: {read} in {:.3} s, {:.0} k msg/s.",
        read_took.as_secs_f64(),
        read as f64 / read_took.as_secs_f64() / 1e3
    );
}
