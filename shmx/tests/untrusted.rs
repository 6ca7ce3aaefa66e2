//! Publishers that are not trusted: a chunk rewritten *after* its sample was taken and
//! validated, by the test playing the hostile publisher through a second, writable mapping of
//! the data segment (`common::hostile_map`).
//!
//! - In place (zero-copy), a relative pointer is re-checked on every read against the payload
//!   of the chunk that holds it: rewritten to point into another topic's segment, or into the
//!   neighbouring chunk, it reads as empty. (Before that re-check was bounded to the sample's
//!   own chunk, both rewrites read the other sample's bytes: the first test failed on the
//!   commit before this file.)
//! - With `copy_on_take()`, the subscriber reads its own copy, validated after it was made:
//!   a rewritten rkyv offset or a `bool` rewritten to 2 changes nothing it reads. (Read in
//!   place, the same rewrites make a subscriber follow an offset out of its chunk, a SIGSEGV,
//!   or read a `bool` holding 2, undefined behaviour: those cannot be tests, and the option
//!   did not exist before this file.)
//! - Copied samples still read their relative pointers (re-checked against the copy), give
//!   their chunks back at once, and respect `max_held`.

mod common;

use common::{assert_empty, hostile_map, root};
use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::{Error, Publisher, RelSlice, RelStr, ShmMessage, Subscriber, TopicConfig};
use std::path::Path;

/// A message with a marker to find it by in a data segment, and a slice in its tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    marker: u64,
    data: RelSlice<u8>,
}

fn blob_pair(root: &Path, topic: &str) -> (Subscriber<Blob>, Publisher<Blob>) {
    let sub = Subscriber::<Blob>::builder(topic)
        .root(root)
        .create()
        .unwrap();
    let publisher = Publisher::<Blob>::builder(topic)
        .root(root)
        .max_tail_bytes(256)
        .create()
        .unwrap();
    (sub, publisher)
}

fn send_blob(publisher: &Publisher<Blob>, marker: u64, data: &[u8]) {
    let mut sample = publisher.loan().unwrap();
    let mut w = sample.writer();
    *w.marker = marker;
    w.set_data(data).unwrap();
    sample.publish().unwrap();
}

/// Where the message with `marker` starts in `map` (the bytes of a data segment).
fn find(map: &[u8], marker: &[u8]) -> usize {
    map.windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker is in the data segment")
}

/// Rewrites the offset of the `data` field of the `Blob` with `marker` in topic `topic`'s
/// data segment; returns the offset it held.
fn rewrite_offset(root: &Path, topic: &str, marker: u64, offset: u32) -> u32 {
    let mut map = hostile_map(root, topic);
    let at = find(&map, &marker.to_ne_bytes()) + 8; // `data` follows the 8-byte marker
    let old = u32::from_ne_bytes(map[at..at + 4].try_into().unwrap());
    map[at..at + 4].copy_from_slice(&offset.to_ne_bytes());
    old
}

/// The offset that makes a relative pointer at address `field` point at address `target`.
fn offset_to(field: usize, target: usize) -> u32 {
    let distance = target
        .checked_sub(field)
        .expect("the target lies after the field");
    u32::try_from(distance).expect("the two mappings lie within 4 GiB of each other")
}

