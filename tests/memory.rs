//! Pools that follow the traffic, across real processes: a camera topic whose pool stays a
//! few frames large instead of the fixed pool's worst case, samples of random sizes that
//! take chunks of many size classes, and processes killed while their pools had grown (a
//! subscriber holding samples of several segments, a publisher with several segment files).
//!
//! As in `tests/lifecycle.rs`, each test spawns this test binary again as children (see
//! `child_main` and `tests/common/mod.rs`), each with the test's own `SHMX_ROOT`; the parent
//! sequences them through lines on their stdin/stdout and looks at the topic's files itself
//! (their allocated blocks: what shared memory holds), so no test sleeps and hopes. Every test
//! ends by checking that its root is empty once every process has exited (or was reclaimed).
//!
//! # A race, fixed
//!
//! A publisher adds a segment file under a temporary name `.tmp.<pid>.<n>` that it then links
//! into place; a sweep (which any participant runs, with the root lock, when it opens the
//! topic or after a long wait) removes every `.tmp.*` file of the topic's directory. Growth
//! made its file without the root lock at first, and a sweep in that window made the loan
//! fail with `data.<inc>.<k>: No such file or directory`; now it holds the lock.
//! `growth_survives_concurrent_sweeps` keeps it so.

mod common;

use common::rng::XorShift;
use common::{await_parent, emit, poll, Proc, Role, Root, DEADLINE};
use shmx::{
    Overflow, Publisher, PublisherConfig, RelSlice, Sample, ShmMessage, Subscriber, TopicConfig,
};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------------

/// One full-HD RGB frame: the pixels in the chunk's tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Frame {
    /// The publisher's own count, 1, 2, 3, ...
    seq: u64,
    width: u32,
    height: u32,
    /// `height` rows of `width` RGB pixels, as [`fill`] writes them for [`frame_offset`].
    pixels: RelSlice<u8>,
}

/// A sample of any size: `len` bytes of data in the chunk's tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    /// The publisher's own count, 1, 2, 3, ...
    seq: u64,
    /// Bytes of `data` (checked against the slice the subscriber reads).
    len: u64,
    /// `len` bytes, as [`fill`] writes them for [`blob_offset`].
    data: RelSlice<u8>,
}

const _: () = assert!(size_of::<Frame>() == 24 && size_of::<Blob>() == 24);

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
/// Bytes of one frame's pixels.
const FRAME_BYTES: usize = WIDTH * HEIGHT * 3;
/// Frames the camera test sends.
const FRAMES: u64 = 1000;
/// Frames the camera publisher sends ahead of the last one acknowledged.
const WINDOW: u64 = 3;
/// Every this many frames the subscriber compares every byte (the others: [`SPOTS`] bytes).
const FULL_CHECK_EVERY: u64 = 50;
/// Bytes of each frame compared at random places.
const SPOTS: usize = 64;

/// Smallest and largest data of a [`Blob`] (1 KiB, 6 MiB): also the publishers' tail.
const MIN_BLOB: usize = 1 << 10;
const MAX_BLOB: usize = 6 << 20;
/// Samples the random-sizes test sends.
const BLOBS: u64 = 400;
/// Data lengths of the samples the crashed subscriber holds: classes of 1 KiB, 32 KiB,
/// 512 KiB, 4 MiB (three, so that class needs a second segment: it starts with two chunks)
/// and the whole tail.
const HELD_LENS: [usize; 7] = [
    1_000, 20_000, 300_000, 3_000_000, 3_000_000, 3_000_000, 5_000_000,
];
/// Data lengths the crashed publisher sends: five classes besides segment 0's.
const GROWN_LENS: [usize; 6] = [2_000, 40_000, 700_000, 3_000_000, 3_000_000, 5_000_000];

// ---------------------------------------------------------------------------------------------
// Contents
// ---------------------------------------------------------------------------------------------

/// Length of the byte pattern the contents repeat: a prime, so no power-of-two row or chunk
/// size lines up with it.
const PERIOD: usize = 4093;
/// Seed of the pattern, the sizes and the places checked (printed in failure messages).
const SEED: u64 = 0x5eed_0f6a_110c_8d42;

/// [`PERIOD`] random bytes, twice in a row (so that any rotation is one slice of it).
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut rng = XorShift::new(SEED, 0, 0);
        let mut p: Vec<u8> = (0..PERIOD).map(|_| rng.next() as u8).collect();
        p.extend_from_within(..);
        p
    })
}

/// The rotation of the pattern in frame `seq`: a different one for each of the first
/// [`PERIOD`] frames (the factor is not a multiple of the prime).
fn frame_offset(seq: u64) -> usize {
    ((seq % PERIOD as u64) * 1_000_003 % PERIOD as u64) as usize
}

/// The rotation of the pattern in blob `seq`.
fn blob_offset(seq: u64) -> usize {
    ((seq % PERIOD as u64) * 2_654_435 % PERIOD as u64 + 17) as usize % PERIOD
}

/// Byte `i` of contents with rotation `offset`: `pattern()[(i + offset) % PERIOD]`.
fn expected_byte(offset: usize, i: usize) -> u8 {
    pattern()[offset + i % PERIOD]
}

