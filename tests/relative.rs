//! Relative pointers ([`RelSlice`], [`RelStr`]) across real processes: variable-length data of
//! random sizes arrives intact, a subscriber rejects samples whose relative pointers a third
//! process corrupted (and keeps working), and a full tail is an error, not a panic.
//!
//! As in `tests/delivery.rs`, each test spawns this test binary again as children (see
//! `child_main` and `tests/common/mod.rs`), each with the test's own `SHMX_ROOT`; the parent
//! sequences them through lines on their stdin/stdout, so no test sleeps and hopes. Every
//! test ends by checking that its root is empty once every process has exited.

mod common;

use common::rng::XorShift;
use common::{await_parent, emit, poll, Proc, Role, Root, DEADLINE};
use shmx::{Error, Overflow, Publisher, RelSlice, RelStr, ShmMessage, Subscriber, TopicConfig};
use std::fs::OpenOptions;
use std::mem::{offset_of, size_of};
use std::os::unix::fs::FileExt;

// ---------------------------------------------------------------------------------------------
// The message type and its contents
// ---------------------------------------------------------------------------------------------

/// A message with a string and a byte buffer in its chunk's tail: 32 bytes, no padding.
#[derive(ShmMessage)]
#[repr(C)]
struct Blob {
    /// The publisher's own count, 1, 2, 3, ...
    seq: u64,
    /// Wrapping sum of the bytes of `data`.
    sum: u64,
    label: RelStr,
    data: RelSlice<u8>,
}

const _: () = assert!(size_of::<Blob>() == 32);

/// Tail bytes of every chunk in the random-sizes test.
const TAIL: usize = 64 * 1024;
/// Longest label, in bytes.
const MAX_LABEL: usize = 64;
/// Longest data: a label and data of the longest lengths fill the tail exactly (both are
/// byte arrays, so the tail allocator leaves no alignment gap between them).
const MAX_DATA: usize = TAIL - MAX_LABEL;
/// Seed of the random sizes and contents (printed in every failure message).
const SEED: u64 = 0x5eed_cafe_f00d_1234;

/// What sample `seq` of the random-sizes test holds: its label and data length.
///
/// Every 100th sample (from 50) fills the tail exactly, every 100th (from 1) has no data at
/// all; the others have random lengths. Labels hold multi-byte UTF-8 too.
fn plan(seq: u64) -> (String, usize) {
    let mut rng = XorShift::new(SEED, seq, 0);
    let at_max = seq % 100 == 50;
    let mut label = format!("blob {seq} ");
    let target = if at_max {
        MAX_LABEL
    } else {
        label.len() + rng.below_or_eq(MAX_LABEL - label.len())
    };
    const CHARS: [char; 6] = ['a', 'Z', '7', 'é', '€', '📷'];
    while label.len() < target {
        let c = CHARS[rng.below_or_eq(CHARS.len() - 1)];
        if label.len() + c.len_utf8() <= target {
            label.push(c);
        } else {
            label.push('.');
        }
    }
    let data_len = match seq % 100 {
        50 => MAX_DATA,
        1 => 0,
        _ => rng.below_or_eq(MAX_DATA),
    };
    (label, data_len)
}

/// The data of sample `seq` (of the length that [`plan`] gives) written into `buf`.
fn fill_data(seq: u64, buf: &mut [u8]) {
    XorShift::new(SEED, seq, 1).fill(buf);
}

fn byte_sum(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |s, &b| s.wrapping_add(u64::from(b)))
}

/// Panics with the first differing byte if `got` is not `expected`.
#[track_caller]
fn assert_bytes(what: &str, got: &[u8], expected: &[u8]) {
    assert_eq!(got.len(), expected.len(), "{what}: length (seed {SEED:#x})");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
        panic!(
            "{what}: byte {i} of {} is {:#04x}, expected {:#04x} (seed {SEED:#x})",
            got.len(),
            got[i],
            expected[i]
        );
    }
}