#[test]
fn a_pointer_rewritten_after_the_take_into_another_topics_segment_reads_empty() {
    let dir = root();
    let (sub_a, pub_a) = blob_pair(dir.path(), "a");
    let (sub_b, pub_b) = blob_pair(dir.path(), "b");
    let (marker_a, marker_b) = (0x5EED_0000_0000_00A1_u64, 0x5EED_0000_0000_00B2_u64);
    send_blob(&pub_a, marker_a, b"topic a");
    send_blob(&pub_b, marker_b, b"topic b");
    let sa = sub_a.take().unwrap().unwrap();
    let sb = sub_b.take().unwrap().unwrap();
    assert_eq!((sa.data(), sb.data()), (&b"topic a"[..], &b"topic b"[..]));

    // Offsets only point forwards: the victim is the topic whose field lies below the other's
    // data (whichever way round the kernel placed the mappings).
    let field_a = &sa.data as *const RelSlice<u8> as usize;
    let field_b = &sb.data as *const RelSlice<u8> as usize;
    let (data_a, data_b) = (sa.data().as_ptr() as usize, sb.data().as_ptr() as usize);
    let (topic, marker, victim, field, target) = if data_b > field_a {
        ("a", marker_a, &sa, field_a, data_b)
    } else {
        ("b", marker_b, &sb, field_b, data_a)
    };
    let original = rewrite_offset(dir.path(), topic, marker, offset_to(field, target));
    assert!(
        victim.data().is_empty(),
        "a pointer into another topic's segment reads as empty, not {:?}",
        victim.data()
    );
    // The same pointer, rewritten back, reads again: the field rewritten was the one read.
    rewrite_offset(dir.path(), topic, marker, original);
    assert_eq!(victim.data(), format!("topic {topic}").as_bytes());
    drop((sa, sb));

    // Into the neighbouring chunk of the same segment.
    let (m1, m2) = (0x5EED_0000_0000_00C1_u64, 0x5EED_0000_0000_00C2_u64);
    send_blob(&pub_a, m1, b"first");
    send_blob(&pub_a, m2, b"second");
    let s1 = sub_a.take().unwrap().unwrap();
    let s2 = sub_a.take().unwrap().unwrap();
    let field_1 = &s1.data as *const RelSlice<u8> as usize;
    let field_2 = &s2.data as *const RelSlice<u8> as usize;
    let (data_1, data_2) = (s1.data().as_ptr() as usize, s2.data().as_ptr() as usize);
    let (marker, victim, field, target, own) = if data_2 > field_1 {
        (m1, &s1, field_1, data_2, &b"first"[..])
    } else {
        (m2, &s2, field_2, data_1, &b"second"[..])
    };
    assert!(
        target - field >= 64,
        "the other sample lies in another chunk"
    );
    let original = rewrite_offset(dir.path(), "a", marker, offset_to(field, target));
    assert!(
        victim.data().is_empty(),
        "a pointer into the neighbouring chunk reads as empty, not {:?}",
        victim.data()
    );
    rewrite_offset(dir.path(), "a", marker, original);
    assert_eq!(victim.data(), own);
    drop((s1, s2));
    drop((sub_a, pub_a, sub_b, pub_b));
    assert_empty(dir.path());
}