/// Writes contents with rotation `offset` into `buf` (every byte: chunks are recycled), a
/// pattern-long slice at a time (a `memcpy` each, quick even unoptimised).
fn fill(buf: &mut [u8], offset: usize) {
    let pat = &pattern()[offset..offset + PERIOD];
    for part in buf.chunks_mut(PERIOD) {
        part.copy_from_slice(&pat[..part.len()]);
    }
}

/// The first byte of `buf` that differs from contents with rotation `offset`, if any.
fn first_difference(buf: &[u8], offset: usize) -> Option<usize> {
    let pat = &pattern()[offset..offset + PERIOD];
    for (j, part) in buf.chunks(PERIOD).enumerate() {
        if part != &pat[..part.len()] {
            let at = (0..part.len()).find(|&i| part[i] != pat[i]).unwrap_or(0);
            return Some(j * PERIOD + at);
        }
    }
    None
}

/// Checks every byte of `buf` against contents with rotation `offset`.
#[track_caller]
fn check_all(what: &str, buf: &[u8], offset: usize) {
    if let Some(i) = first_difference(buf, offset) {
        panic!(
            "{what}: byte {i} of {} is {:#04x}, expected {:#04x} (seed {SEED:#x})",
            buf.len(),
            buf[i],
            expected_byte(offset, i)
        );
    }
}

/// Checks the first and last bytes of `buf` and [`SPOTS`] bytes at places that depend on
/// `seq` against contents with rotation `offset`.
#[track_caller]
fn check_spots(what: &str, seq: u64, buf: &[u8], offset: usize) {
    let mut rng = XorShift::new(SEED, seq, 7);
    let places = [0, buf.len() - 1]
        .into_iter()
        .chain((0..SPOTS).map(|_| rng.below(buf.len())));
    for i in places {
        assert_eq!(
            buf[i],
            expected_byte(offset, i),
            "{what}: byte {i} of {} (seed {SEED:#x})",
            buf.len()
        );
    }
}

/// Data length of blob `seq`: a power of two from 2^10 to 2^22 drawn evenly, then a length
/// between it and the next (capped at [`MAX_BLOB`]), so every class from 1 KiB up gets its
/// share; the first blob is the shortest possible, the second the longest.
fn blob_len(seq: u64) -> usize {
    match seq {
        1 => MIN_BLOB,
        2 => MAX_BLOB,
        _ => {
            let mut rng = XorShift::new(SEED, seq, 3);
            let low = 1usize << (10 + rng.below(13));
            (low + rng.below(low)).min(MAX_BLOB)
        }
    }
}

/// Publishes blob `seq` with `len` bytes of data in a chunk of the smallest class that
/// holds it; returns the chunk's tail.
fn publish_blob(publisher: &Publisher<Blob>, seq: u64, len: usize) -> usize {
    let mut sample = publisher
        .loan_with_tail(len)
        .unwrap_or_else(|e| panic!("loan for {len} bytes (blob {seq}): {e}"));
    let tail = sample.tail_capacity();
    assert!(tail >= len, "blob {seq}: a tail of {tail} for {len} bytes");
    let mut w = sample.writer();
    *w.seq = seq;
    *w.len = len as u64;
    let data = w
        .alloc_data(len)
        .unwrap_or_else(|e| panic!("{len} data bytes of blob {seq}: {e}"));
    fill(data, blob_offset(seq));
    sample
        .publish()
        .unwrap_or_else(|e| panic!("publish blob {seq}: {e}"));
    tail
}

/// Receives blob `seq` (waiting up to [`DEADLINE`]) and checks all of it.
fn receive_blob(subscriber: &Subscriber<Blob>, seq: u64, len: usize) -> Sample<'_, Blob> {
    let blob = subscriber
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("receive blob {seq}: {e}"))
        .unwrap_or_else(|| panic!("no blob {seq} within {DEADLINE:?}"));
    check_blob(&blob, seq, len);
    blob
}

/// Takes blob `seq`, polling (up to [`DEADLINE`]) instead of sleeping, and checks all of
/// it. A subscriber that never sleeps never sweeps the topic (see "A race" in the module
/// docs).
fn poll_blob(subscriber: &Subscriber<Blob>, seq: u64, len: usize) -> Sample<'_, Blob> {
    let blob = poll(&format!("blob {seq}"), || {
        subscriber
            .take()
            .unwrap_or_else(|e| panic!("take blob {seq}: {e}"))
    });
    check_blob(&blob, seq, len);
    blob
}

/// Checks that `blob` is blob `seq` with `len` bytes of data, all of them intact.
#[track_caller]
fn check_blob(blob: &Sample<'_, Blob>, seq: u64, len: usize) {
    assert_eq!(
        (blob.sequence(), blob.seq),
        (seq, seq),
        "blobs out of order"
    );
    assert_eq!(blob.len, len as u64, "length of blob {seq}");
    assert_eq!(blob.data().len(), len, "data of blob {seq}");
    assert_eq!(
        blob.payload_len(),
        size_of::<Blob>() + len,
        "published length of blob {seq}"
    );
    check_all(&format!("blob {seq}"), blob.data(), blob_offset(seq));
}

/// A publisher of blobs with the whole [`MAX_BLOB`] tail and otherwise default settings.
fn blob_publisher(topic: &str) -> Publisher<Blob> {
    Publisher::<Blob>::builder(topic)
        .max_tail_bytes(MAX_BLOB)
        .create()
        .expect("create the publisher")
}

