//! Helpers shared by the integration tests of the `shmx` crate.
#![allow(dead_code)]

use std::path::Path;

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
