//! The recorder and the player in one process: what is joined and left, what a player
//! selects (topics, a time window, repeats), and archived rkyv topics. (Recording other
//! processes, killing the recorder and the command line are tested in `shmx-cli/tests` and
//! the root package's `tests/examples.rs`.)

use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
use shmx::inspect::RawSubscriber;
use shmx::{Publisher, PublisherConfig, Subscriber};
use shmx_record::{Entry, Player, Recorder, Recording, Summary};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn root() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shmx-test-")
        .tempdir_in("/dev/shm")
        .expect("a fresh root")
}

/// Polls `recorder` until `done` holds (or panics after [`DEADLINE`]).
fn poll_until(recorder: &mut Recorder, mut done: impl FnMut(&Recorder) -> bool) {
    let start = Instant::now();
    while !done(recorder) {
        assert!(start.elapsed() < DEADLINE, "{:?}", recorder.stats());
        recorder.poll(Duration::from_millis(5)).expect("poll");
    }
}

fn messages(recorder: &Recorder, topic: &str) -> u64 {
    recorder
        .stats()
        .iter()
        .filter(|t| t.topic == topic)
        .map(|t| t.messages)
        .sum()
}

#[test]
fn the_recorder_leaves_a_topic_whose_publishers_left_and_joins_it_again_when_one_is_back() {
    let dir = root();
    let files = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::builder(files.path().join("a.mcap"))
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 1);
    publisher.send(1).unwrap();
    poll_until(&mut recorder, |r| messages(r, "t") == 1);
    drop(publisher);
    // Left: the recorder alone does not keep the topic's files.
    poll_until(&mut recorder, |r| !r.stats()[0].recording);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A publisher again: joined again, on the same channel.
    let publisher = Publisher::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats()[0].recording);
    publisher.send(2).unwrap();
    poll_until(&mut recorder, |r| messages(r, "t") == 2);
    let summary = recorder.finish().unwrap();
    assert_eq!(summary.topics.len(), 1);
    let info = Recording::open(files.path().join("a.mcap"))
        .unwrap()
        .info()
        .unwrap();
    assert_eq!((info.channels.len(), info.messages), (1, 2));
}

/// Records `n` values on each of topics `a` (u64) and `b` ([u8; 4]), `gap` apart.
fn record_two_topics(file: &Path, n: u64, gap: Duration) -> Summary {
    let dir = root();
    let a = Publisher::<u64>::builder("a")
        .root(dir.path())
        .create()
        .unwrap();
    let b = Publisher::<[u8; 4]>::builder("b")
        .root(dir.path())
        .create()
        .unwrap();
    let mut recorder = Recorder::builder(file).root(dir.path()).create().unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 2);
    for i in 0..n {
        a.send(i).unwrap();
        b.send([i as u8; 4]).unwrap();
        let sent = Instant::now();
        while sent.elapsed() < gap {
            recorder.poll(gap - sent.elapsed()).unwrap();
        }
    }
    poll_until(&mut recorder, |r| {
        messages(r, "a") == n && messages(r, "b") == n
    });
    recorder.finish().unwrap()
}