/// Waits until `publisher` has `n` subscribers.
fn await_subscribers<T: ShmMessage>(publisher: &Publisher<T>, n: usize) {
    poll(&format!("{n} subscriber(s) to connect"), || {
        (publisher.subscriber_count() == n).then_some(())
    });
}

/// `pool_classes()` in one line: `payload:chunks/in_use/segments` per class with chunks.
fn classes_line<T: ShmMessage>(publisher: &Publisher<T>) -> String {
    publisher
        .pool_classes()
        .iter()
        .filter(|c| c.chunks > 0)
        .map(|c| {
            format!(
                "{}:{}/{}/{}",
                c.payload_bytes, c.chunks, c.in_use, c.segments
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/// Entry point of every child process; returns at once in the parent (no `SHMX_CHILD`).
#[test]
fn child_main() {
    common::run_child(|r| match r.name.as_str() {
        "cam-pub" => camera_publisher_role(r),
        "cam-sub" => camera_subscriber_role(r),
        "blob-pub" => blob_publisher_role(r),
        "blob-sub" => blob_subscriber_role(r),
        "hold-pub" => holding_publisher_role(r),
        "hold-sub" => holding_subscriber_role(r),
        "grow-pub" => growing_publisher_role(r),
        "drain-sub" => draining_subscriber_role(r),
        "reclaim-sub" => reclaiming_subscriber_role(r),
        "clean" => clean_role(r),
        "cycle-pub" => cycling_publisher_role(r),
        "cycle-sub" => cycling_subscriber_role(r),
        "churn-pub" => churning_publisher_role(r),
        "sweeper" => sweeper_role(r),
        other => panic!("unknown role {other}"),
    });
}

/// `cam-pub topic= n=`: subscribes to `<topic>/ack`, publishes frames on `topic` with the
/// default settings but a tail of one frame; once the subscriber is there says
/// `before reserved=<bytes> tail=<bytes>` and waits for `go`; publishes frames `1..=n`, each
/// only once frame `seq - WINDOW` is acknowledged (says `ahead WINDOW reserved=` when it
/// first has to wait for an ack); once every frame is acknowledged and back in the pool
/// says `done reserved= chunks= top_chunks= top_chunk_bytes= segments= classes=`, and
/// waits for `exit`.
fn camera_publisher_role(r: &Role) -> i32 {
    let topic = r.str("topic");
    let acks = Subscriber::<u64>::new(&format!("{topic}/ack")).expect("subscribe to the acks");
    let publisher = Publisher::<Frame>::builder(topic)
        .max_tail_bytes(FRAME_BYTES)
        .create()
        .expect("create the camera publisher");
    await_subscribers(&publisher, 1);
    emit(format_args!(
        "before reserved={} tail={}",
        publisher.reserved_bytes(),
        publisher.tail_capacity()
    ));
    await_parent("go");
    let n = r.num("n");
    let mut acked = 0u64;
    let await_ack = |acked: &mut u64| {
        let ack = *acks
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("receive an ack after {acked}: {e}"))
            .unwrap_or_else(|| panic!("no ack after {acked} within {DEADLINE:?}"));
        assert_eq!(ack, *acked + 1, "acks out of order");
        *acked = ack;
    };
    for seq in 1..=n {
        if seq == WINDOW + 1 {
            // The pool has what the window needs; the subscriber starts receiving now.
            emit(format_args!(
                "ahead {WINDOW} reserved={}",
                publisher.reserved_bytes()
            ));
        }
        while acked + WINDOW < seq {
            await_ack(&mut acked);
        }
        let mut frame = publisher
            .loan()
            .unwrap_or_else(|e| panic!("loan frame {seq}: {e}"));
        let mut w = frame.writer();
        *w.seq = seq;
        *w.width = WIDTH as u32;
        *w.height = HEIGHT as u32;
        let pixels = w
            .alloc_pixels(FRAME_BYTES)
            .unwrap_or_else(|e| panic!("pixels of frame {seq}: {e}"));
        fill(pixels, frame_offset(seq));
        frame
            .publish()
            .unwrap_or_else(|e| panic!("publish frame {seq}: {e}"));
    }
    while acked < n {
        await_ack(&mut acked);
    }
    let stats = poll("every frame back in the pool", || {
        let st = publisher.pool_stats();
        (st.free == st.total).then_some(st)
    });
    let classes = publisher.pool_classes();
    let top = classes.last().expect("a pool has classes");
    emit(format_args!(
        "done reserved={} chunks={} top_chunks={} top_chunk_bytes={} segments={} classes={}",
        publisher.reserved_bytes(),
        stats.total,
        top.chunks,
        top.chunk_bytes,
        classes.iter().map(|c| c.segments).sum::<usize>(),
        classes_line(&publisher)
    ));
    await_parent("exit");
    drop(publisher);
    drop(acks);
    0
}

/// `cam-sub topic= n=`: subscribes to `topic`, publishes acks on `<topic>/ack`, says `ready`;
/// on `go`, once the publisher listens to the acks, receives frames `1..=n`, in order,
/// checks them (every byte of every [`FULL_CHECK_EVERY`]th, [`SPOTS`] of the others), lets
/// go of each and then acknowledges it; says `received n full=<frames checked whole>`,
/// waits for `exit`.
fn camera_subscriber_role(r: &Role) -> i32 {
    let topic = r.str("topic");
    let frames = Subscriber::<Frame>::new(topic).expect("subscribe to the camera");
    let acks = Publisher::<u64>::new(&format!("{topic}/ack")).expect("publish acks");
    emit("ready");
    // Receiving (and so sweeping after waits) only once the first frames made the pool grow:
    // see "A race" in the module docs.
    await_parent("go");
    await_subscribers(&acks, 1);
    let n = r.num("n");
    let mut full = 0;
    for seq in 1..=n {
        let frame = frames
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("receive frame {seq}: {e}"))
            .unwrap_or_else(|| panic!("no frame {seq} within {DEADLINE:?}"));
        assert_eq!(
            (frame.sequence(), frame.seq),
            (seq, seq),
            "frames out of order"
        );
        assert_eq!((frame.width, frame.height), (WIDTH as u32, HEIGHT as u32));
        let pixels = frame.pixels();
        assert_eq!(pixels.len(), FRAME_BYTES, "pixels of frame {seq}");
        let what = format!("frame {seq}");
        if seq % FULL_CHECK_EVERY == 0 {
            check_all(&what, pixels, frame_offset(seq));
            full += 1;
        } else {
            check_spots(&what, seq, pixels, frame_offset(seq));
        }
        drop(frame);
        acks.send(seq)
            .unwrap_or_else(|e| panic!("acknowledge frame {seq}: {e}"));
    }
    let extra = frames.take().expect("take after the last frame");
    assert!(extra.is_none(), "a frame after the last one");
    drop(extra);
    emit(format_args!("received {n} full={full}"));
    await_parent("exit");
    drop(acks);
    drop(frames);
    0
}

/// `blob-pub topic= n=`: publishes blobs `1..=n` of [`blob_len`] bytes, each through
/// `loan_with_tail` (checking it took the smallest class that holds it), queue depth 4,
/// blocking (so none is lost); says `sent n tails=<distinct tails used>`; on `check`, once
/// every chunk is back, says `pool classes=<classes with chunks> segments= reserved=
/// detail=`, and leaves.
fn blob_publisher_role(r: &Role) -> i32 {
    let publisher = Publisher::<Blob>::builder(r.str("topic"))
        .max_tail_bytes(MAX_BLOB)
        .queue_depth(4)
        .overflow(Overflow::Block)
        // A subscriber that stops reading fails the test instead of hanging it.
        .block_timeout(DEADLINE)
        .create()
        .expect("create the publisher");
    let caps: Vec<usize> = publisher
        .pool_classes()
        .iter()
        .map(|c| c.payload_bytes)
        .collect();
    await_subscribers(&publisher, 1);
    let n = r.num("n");
    let mut tails = BTreeSet::new();
    for seq in 1..=n {
        let len = blob_len(seq);
        let tail = publish_blob(&publisher, seq, len);
        let smallest = caps
            .iter()
            .find(|&&c| c >= size_of::<Blob>() + len)
            .expect("a class holds every length up to the tail");
        assert_eq!(
            tail + size_of::<Blob>(),
            *smallest,
            "blob {seq} of {len} bytes is not in the smallest class that holds it ({caps:?})"
        );
        tails.insert(tail);
    }
    emit(format_args!("sent {n} tails={}", tails.len()));
    await_parent("check");
    let stats = poll("every blob back in the pool", || {
        let st = publisher.pool_stats();
        (st.free == st.total).then_some(st)
    });
    let classes = publisher.pool_classes();
    assert!(
        classes.iter().all(|c| c.in_use == 0),
        "{classes:?} {stats:?}"
    );
    emit(format_args!(
        "pool classes={} segments={} reserved={} detail={}",
        classes.iter().filter(|c| c.chunks > 0).count(),
        classes.iter().map(|c| c.segments).sum::<usize>(),
        publisher.reserved_bytes(),
        classes_line(&publisher)
    ));
    drop(publisher);
    0
}

/// `blob-sub topic= n=`: says `ready`, takes blobs `1..=n` in order, polling (see "A race"
/// in the module docs), and checks every byte; says `received n bytes=<data bytes in all>`.
fn blob_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Blob>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    let n = r.num("n");
    let mut bytes = 0;
    for seq in 1..=n {
        let len = blob_len(seq);
        drop(poll_blob(&subscriber, seq, len));
        bytes += len;
    }
    let extra = subscriber.take().expect("take after the last blob");
    assert!(extra.is_none(), "a blob after the last one");
    drop(extra);
    emit(format_args!("received {n} bytes={bytes}"));
    drop(subscriber);
    0
}

/// `hold-pub topic=`: once a subscriber is there, publishes one blob of each length of
/// [`HELD_LENS`], says `sent`; on `report` says `in-use chunks= classes= segments=` (chunks
/// in use, the classes they are in and those classes' segments); on `check` waits until no
/// subscriber is left and every chunk of every class is free, says `reclaimed total=
/// segments=`; on `shrink` gives idle segments back and says `shrunk <segments>`; leaves on
/// `exit`.
fn holding_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"));
    await_subscribers(&publisher, 1);
    for (i, &len) in HELD_LENS.iter().enumerate() {
        publish_blob(&publisher, i as u64 + 1, len);
    }
    emit(format_args!("sent {}", HELD_LENS.len()));
    await_parent("report");
    let classes = publisher.pool_classes();
    let busy = classes.iter().filter(|c| c.in_use > 0);
    emit(format_args!(
        "in-use chunks={} classes={} segments={} detail={}",
        busy.clone().map(|c| c.in_use).sum::<usize>(),
        busy.clone().count(),
        busy.map(|c| c.segments).sum::<usize>(),
        classes_line(&publisher)
    ));
    await_parent("check");
    let (stats, classes) = poll("every chunk back after the subscriber died", || {
        if publisher.subscriber_count() != 0 {
            return None;
        }
        let st = publisher.pool_stats();
        let classes = publisher.pool_classes();
        (st.free == st.total && classes.iter().all(|c| c.in_use == 0)).then_some((st, classes))
    });
    assert_eq!(
        (stats.loaned, stats.delivered, stats.history, stats.pinned),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    emit(format_args!(
        "reclaimed total={} segments={} detail={}",
        stats.total,
        classes.iter().map(|c| c.segments).sum::<usize>(),
        classes_line(&publisher)
    ));
    await_parent("shrink");
    let given = publisher.shrink_pool();
    emit(format_args!(
        "shrunk {given} reserved={} detail={}",
        publisher.reserved_bytes(),
        classes_line(&publisher)
    ));
    await_parent("exit");
    drop(publisher);
    0
}

/// `hold-sub topic=`: says `ready`; on `take` (once the blobs are sent: see "A race" in the
/// module docs) receives the blobs of [`HELD_LENS`], checks them and keeps every one; says
/// `holding <count>` and waits to be killed.
fn holding_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Blob>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    await_parent("take");
    let held: Vec<_> = HELD_LENS
        .iter()
        .enumerate()
        .map(|(i, &len)| receive_blob(&subscriber, i as u64 + 1, len))
        .collect();
    emit(format_args!("holding {}", held.len()));
    await_parent("exit");
    drop(held);
    drop(subscriber);
    0
}

