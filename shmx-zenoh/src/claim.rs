//! One bridge per topic and direction on a host: a bridge forwards a topic, or publishes a
//! remote one, only while it holds that topic's claim, a `flock` on a file in the root
//! (`.bridge.out.<topic>` or `.bridge.in.<topic>`, the topic's encoded name). The kernel
//! lets go of a lock when its holder dies, however it dies, and the other bridges try again
//! every second, so one of them takes over.

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

/// A held claim; let go when dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    _file: File,
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
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        // The root is this user's and no one else's (shmx checks it); a link planted there
        // is refused all the same.
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(root.join(format!(".bridge.{way}.{}", name.encoded())))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(Claim { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
        assert!(take(dir.path(), Direction::Out, "robot/pose")
            .unwrap()
            .is_some());
        assert!(take(dir.path(), Direction::Out, "bad//name").is_err());
    }
}