#[test]
fn the_player_plays_the_topics_and_the_window_asked_for_and_repeats() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("two.mcap");
    let summary = record_two_topics(&file, 10, Duration::from_millis(20));
    assert_eq!(summary.topics.iter().map(|t| t.messages).sum::<u64>(), 20);

    // Only `a`, only what was recorded 50 ms to 130 ms after the start (about values 3 to 6,
    // sent 20 ms apart).
    let dir = root();
    let a = Subscriber::<u64>::builder("a")
        .root(dir.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let played = Player::new(&file)
        .root(dir.path())
        .topics(["a"])
        .start(Duration::from_millis(50))
        .end(Duration::from_millis(130))
        .rate(4.0)
        .play()
        .unwrap();
    let mut got = Vec::new();
    while let Some(v) = a.take().unwrap() {
        got.push(*v);
    }
    // What the file says lies in the window (the machine may have been slow to send).
    let mut first = None;
    let mut want = Vec::new();
    for e in Recording::open(&file).unwrap().reader().unwrap() {
        if let Entry::Message(m) = e.unwrap() {
            let offset = m.log_time - *first.get_or_insert(m.log_time);
            if m.channel.topic == "a" && (50_000_000..=130_000_000).contains(&offset) {
                want.push(u64::from_ne_bytes(m.data[..8].try_into().unwrap()));
            }
        }
    }
    assert!(want.len() >= 2, "{want:?}");
    assert_eq!(got, want, "{played:?}");
    assert!(!dir.path().join("b").exists(), "topic b was not selected");

    // Repeated until stopped: every pass sends all ten again.
    let stop = Arc::new(AtomicBool::new(false));
    let player = {
        let (file, root, stop) = (file.clone(), dir.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            Player::new(file)
                .root(root)
                .topics(["a"])
                .rate(f64::INFINITY)
                .repeat(true)
                .publisher_config(PublisherConfig {
                    overflow: shmx::Overflow::Block,
                    ..PublisherConfig::default()
                })
                .stop_flag(stop)
                .play()
        })
    };
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 25 {
        assert!(start.elapsed() < DEADLINE);
        if let Some(v) = a.recv_timeout(Duration::from_millis(100)).unwrap() {
            got.push(*v);
        }
    }
    stop.store(true, Ordering::Relaxed);
    while a.take().unwrap().is_some() {}
    let played = player.join().unwrap().unwrap();
    assert!(played.passes >= 3, "{played:?}");
    let expected: Vec<u64> = (0..10).cycle().take(25).collect();
    assert_eq!(got, expected);
}

#[test]
fn archived_rkyv_topics_are_recorded_and_played_to_an_existing_topic() {
    let dir = root();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("log.mcap");
    let publisher = ArchivePublisher::<String>::builder("log")
        .root(dir.path())
        .max_bytes(256)
        .create()
        .unwrap();
    let mut recorder = Recorder::builder(&file).root(dir.path()).create().unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 1);
    for line in ["one", "two", "three"] {
        publisher.send(&line.to_owned()).unwrap();
    }
    poll_until(&mut recorder, |r| messages(r, "log") == 3);
    recorder.finish().unwrap();
    drop(publisher);

    let channel = Recording::open(&file)
        .unwrap()
        .reader()
        .unwrap()
        .find_map(|e| match e.unwrap() {
            Entry::Channel(c) => Some(c),
            Entry::Message(_) => None,
        })
        .unwrap();
    assert!(channel.schema_data.starts_with(b"rkyv:"), "{channel:?}");

    // Not created from the recording (its schema names a type, it does not lay it out).
    let replay = root();
    let err = Player::new(&file).root(replay.path()).play().unwrap_err();
    assert!(err.to_string().contains("start a subscriber"), "{err}");
    // Played to the topic its subscriber made: checked archives arrive.
    let sub = ArchiveSubscriber::<String>::builder("log")
        .root(replay.path())
        .create()
        .unwrap();
    Player::new(&file)
        .root(replay.path())
        .rate(f64::INFINITY)
        .play()
        .unwrap();
    let mut got = Vec::new();
    while let Some(s) = sub.take().unwrap() {
        got.push(s.as_str().to_owned());
    }
    assert_eq!(got, ["one", "two", "three"]);
}

#[test]
fn a_raw_subscriber_of_the_played_topic_sees_the_recorded_publish_times_order() {
    // Publish times: a recording keeps each sample's, and a replayed topic is stamped anew
    // for subscribers that ask.
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("two.mcap");
    record_two_topics(&file, 3, Duration::from_millis(5));
    let mut last = 0;
    for e in Recording::open(&file).unwrap().reader().unwrap() {
        if let Entry::Message(m) = e.unwrap() {
            assert!(
                m.publish_time <= m.log_time,
                "published after it was recorded"
            );
            assert!(m.log_time >= last, "log times go forward");
            last = m.log_time;
            assert!(m.publisher_id.is_some());
        }
    }
    let dir = root();
    let raw = RawSubscriber::open(
        Some(dir.path()),
        "a",
        Some(&shmx::schema_text::MessageType::of::<u64>()),
        shmx::SubscriberConfig::default(),
    )
    .unwrap()
    .with_publish_times();
    Player::new(&file)
        .root(dir.path())
        .topics(["a"])
        .rate(f64::INFINITY)
        .play()
        .unwrap();
    let s = raw.take().unwrap().expect("played");
    assert!(s.publish_time_ns().is_some());
}