/// `grow-pub topic= subs=`: once `subs` subscribers are there, publishes one blob of each
/// length of [`GROWN_LENS`], says `grown segments=<segments> reserved=<bytes>` and waits to
/// be killed.
fn growing_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"));
    await_subscribers(&publisher, r.num("subs") as usize);
    for (i, &len) in GROWN_LENS.iter().enumerate() {
        publish_blob(&publisher, i as u64 + 1, len);
    }
    emit(format_args!(
        "grown segments={} reserved={} detail={}",
        publisher
            .pool_classes()
            .iter()
            .map(|c| c.segments)
            .sum::<usize>(),
        publisher.reserved_bytes(),
        classes_line(&publisher)
    ));
    await_parent("exit");
    drop(publisher);
    0
}

/// `drain-sub topic=`: says `ready`; on `go` (its publisher is dead by then) sweeps the
/// topic and says `draining`; on `take` receives the blobs of [`GROWN_LENS`] and checks them,
/// then waits until it has no publisher left and says `drained <count>`; leaves on `exit`.
fn draining_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Blob>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    await_parent("go");
    // This sweeps first (the first call always does): the dead publisher's slot becomes
    // DRAINING for us, its files stay until we have taken what is queued.
    assert_eq!(
        subscriber.publisher_count(),
        1,
        "the dead publisher, draining"
    );
    emit("draining");
    await_parent("take");
    for (i, &len) in GROWN_LENS.iter().enumerate() {
        drop(receive_blob(&subscriber, i as u64 + 1, len));
    }
    poll("the dead publisher to be let go", || {
        let extra = subscriber.take().expect("take after the last blob");
        assert!(extra.is_none(), "a blob after the last one");
        drop(extra);
        (subscriber.publisher_count() == 0).then_some(())
    });
    emit(format_args!("drained {}", GROWN_LENS.len()));
    await_parent("exit");
    drop(subscriber);
    0
}

