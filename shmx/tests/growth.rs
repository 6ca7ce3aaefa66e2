//! Pools that follow the traffic, in one process: size classes (`loan_with_tail`, `loan`,
//! `pool_classes`), segments added as the traffic needs them and given back
//! (`shrink_pool`), the budgets (`max_pool_bytes`, `max_root_bytes`), the worst case
//! (`PoolExhausted`), a filesystem that fills while the pool grows (`OutOfSpace`), and what
//! subscribers and tools do with hostile bytes in the pool's tables and segment headers.
//!
//! Every test has its own root and leaves it empty. Nothing waits on time: publisher and
//! subscribers live in the test's thread, so a sample published is there for the next take
//! (the two tests with a second thread wait for what they need under a deadline).
//!
//! Some tests reproduce bugs found in the first version of growth (b853127), fixed since:
//! a sweep beside a growing pool, a class past a segment's chunks, overflowing class tables in
//! the tools, a pool of a type with a tail that could not reach its worst case with `loan()`,
//! and `reserve_chunks(usize::MAX)` as a fixed pool.

mod common;

use common::small_fs::SmallFs;
use common::{assert_empty, data_files, root, segment_number};
use shmx::{inspect, Error, Publisher, RelSlice, ShmMessage, Subscriber, TopicConfig};
use std::path::{Path, PathBuf};

/// A message with a tail: a sequence number and bytes.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    seq: u64,
    data: RelSlice<u8>,
}

/// The tail of the largest class in most tests.
const TAIL: usize = 1000;

/// `len` bytes that depend on `seq`: a sample read back whole and intact matches them.
fn pattern(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(131).wrapping_add(i * 7) as u8)
        .collect()
}

/// Publishes sample `seq` with `len` pattern bytes in a chunk of the largest class (`loan`).
fn send(p: &Publisher<Blob>, seq: u64, len: usize) -> shmx::Result<()> {
    let mut sample = p.loan()?;
    let mut w = sample.writer();
    *w.seq = seq;
    w.set_data(&pattern(seq, len))?;
    sample.publish()
}

/// Publishes sample `seq` with `len` pattern bytes in the smallest class that holds them.
fn send_small(p: &Publisher<Blob>, seq: u64, len: usize) -> shmx::Result<()> {
    let mut sample = p.loan_with_tail(len)?;
    let mut w = sample.writer();
    *w.seq = seq;
    w.set_data(&pattern(seq, len))?;
    sample.publish()
}

/// Takes the next sample, which must be `seq` with its `len` pattern bytes, and returns it.
#[track_caller]
fn expect(sub: &Subscriber<Blob>, seq: u64, len: usize) -> shmx::Sample<'_, Blob> {
    let s = sub
        .take()
        .unwrap_or_else(|e| panic!("sample {seq}: {e}"))
        .unwrap_or_else(|| panic!("sample {seq} is not there"));
    assert_eq!(s.seq, seq);
    assert!(
        s.data() == &pattern(seq, len)[..],
        "sample {seq}: its {} tail bytes are not the ones written",
        s.data().len()
    );
    s
}

/// A subscriber of `Blob`s on `topic`.
fn subscriber(root: &Path, topic: &str) -> Subscriber<Blob> {
    Subscriber::<Blob>::builder(topic)
        .root(root)
        .create()
        .unwrap()
}

/// A publisher of `Blob`s on `topic` with a tail of `TAIL` bytes and 2 chunks per class to
/// start with (so that growth comes soon).
fn publisher(root: &Path, topic: &str) -> shmx::PublisherBuilder<Blob> {
    Publisher::<Blob>::builder(topic)
        .root(root)
        .max_tail_bytes(TAIL)
        .reserve_chunks(2)
}

/// The segment numbers of topic `topic`'s data files, in order.
fn segments(root: &Path, topic: &str) -> Vec<usize> {
    let mut ks: Vec<usize> = data_files(root, topic)
        .iter()
        .map(|f| segment_number(f))
        .collect();
    ks.sort_unstable();
    ks
}

/// The data file of segment `k` of the topic's one publisher.
fn segment_file(root: &Path, topic: &str, k: usize) -> PathBuf {
    data_files(root, topic)
        .into_iter()
        .find(|f| segment_number(f) == k)
        .unwrap_or_else(|| panic!("no data file of segment {k}"))
}

/// Maps the file of segment `k` writable, as a hostile process could.
fn hostile_segment(root: &Path, topic: &str, k: usize) -> memmap2::MmapMut {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment_file(root, topic, k))
        .unwrap();
    // SAFETY: a test-only mapping of a file this test owns; racing writes are the point.
    unsafe { memmap2::MmapMut::map_mut(&f).unwrap() }
}

/// Offset of segment 0's segment table (a u64 generation per segment number).
const SEGMENT_TABLE: usize = 2048;
/// Offset of segment 0's class table (per class: capacity, stride, chunks, in use).
const CLASS_TABLE: usize = 256;

fn read_u64(map: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(map[at..at + 8].try_into().unwrap())
}

