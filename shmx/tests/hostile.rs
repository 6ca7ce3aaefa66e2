//! Error paths that come from the files rather than the caller, provoked for real: corrupt,
//! truncated and other-version service files, hostile writes to data segments and delivery
//! rings, `clean` of corrupt topics, and a filesystem too small for a topic. Each test
//! asserts the variant and that its message names what went wrong.

use shmx::{Error, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

mod common;
use common::small_fs::SmallFs;
use common::{data_files, hostile_map, pair, root};

fn service_file(root: &Path, encoded_topic: &str) -> PathBuf {
    root.join(encoded_topic).join("service")
}

/// Writes `bytes` to a new file of mode 0600, as shmx would make it (a wider file is refused
/// before its contents are looked at).
fn write_private(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
}

#[test]
fn a_garbage_service_file_is_corrupt() {
    let dir = root();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    write_private(&service_file(dir.path(), "t"), &[0xAB; 8192]);
    let e = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .err();
    let Some(Error::Corrupt { path, reason }) = e else {
        panic!("expected Corrupt, got {e:?}")
    };
    assert_eq!(path, service_file(dir.path(), "t"));
    assert!(reason.contains("magic"), "{reason}");
}

#[test]
fn a_truncated_service_file_is_corrupt() {
    let dir = root();
    let p = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let path = service_file(dir.path(), "t");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let e = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::Corrupt { .. })), "{e:?}");
    let short = dir.path().join("u");
    std::fs::create_dir(&short).unwrap();
    write_private(&short.join("service"), b"SHMX");
    let e = Subscriber::<u64>::builder("u")
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::Corrupt { .. })), "{e:?}");
    drop(p);
}

#[test]
fn a_service_file_of_another_layout_version_is_refused() {
    let dir = root();
    let p = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(service_file(dir.path(), "t"))
        .unwrap();
    f.seek(SeekFrom::Start(8)).unwrap(); // the version follows the 8-byte magic
    f.write_all(&999u32.to_le_bytes()).unwrap();
    let e = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .err();
    let Some(Error::Version {
        found, expected, ..
    }) = e
    else {
        panic!("expected Version, got {e:?}")
    };
    assert_eq!((found, expected), (999, shmx::LAYOUT_VERSION));
    drop(p);
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Flagged {
    id: u32,
    ok: bool,
    _pad: [u8; 3],
}

#[test]
fn an_invalid_bool_is_reported_and_the_subscriber_goes_on() {
    let dir = root();
    let sub = Subscriber::<Flagged>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<Flagged>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let mut s = publisher.loan().unwrap();
    s.id = 7;
    s.ok = true;
    // Corrupt the loaned chunk's bool through a second, hostile mapping of the same file.
    let mut map = hostile_map(dir.path(), "t");
    // Find the payload inside the file: search for the id (7) followed by the bool (1).
    let pos = map
        .windows(5)
        .position(|w| w == [7, 0, 0, 0, 1])
        .expect("payload in the file");
    map[pos + 4] = 2;
    s.publish().unwrap();
    let e = sub.take().err();
    let Some(Error::InvalidSample {
        sequence, reason, ..
    }) = e
    else {
        panic!("expected InvalidSample, got {e:?}")
    };
    assert_eq!(sequence, 1);
    assert!(reason.contains("bool"), "{reason}");
    publisher
        .send(Flagged {
            id: 8,
            ok: false,
            _pad: [0; 3],
        })
        .unwrap();
    assert_eq!(sub.take().unwrap().unwrap().id, 8);
    assert!(sub.take().unwrap().is_none());
    // The rejected chunk went back to the publisher.
    let st = publisher.pool_stats();
    assert_eq!(st.free, st.total, "{st:?}");
}

#[test]
fn a_pool_pinned_by_a_hostile_subscriber_is_exhausted_not_stuck() {
    let dir = root();
    let publisher = Publisher::<u64>::builder("t")
        .history(1)
        .root(dir.path())
        .create()
        .unwrap();
    let total = publisher.pool_stats().total;
    // Every pin word (the page after the header) set to "pinned by everyone".
    let mut map = hostile_map(dir.path(), "t");
    let page = 4096;
    for b in &mut map[page..page + total * 8] {
        *b = 0xFF;
    }
    let e = publisher.loan().err();
    let Some(Error::PoolExhausted { chunks, topic }) = e else {
        panic!("expected PoolExhausted, got {e:?}")
    };
    assert_eq!((chunks, topic.as_str()), (total, "t"));
    for b in &mut map[page..page + total * 8] {
        *b = 0;
    }
    publisher.send(1).unwrap();
}

#[test]
fn garbage_in_a_delivery_ring_is_ignored() {
    let dir = root();
    let (sub, publisher) = pair::<u64>(dir.path());
    publisher.send(1).unwrap();
    // Overwrite every word of the service file's connection area that holds the entry with
    // garbage: out-of-range chunk indices and wrong tags must be skipped, never followed.
    let path = service_file(dir.path(), "t");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: test-only mapping; the hostile writes are the point.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f).unwrap() };
    let words: &mut [u64] = bytemuck_words(&mut map);
    // The only non-zero entry of a ring right after one publish has chunk index 0 and a tag;
    // find words that look like entries (low 24 bits 0, high bits non-zero) beyond the header.
    let mut changed = 0;
    for w in words.iter_mut().skip(1024) {
        if *w != 0 && *w & 0xFF_FFFF == 0 && *w >> 24 != 0 && *w >> 44 != 0 {
            *w |= 0xFF_FFFF; // chunk index 16777215: out of range
            changed += 1;
        }
    }
    assert!(changed >= 1);
    assert!(
        sub.take().unwrap().is_none(),
        "an out-of-range index is skipped"
    );
    publisher.send(2).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), 2);
}