/// `reclaim-sub topic=`: subscribes to the topic of a dead publisher, waits until it is
/// connected to no publisher, says `reclaimed`; leaves on `exit`.
fn reclaiming_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Blob>::new(r.str("topic")).expect("create the subscriber");
    poll("the dead publisher to be reclaimed", || {
        (subscriber.publisher_count() == 0).then_some(())
    });
    emit("reclaimed");
    await_parent("exit");
    drop(subscriber);
    0
}

/// `clean`: what `shmx clean` does, on this process's `SHMX_ROOT`; says `cleaned slots=
/// removed=<file names, comma-separated> kept=<count>`.
fn clean_role(_: &Role) -> i32 {
    let root = std::env::var_os("SHMX_ROOT").expect("SHMX_ROOT is set");
    let report = shmx::inspect::clean(Path::new(&root), false).expect("clean the root");
    let removed: Vec<String> = report
        .removed
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
        .collect();
    emit(format_args!(
        "cleaned slots={} removed={} kept={}",
        report.reclaimed_slots,
        removed.join(","),
        report.kept.len()
    ));
    0
}

/// Data lengths of the rounds of the segment-reuse test, in turn: each in another class.
const CYCLE_LENS: [usize; 4] = [3_000_000, 200_000, 5_000_000, 20_000];