/// Topic limits for these tests: one subscriber, so the pools stay small.
fn topic() -> TopicConfig {
    TopicConfig {
        max_publishers: 1,
        max_subscribers: 1,
        max_queue_depth: 16,
        max_held: 2,
        max_history: 0,
        ..TopicConfig::default()
    }
}

fn blob_publisher(topic_name: &str, tail: usize) -> Publisher<Blob> {
    Publisher::<Blob>::builder(topic_name)
        .topic_config(topic())
        .queue_depth(16)
        .max_tail_bytes(tail)
        .overflow(Overflow::Block)
        // A subscriber that stops reading fails the test instead of hanging it.
        .block_timeout(DEADLINE)
        .create()
        .expect("create the publisher")
}

fn blob_subscriber(topic_name: &str) -> Subscriber<Blob> {
    Subscriber::<Blob>::builder(topic_name)
        .topic_config(topic())
        .queue_depth(16)
        .create()
        .expect("create the subscriber")
}

// ---------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------

/// Entry point of every child process; returns at once in the parent (no `SHMX_CHILD`).
#[test]
fn child_main() {
    common::run_child(|r| match r.name.as_str() {
        "random-pub" => random_publisher_role(r),
        "random-sub" => random_subscriber_role(r),
        "small-pub" => small_publisher_role(r),
        "checking-sub" => checking_subscriber_role(r),
        "corrupt" => corrupter_role(r),
        "tail-full" => tail_full_role(r),
        other => panic!("unknown role {other}"),
    });
}

/// `random-pub topic= n=`: waits for one subscriber, publishes samples `1..=n` as [`plan`]
/// and [`fill_data`] make them (data written in place), says `sent n`.
fn random_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"), TAIL);
    poll("the subscriber to connect", || {
        (publisher.subscriber_count() == 1).then_some(())
    });
    let n = r.num("n");
    for seq in 1..=n {
        let (label, len) = plan(seq);
        let mut sample = publisher.loan().expect("loan");
        assert!(
            sample.tail_capacity() >= TAIL,
            "tail smaller than asked for"
        );
        let mut w = sample.writer();
        *w.seq = seq;
        w.set_label(&label)
            .unwrap_or_else(|e| panic!("label of {seq}: {e}"));
        let data = w
            .alloc_data(len)
            .unwrap_or_else(|e| panic!("{len} data bytes of {seq}: {e}"));
        // The bytes are recycled from an earlier sample: every one of them is written.
        fill_data(seq, data);
        *w.sum = byte_sum(data);
        assert_eq!(sample.tail_used(), label.len() + len, "tail used by {seq}");
        sample
            .publish()
            .unwrap_or_else(|e| panic!("publish {seq}: {e}"));
    }
    emit(format_args!("sent {n}"));
    drop(publisher);
    0
}

/// `random-sub topic= n=`: says `ready`, receives `n` samples that must be `1..=n` in order,
/// each exactly as [`plan`] and [`fill_data`] make it, and nothing after them; says
/// `received n full=<samples that filled the tail> empty=<samples without data>`.
fn random_subscriber_role(r: &Role) -> i32 {
    let subscriber = blob_subscriber(r.str("topic"));
    emit("ready");
    let n = r.num("n");
    let (mut full, mut empty) = (0, 0);
    let mut expected = vec![0u8; MAX_DATA];
    for seq in 1..=n {
        let msg = subscriber
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("receive {seq}: {e}"))
            .unwrap_or_else(|| panic!("no sample {seq} within {DEADLINE:?}"));
        assert_eq!(
            (msg.sequence(), msg.seq),
            (seq, seq),
            "samples out of order"
        );
        let (label, len) = plan(seq);
        assert_eq!(msg.label(), label, "label of {seq} (seed {SEED:#x})");
        let expected = &mut expected[..len];
        fill_data(seq, expected);
        assert_bytes(&format!("data of {seq}"), msg.data(), expected);
        assert_eq!(msg.sum, byte_sum(expected), "sum of {seq}");
        let least = size_of::<Blob>() + msg.data().len();
        assert!(
            msg.payload_len() >= least,
            "payload of {seq} is {} bytes, less than the message and its data ({least})",
            msg.payload_len()
        );
        // Byte arrays leave no alignment gaps: the published length is exactly what was used.
        assert_eq!(
            msg.payload_len(),
            size_of::<Blob>() + label.len() + len,
            "published length of {seq}"
        );
        if label.len() + len == TAIL {
            full += 1;
        }
        if len == 0 {
            empty += 1;
        }
    }
    let extra = subscriber.take().expect("take after the last sample");
    assert!(extra.is_none(), "a sample after the last one");
    drop(extra);
    emit(format_args!("received {n} full={full} empty={empty}"));
    drop(subscriber);
    0
}