fn write_u64(map: &mut [u8], at: usize, v: u64) {
    map[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Files of the topic's directory whose names say they are half made (`.tmp.*`).
fn temp_files(root: &Path, topic: &str) -> Vec<PathBuf> {
    std::fs::read_dir(root.join(topic))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
        .collect()
}

/// What a take returns when the sample it met must be skipped: no sample (an error or
/// nothing), and never a crash.
#[track_caller]
fn assert_skipped(r: shmx::Result<Option<shmx::Sample<'_, Blob>>>) {
    if let Ok(Some(s)) = r {
        panic!(
            "sample {} was handed out from a segment that must be refused",
            s.seq
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1. Size classes
// ---------------------------------------------------------------------------------------

#[test]
fn loan_with_tail_takes_the_smallest_class_that_holds_the_tail() {
    let dir = root();
    let sub = subscriber(dir.path(), "classes");
    let p = publisher(dir.path(), "classes").create().unwrap();
    let size = size_of::<Blob>();
    let classes = p.pool_classes();
    assert!(classes.len() >= 2, "{classes:?}");
    assert!(
        classes
            .windows(2)
            .all(|w| w[0].payload_bytes < w[1].payload_bytes),
        "classes grow: {classes:?}"
    );
    let tails: Vec<usize> = classes.iter().map(|c| c.payload_bytes - size).collect();
    assert_eq!(*tails.last().unwrap(), p.tail_capacity());
    assert!(p.tail_capacity() >= TAIL);
    // Only the smallest class has a segment at first: segment 0.
    assert_eq!(
        (classes[0].segments, classes[0].chunks),
        (1, 2),
        "{classes:?}"
    );
    assert!(classes[1..]
        .iter()
        .all(|c| c.segments == 0 && c.chunks == 0));
    assert_eq!(segments(dir.path(), "classes"), [0]);

    for n in [0, 1, 63, 64, 65, 100, 128, 200, 256, 512, 513, TAIL] {
        let sample = p.loan_with_tail(n).unwrap();
        let want = tails.iter().copied().find(|&t| t >= n).unwrap();
        assert_eq!(sample.tail_capacity(), want, "loan_with_tail({n})");
        if n.is_power_of_two() && n >= 64 {
            assert!(
                (n..2 * n).contains(&sample.tail_capacity()),
                "loan_with_tail({n}): a tail of {}",
                sample.tail_capacity()
            );
        }
    }
    // Every class has been loaned from: each has a segment now.
    let classes = p.pool_classes();
    assert!(classes.iter().all(|c| c.segments >= 1), "{classes:?}");
    assert!(classes.iter().all(|c| c.in_use == 0), "{classes:?}");

    // `loan` has the whole tail, and it can all be used.
    let mut whole = p.loan().unwrap();
    assert_eq!(whole.tail_capacity(), p.tail_capacity());
    let mut w = whole.writer();
    *w.seq = 1;
    w.set_data(&pattern(1, p.tail_capacity())).unwrap();
    whole.publish().unwrap();
    drop(expect(&sub, 1, p.tail_capacity()));

    // Past the largest class: refused at the loan.
    let e = p.loan_with_tail(p.tail_capacity() + 1).err();
    assert!(matches!(e, Some(Error::TailFull { .. })), "{e:?}");
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn an_allocation_past_the_chunks_tail_is_tail_full_and_the_sample_lives_on() {
    let dir = root();
    let sub = subscriber(dir.path(), "full");
    let p = publisher(dir.path(), "full").create().unwrap();

    // Published without the allocation that failed.
    let mut sample = p.loan_with_tail(64).unwrap();
    let cap = sample.tail_capacity();
    assert!(cap < p.tail_capacity(), "a small class, not the largest");
    let mut w = sample.writer();
    *w.seq = 7;
    match w.alloc_data(cap + 1) {
        Err(Error::TailFull {
            requested,
            available,
            ..
        }) => assert!(
            requested > cap && available == cap,
            "{requested} {available}"
        ),
        other => panic!("expected TailFull, got {:?}", other.map(|d| d.len())),
    }
    // The tail is untouched by the failure: all of it is still there.
    w.set_data(&pattern(7, cap)).unwrap();
    assert_eq!(sample.tail_used(), cap);
    sample.publish().unwrap();
    drop(expect(&sub, 7, cap));

    // Dropped after the failure: the chunk goes back to the pool.
    let mut sample = p.loan_with_tail(64).unwrap();
    let cap = sample.tail_capacity();
    let e = sample.writer().set_data(&vec![1; cap + 1]).err();
    assert!(matches!(e, Some(Error::TailFull { .. })), "{e:?}");
    drop(sample);
    let stats = p.pool_stats();
    assert_eq!(
        (stats.loaned, stats.delivered),
        (0, 0),
        "nothing is held: {stats:?}"
    );
    assert!(p.pool_classes().iter().all(|c| c.in_use == 0));

    // A sample published with none of its tail: the message alone.
    let mut sample = p.loan_with_tail(0).unwrap();
    *sample.writer().seq = 8;
    sample.publish().unwrap();
    let got = sub.take().unwrap().unwrap();
    assert_eq!((got.seq, got.data().len(), got.payload_len()), (8, 0, 16));
    drop(got);
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn listed_classes_are_the_tails_asked_for_and_the_whole_tail() {
    let dir = root();
    let sub = subscriber(dir.path(), "listed");
    let p = publisher(dir.path(), "listed")
        .pool_classes(&[300, 100, 5000])
        .create()
        .unwrap();
    let size = size_of::<Blob>();
    let tails: Vec<usize> = p
        .pool_classes()
        .iter()
        .map(|c| c.payload_bytes - size)
        .collect();
    // 5000 is past max_tail_bytes: left out; the whole tail is always a class.
    assert_eq!(tails.len(), 3, "{tails:?}");
    assert!(tails[0] >= 100 && tails[0] < 300, "{tails:?}");
    assert!(tails[1] >= 300 && tails[1] < TAIL, "{tails:?}");
    assert_eq!(tails[2], p.tail_capacity());

    for (n, class) in [
        (0, 0),
        (100, 0),
        (tails[0], 0),
        (tails[0] + 1, 1),
        (300, 1),
        (tails[1], 1),
        (tails[1] + 1, 2),
        (TAIL, 2),
    ] {
        let mut sample = p.loan_with_tail(n).unwrap();
        assert_eq!(sample.tail_capacity(), tails[class], "loan_with_tail({n})");
        let mut w = sample.writer();
        *w.seq = n as u64;
        w.set_data(&pattern(n as u64, n)).unwrap();
        sample.publish().unwrap();
        drop(expect(&sub, n as u64, n));
    }
    assert_eq!(p.loan().unwrap().tail_capacity(), tails[2]);
    drop((sub, p));
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------
// 2. Growth and shrinking
// ---------------------------------------------------------------------------------------

#[test]
fn the_pool_grows_with_the_traffic_and_gives_idle_segments_back() {
    let dir = root();
    let sub = subscriber(dir.path(), "grow");
    let p = publisher(dir.path(), "grow").create().unwrap();
    assert_eq!(segments(dir.path(), "grow"), [0], "one data file at first");
    let first = p.reserved_bytes();
    let top = p.pool_classes().len() - 1;

    // Twelve samples queued at once: more than the first reserve of any class.
    for seq in 1..=12 {
        send(&p, seq, TAIL).unwrap();
    }
    let files = segments(dir.path(), "grow");
    assert!(files.len() >= 3, "growth added files: {files:?}");
    let classes = p.pool_classes();
    let c = classes[top];
    assert!(c.chunks >= 12 && c.chunks <= 24, "{c:?}");
    assert_eq!(c.in_use, 12, "{c:?}");
    assert_eq!(c.segments, files.len() - 1, "{classes:?} {files:?}");
    assert_eq!(
        classes.iter().map(|c| c.reserved_bytes).sum::<u64>(),
        p.reserved_bytes()
    );
    assert!(p.reserved_bytes() > first);
    assert_eq!(p.pool_stats().total, classes.iter().map(|c| c.chunks).sum());

    // The tools see the same pool.
    let info = inspect::topic(dir.path(), "grow").unwrap();
    let pi = &info.publishers[0];
    assert_eq!(pi.classes.len(), classes.len());
    assert_eq!(pi.classes[top].chunks, c.chunks as u64);
    assert_eq!(pi.classes[top].segments, c.segments as u64);
    assert_eq!(pi.reserved_bytes, p.reserved_bytes(), "{pi:?}");
    assert_eq!(pi.chunks, p.pool_stats().total as u64);

    // A subscriber that comes now maps the grown segments when it meets them.
    let late = subscriber(dir.path(), "grow");
    for seq in 1..=6 {
        drop(expect(&sub, seq, TAIL));
    }
    let mut next = 7;
    let drained = sub
        .drain(usize::MAX, |s| {
            assert_eq!(s.seq, next);
            assert!(s.data() == &pattern(next, TAIL)[..], "sample {next}");
            next += 1;
        })
        .unwrap();
    assert_eq!(drained, 6);
    assert!(sub.take().unwrap().is_none());
    assert!(late.take().unwrap().is_none(), "no history");

    // Everything returned: every segment but the first goes back.
    assert_eq!(p.pool_classes()[top].in_use, 0);
    let given = p.shrink_pool();
    assert_eq!(given, files.len() - 1);
    assert_eq!(segments(dir.path(), "grow"), [0]);
    assert_eq!(p.reserved_bytes(), first);
    let c = p.pool_classes()[top];
    assert_eq!((c.chunks, c.segments, c.reserved_bytes), (0, 0, 0));
    assert_eq!(p.shrink_pool(), 0, "nothing left to give back");
    let info = inspect::topic(dir.path(), "grow").unwrap();
    assert_eq!(info.publishers[0].classes[top].segments, 0);
    assert_eq!(info.publishers[0].reserved_bytes, first);

    // It grows again (the same segment numbers, new generations): both subscribers, the
    // one that had the old segments mapped and the one that never did, read the new ones.
    for seq in 13..=17 {
        send(&p, seq, TAIL / 2 + seq as usize).unwrap();
    }
    assert!(segments(dir.path(), "grow").len() >= 3);
    for seq in 13..=17 {
        drop(expect(&sub, seq, TAIL / 2 + seq as usize));
        drop(expect(&late, seq, TAIL / 2 + seq as usize));
    }
    // A subscriber that copies on take reads the grown segments too.
    let copier = Subscriber::<Blob>::builder("grow")
        .root(dir.path())
        .copy_on_take()
        .create()
        .unwrap();
    for seq in 30..=34 {
        send(&p, seq, TAIL).unwrap();
    }
    for seq in 30..=34 {
        drop(expect(&sub, seq, TAIL));
        drop(expect(&late, seq, TAIL));
        drop(expect(&copier, seq, TAIL));
    }
    drop(copier);
    // Small samples stay in segment 0 and need no growth.
    for seq in 18..=19 {
        send_small(&p, seq, 40).unwrap();
        drop(expect(&sub, seq, 40));
        drop(expect(&late, seq, 40));
    }
    let grown = segments(dir.path(), "grow").len() - 1;
    assert_eq!(p.shrink_pool(), grown);
    assert_eq!(segments(dir.path(), "grow"), [0]);
    drop((sub, late, p));
    assert_empty(dir.path());
}

#[test]
fn shrink_keeps_segments_that_hold_samples_a_subscriber_holds_or_has_queued() {
    let dir = root();
    let sub = subscriber(dir.path(), "keep");
    let p = publisher(dir.path(), "keep").create().unwrap();
    let top = p.pool_classes().len() - 1;
    // Two segments of the largest class: 2 chunks, then 2 more.
    for seq in 1..=4 {
        send(&p, seq, TAIL).unwrap();
    }
    assert_eq!(p.pool_classes()[top].segments, 2);
    let s1 = expect(&sub, 1, TAIL);
    let s2 = expect(&sub, 2, TAIL);
    let s3 = expect(&sub, 3, TAIL);
    // Sample 4 stays queued; samples 1 and 2 (the first segment) are held.
    assert_eq!(p.shrink_pool(), 0, "every segment holds a sample");
    drop(s3);
    assert_eq!(
        p.shrink_pool(),
        0,
        "sample 4 is queued in the segment of sample 3"
    );
    assert_eq!(segments(dir.path(), "keep").len(), 3);
    drop(s1);
    assert_eq!(p.shrink_pool(), 0, "sample 2 is held");
    // The held sample is intact after all this.
    assert_eq!(s2.data(), &pattern(2, TAIL)[..]);
    drop(s2);
    assert_eq!(p.shrink_pool(), 1, "the first segment is idle now");
    assert_eq!(segments(dir.path(), "keep").len(), 2);
    drop(expect(&sub, 4, TAIL));
    // A loan in progress keeps its segment too (the only one left of its class).
    let loaned = p.loan().unwrap();
    assert_eq!(p.shrink_pool(), 0, "the segment holds a loan");
    assert_eq!(segments(dir.path(), "keep").len(), 2);
    drop(loaned);
    assert_eq!(p.shrink_pool(), 1);
    assert_eq!(segments(dir.path(), "keep"), [0]);
    assert_eq!(
        inspect::topic(dir.path(), "keep").unwrap().publishers[0].chunks,
        p.pool_stats().total as u64
    );

    // A sample held across a shrink of the other segments, and across a new growth that
    // reuses their numbers.
    send(&p, 5, TAIL).unwrap();
    send(&p, 6, TAIL).unwrap();
    send(&p, 7, TAIL).unwrap();
    let s5 = expect(&sub, 5, TAIL);
    drop(expect(&sub, 6, TAIL));
    drop(expect(&sub, 7, TAIL));
    assert_eq!(p.shrink_pool(), 1, "only the segment of sample 7");
    for seq in 8..=11 {
        send(&p, seq, 10 * seq as usize).unwrap();
    }
    for seq in 8..=11 {
        drop(expect(&sub, seq, 10 * seq as usize));
    }
    assert_eq!(s5.data(), &pattern(5, TAIL)[..]);
    drop(s5);
    assert!(p.shrink_pool() >= 1);
    assert_eq!(segments(dir.path(), "keep"), [0]);
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn history_in_grown_segments_reaches_late_subscribers_and_their_pins_keep_the_segment() {
    let dir = root();
    let p = publisher(dir.path(), "hist").history(2).create().unwrap();
    // Both history samples in the first segment of the largest class.
    send(&p, 1, TAIL).unwrap();
    send(&p, 2, TAIL).unwrap();
    let top = p.pool_classes().len() - 1;
    assert_eq!(p.pool_classes()[top].segments, 1);
    assert_eq!(p.shrink_pool(), 0, "history is in use");

    // A late subscriber pins the history where it is: in the grown segment.
    let late = subscriber(dir.path(), "hist");
    // The history moves on, to segment 0 (small samples): the grown segment's chunks are
    // free for the publisher, but pinned by the late subscriber.
    send_small(&p, 3, 8).unwrap();
    send_small(&p, 4, 8).unwrap();
    assert_eq!(p.shrink_pool(), 0, "pinned chunks keep their segment");
    assert_eq!(segments(dir.path(), "hist").len(), 2);
    drop(expect(&late, 1, TAIL));
    drop(expect(&late, 2, TAIL));
    drop(expect(&late, 3, 8));
    drop(expect(&late, 4, 8));
    assert_eq!(p.shrink_pool(), 1, "unpinned: given back");
    assert_eq!(segments(dir.path(), "hist"), [0]);

    // A subscriber that comes after the shrink finds the history in segment 0.
    let later = subscriber(dir.path(), "hist");
    drop(expect(&later, 3, 8));
    drop(expect(&later, 4, 8));
    drop((late, later, p));
    assert_empty(dir.path());
}

#[test]
fn a_departed_publishers_grown_segments_are_drained_and_removed() {
    let dir = root();
    let sub = subscriber(dir.path(), "gone");
    let p = publisher(dir.path(), "gone").create().unwrap();
    for seq in 1..=6 {
        send(&p, seq, TAIL).unwrap();
    }
    let held = expect(&sub, 1, TAIL);
    let files = segments(dir.path(), "gone");
    assert!(files.len() >= 3, "{files:?}");
    // Samples 2..6 are queued: the files stay for the subscriber.
    drop(p);
    assert_eq!(segments(dir.path(), "gone"), files);
    for seq in 2..=6 {
        drop(expect(&sub, seq, TAIL));
    }
    assert!(sub.take().unwrap().is_none());
    // The last queue drained: the subscriber removed every segment of the publisher.
    assert!(
        data_files(dir.path(), "gone").is_empty(),
        "{:?}",
        data_files(dir.path(), "gone")
    );
    // The held sample's mapping outlives its file.
    assert_eq!(held.data(), &pattern(1, TAIL)[..]);
    drop(held);
    drop(sub);
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------
// 3. Budgets and the worst case
// ---------------------------------------------------------------------------------------

/// Bytes of segment 0 of a `publisher()`, and of its first segment of the largest class,
/// measured on a probe in a root of its own.
fn probe_sizes() -> (u64, u64) {
    let dir = root();
    let p = publisher(dir.path(), "probe").create().unwrap();
    let seg0 = p.reserved_bytes();
    send(&p, 1, 1).unwrap();
    let top = p.reserved_bytes() - seg0;
    let classes = p.pool_classes();
    assert_eq!(classes[0].reserved_bytes, seg0);
    assert_eq!(classes.last().unwrap().reserved_bytes, top);
    drop(p);
    assert_empty(dir.path());
    (seg0, top)
}

#[test]
fn max_pool_bytes_stops_growth_and_the_publisher_keeps_what_it_has() {
    let (seg0, top) = probe_sizes();
    let limit = seg0 + top;
    let dir = root();
    let sub = subscriber(dir.path(), "budget");
    let p = publisher(dir.path(), "budget")
        .max_pool_bytes(limit)
        .create()
        .unwrap();
    send(&p, 1, TAIL).unwrap();
    send(&p, 2, TAIL).unwrap();
    assert_eq!(p.reserved_bytes(), limit);
    let e = send(&p, 3, TAIL).err();
    match &e {
        Some(Error::BudgetExceeded {
            topic,
            budget,
            limit: l,
            reserved,
            wanted,
        }) => {
            assert_eq!(
                (topic.as_str(), *budget, *l),
                ("budget", "max_pool_bytes", limit)
            );
            assert_eq!(*reserved, limit);
            assert!(*wanted > 0 && *wanted <= top, "{wanted}");
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert!(e.unwrap().to_string().contains("max_pool_bytes"));
    assert_eq!(segments(dir.path(), "budget").len(), 2, "no file was added");
    assert_eq!(p.reserved_bytes(), limit);
    assert_eq!(p.pool_stats().loaned, 0, "the failed loan holds nothing");

    // What it has keeps working: small samples in segment 0.
    send_small(&p, 3, 20).unwrap();
    drop(expect(&sub, 1, TAIL));
    drop(expect(&sub, 2, TAIL));
    drop(expect(&sub, 3, 20));
    // The subscriber gave the large chunks back: loans of them succeed again.
    for seq in 4..=9 {
        send(&p, seq, TAIL).unwrap();
        drop(expect(&sub, seq, TAIL));
    }
    assert_eq!(p.reserved_bytes(), limit);
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn growth_halves_to_fit_max_pool_bytes_before_it_gives_up() {
    let (seg0, top) = probe_sizes();
    // Room for three segments of 2 chunks: the third growth (4 chunks, as many as the class
    // has) is halved to 2 to fit; the fourth does not fit at all.
    let limit = seg0 + 3 * top;
    let dir = root();
    let sub = subscriber(dir.path(), "halves");
    let p = publisher(dir.path(), "halves")
        .max_pool_bytes(limit)
        .create()
        .unwrap();
    for seq in 1..=6 {
        send(&p, seq, TAIL).unwrap_or_else(|e| panic!("sample {seq}: {e}"));
    }
    let c = *p.pool_classes().last().unwrap();
    assert_eq!((c.chunks, c.segments), (6, 3), "{c:?}");
    assert!(p.reserved_bytes() <= limit);
    let e = send(&p, 7, TAIL).err();
    assert!(
        matches!(
            e,
            Some(Error::BudgetExceeded {
                budget: "max_pool_bytes",
                ..
            })
        ),
        "{e:?}"
    );
    for seq in 1..=6 {
        drop(expect(&sub, seq, TAIL));
    }
    send(&p, 7, TAIL).unwrap();
    drop(expect(&sub, 7, TAIL));
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn a_publisher_whose_first_segment_passes_max_pool_bytes_is_refused() {
    let (seg0, _) = probe_sizes();
    let dir = root();
    let e = publisher(dir.path(), "tiny")
        .max_pool_bytes(seg0 - 1)
        .create()
        .err();
    assert!(
        matches!(
            e,
            Some(Error::BudgetExceeded {
                budget: "max_pool_bytes",
                ..
            })
        ),
        "{e:?}"
    );
    assert_empty(dir.path());
}

#[test]
fn max_root_bytes_counts_every_topics_publishers() {
    let (seg0, top) = probe_sizes();
    // Room for both segments 0 and one grown segment, not two.
    let limit = 2 * seg0 + 2 * top - 1;
    let dir = root();
    let sub_a = subscriber(dir.path(), "a");
    let sub_b = subscriber(dir.path(), "b");
    let a = publisher(dir.path(), "a")
        .max_root_bytes(limit)
        .create()
        .unwrap();
    send(&a, 1, TAIL).unwrap();
    let b = publisher(dir.path(), "b")
        .max_root_bytes(limit)
        .create()
        .unwrap();
    let e = send(&b, 1, TAIL).err();
    match e {
        Some(Error::BudgetExceeded {
            topic,
            budget,
            limit: l,
            reserved,
            wanted,
        }) => {
            assert_eq!((topic.as_str(), budget, l), ("b", "max_root_bytes", limit));
            assert_eq!(reserved, a.reserved_bytes() + b.reserved_bytes());
            assert!(
                reserved + wanted > limit && wanted <= top,
                "{reserved} {wanted}"
            );
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    // B keeps working in segment 0.
    send_small(&b, 1, 30).unwrap();
    drop(expect(&sub_b, 1, 30));

    // A gives its grown segment back: B may grow now, and then A may not.
    drop(expect(&sub_a, 1, TAIL));
    assert_eq!(a.shrink_pool(), 1);
    send(&b, 2, TAIL).unwrap();
    drop(expect(&sub_b, 2, TAIL));
    let e = send(&a, 2, TAIL).err();
    assert!(
        matches!(
            e,
            Some(Error::BudgetExceeded {
                budget: "max_root_bytes",
                ..
            })
        ),
        "{e:?}"
    );
    // An idle grown segment of B is given back by B's own growth when it needs the room
    // (here, for another class of B): the budget is passed only for what is in use.
    assert_eq!(b.pool_classes().last().unwrap().in_use, 0);
    send_small(&b, 3, 200).unwrap();
    drop(expect(&sub_b, 3, 200));
    drop((sub_a, sub_b, a, b));
    assert_empty(dir.path());
}

/// A topic as small as it gets: one subscriber holding one sample, a queue of one, one loan.
/// Its worst case is 3 chunks in use.
fn tiny(root: &Path, topic: &str) -> (Subscriber<Blob>, Publisher<Blob>) {
    let cfg = TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: 1,
        max_held: 1,
        max_history: 0,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<Blob>::builder(topic)
        .root(root)
        .topic_config(cfg)
        .queue_depth(1)
        .create()
        .unwrap();
    let p = Publisher::<Blob>::builder(topic)
        .root(root)
        .topic_config(cfg)
        .queue_depth(1)
        .max_loans(1)
        .max_tail_bytes(TAIL)
        .create()
        .unwrap();
    (sub, p)
}

#[test]
fn the_pool_never_passes_its_worst_case_bytes() {
    let dir = root();
    let (sub, p) = tiny(dir.path(), "worst");
    let top = p.pool_classes().len() - 1;
    let top_bytes = p.pool_classes()[top].chunk_bytes;
    // Segment 0's small chunks come on top of the worst case of the largest class.
    let first = &p.pool_classes()[0];
    let seg0_bytes = first.chunks * first.chunk_bytes;
    let chunk_bytes = |p: &Publisher<Blob>| -> usize {
        p.pool_classes()
            .iter()
            .map(|c| c.chunks * c.chunk_bytes)
            .sum()
    };
    // The worst case: one held, one queued, one loaned, all of the largest class.
    send(&p, 1, TAIL).unwrap();
    let held = expect(&sub, 1, TAIL);
    send(&p, 2, TAIL).unwrap();
    let loaned = p.loan().unwrap();
    assert_eq!(p.pool_classes()[top].chunks, 3, "{:?}", p.pool_classes());
    // Never more than a fixed pool of the largest class would take (3 chunks).
    assert!(
        chunk_bytes(&p) <= 3 * top_bytes + seg0_bytes,
        "{:?}",
        p.pool_classes()
    );
    drop(loaned);
    // Small samples still go out (segment 0).
    drop(held);
    drop(expect(&sub, 2, TAIL));
    send_small(&p, 3, 10).unwrap();
    drop(expect(&sub, 3, 10));
    // Returned: the large chunks are loaned again, and the pool does not grow.
    for seq in 4..=8 {
        send(&p, seq, TAIL).unwrap();
        drop(expect(&sub, seq, TAIL));
    }
    assert!(chunk_bytes(&p) <= 3 * top_bytes + seg0_bytes);
    assert_eq!(p.pool_classes()[top].chunks, 3);
    drop((sub, p));
    assert_empty(dir.path());
}

/// The worst case of the tiny topic is 3 chunks in use (held, queued, loaned): a fixed pool
/// of the largest class (`reserve_chunks(usize::MAX)`) has them, a growing one must too.
///
/// Fails on b853127: segment 0's chunks of the smallest class count against the worst-case
/// bytes (`try_grow`'s `room_bytes`, `shmx/src/publisher/grow.rs`), so a publisher that
/// only `loan`s gets 2 chunks of the largest class and `PoolExhausted` at the third.
#[test]
fn loan_only_traffic_within_the_limits_never_exhausts_the_pool() {
    let dir = root();
    let (sub, p) = tiny(dir.path(), "limits");
    send(&p, 1, TAIL).unwrap();
    let held = expect(&sub, 1, TAIL);
    send(&p, 2, TAIL).unwrap();
    // Held 1, queued 1, loaned 1: within every limit.
    let third = p.loan();
    assert!(third.is_ok(), "{:?}", third.err());
    drop(third);
    drop(held);
    drop((sub, p));
    assert_empty(dir.path());
}

/// `reserve_chunks(usize::MAX)` "reserves the worst case that the limits allow up front, as
/// a fixed pool" (`PublisherBuilder::reserve_chunks`): for a type with a tail it reserves
/// segment 0 of the smallest class only. The first `loan` still adds a file, and the
/// largest class stops short of the worst case as in the test above.
#[test]
fn reserve_chunks_max_is_a_fixed_pool_for_a_type_with_a_tail() {
    let dir = root();
    let cfg = TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: 1,
        max_held: 1,
        max_history: 0,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<Blob>::builder("fixed")
        .root(dir.path())
        .topic_config(cfg)
        .queue_depth(1)
        .create()
        .unwrap();
    let p = Publisher::<Blob>::builder("fixed")
        .root(dir.path())
        .topic_config(cfg)
        .queue_depth(1)
        .max_loans(1)
        .max_tail_bytes(TAIL)
        .reserve_chunks(usize::MAX)
        .create()
        .unwrap();
    let files = segments(dir.path(), "fixed");
    send(&p, 1, TAIL).unwrap();
    assert_eq!(
        segments(dir.path(), "fixed"),
        files,
        "a fixed pool does not grow"
    );
    let held = expect(&sub, 1, TAIL);
    send(&p, 2, TAIL).unwrap();
    let third = p.loan();
    assert!(third.is_ok(), "{:?}", third.err());
    drop(third);
    drop(held);
    drop((sub, p));
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------
// 4. A filesystem that fills while the pool grows
// ---------------------------------------------------------------------------------------

/// Bytes free in the filesystem of `path`.
fn free_bytes(path: &Path) -> u64 {
    let st = rustix::fs::statvfs(path).unwrap();
    st.f_bavail * st.f_frsize
}

#[test]
fn a_filesystem_that_fills_while_the_pool_grows_is_out_of_space_and_the_stream_goes_on() {
    let Some(fs) = SmallFs::mount("growthfs", "12m") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root and mount rights)");
        return;
    };
    const BIG: usize = 1 << 20;
    let cfg = TopicConfig {
        max_publishers: 2,
        max_subscribers: 2,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<Blob>::builder("frames")
        .root(fs.path())
        .topic_config(cfg)
        .create()
        .unwrap();
    let p = Publisher::<Blob>::builder("frames")
        .root(fs.path())
        .topic_config(cfg)
        .max_tail_bytes(BIG)
        .create()
        .unwrap();
    let top = p.pool_classes().len() - 1;
    // Frames of 1 MiB, none taken yet: the largest class grows until the filesystem is full.
    let mut sent = 0u64;
    let err = loop {
        match send(&p, sent + 1, BIG) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 12, "12 MiB cannot hold {sent} frames");
    };
    let Error::OutOfSpace { path, bytes } = &err else {
        panic!("expected OutOfSpace, got {err:?}")
    };
    assert!(
        path.starts_with(fs.path()) && bytes > &0,
        "{path:?} {bytes}"
    );
    assert!(err.to_string().contains("frames") || err.to_string().contains("space"));
    assert!(sent >= 2, "at least one segment was added before: {sent}");
    // Nothing half made: no temporary file, no segment file the pool does not have.
    assert!(
        !path.exists(),
        "the failed segment's file is not there: {path:?}"
    );
    assert_eq!(temp_files(fs.path(), "frames"), Vec::<PathBuf>::new());
    let classes = p.pool_classes();
    let pool_segments: usize = classes.iter().map(|c| c.segments).sum();
    assert_eq!(segments(fs.path(), "frames").len(), pool_segments);
    assert_eq!(classes[top].in_use as u64, sent);
    let stats = p.pool_stats();
    assert_eq!(stats.loaned, 0, "the failed loan holds nothing: {stats:?}");
    // Again: the same answer, and still nothing left behind.
    assert!(matches!(
        send(&p, sent + 1, BIG),
        Err(Error::OutOfSpace { .. })
    ));
    assert_eq!(temp_files(fs.path(), "frames"), Vec::<PathBuf>::new());

    // The stream goes on: what was published arrives intact, and once returned the chunks
    // reserved before carry frames again.
    for seq in 1..=sent {
        drop(expect(&sub, seq, BIG));
    }
    for seq in sent + 1..=3 * sent {
        send(&p, seq, BIG).unwrap();
        drop(expect(&sub, seq, BIG));
    }
    // Small samples never needed the space.
    send_small(&p, 1000, 64).unwrap();
    drop(expect(&sub, 1000, 64));
    // Given back, the space serves a new growth, once the subscriber has let go of the
    // segments it mapped (it does when it next looks at the topic: until then the files are
    // gone but their pages are still in use).
    let free_before = free_bytes(fs.path());
    assert!(p.shrink_pool() >= 1);
    assert_eq!(segments(fs.path(), "frames"), [0]);
    assert!(sub.take().unwrap().is_none());
    assert!(
        free_bytes(fs.path()) >= free_before + 4 * BIG as u64,
        "{free_before} -> {}",
        free_bytes(fs.path())
    );
    for seq in 2000..2000 + sent {
        send(&p, seq, BIG).unwrap();
    }
    for seq in 2000..2000 + sent {
        drop(expect(&sub, seq, BIG));
    }
    drop((sub, p));
    assert!(
        std::fs::read_dir(fs.path()).unwrap().next().is_none(),
        "{:?}",
        std::fs::read_dir(fs.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// 5. Hostile bytes in the pool's tables and segment headers
// ---------------------------------------------------------------------------------------

/// A subscriber and a publisher (created in that order) on `topic`.
fn hostile_pair(root: &Path, topic: &str) -> (Subscriber<Blob>, Publisher<Blob>) {
    (
        subscriber(root, topic),
        publisher(root, topic).create().unwrap(),
    )
}

#[test]
fn a_segment_unlisted_while_its_sample_is_queued_is_skipped() {
    let dir = root();
    let (sub, p) = hostile_pair(dir.path(), "unlisted");
    let top = p.pool_classes().len() - 1;
    send(&p, 1, TAIL).unwrap();
    drop(expect(&sub, 1, TAIL)); // the subscriber has segment 1 mapped now
    send(&p, 2, TAIL).unwrap(); // queued, in segment 1
    let mut seg0 = hostile_segment(dir.path(), "unlisted", 0);
    let word = SEGMENT_TABLE + 8;
    let generation = read_u64(&seg0, word);
    assert!(generation > 1, "segment 1 is listed: {generation}");
    write_u64(&mut seg0, word, 0);

    assert_skipped(sub.take());
    assert!(sub.take().unwrap().is_none());
    // Samples in segment 0 still flow, and those of the unlisted segment are skipped.
    send_small(&p, 3, 8).unwrap();
    drop(expect(&sub, 3, 8));
    send(&p, 4, TAIL).unwrap();
    assert_skipped(sub.take());
    // Listed again: the pool's new samples arrive, in a new segment or in segment 1.
    write_u64(&mut seg0, word, generation);
    for seq in 5..=8 {
        send(&p, seq, TAIL).unwrap();
        drop(expect(&sub, seq, TAIL));
    }
    assert!(sub.take().unwrap().is_none());
    // The skipped samples' chunks were never given back (the subscriber never touches a
    // chunk of a segment it refused); they come back when the subscriber leaves.
    let leaked = p.pool_classes()[top].in_use;
    drop(sub);
    assert_eq!(p.pool_classes()[top].in_use, 0, "{leaked} came back");
    drop(seg0);
    assert!(p.shrink_pool() >= 1);
    drop(p);
    assert_empty(dir.path());
}

#[test]
fn a_held_sample_of_a_segment_unlisted_under_it_stays_readable() {
    let dir = root();
    let (sub, p) = hostile_pair(dir.path(), "underfoot");
    send(&p, 1, TAIL).unwrap();
    let held = expect(&sub, 1, TAIL);
    let mut seg0 = hostile_segment(dir.path(), "underfoot", 0);
    let word = SEGMENT_TABLE + 8;
    let generation = read_u64(&seg0, word);
    write_u64(&mut seg0, word, 0);
    // Something changes in the topic: the subscriber looks at its segments again.
    let other = subscriber(dir.path(), "underfoot");
    send_small(&p, 2, 8).unwrap();
    drop(expect(&sub, 2, 8));
    drop(expect(&other, 2, 8));
    assert_eq!(
        held.data(),
        &pattern(1, TAIL)[..],
        "still mapped while held"
    );
    drop(held);
    write_u64(&mut seg0, word, generation);
    for seq in 3..=6 {
        send(&p, seq, TAIL).unwrap();
        drop(expect(&sub, seq, TAIL));
        drop(expect(&other, seq, TAIL));
    }
    drop((sub, other, seg0));
    assert!(p.shrink_pool() >= 1);
    drop(p);
    assert_empty(dir.path());
}

#[test]
fn a_wrong_generation_in_the_segment_table_keeps_the_segment_unmapped() {
    let dir = root();
    for (i, change) in [1u64, 2, u64::MAX].into_iter().enumerate() {
        let topic = format!("generation{i}");
        let (sub, p) = hostile_pair(dir.path(), &topic);
        send(&p, 1, TAIL).unwrap(); // in segment 1, which the subscriber has not mapped yet
        let mut seg0 = hostile_segment(dir.path(), &topic, 0);
        let word = SEGMENT_TABLE + 8;
        let generation = read_u64(&seg0, word);
        // The next generation (the one the pool's next segment gets), segment 0's (1), and
        // one no segment has.
        let bogus = match change {
            1 => generation + 1,
            2 => 1,
            _ => u64::MAX,
        };
        write_u64(&mut seg0, word, bogus);
        assert_skipped(sub.take());
        assert!(sub.take().unwrap().is_none());
        // Bogus words for segment numbers no entry names change nothing.
        for k in [3, 17, 255] {
            write_u64(&mut seg0, SEGMENT_TABLE + 8 * k, 0xdead_beef);
        }
        send_small(&p, 2, 8).unwrap();
        drop(expect(&sub, 2, 8));
        assert!(inspect::topic(dir.path(), &topic).is_ok());
        // Restored: the segment's other chunk carries the next sample, which arrives.
        write_u64(&mut seg0, word, generation);
        send(&p, 3, TAIL).unwrap();
        drop(expect(&sub, 3, TAIL));
        // And the segments the pool adds next are read as well.
        for seq in 4..=8 {
            send(&p, seq, TAIL).unwrap();
        }
        for seq in 4..=8 {
            drop(expect(&sub, seq, TAIL));
        }
        drop((sub, seg0, p));
    }
    assert_empty(dir.path());
}

/// A field of a data segment's header: its name, offset and width.
const HEADER_FIELDS: [(&str, usize, usize); 11] = [
    ("magic", 0, 8),
    ("version", 8, 4),
    ("segment", 12, 4),
    ("total_len", 16, 8),
    ("incarnation", 32, 8),
    ("chunk_count", 40, 8),
    ("chunk_stride", 48, 8),
    ("payload_capacity", 64, 8),
    ("chunks_off", 80, 8),
    ("generation", 88, 8),
    ("class", 96, 8),
];

fn read_field(map: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..width].copy_from_slice(&map[at..at + width]);
    u64::from_ne_bytes(b)
}

fn write_field(map: &mut [u8], at: usize, width: usize, v: u64) {
    map[at..at + width].copy_from_slice(&v.to_ne_bytes()[..width]);
}

#[test]
fn a_grown_segment_whose_header_disagrees_is_refused() {
    let dir = root();
    for (i, &(field, at, width)) in HEADER_FIELDS.iter().enumerate() {
        // A class number is not checked by subscribers (see the next test).
        if field == "class" {
            continue;
        }
        for change in [1u64, 0x100, u64::MAX] {
            let topic = format!("h{i}-{change:x}");
            let (sub, p) = hostile_pair(dir.path(), &topic);
            send(&p, 1, TAIL).unwrap(); // grows segment 1, not mapped by the subscriber yet
            let mut seg = hostile_segment(dir.path(), &topic, 1);
            let good = read_field(&seg, at, width);
            let bad = match change {
                u64::MAX => u64::MAX,
                c => good.wrapping_add(c),
            };
            write_field(&mut seg, at, width, bad);
            let r = sub.take();
            // One chunk more still fits the file's last page: the geometry adds up, and
            // the chunks the publisher wrote read as written (see the report).
            let fits = field == "chunk_count" && change == 1;
            if let (true, Ok(Some(s))) = (fits, &r) {
                assert!(s.seq == 1 && s.data() == &pattern(1, TAIL)[..]);
                drop(r);
                write_field(&mut seg, at, width, good);
                drop((sub, seg, p));
                continue;
            }
            if let Ok(Some(s)) = &r {
                panic!(
                    "{field} {good} rewritten to {bad}: sample {} handed out",
                    s.seq
                );
            }
            drop(r);
            assert!(sub.take().unwrap().is_none(), "{field}");
            // The tools do not trip over it either.
            let info = inspect::topic(dir.path(), &topic).unwrap();
            assert_eq!(info.publishers.len(), 1);
            assert!(inspect::topics(dir.path()).is_ok());
            // Put right: the next samples of the segment arrive.
            write_field(&mut seg, at, width, good);
            send(&p, 2, TAIL).unwrap();
            drop(expect(&sub, 2, TAIL));
            send_small(&p, 3, 8).unwrap();
            drop(expect(&sub, 3, 8));
            drop((sub, seg));
            drop(p);
        }
    }
    assert_empty(dir.path());
}

#[test]
fn a_rewritten_class_number_changes_nothing_a_subscriber_reads() {
    let dir = root();
    for bad in [0u64, 2, 47, 48, u64::MAX] {
        let topic = format!("class{bad:x}");
        let (sub, p) = hostile_pair(dir.path(), &topic);
        send(&p, 1, TAIL).unwrap();
        let mut seg = hostile_segment(dir.path(), &topic, 1);
        write_u64(&mut seg, 96, bad);
        // Either refused or read whole: the chunks' geometry is what is checked.
        if let Ok(Some(s)) = sub.take() {
            assert!(s.seq == 1 && s.data() == &pattern(1, TAIL)[..]);
        }
        let info = inspect::topic(dir.path(), &topic).unwrap();
        for c in &info.publishers[0].classes {
            assert!(c.in_use <= c.chunks, "{c:?}");
        }
        send_small(&p, 2, 8).unwrap();
        drop(expect(&sub, 2, 8));
        drop((sub, seg, p));
    }
    assert_empty(dir.path());
}

/// Writes `records(c)` into record `c` of the class table of the publisher of `topic`, for
/// every class number a table has, and returns what `inspect::topic` then says (after
/// checking that it stays within the table and in reason).
fn inspect_with_class_table(
    root: &Path,
    topic: &str,
    seg0: &mut memmap2::MmapMut,
    what: &str,
    records: impl Fn(usize) -> [u64; 4],
) -> inspect::PublisherInfo {
    for c in 0..48 {
        for (j, v) in records(c).into_iter().enumerate() {
            write_u64(seg0, CLASS_TABLE + 32 * c + 8 * j, v);
        }
    }
    let info = inspect::topic(root, topic).unwrap_or_else(|e| panic!("{what}: {e}"));
    let pi = info.publishers[0].clone();
    assert!(pi.classes.len() <= 48, "{what}: {:?}", pi.classes);
    for c in &pi.classes {
        assert!(c.in_use <= c.chunks, "{what}: {c:?}");
        assert!(
            c.chunk_bytes >= c.payload_bytes && c.payload_bytes > 0,
            "{what}: {c:?}"
        );
    }
    assert_eq!(inspect::topics(root).unwrap().len(), 1, "{what}");
    pi
}

#[test]
fn garbage_in_the_class_table_is_reported_sanely_by_the_tools() {
    let dir = root();
    let (sub, p) = hostile_pair(dir.path(), "ctable");
    for seq in 1..=3 {
        send(&p, seq, TAIL).unwrap();
    }
    for seq in 1..=3 {
        drop(expect(&sub, seq, TAIL));
    }
    let classes = p.pool_classes().len();
    let mut seg0 = hostile_segment(dir.path(), "ctable", 0);
    let pristine: Vec<u8> = seg0[CLASS_TABLE..SEGMENT_TABLE].to_vec();
    type Garbage = fn(usize) -> [u64; 4];
    let garbage: [(&str, Garbage, usize); 6] = [
        (
            "one huge class",
            |c| {
                if c == 0 {
                    [u64::MAX / 2, u64::MAX, 3, 1]
                } else {
                    [0; 4]
                }
            },
            1,
        ),
        ("stride below capacity", |_| [4096, 64, 3, 1], 0),
        ("in use above chunks", |_| [64, 128, 2, u64::MAX], 48),
        (
            "zero capacity after one",
            |c| {
                if c == 0 {
                    [64, 128, 2, 1]
                } else if c == 1 {
                    [0, 128, 5, 5]
                } else {
                    [u64::MAX; 4]
                }
            },
            1,
        ),
        ("growing", |c| [64 << c, 128 << c, 1000, 10], 48),
        (
            "counts of u64::MAX",
            |c| [64 << c, 128 << c, u64::MAX, 0],
            48,
        ),
    ];
    for (what, g, expected) in garbage {
        let pi = inspect_with_class_table(dir.path(), "ctable", &mut seg0, what, g);
        assert_eq!(pi.classes.len(), expected, "{what}: {:?}", pi.classes);
        // What the files hold is read from the files, not from the table.
        assert_eq!(pi.reserved_bytes, p.reserved_bytes(), "{what}");
        // The publisher and subscriber do not read the table.
        send(&p, 10, TAIL).unwrap();
        send_small(&p, 11, 8).unwrap();
        drop(expect(&sub, 10, TAIL));
        drop(expect(&sub, 11, 8));
    }
    // Put back, the table says what the pool is again (the publisher rewrites the counts of
    // its classes when it next collects; the sizes it wrote once are the test's to restore).
    seg0[CLASS_TABLE..SEGMENT_TABLE].copy_from_slice(&pristine);
    let info = inspect::topic(dir.path(), "ctable").unwrap();
    assert_eq!(info.publishers[0].classes.len(), classes);
    drop((sub, seg0, p));
    assert_empty(dir.path());
}

/// Fails on b853127: `describe` (`shmx/src/inspect.rs`, `used_bytes`) sums the classes'
/// saturated `in_use × chunk_bytes` with `Iterator::sum`, which overflows: a panic in debug
/// builds (here), a wrapped, wrong total in release builds.
#[test]
fn a_class_table_whose_byte_counts_overflow_does_not_panic_the_tools() {
    let dir = root();
    let (sub, p) = hostile_pair(dir.path(), "overflow");
    send(&p, 1, TAIL).unwrap();
    let mut seg0 = hostile_segment(dir.path(), "overflow", 0);
    let pi = inspect_with_class_table(dir.path(), "overflow", &mut seg0, "huge", |_| {
        [u64::MAX / 2, u64::MAX, 3, 1]
    });
    assert_eq!(pi.classes.len(), 48);
    drop((sub, seg0, p));
    assert_empty(dir.path());
}

/// Fails on b853127 with a panic in `Publisher::send`: a class of 65536 chunks grows by as
/// many as it has (`try_grow`, `shmx/src/publisher/grow.rs`), which is more than one segment
/// may hold (`MAX_SEGMENT_CHUNKS`, 65535), so `Geometry::new` says no and `Segments::add`
/// (`shmx/src/publisher/segments.rs`) panics on its `expect`.
#[test]
fn a_class_that_doubles_past_a_segments_chunks_does_not_panic() {
    let dir = root();
    let cfg = TopicConfig {
        max_subscribers: 4,
        max_queue_depth: 65536,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<u64>::builder("big")
        .root(dir.path())
        .topic_config(cfg)
        .queue_depth(65536)
        .create()
        .unwrap();
    let p = Publisher::<u64>::builder("big")
        .root(dir.path())
        .topic_config(cfg)
        .queue_depth(65536)
        .create()
        .unwrap();
    // 16384 chunks in segment 0, then 16384 and 32768 more: the next growth is the one.
    for i in 0..65537u64 {
        p.send(i).unwrap_or_else(|e| panic!("sample {i}: {e}"));
    }
    // The queue holds the last 65536: the first went with drop-oldest.
    assert_eq!(*sub.take().unwrap().unwrap(), 1);
    assert!(p.pool_classes()[0].segments >= 4, "{:?}", p.pool_classes());
    drop((sub, p));
    assert_empty(dir.path());
}

#[test]
fn samples_flow_intact_while_another_thread_grows_and_shrinks_the_pool() {
    use std::time::{Duration, Instant};
    const END: u64 = u64::MAX;
    const COUNT: u64 = 3000;
    let dir = root();
    let sub = subscriber(dir.path(), "threads");
    let path = dir.path().to_owned();
    let publisher_thread = std::thread::spawn(move || {
        let p = publisher(&path, "threads").create().unwrap();
        p.wait_for_subscribers(1, Duration::from_secs(30)).unwrap();
        let mut shrunk = 0;
        for seq in 1..=COUNT {
            // Sizes that visit every class, the largest in runs that make it grow.
            let len = match seq % 97 {
                0..=39 => TAIL,
                n => (n as usize * 37) % TAIL,
            };
            match p.loan_with_tail(len) {
                Ok(mut sample) => {
                    let mut w = sample.writer();
                    *w.seq = seq;
                    w.set_data(&pattern(seq, len)).unwrap();
                    sample.publish().unwrap();
                }
                Err(e) => panic!("sample {seq}: {e}"),
            }
            if seq % 50 == 0 {
                shrunk += p.shrink_pool();
            }
        }
        let mut end = p.loan().unwrap();
        *end.writer().seq = END;
        end.publish().unwrap();
        // Leave only once the subscriber is gone: it reads every segment until then.
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.subscriber_count() > 0 {
            assert!(Instant::now() < deadline, "the subscriber never left");
            std::thread::yield_now();
        }
        shrunk
    });
    // Polled with `take`, which never sweeps the topic: `recv_timeout` does while it waits,
    // and a sweep removes the publisher's half-made segment files (see the next test).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut got) = (0, 0u64);
    loop {
        assert!(
            Instant::now() < deadline,
            "the end marker never came ({got} samples)"
        );
        let Some(s) = sub.take().unwrap() else {
            std::thread::yield_now();
            continue;
        };
        if s.seq == END {
            break;
        }
        assert!(s.seq > last, "{} after {last}", s.seq);
        assert!(
            s.data() == &pattern(s.seq, s.data().len())[..],
            "sample {}",
            s.seq
        );
        last = s.seq;
        got += 1;
    }
    assert!(got > 0);
    drop(sub);
    let shrunk = publisher_thread.join().unwrap();
    eprintln!("{got} of {COUNT} samples received; {shrunk} segments given back on the way");
    assert_empty(dir.path());
}

/// Fails on b853127, now and then: a sweep (`Service::sweep`, `shmx/src/service/sweep.rs`,
/// run by `inspect::clean`, and by any participant that waits: `recv_timeout`,
/// `wait_for_subscribers`, `publisher_count`...) removes every `.tmp.*` file of the topic,
/// on the ground that "every creation happens under the root lock, which we hold"; but a
/// growing pool creates its segment files without the root lock (`try_grow` takes it only
/// for `max_root_bytes`), so the loan that grows fails with `Error::Io` (`data.<inc>.<k>:
/// No such file or directory`) when the sweep removes its temporary file before it is linked.
#[test]
fn a_sweep_beside_a_growing_pool_does_not_fail_its_loans() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let dir = root();
    let sub = subscriber(dir.path(), "sweep");
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (stop, path) = (stop.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            let mut sweeps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                inspect::clean(&path, false).unwrap();
                sweeps += 1;
            }
            sweeps
        })
    };
    let p = publisher(dir.path(), "sweep").create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut result = Ok(());
    let mut rounds = 0;
    while Instant::now() < deadline && rounds < 3000 {
        // Two segments added, then given back.
        result = (1..=3).try_for_each(|seq| send(&p, seq, 8));
        while let Some(s) = sub.take().unwrap() {
            drop(s);
        }
        if result.is_err() {
            break;
        }
        p.shrink_pool();
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sweeps = sweeper.join().unwrap();
    if let Err(e) = result {
        panic!("round {rounds} ({sweeps} sweeps beside it): {e}");
    }
    drop((sub, p));
    assert_empty(dir.path());
}
