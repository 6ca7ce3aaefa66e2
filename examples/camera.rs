//! Camera: two processes stream full-HD RGB frames (6 MB each) through shared memory, with
//! the pixels written and read in place.
//!
//! ```text
//! cargo run --release --example camera [-- --count 300 --fps 60]
//! ```
//!
//! Run without a role, the program starts itself twice more, once as a **subscriber** and
//! once as a **publisher** of the topic `examples/camera/<pid>-<time>`, waits for both and
//! fails if either does (or if the topic's files were left behind). It shows:
//!
//! - a message with variable-length data, `Frame`: fixed fields, a `RelStr` label and a
//!   `RelSlice<u8>` of pixels, both stored in the same chunk of shared memory as the
//!   message, after it (its *tail*: `max_tail_bytes` = one frame and a label);
//! - the publisher writing each 1920x1080x3 frame *in place*: `alloc_pixels` hands out the
//!   chunk's bytes as a `&mut [u8]` (not zeroed: recycled from an earlier frame, so every
//!   byte is written), filled row by row with a moving diagonal gradient, the frame number in
//!   the first 8 bytes; nothing is serialised or copied on the way to the subscriber;
//! - end-to-end integrity: the publisher works out the checksum of the frame it writes from
//!   the pattern (without reading the frame back), the subscriber sums every pixel byte it
//!   received and compares;
//! - a small pool for big chunks: one subscriber, queue depth 4, one loan, one held sample:
//!   at most 6 chunks of ~6 MB (the worst case `max_subscribers × (queue_depth + max_held +
//!   history) + history + max_loans`), of which the pool reserves only what the traffic
//!   needs (it starts with two and grows);
//! - `Overflow::Block`: every frame arrives (`sample.sequence()` would reveal a gap);
//! - the one-way latency of each frame, from a `CLOCK_MONOTONIC` stamp written just before
//!   `publish()` to the subscriber's clock reading right after `recv_timeout()` returns
//!   (the subscriber sleeps between frames, so this includes its wake-up).
//!
//! By default 300 frames go at 60 fps (5 s); a debug build, whose checksum loop is far
//! slower, sends 100. `--fps 0` publishes as fast as the subscriber keeps up. Roles can also be started by hand,
//! in two terminals: `camera subscriber TOPIC [--count N]` and
//! `camera publisher TOPIC [--count N] [--fps F]`.

use shmx::{Overflow, Publisher, Subscriber, TopicConfig};
use shmx_suite::{
    format_ns, monotonic_ns, spawn_self, topic_dir, unique_topic, wait_all, wait_until,
    LatencySummary,
};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The message type. The derive generates a reader per relative-pointer field
/// (`frame.label()`, `frame.pixels()`) and a writer, `FrameWriter`, with `set_label`,
/// `set_pixels` and `alloc_pixels`.
mod message {
    use shmx::{RelSlice, RelStr, ShmMessage};

    /// One camera frame: 48 bytes of fixed fields, label and pixels in the chunk's tail.
    #[derive(ShmMessage)]
    #[repr(C)]
    pub struct Frame {
        /// The publisher's own count, 1, 2, 3, ... (checked against `sample.sequence()`).
        pub seq: u64,
        /// `CLOCK_MONOTONIC` in ns, taken just before `publish()`.
        pub sent_ns: u64,
        /// Wrapping sum of the pixel bytes read as little-endian `u64` words.
        pub checksum: u64,
        pub width: u32,
        pub height: u32,
        /// `cam0 frame <seq>`.
        pub label: RelStr,
        /// `height` rows of `width` RGB pixels.
        pub pixels: RelSlice<u8>,
    }

    const _: () = assert!(size_of::<Frame>() == 48);
}