/// Label of sample `seq` of the corruption test.
fn small_label(seq: u64) -> String {
    format!("sample {seq}")
}

/// Data of sample `seq` of the corruption test.
fn small_data(seq: u64) -> Vec<u8> {
    (0..100 + seq).map(|i| (seq * 31 + i) as u8).collect()
}

/// `small-pub topic= n=`: waits for one subscriber, publishes sample 1, says `sent 1`; then
/// for each `send` from the parent publishes the next (up to `n`), says `sent <seq>`; waits
/// for `exit`. The data is allocated after the label, so it ends the published tail.
fn small_publisher_role(r: &Role) -> i32 {
    let publisher = blob_publisher(r.str("topic"), 1024);
    poll("the subscriber to connect", || {
        (publisher.subscriber_count() == 1).then_some(())
    });
    let n = r.num("n");
    for seq in 1..=n {
        if seq > 1 {
            await_parent("send");
        }
        let data = small_data(seq);
        let mut sample = publisher.loan().expect("loan");
        let mut w = sample.writer();
        *w.seq = seq;
        *w.sum = byte_sum(&data);
        w.set_label(&small_label(seq)).expect("set the label");
        w.set_data(&data).expect("set the data");
        sample
            .publish()
            .unwrap_or_else(|e| panic!("publish {seq}: {e}"));
        emit(format_args!("sent {seq}"));
    }
    await_parent("exit");
    drop(publisher);
    0
}

/// `checking-sub topic= script=<seq>:<ok|bad-relative|bad-utf8>,...`: says `ready`; for each
/// step waits for the parent's `take`, receives, and checks that sample `seq` arrives intact
/// (`ok`, says `got <seq>`) or is refused with `Error::InvalidSample` for that sequence and
/// the expected reason (says `invalid <seq> <reason>`), after which nothing else is waiting;
/// then waits for `exit`.
fn checking_subscriber_role(r: &Role) -> i32 {
    let subscriber = blob_subscriber(r.str("topic"));
    emit("ready");
    for step in r.str("script").split(',') {
        let (seq, what) = step.split_once(':').expect("<seq>:<what>");
        let seq: u64 = seq.parse().expect("a sequence number");
        await_parent("take");
        let received = subscriber.recv_timeout(DEADLINE);
        let needle = match what {
            "ok" => {
                let msg = received
                    .unwrap_or_else(|e| panic!("receive {seq}: {e}"))
                    .unwrap_or_else(|| panic!("no sample {seq} within {DEADLINE:?}"));
                assert_eq!((msg.sequence(), msg.seq), (seq, seq));
                assert_eq!(msg.label(), small_label(seq));
                assert_bytes(&format!("data of {seq}"), msg.data(), &small_data(seq));
                assert_eq!(msg.sum, byte_sum(msg.data()));
                drop(msg);
                emit(format_args!("got {seq}"));
                continue;
            }
            "bad-relative" => "relative pointer",
            "bad-utf8" => "UTF-8",
            other => panic!("unknown step {other}"),
        };
        let (sequence, reason) = match received {
            Err(Error::InvalidSample {
                sequence, reason, ..
            }) => (sequence, reason),
            Err(e) => panic!("sample {seq}: expected InvalidSample, got error {e}"),
            Ok(Some(msg)) => panic!(
                "sample {seq}: expected InvalidSample, got sample {} (label {:?}, {} data bytes)",
                msg.sequence(),
                msg.label(),
                msg.data().len()
            ),
            Ok(None) => panic!("sample {seq}: expected InvalidSample, got nothing"),
        };
        assert_eq!(sequence, seq, "sequence of the invalid sample");
        assert!(
            reason.contains(needle),
            "the reason for refusing {seq} should mention {needle:?}: {reason}"
        );
        // The subscriber keeps working: the refused sample is gone, nothing else is waiting.
        let next = subscriber.take().expect("take after an invalid sample");
        assert!(next.is_none(), "a sample after the invalid one");
        drop(next);
        emit(format_args!("invalid {seq} {reason}"));
    }
    await_parent("exit");
    drop(subscriber);
    0
}

