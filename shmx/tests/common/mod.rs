//! Helpers shared by the integration tests of the `shmx` crate.
#![allow(dead_code)]

mod kid;

#[allow(unused_imports)] // not every test binary starts children
pub use kid::Kid;

use std::path::{Path, PathBuf};

/// A fresh root directory for one test, in `/dev/shm` where it exists (the real thing),
/// removed when dropped.
pub fn root() -> tempfile::TempDir {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_owned()
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("shmx-test-")
        .tempdir_in(base)
        .expect("a fresh root")
}

/// A subscriber and then a publisher of topic `t` under `root`, both with default settings.
pub fn pair<T: shmx::ShmMessage>(root: &Path) -> (shmx::Subscriber<T>, shmx::Publisher<T>) {
    let sub = shmx::Subscriber::<T>::builder("t")
        .root(root)
        .create()
        .unwrap();
    let publisher = shmx::Publisher::<T>::builder("t")
        .root(root)
        .create()
        .unwrap();
    (sub, publisher)
}

/// Asserts that `root` holds nothing: every participant cleaned up after itself.
pub fn assert_empty(root: &Path) {
    let left: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}
pub mod batch;
pub mod small_fs;

/// The data segment files of topic `encoded_topic` under `root`.
pub fn data_files(root: &Path, encoded_topic: &str) -> Vec<PathBuf> {
    std::fs::read_dir(root.join(encoded_topic))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data.")
        })
        .collect()
}

/// The segment number of a data file's name (`data.<inc>` is 0, `data.<inc>.<k>` is k).
pub fn segment_number(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.split('.').nth(2).map_or(0, |k| k.parse().unwrap())
}

/// Maps the newest data segment of a topic's one publisher writable, as a hostile process
/// could: its only one, or the one its pool grew last (where `loan()` samples of a type with
/// a tail live: the largest size class is made on the first such loan).
pub fn hostile_map(root: &Path, topic: &str) -> memmap2::MmapMut {
    let mut files = data_files(root, topic);
    files.sort_by_key(|f| segment_number(f));
    let newest = files.last().expect("the publisher's data files");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(newest)
        .unwrap();
    // SAFETY: a test-only mapping of a file this test owns; racing writes are the point.
    unsafe { memmap2::MmapMut::map_mut(&f).unwrap() }
}

/// Waits until thread `tid` of this process sleeps in the kernel (state `S`).
pub fn wait_until_asleep(tid: i32) {
    let stat = format!("/proc/self/task/{tid}/stat");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        let state = s
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        if state == Some("S") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber never went to sleep: {s}"
        );
        std::thread::yield_now();
    }
}