use message::Frame;

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
const ROW_BYTES: usize = WIDTH * 3;
const FRAME_BYTES: usize = ROW_BYTES * HEIGHT;
/// Room for the longest label (`cam0 frame 18446744073709551615` is 31 bytes).
const LABEL_BYTES: usize = 32;
/// The gradient repeats every `PERIOD` pixels.
const PERIOD: usize = 256;
/// Pixels the gradient moves per frame.
const SPEED: usize = 3;
/// Frames and rate by default: 5 s of video. An unoptimised build sums the pixels some 50
/// times slower (~40 ms a frame), so it sends fewer to finish in about as long.
const COUNT: u64 = if cfg!(debug_assertions) { 100 } else { 300 };
const FPS: u32 = 60;
/// Queue depth of the connection: how many frames may wait for the subscriber before the
/// publisher blocks.
const QUEUE_DEPTH: usize = 4;
/// How long either side waits for the other before giving up.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

// Rows are whole `u64` words, so the checksum of a frame is the sum of its rows' checksums.
const _: () = assert!(ROW_BYTES & 7 == 0);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Topic limits: a single publisher and subscriber, and no history, so the publisher's pool
/// holds 1 × (4 queued + 1 held + 0 history) + 0 + 1 loan = 6 chunks. Both sides pass the
/// same limits (whichever creates the topic sets them).
fn topic_config() -> TopicConfig {
    TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: QUEUE_DEPTH,
        max_held: 1,
        max_history: 0,
        ..TopicConfig::default()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, result) = match parse(&args) {
        Ok(Args {
            role: None,
            count,
            fps,
        }) => ("parent", parent(count, fps)),
        Ok(Args {
            role: Some((role, topic)),
            count,
            fps,
        }) => {
            if role == "subscriber" {
                ("sub", subscriber(&topic, count))
            } else {
                ("pub", publisher(&topic, count, fps))
            }
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "usage: camera [--count N] [--fps F]\n       camera subscriber TOPIC [--count N]\n       camera publisher TOPIC [--count N] [--fps F]"
            );
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[{role}] error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    /// `(subscriber|publisher, topic)` for a child.
    role: Option<(String, String)>,
    count: u64,
    /// Frames per second; 0 for as fast as possible.
    fps: u32,
}

fn parse(args: &[String]) -> std::result::Result<Args, String> {
    let mut parsed = Args {
        role: None,
        count: COUNT,
        fps: FPS,
    };
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--count" | "--fps" => {
                let value = it.next().ok_or(format!("{arg} needs a value"))?;
                if arg == "--count" {
                    parsed.count = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(format!("--count must be a positive integer, not {value:?}"))?;
                } else {
                    parsed.fps = value
                        .parse()
                        .map_err(|_| format!("--fps must be a whole number, not {value:?}"))?;
                }
            }
            _ => positional.push(arg.clone()),
        }
    }
    match positional.as_slice() {
        [] => {}
        [role, topic] if role == "subscriber" || role == "publisher" => {
            parsed.role = Some((role.clone(), topic.clone()));
        }
        _ => return Err(format!("unexpected arguments {positional:?}")),
    }
    Ok(parsed)
}

/// Starts a subscriber and a publisher process and waits for both.
fn parent(count: u64, fps: u32) -> Result<()> {
    let topic = unique_topic("examples/camera");
    let dir = topic_dir(&topic)?;
    let rate = if fps == 0 {
        "as fast as possible".to_owned()
    } else {
        format!("at {fps} fps")
    };
    println!("shmx camera: {count} frames of {WIDTH}x{HEIGHT} RGB {rate} on topic {topic:?}");
    println!("  files under {}", dir.parent().unwrap_or(&dir).display());
    let (count, fps) = (count.to_string(), fps.to_string());
    let mut children = Vec::new();
    for role in ["subscriber", "publisher"] {
        let mut args = vec![role, topic.as_str(), "--count", count.as_str()];
        if role == "publisher" {
            args.extend(["--fps", fps.as_str()]);
        }
        match spawn_self(args) {
            Ok(child) => children.push((role.to_owned(), child)),
            Err(e) => {
                // Whoever started waits for a peer with a deadline, so it ends by itself.
                wait_all(children, PEER_TIMEOUT * 2, Duration::from_secs(1));
                return Err(format!("cannot start the {role}: {e}").into());
            }
        }
    }
    // The run itself takes count / fps seconds; the peers' deadlines end a broken one.
    let ok = wait_all(children, Duration::from_secs(120), Duration::from_secs(5));
    if dir.exists() {
        return Err(format!("{} was left behind", dir.display()).into());
    }
    if !ok {
        return Err("a child process failed".into());
    }
    println!("done: both processes succeeded and left no files behind");
    Ok(())
}