/// Byte offsets in a data segment's header (`DataParams` in shmx/src/data.rs).
mod params {
    pub const MAGIC: u64 = 0;
    pub const INCARNATION: u64 = 32;
    pub const CHUNK_COUNT: u64 = 40;
    pub const CHUNK_STRIDE: u64 = 48;
    pub const PAYLOAD_OFF: u64 = 56;
    pub const PAYLOAD_CAPACITY: u64 = 64;
    pub const CHUNKS_OFF: u64 = 80;
    /// Byte offsets in a `ChunkHeader`.
    pub const SEQ: u64 = 0;
    pub const LEN: u64 = 8;
    /// The chunk header's tag word (a request's or response's routing; 0 in a topic).
    pub const TAG: u64 = 24;
}

/// `corrupt topic= seq= what=relative|utf8`: opens the topic's data segments read-write
/// (as any process of the same user can), finds the chunk whose header holds sequence `seq`
/// and corrupts its payload: `relative` makes `data` one byte longer than the published tail
/// holds; `utf8` overwrites the first byte of `label` with `0xff`. Says `corrupted <seq>
/// <what>` and exits. Touches no shmx endpoint.
fn corrupter_role(r: &Role) -> i32 {
    let name = shmx::name::TopicName::new(r.str("topic")).expect("topic name");
    let dir = shmx::name::root_dir().join(name.encoded());
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("data."))
        })
        .collect();
    let seq = r.num("seq");
    // The chunk may be in any segment of the pool (segment 0, `data.<inc>`, or one it grew,
    // `data.<inc>.<k>`): the one whose header holds the sequence.
    let mut found = Vec::new();
    for path in &files {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {} read-write: {e}", path.display()));
        let at = |at: u64| {
            let mut b = [0u8; 8];
            file.read_exact_at(&mut b, at).expect("read u64");
            u64::from_ne_bytes(b)
        };
        assert_eq!(
            at(params::MAGIC).to_le_bytes(),
            *b"SHMXDAT\0",
            "magic of {}",
            path.display()
        );
        let inc = at(params::INCARNATION);
        let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        assert_eq!(
            name.split('.').nth(1),
            Some(inc.to_string().as_str()),
            "the file is named after its incarnation"
        );
        let (count, stride) = (at(params::CHUNK_COUNT), at(params::CHUNK_STRIDE));
        let chunks_off = at(params::CHUNKS_OFF);
        for c in (0..count).map(|i| chunks_off + i * stride) {
            if at(c + params::SEQ) == seq {
                found.push((path.clone(), c));
            }
        }
    }
    let [(path, chunk)] = found.as_slice() else {
        panic!("expected one chunk with sequence {seq}, found {found:?}");
    };
    let chunk = *chunk;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} read-write: {e}", path.display()));
    let u64_at = |at: u64| {
        let mut b = [0u8; 8];
        file.read_exact_at(&mut b, at).expect("read u64");
        u64::from_ne_bytes(b)
    };
    let u32_at = |at: u64| {
        let mut b = [0u8; 4];
        file.read_exact_at(&mut b, at).expect("read u32");
        u32::from_ne_bytes(b)
    };
    let payload_off = u64_at(params::PAYLOAD_OFF);
    let capacity = u64_at(params::PAYLOAD_CAPACITY);
    assert_eq!(
        u64_at(chunk + params::TAG),
        0,
        "a topic's chunk carries no tag"
    );
    let len = u64_at(chunk + params::LEN);
    assert!(
        (size_of::<Blob>() as u64..=capacity).contains(&len),
        "published length {len}"
    );
    let payload = chunk + payload_off;
    let what = r.str("what");
    match what {
        "relative" => {
            // `data` was allocated last: its elements end where the published tail ends.
            let field = offset_of!(Blob, data) as u64;
            let (offset, n) = (u32_at(payload + field), u32_at(payload + field + 4));
            assert_eq!(n as usize, small_data(seq).len(), "length of data");
            assert_eq!(
                field + u64::from(offset) + u64::from(n),
                len,
                "data ends the tail"
            );
            file.write_all_at(&(n + 1).to_ne_bytes(), payload + field + 4)
                .expect("write the length");
        }
        "utf8" => {
            let field = offset_of!(Blob, label) as u64;
            let (offset, n) = (u32_at(payload + field), u32_at(payload + field + 4));
            assert_eq!(n as usize, small_label(seq).len(), "length of label");
            file.write_all_at(&[0xff], payload + field + u64::from(offset))
                .expect("write the label");
        }
        other => panic!("unknown corruption {other}"),
    }
    emit(format_args!("corrupted {seq} {what}"));
    0
}