fn bytemuck_words(map: &mut memmap2::MmapMut) -> &mut [u64] {
    let len = map.len() / 8;
    // SAFETY: the mapping is page-aligned and `len * 8` bytes long; u64 has no invalid
    // values.
    unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<u64>(), len) }
}

#[test]
fn a_corrupt_data_segment_is_reported_once_and_other_publishers_still_deliver() {
    let dir = root();
    let good = Publisher::<u64>::builder("t")
        .history(1)
        .root(dir.path())
        .create()
        .unwrap();
    good.send(5).unwrap();
    let files_before = data_files(dir.path(), "t");
    let bad = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let bad_file = data_files(dir.path(), "t")
        .into_iter()
        .find(|f| !files_before.contains(f))
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&bad_file)
        .unwrap();
    f.write_all(b"garbage!").unwrap();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let e = sub.take().err();
    let Some(Error::Corrupt { path, reason }) = e else {
        panic!("expected Corrupt, got {e:?}")
    };
    assert_eq!(path, bad_file);
    assert!(reason.contains("magic"), "{reason}");
    assert_eq!(
        *sub.take().unwrap().expect("history of the good publisher"),
        5
    );
    good.send(6).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), 6);
    drop(bad);
}

#[test]
fn clean_removes_a_corrupt_topic_and_keeps_one_of_another_version() {
    use shmx::inspect;
    let dir = root();
    std::fs::create_dir(dir.path().join("garbage")).unwrap();
    std::fs::write(service_file(dir.path(), "garbage"), vec![0x5A; 100]).unwrap();
    let p = Publisher::<u64>::builder("other")
        .root(dir.path())
        .create()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(service_file(dir.path(), "other"))
        .unwrap();
    f.seek(SeekFrom::Start(8)).unwrap();
    f.write_all(&99u32.to_le_bytes()).unwrap();
    let dry = inspect::clean(dir.path(), true).unwrap();
    assert!(dry.removed.contains(&dir.path().join("garbage")), "{dry:?}");
    assert!(dir.path().join("garbage").exists());
    let done = inspect::clean(dir.path(), false).unwrap();
    assert!(!dir.path().join("garbage").exists());
    assert_eq!(done.kept.len(), 1, "{done:?}");
    assert!(done.kept[0].1.contains("version 99"), "{done:?}");
    assert!(
        service_file(dir.path(), "other").exists(),
        "another version's topic is kept"
    );
    drop(p);
}

#[test]
fn a_full_small_filesystem_is_out_of_space_and_left_clean() {
    let Some(fs) = SmallFs::mount("smallfs", "256k") else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root and mount rights)");
        return;
    };
    let e = Publisher::<[u8; 4096]>::builder("frames")
        .root(fs.path())
        .create()
        .err();
    let Some(Error::OutOfSpace { path, bytes }) = e else {
        panic!("expected OutOfSpace, got {e:?}")
    };
    assert!(
        path.starts_with(fs.path()) && bytes > 256 << 10,
        "{path:?} {bytes}"
    );
    let msg = Publisher::<[u8; 4096]>::builder("frames")
        .root(fs.path())
        .create()
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("--shm-size") && msg.contains("frames"),
        "{msg}"
    );
    // A small pool fits, and nothing of the failed attempts is left.
    let cfg = TopicConfig {
        max_subscribers: 1,
        ..TopicConfig::default()
    };
    let p = Publisher::<[u8; 4096]>::builder("frames")
        .queue_depth(2)
        .topic_config(cfg)
        .root(fs.path())
        .create()
        .unwrap();
    drop(p);
    assert!(std::fs::read_dir(fs.path()).unwrap().next().is_none());
}

#[test]
fn clean_and_its_dry_run_agree_on_every_directory_however_it_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let dir = root();
    let (_sub, _publisher) = common::pair::<u64>(dir.path());
    let names: [&std::ffi::OsStr; 6] = [
        "%2E%2E".as_ref(),                        // decodes to "..": no topic name
        "abc%41".as_ref(),                        // decodes to "abcA", whose directory is "abcA"
        "%".as_ref(),                             // not an encoding at all
        std::ffi::OsStr::from_bytes(b"\xff\xfe"), // not UTF-8
        "nosvc".as_ref(),                         // a valid name, but no service segment
        "junk".as_ref(), // a valid name, and a service file that is not a segment
    ];
    for name in names {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        if name != "nosvc" {
            let file = if name == "junk" { "service" } else { "garbage" };
            write_private(&d.join(file), &[0x5a; 100]);
        }
    }
    let dry = shmx::inspect::clean(dir.path(), true).unwrap();
    let real = shmx::inspect::clean(dir.path(), false).unwrap();
    assert_eq!(
        dry.removed, real.removed,
        "the dry run says what clean does"
    );
    assert_eq!(dry.kept, real.kept);
    assert_eq!(real.removed.len(), 11, "{:?}", real.removed);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("node."))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [".lock", "t"],
        "only the live topic (and the root's files) stay"
    );
}