/// `cycle-pub topic= rounds=`: once a subscriber is there, `rounds` times: publishes a blob
/// of the next length of [`CYCLE_LENS`] (its class has no chunk: the pool adds segment 1),
/// waits until the subscriber has given it back and gives segment 1 back; says `cycled
/// <rounds> reserved=<bytes>`; leaves on `exit`.
fn cycling_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"));
    await_subscribers(&publisher, 1);
    let rounds = r.num("rounds");
    for seq in 1..=rounds {
        let len = CYCLE_LENS[(seq as usize - 1) % CYCLE_LENS.len()];
        publish_blob(&publisher, seq, len);
        let segments = publisher
            .pool_classes()
            .iter()
            .map(|c| c.segments)
            .sum::<usize>();
        assert_eq!(
            segments, 2,
            "blob {seq}: segment 0 and the one grown for it"
        );
        poll(&format!("blob {seq} back in the pool"), || {
            let st = publisher.pool_stats();
            (st.free == st.total).then_some(())
        });
        assert_eq!(
            publisher.shrink_pool(),
            1,
            "blob {seq}'s segment given back"
        );
    }
    emit(format_args!(
        "cycled {rounds} reserved={}",
        publisher.reserved_bytes()
    ));
    await_parent("exit");
    drop(publisher);
    0
}

/// `cycle-sub topic= rounds=`: says `ready`, takes the blobs of the segment-reuse test,
/// polling (see "A race" in the module docs), checks every byte and gives each back; says
/// `received <rounds>`.
fn cycling_subscriber_role(r: &Role) -> i32 {
    let subscriber = Subscriber::<Blob>::new(r.str("topic")).expect("create the subscriber");
    emit("ready");
    let rounds = r.num("rounds");
    for seq in 1..=rounds {
        let len = CYCLE_LENS[(seq as usize - 1) % CYCLE_LENS.len()];
        drop(poll_blob(&subscriber, seq, len));
    }
    emit(format_args!("received {rounds}"));
    drop(subscriber);
    0
}

/// Data bytes of the samples of the growth race: a class of 1 MiB segments (8 chunks).
const CHURN_LEN: usize = 100_000;

/// `churn-pub topic= rounds=`: says `ready`; on `go`, `rounds` times: loans a sample of
/// [`CHURN_LEN`] bytes, which makes the pool grow a segment, drops it, and gives the
/// segment back; says `churned <rounds>`, or `failed round=<round> <error>` at the first
/// loan that fails; leaves.
fn churning_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"));
    emit("ready");
    await_parent("go");
    let rounds = r.num("rounds");
    for round in 1..=rounds {
        match publisher.loan_with_tail(CHURN_LEN) {
            Ok(sample) => drop(sample),
            Err(e) => {
                emit(format_args!("failed round={round} {e}"));
                return 0;
            }
        }
        assert_eq!(publisher.shrink_pool(), 1, "round {round} grew one segment");
    }
    emit(format_args!("churned {rounds}"));
    drop(publisher);
    0
}

/// `sweeper topic=`: opens the topic as a subscriber again and again (each opening sweeps
/// it, with the root lock) until no publisher is left; says `sweeping` after the first
/// opening, `swept <openings>` at the end.
fn sweeper_role(r: &Role) -> i32 {
    let topic = r.str("topic");
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut openings = 0u64;
    loop {
        let subscriber = Subscriber::<Blob>::new(topic).expect("open the topic");
        let publishers = subscriber.publisher_count();
        drop(subscriber);
        openings += 1;
        if openings == 1 {
            emit("sweeping");
        }
        if publishers == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the publisher was still there after {DEADLINE:?}"
        );
    }
    emit(format_args!("swept {openings}"));
    0
}

// ---------------------------------------------------------------------------------------------
// Parent helpers
// ---------------------------------------------------------------------------------------------

/// The `data.*` files in the directory of `topic` (a name the encoding leaves as it is) and
/// the bytes each holds (its allocated 512-byte blocks), by name.
fn data_files(root: &Root, topic: &str) -> Vec<(String, u64)> {
    let dir = root.path().join(topic);
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry"))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            name.starts_with("data.")
                .then(|| (name, meta.blocks() * 512))
        })
        .collect();
    files.sort();
    files
}

/// The number after `key=` in a child's line.
#[track_caller]
fn field(line: &str, key: &str) -> u64 {
    let value = field_str(line, key);
    value
        .parse()
        .unwrap_or_else(|e| panic!("`{key}={value}` in `{line}`: {e}"))
}

/// The word after `key=` in a child's line.
#[track_caller]
fn field_str<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no `{key}=` in `{line}`"))
}