/// `tail-full topic=`: a publisher with a small tail and a subscriber in this process. A
/// request the tail cannot hold is an `Error::TailFull` that changes nothing, and the sample
/// is published with what fit; a request for exactly what is left succeeds. Says `checked`.
fn tail_full_role(r: &Role) -> i32 {
    let topic_name = r.str("topic");
    let subscriber = blob_subscriber(topic_name);
    let publisher = blob_publisher(topic_name, 256);

    // Too much after a label and some data: refused, and what fit is published.
    let mut sample = publisher.loan().expect("loan");
    let capacity = sample.tail_capacity();
    assert!(capacity >= 256, "tail of {capacity} bytes, asked for 256");
    let mut w = sample.writer();
    *w.seq = 1;
    w.set_label("what fit").expect("a short label fits");
    let data = w.alloc_data(100).expect("100 bytes fit");
    data.fill(0xab);
    *w.sum = byte_sum(data);
    let available = capacity - "what fit".len() - 100;
    for too_many in [available + 1, capacity, u32::MAX as usize + 1, usize::MAX] {
        match w.alloc_data(too_many) {
            Err(Error::TailFull {
                requested,
                available: left,
                ..
            }) => {
                assert_eq!(left, available, "bytes left, after asking for {too_many}");
                assert!(
                    requested > available,
                    "asked for {too_many}: requested {requested}"
                );
            }
            Err(e) => panic!("alloc_data({too_many}): expected TailFull, got {e}"),
            Ok(s) => panic!("alloc_data({too_many}) gave {} bytes", s.len()),
        }
    }
    let too_long = "x".repeat(available + 1);
    assert!(
        matches!(w.set_label(&too_long), Err(Error::TailFull { .. })),
        "a label longer than the tail"
    );
    assert_eq!(
        w.data.len(),
        100,
        "a refused request leaves the slice as it was"
    );
    assert_eq!(w.label.as_str(), "what fit");
    assert_eq!(sample.tail_used(), "what fit".len() + 100);
    sample.publish().expect("publish what fit");

    let msg = subscriber
        .take()
        .expect("take")
        .expect("the sample that fit");
    assert_eq!((msg.seq, msg.label()), (1, "what fit"));
    assert_bytes("data that fit", msg.data(), &[0xab; 100]);
    assert_eq!(
        msg.payload_len(),
        size_of::<Blob>() + "what fit".len() + 100
    );
    drop(msg);

    // Exactly the whole tail fits.
    let mut sample = publisher.loan().expect("loan");
    let mut w = sample.writer();
    *w.seq = 2;
    let data = w.alloc_data(capacity).expect("the whole tail");
    data.fill(0xcd);
    *w.sum = byte_sum(data);
    assert!(matches!(w.alloc_data(1), Err(Error::TailFull { .. })));
    sample.publish().expect("publish a full tail");
    let msg = subscriber
        .take()
        .expect("take")
        .expect("the sample with a full tail");
    assert_eq!(msg.seq, 2);
    assert_bytes("full tail", msg.data(), &vec![0xcd; capacity]);
    drop(msg);

    emit("checked");
    drop(publisher);
    drop(subscriber);
    0
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn thousand_frames_of_random_sizes_arrive_intact() {
    let root = Root::new();
    let n = 1000;
    let mut sub = Proc::spawn(
        "subscriber",
        &format!("random-sub topic=rel/random n={n}"),
        root.path(),
    );
    sub.expect("ready");
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("random-pub topic=rel/random n={n}"),
        root.path(),
    );
    // Samples 50, 150, ... fill the tail; 1, 101, ... have no data.
    assert_eq!(sub.expect("received"), format!("{n} full=10 empty=10"));
    sub.succeed();
    assert_eq!(publisher.expect("sent"), n.to_string());
    publisher.succeed();
    root.assert_empty();
}

