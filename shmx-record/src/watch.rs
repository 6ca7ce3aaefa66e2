//! Noticing new topics under a root at once: an inotify watch on the root directory, whose
//! descriptor polls readable when an entry is created in it (a new topic's directory).

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::inotify;
use std::path::Path;

/// A watch on a root directory, if one could be set (the root may not exist yet, or
/// inotify may be out of watches: the recorder then rescans on a timer alone).
pub(crate) struct RootWatch {
    fd: Option<OwnedFd>,
}

impl RootWatch {
    pub(crate) fn new(root: &Path) -> RootWatch {
        let fd = (|| {
            let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
                .ok()?;
            inotify::add_watch(
                &fd,
                root,
                inotify::WatchFlags::CREATE
                    | inotify::WatchFlags::MOVED_TO
                    | inotify::WatchFlags::ONLYDIR
                    | inotify::WatchFlags::DONT_FOLLOW,
            )
            .ok()?;
            Some(fd)
        })();
        RootWatch { fd }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.fd.is_some()
    }

    /// The descriptor to poll, if the watch is set.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// Reads every pending event; whether there was any.
    pub(crate) fn drain(&self) -> bool {
        let Some(fd) = &self.fd else {
            return false;
        };
        let mut buf = [0u8; 4096];
        let mut any = false;
        // Events only wake the scan, so their contents do not matter.
        while let Ok(n) = rustix::io::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
            any = true;
        }
        any
    }
}
