//! One bridge per topic and direction on a host: a bridge forwards a topic, or publishes a
//! remote one, only while it holds that topic's claim, a `flock` on a file in the root
//! (`.bridge.out.<topic>` or `.bridge.in.<topic>`, the topic's encoded name). The kernel
//! lets go of a lock when its holder dies, however it dies, and the other bridges try again
//! every second, so one of them takes over. A bridge that lets go of a claim removes its
//! file (one killed leaves it: the next holder uses it, and removes it in turn); a claim is
//! the lock on the file that is at the path *now*, checked after locking, so that a bridge
//! that locked a file just removed tries again.

use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a bridge tries again for a claim another bridge holds.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

/// Which way a claim is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Local samples out to Zenoh.
    Out,
    /// Remote samples published here.
    In,
}

/// A held claim; let go (and its file removed) when dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    _file: File,
    path: std::path::PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Removed while still locked: a bridge that opens the path after this makes a new
        // file; one that opened the old file finds, once it has the lock, that the path is
        // no longer that file, and tries again.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the claim of `topic` for `direction` under `root`, if no other bridge holds it.
/// `Err` for a topic name shmx refuses or a file that cannot be made.
pub(crate) fn take(
    root: &Path,
    direction: Direction,
    topic: &str,
) -> std::io::Result<Option<Claim>> {
    let name = shmx::name::TopicName::new(topic)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let way = match direction {
        Direction::Out => "out",
        Direction::In => "in",
    };
    // The root as endpoints make it, before the first endpoint there (a fresh machine's).
    shmx::inspect::make_root(root).map_err(std::io::Error::other)?;
    let path = root.join(format!(".bridge.{way}.{}", name.encoded()));
    // A few rounds: each lost only to a holder that removed the file meanwhile.
    for _ in 0..4 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            // The root is this user's and no one else's (shmx checks it); a link planted
            // there is refused all the same.
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let locked = rustix::fs::fstat(&file)?;
        match rustix::fs::lstat(&path) {
            Ok(now) if (now.st_dev, now.st_ino) == (locked.st_dev, locked.st_ino) => {
                return Ok(Some(Claim { _file: file, path }));
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Claims a bridge waits for, and when it may try again.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    next_try: std::collections::HashMap<String, Instant>,
}

impl Waiting {
    /// Whether `topic`'s claim may be tried now.
    pub(crate) fn may_try(&self, topic: &str) -> bool {
        self.next_try
            .get(topic)
            .is_none_or(|t| Instant::now() >= *t)
    }

    /// `topic`'s claim is held by another bridge: try again in a while.
    pub(crate) fn held_elsewhere(&mut self, topic: &str) {
        self.next_try
            .insert(topic.to_owned(), Instant::now() + RETRY);
    }

    /// `topic`'s claim is ours.
    pub(crate) fn taken(&mut self, topic: &str) {
        self.next_try.remove(topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_next_when_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = take(dir.path(), Direction::Out, "robot/pose").unwrap();
        assert!(first.is_some());
        assert!(take(dir.path(), Direction::Out, "robot/pose")
            .unwrap()
            .is_none());
        // The other direction, another topic: claims of their own.
        assert!(take(dir.path(), Direction::In, "robot/pose")
            .unwrap()
            .is_some());
        assert!(take(dir.path(), Direction::Out, "robot/odom")
            .unwrap()
            .is_some());
        drop(first);
        let second = take(dir.path(), Direction::Out, "robot/pose").unwrap();
        assert!(second.is_some());
        assert!(take(dir.path(), Direction::Out, "bad//name").is_err());
        // Every claim let go removed its file (the others were dropped at once).
        drop(second);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