/// The first word of a child's line.
fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A full-HD camera with the default pool settings: 1,000 frames reach a subscriber that
/// keeps up, intact and in order, and the pool holds a few frames, not the fixed pool's
/// worst case.
#[test]
fn camera_pool_holds_a_few_frames_not_the_worst_case() {
    let root = Root::new();
    let mut sub = Proc::spawn(
        "camera subscriber",
        &format!("cam-sub topic=camera n={FRAMES}"),
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "camera publisher",
        &format!("cam-pub topic=camera n={FRAMES}"),
        root.path(),
    );
    let before = publisher.expect("before");
    assert!(field(&before, "tail") >= FRAME_BYTES as u64, "{before}");
    let files_before = data_files(&root, "camera");
    let measured_before: u64 = files_before.iter().map(|f| f.1).sum();
    publisher.tell("go");
    let ahead = publisher.expect("ahead");
    sub.tell("go");

    let received = sub.expect("received");
    assert_eq!(
        received,
        format!("{FRAMES} full={}", FRAMES / FULL_CHECK_EVERY)
    );
    let done = publisher.expect("done");
    let files = data_files(&root, "camera");
    let measured: u64 = files.iter().map(|f| f.1).sum();
    let reported = field(&done, "reserved");
    let top_chunk = field(&done, "top_chunk_bytes");
    // What today's fixed pool would take with these (default) settings: every chunk that
    // can be in use at once, each of the largest class.
    let (t, p) = (TopicConfig::default(), PublisherConfig::default());
    let fixed_chunks =
        t.max_subscribers * (p.queue_depth + t.max_held + p.history) + p.history + p.max_loans;
    assert_eq!(fixed_chunks, 196);
    let fixed_bytes = fixed_chunks as u64 * top_chunk;
    eprintln!(
        "camera: {FRAMES} frames of {FRAME_BYTES} bytes; reserved before the first frame: \
         {} bytes reported, {measured_before} bytes of blocks in {} file(s); after: {reported} \
         bytes reported, {measured} bytes of blocks in {} file(s) {:?} ({:.1} frames' worth); \
         after {ahead}; pool {done}; a fixed pool: {fixed_chunks} chunks, {fixed_bytes} bytes",
        field(&before, "reserved"),
        files_before.len(),
        files.len(),
        files.iter().map(|f| &f.0).collect::<Vec<_>>(),
        measured as f64 / FRAME_BYTES as f64,
    );
    let bound = 16 * FRAME_BYTES as u64 + MIB;
    assert!(
        measured <= bound,
        "the camera's data files hold {measured} bytes, more than 16 frames and 1 MiB \
         ({bound}): {files:?}; {done}"
    );
    assert!(
        reported <= bound,
        "the publisher reserved {reported} bytes: {done}"
    );
    assert!(
        measured * 10 < fixed_bytes,
        "{measured} bytes is not far below the fixed pool's {fixed_bytes}"
    );
    assert!(
        field(&done, "top_chunks") <= 16,
        "more than 16 chunks of a frame: {done}"
    );
    // Segment 0 (the smallest class) and what the frames needed.
    assert!(files.len() >= 2, "{files:?}");
    assert_eq!(files_before.len(), 1, "{files_before:?}");
    // What the first frames made the pool grow to was enough for the rest.
    assert_eq!(field(&ahead, "reserved"), reported, "{ahead}; {done}");

    publisher.tell("exit");
    publisher.succeed();
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();
}

/// Samples of random sizes from 1 KiB to 6 MiB, each in a chunk of the smallest class that
/// holds it, arrive intact; the pool grew classes as the sizes came.
#[test]
fn random_tail_sizes_take_chunks_of_many_classes() {
    let root = Root::new();
    let mut sub = Proc::spawn(
        "subscriber",
        &format!("blob-sub topic=blobs n={BLOBS}"),
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("blob-pub topic=blobs n={BLOBS}"),
        root.path(),
    );
    let received = sub.expect("received");
    let sent = publisher.expect("sent");
    sub.succeed();
    publisher.tell("check");
    let pool = publisher.expect("pool");
    eprintln!("random sizes: sent {sent}; received {received}; pool {pool}");
    assert_eq!(first_word(&sent), BLOBS.to_string());
    let tails = field(&sent, "tails");
    assert!(tails >= 4, "fewer than 4 classes used: {sent}");
    // Segment 0's class (the smallest, which no blob fits) and those of the blobs: nothing
    // gave a segment back (no budget, far from the worst case).
    assert_eq!(field(&pool, "classes"), tails + 1, "{pool}");
    publisher.succeed();
    root.assert_empty();
}

/// A subscriber killed while it holds samples of several classes and segments: its
/// publisher gets every chunk back, in every segment, and can then give the segments back.
#[test]
fn killed_subscriber_holding_chunks_of_grown_segments_gives_them_all_back() {
    let root = Root::new();
    let mut sub = Proc::spawn("holder", "hold-sub topic=held", root.path());
    sub.expect("ready");
    let mut publisher = Proc::spawn("publisher", "hold-pub topic=held", root.path());
    publisher.expect("sent");
    sub.tell("take");
    assert_eq!(sub.expect("holding"), HELD_LENS.len().to_string());
    publisher.tell("report");
    let in_use = publisher.expect("in-use");
    assert_eq!(
        field(&in_use, "chunks"),
        HELD_LENS.len() as u64,
        "the held samples are in use: {in_use}"
    );
    assert!(field(&in_use, "classes") >= 5, "{in_use}");
    assert!(field(&in_use, "segments") >= 6, "{in_use}");
    let files = data_files(&root, "held");
    assert!(files.len() >= 7, "segment 0 and six more: {files:?}");

    sub.kill();
    publisher.tell("check");
    let reclaimed = publisher.expect("reclaimed");
    // Every segment is still there (nothing gave it back yet), all of it free.
    assert_eq!(
        field(&reclaimed, "segments"),
        files.len() as u64,
        "{reclaimed}"
    );
    publisher.tell("shrink");
    let shrunk = publisher.expect("shrunk");
    eprintln!(
        "killed holder: in use before {in_use}; files {files:?}; after {reclaimed}; {shrunk}"
    );
    assert_eq!(
        first_word(&shrunk),
        (files.len() - 1).to_string(),
        "every idle segment but segment 0 is given back: {shrunk}"
    );
    let left = data_files(&root, "held");
    assert_eq!(left.len(), 1, "only segment 0 is left: {left:?}");
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();
}