#[test]
fn an_rkyv_archive_rewritten_after_the_take_with_copy_on_take_reads_what_was_validated() {
    let dir = root();
    let sub = ArchiveSubscriber::<String>::builder("logs")
        .root(dir.path())
        .copy_on_take()
        .create()
        .unwrap();
    let publisher = ArchivePublisher::<String>::builder("logs")
        .root(dir.path())
        .create()
        .unwrap();
    // Longer than 8 bytes: archived out of line, behind a relative offset.
    let text = "a string stored out of line, behind a relative offset";
    publisher.send(&text.to_owned()).unwrap();
    let sample = sub.take().unwrap().unwrap();
    assert_eq!(sample.as_str(), text);

    // The archive in the chunk: the string's bytes first, the root `ArchivedString` (a 4-byte
    // length, then a 4-byte offset from the root back to the bytes) last.
    let len = sample.archive_len();
    let mut map = hostile_map(dir.path(), "logs");
    let start = find(&map, text.as_bytes());
    let at = start + len - 4;
    let offset = i32::from_le_bytes(map[at..at + 4].try_into().unwrap());
    assert_eq!(
        offset,
        -((len - 8) as i32),
        "the root points back to the bytes"
    );
    map[at..at + 4].copy_from_slice(&(-0x4000_0000_i32).to_le_bytes());
    // The chunk now holds an archive whose string points 1 GiB away: rkyv refuses it.
    let mut rewritten = rkyv::util::AlignedVec::<16>::new();
    rewritten.extend_from_slice(&map[start..start + len]);
    assert!(rkyv::access::<rkyv::Archived<String>, rkyv::rancor::Error>(&rewritten).is_err());

    // The subscriber reads its copy, checked when it was made.
    assert_eq!(sample.as_str(), text);
    drop(sample);
    drop(map);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Flagged {
    id: u32,
    ok: bool,
    _pad: [u8; 3],
}

#[test]
fn a_bool_field_rewritten_after_the_take_with_copy_on_take_reads_what_was_validated() {
    let dir = root();
    let sub = Subscriber::<Flagged>::builder("t")
        .root(dir.path())
        .copy_on_take()
        .create()
        .unwrap();
    let publisher = Publisher::<Flagged>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let id = 0x00C0_FFEE;
    publisher
        .send(Flagged {
            id,
            ok: true,
            _pad: [0; 3],
        })
        .unwrap();
    let sample = sub.take().unwrap().unwrap();
    assert!(sample.ok);

    let mut map = hostile_map(dir.path(), "t");
    let at = find(&map, &id.to_ne_bytes()) + 4;
    assert_eq!(map[at], 1, "the chunk's bool");
    map[at] = 2;
    assert_eq!(map[at], 2, "the chunk holds an invalid bool now");

    // The sample still reads what was validated, and its copy holds the validated byte.
    assert!(sample.ok);
    assert_eq!(
        *sample,
        Flagged {
            id,
            ok: true,
            _pad: [0; 3]
        }
    );
    // SAFETY: reads the one byte of a `bool` field of a live sample, as a `u8`.
    let byte = unsafe { (&sample.ok as *const bool).cast::<u8>().read() };
    assert_eq!(byte, 1);
    drop(sample);

    // A bool that is 2 when the sample is copied is refused, and the subscriber goes on.
    let mut loaned = publisher.loan().unwrap();
    loaned.id = id + 1;
    let at = find(&map, &(id + 1).to_ne_bytes()) + 4;
    map[at] = 2;
    loaned.publish().unwrap();
    let e = sub.take().err();
    assert!(
        matches!(&e, Some(Error::InvalidSample { reason, .. }) if reason.contains("bool")),
        "{e:?}"
    );
    publisher
        .send(Flagged {
            id: id + 2,
            ok: false,
            _pad: [0; 3],
        })
        .unwrap();
    assert_eq!(sub.take().unwrap().unwrap().id, id + 2);
    let pool = publisher.pool_stats();
    assert_eq!(pool.free, pool.total, "{pool:?}");
    drop(map);
    drop((sub, publisher));
    assert_empty(dir.path());
}

/// A message with a string and a slice in its tail.
#[derive(ShmMessage)]
#[repr(C)]
struct Scan {
    seq: u64,
    frame: RelStr,
    ranges: RelSlice<u32>,
}

fn send_scan(publisher: &Publisher<Scan>, seq: u64, n: usize) {
    let mut sample = publisher.loan().unwrap();
    let mut w = sample.writer();
    *w.seq = seq;
    w.set_frame(&format!("frame {seq}")).unwrap();
    let ranges = w.alloc_ranges(n).unwrap();
    for (i, r) in ranges.iter_mut().enumerate() {
        *r = seq as u32 * 1000 + i as u32;
    }
    sample.publish().unwrap();
}

fn check_scan(scan: &Scan, seq: u64, n: usize) {
    assert_eq!(scan.seq, seq);
    assert_eq!(scan.frame(), format!("frame {seq}"));
    let expected: Vec<u32> = (0..n).map(|i| seq as u32 * 1000 + i as u32).collect();
    assert_eq!(scan.ranges(), &expected[..]);
}

#[test]
fn copied_samples_read_their_relative_pointers_and_give_their_chunks_back() {
    let dir = root();
    let max_held = 4;
    let topic = TopicConfig {
        max_held,
        ..TopicConfig::default()
    };
    let sub = Subscriber::<Scan>::builder("scan")
        .root(dir.path())
        .topic_config(topic)
        .copy_on_take()
        .create()
        .unwrap();
    let publisher = Publisher::<Scan>::builder("scan")
        .root(dir.path())
        .max_tail_bytes(1024)
        .create()
        .unwrap();

    // Many takes: each sample reads its tail from its copy (the chunk is back in the pool
    // while the sample is still held), and nothing is lost.
    for seq in 1..=200u64 {
        let n = (seq % 50) as usize;
        send_scan(&publisher, seq, n);
        let scan = sub.take().unwrap().expect("published just above");
        let pool = publisher.pool_stats();
        assert_eq!(
            pool.free, pool.total,
            "the chunk went back at take: {pool:?}"
        );
        check_scan(&scan, seq, n);
        // The elements lie in the sample's own bytes (its copy), after the message.
        let first = &*scan as *const Scan as usize;
        let ranges = scan.ranges().as_ptr() as usize;
        assert!(n == 0 || (first < ranges && ranges < first + scan.payload_len()));
    }

    // The held limit: `max_held` copies at once, then `HeldLimit` though samples wait.
    for seq in 1..=(max_held as u64 + 1) {
        send_scan(&publisher, 1000 + seq, 3);
    }
    let held: Vec<_> = (0..max_held)
        .map(|_| sub.take().unwrap().unwrap())
        .collect();
    let e = sub.take().err();
    assert!(
        matches!(e, Some(Error::HeldLimit { max_held: m, .. }) if m == max_held),
        "{e:?}"
    );
    for (i, scan) in held.iter().enumerate() {
        check_scan(scan, 1001 + i as u64, 3);
    }
    drop(held);
    let last = sub.take().unwrap().unwrap();
    check_scan(&last, 1000 + max_held as u64 + 1, 3);
    drop(last);

    // `drain` copies too.
    for seq in 2000..2010 {
        send_scan(&publisher, seq, 7);
    }
    let mut seen = Vec::new();
    let n = sub
        .drain(usize::MAX, |scan| {
            check_scan(scan, scan.seq, 7);
            seen.push(scan.seq);
        })
        .unwrap();
    assert_eq!((n, seen), (10, (2000..2010).collect::<Vec<_>>()));

    // A second publisher with a larger payload capacity: the copies grow to it.
    let big = Publisher::<Scan>::builder("scan")
        .root(dir.path())
        .max_tail_bytes(64 << 10)
        .create()
        .unwrap();
    send_scan(&big, 7, 10_000);
    check_scan(&sub.take().unwrap().unwrap(), 7, 10_000);
    assert!(sub.take().unwrap().is_none());
    for p in [&publisher, &big] {
        let pool = p.pool_stats();
        assert_eq!(pool.free, pool.total, "{pool:?}");
    }

    // A copy outlives its publisher.
    send_scan(&big, 8, 100);
    let kept = sub.take().unwrap().unwrap();
    drop(big);
    assert_eq!(sub.publisher_count(), 1);
    check_scan(&kept, 8, 100);
    drop(kept);
    drop((sub, publisher));
    assert_empty(dir.path());
}

#[test]
fn a_late_subscriber_that_copies_on_take_receives_the_history_copied() {
    let dir = root();
    let publisher = Publisher::<Scan>::builder("scan")
        .root(dir.path())
        .history(2)
        .max_tail_bytes(256)
        .create()
        .unwrap();
    send_scan(&publisher, 1, 5);
    send_scan(&publisher, 2, 6);
    let sub = Subscriber::<Scan>::builder("scan")
        .root(dir.path())
        .copy_on_take()
        .create()
        .unwrap();
    let first = sub.take().unwrap().expect("history");
    let second = sub.take().unwrap().expect("history");
    check_scan(&first, 1, 5);
    check_scan(&second, 2, 6);
    assert!(sub.take().unwrap().is_none());
    drop((first, second));
    // Only the publisher's history holds its chunks: the pins went at take.
    let pool = publisher.pool_stats();
    assert_eq!(pool.total - pool.free, 2, "{pool:?}");
    drop((sub, publisher));
    assert_empty(dir.path());
}