#[test]
fn corrupted_offsets_from_a_third_process_give_invalid_sample_then_recovery() {
    let root = Root::new();
    let topic = "rel/corrupt";
    let mut sub = Proc::spawn(
        "subscriber",
        &format!("checking-sub topic={topic} script=1:bad-relative,2:ok,3:bad-utf8,4:ok"),
        root.path(),
    );
    sub.expect("ready");
    // The publisher waits for the subscriber before it publishes, so sample 1 is queued.
    let mut publisher = Proc::spawn(
        "publisher",
        &format!("small-pub topic={topic} n=4"),
        root.path(),
    );
    let corrupt = |seq: u64, what: &str| {
        let mut corrupter = Proc::spawn(
            &format!("corrupter of {seq}"),
            &format!("corrupt topic={topic} seq={seq} what={what}"),
            root.path(),
        );
        assert_eq!(corrupter.expect("corrupted"), format!("{seq} {what}"));
        corrupter.succeed();
    };

    assert_eq!(publisher.expect("sent"), "1");
    corrupt(1, "relative");
    // Only now, with the corrupter gone, does the subscriber look at sample 1.
    sub.tell("take");
    let line = sub.expect("invalid");
    assert!(
        line.starts_with("1 ") && line.contains("relative pointer"),
        "{line}"
    );
    publisher.tell("send");
    assert_eq!(publisher.expect("sent"), "2");
    sub.tell("take");
    assert_eq!(sub.expect("got"), "2");

    publisher.tell("send");
    assert_eq!(publisher.expect("sent"), "3");
    corrupt(3, "utf8");
    sub.tell("take");
    let line = sub.expect("invalid");
    assert!(line.starts_with("3 ") && line.contains("UTF-8"), "{line}");
    publisher.tell("send");
    assert_eq!(publisher.expect("sent"), "4");
    sub.tell("take");
    assert_eq!(sub.expect("got"), "4");

    publisher.tell("exit");
    publisher.succeed();
    sub.tell("exit");
    sub.succeed();
    root.assert_empty();
}

#[test]
fn a_full_tail_is_an_error_and_what_fit_is_published() {
    let root = Root::new();
    let mut p = Proc::spawn("tail-full", "tail-full topic=rel/full", root.path());
    p.expect("checked");
    p.succeed();
    root.assert_empty();
}
