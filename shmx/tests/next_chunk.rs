//! The next-chunk announcement: each published chunk's header names the chunk the publisher's
//! next loan takes, so that a waiting subscriber can load it while it polls. These tests read
//! the data segment's bytes directly, as any process of the same user can.

mod common;

use common::{hostile_map, pair, root};
use shmx::{Publisher, Subscriber};

/// Byte offsets in a data segment's header (`DataParams` in shmx/src/data.rs).
const CHUNK_COUNT: usize = 40;
const CHUNK_STRIDE: usize = 48;
const CHUNKS_OFF: usize = 80;
/// Byte offsets in a `ChunkHeader`.
const SEQ: usize = 0;
const NEXT: usize = 16;
/// `ChunkHeader::next` when the publisher had no free chunk to announce.
const NO_CHUNK: u64 = u64::MAX;

fn u64_at(map: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(map[at..at + 8].try_into().unwrap())
}

/// The byte offset of every chunk's header.
fn chunk_offsets(map: &[u8]) -> Vec<usize> {
    let (count, stride, off) = (
        u64_at(map, CHUNK_COUNT) as usize,
        u64_at(map, CHUNK_STRIDE) as usize,
        u64_at(map, CHUNKS_OFF) as usize,
    );
    (0..count).map(|i| off + i * stride).collect()
}

/// The index of the chunk whose header holds sequence `seq`, and what that header announces.
fn chunk_of(map: &[u8], seq: u64) -> (u64, u64) {
    let found: Vec<(u64, u64)> = chunk_offsets(map)
        .into_iter()
        .enumerate()
        .filter(|&(_, at)| u64_at(map, at + SEQ) == seq)
        .map(|(i, at)| (i as u64, u64_at(map, at + NEXT)))
        .collect();
    let [one] = found.as_slice() else {
        panic!("expected one chunk with sequence {seq}, found {found:?}");
    };
    *one
}

#[test]
fn each_publish_announces_the_chunk_its_successor_is_published_in() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .queue_depth(4)
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .queue_depth(4)
        .create()
        .unwrap();
    let map = hostile_map(dir.path(), "t");
    let mut held = std::collections::VecDeque::new();
    let (mut announced, mut right) = (0, 0);
    let mut previous: Option<u64> = None;
    for seq in 1..=300u64 {
        publisher.send(seq).unwrap();
        let (chunk, next) = chunk_of(&map, seq);
        if let Some(p) = previous {
            assert_eq!(
                chunk, p,
                "sample {seq} is not in the chunk announced before it"
            );
            right += 1;
        }
        previous = (next != NO_CHUNK).then_some(next);
        announced += previous.is_some() as u32;
        // Vary what the subscriber holds and when it gives chunks back, so that chunks are
        // taken back between publishes in every pattern: none, one or three samples
        // taken per publish, and one or two held at a time.
        let takes = [1, 0, 3, 1, 2][seq as usize % 5];
        for _ in 0..takes {
            match sub.take().unwrap() {
                Some(s) => held.push_back(s),
                None => break,
            }
            while held.len() > 1 + (seq as usize / 7) % 2 {
                held.pop_front();
            }
        }
    }
    // Every announcement was right (checked above), and nearly every publish had one: it
    // has none only when the free list is empty as it publishes (here when it loaned the last
    // free chunk and the returned ones are not taken back yet).
    assert!(
        announced >= 285,
        "{announced} of 300 publishes announced a chunk"
    );
    assert_eq!(right, announced - previous.is_some() as u32);
}

#[test]
fn a_hostile_announcement_is_only_a_hint() {
    let dir = root();
    let (sub, publisher) = pair::<u64>(dir.path());
    let mut map = hostile_map(dir.path(), "t");
    let count = chunk_offsets(&map).len() as u64;
    let garbage = [u64::MAX - 1, 1 << 40, count, count + 1, 1 << 63];
    let scribble = |map: &mut memmap2::MmapMut, k: usize| {
        for at in chunk_offsets(map) {
            map[at + NEXT..at + NEXT + 8]
                .copy_from_slice(&garbage[k % garbage.len()].to_ne_bytes());
        }
    };
    for seq in 1..=20u64 {
        publisher.send(seq).unwrap();
        // The subscriber takes the sample with a hostile announcement, then polls (and
        // prefetches what it names) with nothing queued.
        scribble(&mut map, seq as usize);
        assert_eq!(*sub.take().unwrap().expect("sample"), seq);
        for _ in 0..3 {
            assert!(sub.take().unwrap().is_none());
        }
    }
    let st = publisher.pool_stats();
    assert_eq!(st.free, st.total, "{st:?}");
}