#[test]
fn a_topic_where_only_subscribers_were_is_left_when_they_are_gone() {
    // Found by review: the recorder held such a topic, and fixed its type, for good.
    let dir = root();
    let files = tempfile::tempdir().unwrap();
    let mut recorder = Recorder::builder(files.path().join("a.mcap"))
        .root(dir.path())
        .create()
        .unwrap();
    let lonely = Subscriber::<u16>::builder("lonely")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 1);
    drop(lonely);
    poll_until(&mut recorder, |r| !r.stats()[0].recording);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // The name is free for another type, which is recorded as a new topic.
    let publisher = Publisher::<u32>::builder("lonely")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 2);
    publisher.send(7).unwrap();
    poll_until(&mut recorder, |r| messages(r, "lonely") == 1);
    let summary = recorder.finish().unwrap();
    assert_ne!(summary.topics[0].fingerprint, summary.topics[1].fingerprint);
}

#[test]
fn a_topic_recorded_with_two_types_is_refused_by_the_player_naming_both() {
    let dir = root();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("two-types.mcap");
    let mut recorder = Recorder::builder(&file).root(dir.path()).create().unwrap();
    let first = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 1);
    first.send(1).unwrap();
    poll_until(&mut recorder, |r| messages(r, "t") == 1);
    drop(first);
    poll_until(&mut recorder, |r| !r.stats()[0].recording);
    let second = Publisher::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    poll_until(&mut recorder, |r| r.stats().len() == 2);
    second.send(2).unwrap();
    poll_until(&mut recorder, |r| messages(r, "t") == 2);
    recorder.finish().unwrap();
    let replay = root();
    let err = Player::new(&file).root(replay.path()).play().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("two types"), "{text}");
    for ty in [
        shmx::schema_text::MessageType::of::<u64>(),
        shmx::schema_text::MessageType::of::<u32>(),
    ] {
        assert!(
            text.contains(&format!("{:#018x}", ty.fingerprint())),
            "{text}"
        );
    }
}

#[test]
fn messages_that_do_not_fit_their_type_are_refused_before_anything_is_played() {
    // A hand-made recording: a channel of u32 whose second message has 3 bytes.
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("short.mcap");
    let ty = shmx::schema_text::MessageType::of::<u32>();
    {
        let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut w = mcap::WriteOptions::new().create(out).unwrap();
        let schema = w.add_schema("u32", "shmx", ty.schema().as_bytes()).unwrap();
        let meta = std::collections::BTreeMap::from([
            (
                "shmx.fingerprint".to_owned(),
                format!("{:#018x}", ty.fingerprint()),
            ),
            ("shmx.size".to_owned(), "4".to_owned()),
            ("shmx.schema".to_owned(), ty.schema().to_owned()),
            (
                "shmx.endian".to_owned(),
                shmx_record::format::native_endian().to_owned(),
            ),
        ]);
        let channel = w.add_channel(schema, "t", "shmx", &meta).unwrap();
        for (i, data) in [&[1u8, 0, 0, 0][..], &[2, 0, 0][..]].iter().enumerate() {
            let header = mcap::records::MessageHeader {
                channel_id: channel,
                sequence: i as u32,
                log_time: 1_000 + i as u64,
                publish_time: 1_000 + i as u64,
            };
            w.write_to_known_channel(&header, data).unwrap();
        }
        w.finish().unwrap();
    }
    let dir = root();
    let sub = Subscriber::<u32>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let err = Player::new(&file).root(dir.path()).play().unwrap_err();
    assert!(err.to_string().contains("3 to 4 bytes"), "{err}");
    assert!(sub.take().unwrap().is_none(), "nothing was played");
}