/// A strip of the gradient, `PERIOD + WIDTH` pixels long: row `y` of frame `seq` is the
/// `WIDTH` pixels from pixel `shift(seq, y)`, so rows are plain copies.
fn gradient() -> Vec<u8> {
    (0..PERIOD + WIDTH)
        .flat_map(|p| {
            let v = (p % PERIOD) as u8;
            [v, v.wrapping_mul(2), 255 - v]
        })
        .collect()
}

/// Where in the strip row `y` of frame `seq` starts, in pixels (below `PERIOD`).
fn shift(seq: u64, y: usize) -> usize {
    ((seq % PERIOD as u64) as usize * SPEED + y) % PERIOD
}

/// Wrapping sum of `bytes` read as little-endian `u64` words (a last partial word padded
/// with zeroes).
fn checksum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut sum = 0u64;
    for w in &mut words {
        sum = sum.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    sum.wrapping_add(u64::from_le_bytes(last))
}

/// Sends `count` frames at `fps` (0: as fast as possible) once a subscriber is there.
fn publisher(topic: &str, count: u64, fps: u32) -> Result<()> {
    let publisher = Publisher::<Frame>::builder(topic)
        .topic_config(topic_config())
        .queue_depth(QUEUE_DEPTH)
        .max_loans(1)
        .max_tail_bytes(FRAME_BYTES + LABEL_BYTES)
        .overflow(Overflow::Block)
        // A subscriber that stops reading makes `publish` fail instead of hang.
        .block_timeout(Duration::from_secs(5))
        .create()?;
    let chunks = publisher.pool_stats().total;
    println!(
        "[pub] pool: {chunks} chunks of ~{:.1} MiB = ~{:.0} MiB of shared memory",
        (size_of::<Frame>() + FRAME_BYTES + LABEL_BYTES) as f64 / (1 << 20) as f64,
        (chunks * (size_of::<Frame>() + FRAME_BYTES + LABEL_BYTES)) as f64 / (1 << 20) as f64,
    );
    // The strip and the checksum of every row it can make: a frame's checksum is then a sum
    // of HEIGHT numbers, worked out without reading the frame back from shared memory.
    let strip = gradient();
    let row_sums: Vec<u64> = (0..PERIOD)
        .map(|s| checksum(&strip[s * 3..s * 3 + ROW_BYTES]))
        .collect();
    if !wait_until(PEER_TIMEOUT, || publisher.subscriber_count() >= 1) {
        return Err(format!("no subscriber showed up within {PEER_TIMEOUT:?}").into());
    }
    println!("[pub] subscriber connected; sending {count} frames");
    let period = (fps > 0).then(|| Duration::from_secs(1) / fps);
    let start = Instant::now();
    let mut busy = Duration::ZERO;
    for seq in 1..=count {
        if let Some(period) = period {
            let due = start + period * (seq - 1) as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let began = Instant::now();
        let mut frame = publisher.loan()?;
        let mut w = frame.writer();
        *w.seq = seq;
        *w.width = WIDTH as u32;
        *w.height = HEIGHT as u32;
        // Allocated first, so the pixels start 8-aligned right after the message.
        let pixels = w.alloc_pixels(FRAME_BYTES)?;
        let mut sum = 0u64;
        for (y, row) in pixels.chunks_exact_mut(ROW_BYTES).enumerate() {
            let s = shift(seq, y);
            row.copy_from_slice(&strip[s * 3..s * 3 + ROW_BYTES]);
            sum = sum.wrapping_add(row_sums[s]);
        }
        // The frame number replaces the first word of row 0.
        let first = u64::from_le_bytes(pixels[..8].try_into().expect("8 bytes"));
        pixels[..8].copy_from_slice(&seq.to_le_bytes());
        *w.checksum = sum.wrapping_sub(first).wrapping_add(seq);
        w.set_label(&format!("cam0 frame {seq}"))?;
        *w.sent_ns = monotonic_ns();
        frame.publish()?;
        busy += began.elapsed();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "[pub] sent {count} frames in {secs:.2} s ({:.1} fps); writing and publishing a frame \
         took {} on average",
        count as f64 / secs,
        format_ns((busy / count as u32).as_nanos() as u64)
    );
    Ok(())
}

/// Receives `count` frames, checks every one and reports rate and one-way latencies.
// The README promises Rust 1.85: no `is_multiple_of` (1.87) here.
#[clippy::msrv = "1.85"]
fn subscriber(topic: &str, count: u64) -> Result<()> {
    let subscriber = Subscriber::<Frame>::builder(topic)
        .topic_config(topic_config())
        .queue_depth(QUEUE_DEPTH)
        .create()?;
    println!("[sub] subscribed; waiting for {count} frames");
    let mut latencies = Vec::with_capacity(count as usize);
    let (mut received, mut bad, mut last_seq) = (0u64, 0u64, 0u64);
    let mut check_time = Duration::ZERO;
    let mut first_at = None;
    while received < count {
        let Some(frame) = subscriber.recv_timeout(PEER_TIMEOUT)? else {
            println!("[sub] nothing for {PEER_TIMEOUT:?}; the publisher is gone");
            break;
        };
        let now = monotonic_ns();
        first_at.get_or_insert_with(Instant::now);
        let latency = now.saturating_sub(frame.sent_ns);
        latencies.push(latency);
        received += 1;
        let seq = frame.sequence();
        if seq != last_seq + 1 {
            println!("[sub] frame {seq} after {last_seq}: frames lost");
            bad += 1;
        }
        last_seq = seq;
        let began = Instant::now();
        let pixels = frame.pixels();
        let sum = checksum(pixels);
        check_time += began.elapsed();
        let label = format!("cam0 frame {seq}");
        let intact = frame.seq == seq
            && (frame.width as usize, frame.height as usize) == (WIDTH, HEIGHT)
            && pixels.len() == FRAME_BYTES
            && pixels[..8] == seq.to_le_bytes()
            && frame.label() == label
            && sum == frame.checksum;
        if !intact {
            bad += 1;
            println!(
                "[sub] frame {seq} is damaged: label {:?}, {}x{}, {} bytes, checksum {sum:#x}, \
                 expected {:#x}",
                frame.label(),
                frame.width,
                frame.height,
                pixels.len(),
                frame.checksum
            );
        }
        if seq <= 3 || seq % 100 == 0 {
            println!(
                "[sub] {:<16} {}x{}  {:.1} MB  checksum {sum:016x} ok  latency {}",
                frame.label(),
                frame.width,
                frame.height,
                pixels.len() as f64 / 1e6,
                format_ns(latency)
            );
        }
    }
    let secs = first_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let missing = count - received;
    println!(
        "[sub] received {received} frames in {secs:.2} s ({:.1} fps, {:.0} MB/s), {bad} bad, \
         {missing} missing",
        received.saturating_sub(1) as f64 / secs.max(f64::MIN_POSITIVE),
        (received.saturating_sub(1) as usize * FRAME_BYTES) as f64 / 1e6 / secs.max(1e-9)
    );
    if received > 0 {
        println!(
            "[sub] checksum of all {FRAME_BYTES} pixel bytes: {} per frame",
            format_ns((check_time / received as u32).as_nanos() as u64)
        );
    }
    if let Some(summary) = LatencySummary::from_samples(&mut latencies) {
        println!("[sub] one-way latency: {summary}");
        println!(
            "[sub]                  mean {}",
            format_ns(summary.mean as u64)
        );
    }
    if bad > 0 || missing > 0 {
        return Err(format!(
            "expected {count} intact frames in order: {bad} bad, {missing} missing"
        )
        .into());
    }
    Ok(())
}