/// A segment number given back and used again for a segment of another class: a live
/// subscriber that mapped the old one maps the new one (the segment table's generation
/// tells them apart) and reads every sample intact.
#[test]
fn segment_numbers_given_back_and_reused_are_remapped_by_a_live_subscriber() {
    let root = Root::new();
    let rounds = 4 * CYCLE_LENS.len();
    let mut sub = Proc::spawn(
        "subscriber",
        &format!("cycle-sub topic=cycled rounds={rounds}"),
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("cycle-pub topic=cycled rounds={rounds}"),
        root.path(),
    );
    assert_eq!(sub.expect("received"), rounds.to_string());
    sub.succeed();
    let cycled = publisher.expect("cycled");
    let files = data_files(&root, "cycled");
    assert_eq!(
        files.len(),
        1,
        "only segment 0 is left: {files:?} ({cycled})"
    );
    assert_eq!(field(&cycled, "reserved"), files[0].1, "{cycled}");
    publisher.tell("exit");
    publisher.succeed();
    root.assert_empty();
}

/// Spawns a publisher that grows its pool to several segments and waits; returns it and
/// the data files it made (at least 3).
fn grown_publisher(root: &Root, topic: &str, subs: usize) -> (Proc, Vec<(String, u64)>) {
    let mut publisher = Proc::spawn(
        "grown publisher",
        &format!("grow-pub topic={topic} subs={subs}"),
        root.path(),
    );
    let grown = publisher.expect("grown");
    let files = data_files(root, topic);
    assert!(files.len() >= 3, "{files:?} ({grown})");
    assert_eq!(
        field(&grown, "segments"),
        files.len() as u64,
        "{files:?} ({grown})"
    );
    (publisher, files)
}

/// A publisher killed with a grown pool and nobody left: a new subscriber reclaims it, and
/// every data file goes.
#[test]
fn killed_publisher_with_grown_pool_is_reclaimed_by_a_new_subscriber() {
    let root = Root::new();
    let (mut publisher, files) = grown_publisher(&root, "grown", 0);
    publisher.kill();
    assert_eq!(data_files(&root, "grown"), files, "nobody reclaimed it yet");
    let mut sub = Proc::spawn("reclaimer", "reclaim-sub topic=grown", root.path());
    sub.expect("reclaimed");
    let left = data_files(&root, "grown");
    assert!(
        left.is_empty(),
        "data files of the dead publisher left: {left:?} (of {files:?})"
    );
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();
}

/// A publisher killed with a grown pool while a subscriber still has its samples queued:
/// the subscriber receives them all intact (mapping segments it never saw before), and the
/// data files go once it has drained them.
#[test]
fn killed_publisher_with_grown_pool_is_drained_then_removed() {
    let root = Root::new();
    let mut sub = Proc::spawn("drainer", "drain-sub topic=drained", root.path());
    sub.expect("ready");
    let (mut publisher, files) = grown_publisher(&root, "drained", 1);
    publisher.kill();
    sub.tell("go");
    sub.expect("draining");
    assert_eq!(
        data_files(&root, "drained"),
        files,
        "the files stay while a subscriber has samples of them queued"
    );
    sub.tell("take");
    assert_eq!(sub.expect("drained"), GROWN_LENS.len().to_string());
    let left = data_files(&root, "drained");
    assert!(
        left.is_empty(),
        "data files of the dead publisher left after the drain: {left:?} (of {files:?})"
    );
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();
}

/// A publisher killed with a grown pool and nobody left: `shmx clean` removes every data
/// file and the topic.
#[test]
fn killed_publisher_with_grown_pool_is_cleaned() {
    let root = Root::new();
    let (mut publisher, files) = grown_publisher(&root, "cleaned", 0);
    publisher.kill();
    let mut cleaner = Proc::spawn("cleaner", "clean", root.path());
    let cleaned = cleaner.expect("cleaned");
    cleaner.succeed();
    assert_eq!(field(&cleaned, "slots"), 1, "{cleaned}");
    assert_eq!(field(&cleaned, "kept"), 0, "{cleaned}");
    let removed: BTreeSet<&str> = field_str(&cleaned, "removed").split(',').collect();
    for (name, _) in &files {
        assert!(
            removed.contains(name.as_str()),
            "{name} not removed: {cleaned}"
        );
    }
    root.assert_empty();
}

/// A publisher grows its pool (and gives the segment back) over and over while another
/// process opens the topic over and over: every loan must succeed (a sweep once removed the
/// temporary file of a segment being added: see "A race" in the module docs).
#[test]
fn growth_survives_concurrent_sweeps() {
    let root = Root::new();
    let mut publisher = Proc::spawn("publisher", "churn-pub topic=churn rounds=300", root.path());
    publisher.expect("ready");
    let mut sweeper = Proc::spawn("sweeper", "sweeper topic=churn", root.path());
    sweeper.expect("sweeping");
    publisher.tell("go");
    // A loan that fails makes the publisher say `failed round=<round> <error>` instead.
    let rounds = publisher.expect("churned");
    publisher.succeed();
    let swept = sweeper.expect("swept");
    sweeper.succeed();
    eprintln!("growth race: {rounds} rounds; the sweeper opened the topic {swept} times");
    root.assert_empty();
}
