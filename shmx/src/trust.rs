//! Who may have made the directories and files that shmx opens, and how wide their
//! permissions may be.
//!
//! Shared memory is only as private as the files it lives in. Before an endpoint writes into
//! or reads from anything under the root, the root directory, the topic's directory and each
//! file are checked against the caller's [`Trust`]:
//!
//! - **Owner.** Owned by the caller's effective uid, or, for a topic deliberately shared with
//!   a group, carrying that group. Anything else was made by someone who could replace what
//!   the caller writes or reads there.
//! - **Writers.** Never writable by others; writable by the group only when that group is the
//!   one the caller shares with. (A directory others can write lets them create, rename or
//!   replace entries; a file others can write lets them rewrite samples, rings and headers.)
//! - **Width** (files only). No permission bit beyond the caller's configured mode
//!   ([`TopicConfig::mode`](crate::TopicConfig::mode)): a participant never joins a topic
//!   whose files are shared more widely than it agreed to, and so never creates one either
//!   (the files it creates take the topic's stored mode, which must lie within its own).
//!
//! The group a caller shares with is [`TopicConfig::group`](crate::TopicConfig::group) when
//! set, else its effective gid when its mode grants the group anything, else none.
//!
//! Symbolic links are refused everywhere below the root by opening each entry relative to
//! its directory's file descriptor with `O_NOFOLLOW` (see [`dir`](crate::dir)).

use crate::error::{Error, Result};
use std::path::Path;

/// The caller's side of the checks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trust {
    euid: u32,
    group: Option<u32>,
    mode: u32,
}

/// Write permission of others.
const OTHERS_WRITE: u32 = 0o002;
/// Write permission of the group.
const GROUP_WRITE: u32 = 0o020;

/// The effective uid and gid of this process.
fn ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

impl Trust {
    /// The trust of an endpoint whose files may have permission bits `mode` (a file mode such
    /// as `0o600`), shared with `group` if given.
    pub(crate) fn new(mode: u32, group: Option<u32>) -> Trust {
        let (euid, egid) = ids();
        let group = group.or((mode & 0o070 != 0).then_some(egid));
        Trust { euid, group, mode }
    }

    /// The trust of an endpoint configured with `topic`: its mode and group.
    pub(crate) fn of(topic: &crate::TopicConfig) -> Trust {
        Trust::new(topic.mode, topic.group)
    }

    /// The trust of tools that look at the caller's topics (`shmx list`, `echo`, `clean`):
    /// files up to `0o644`, and no group: a topic shared with a group may be written by
    /// its members, which a tool cannot know it should trust.
    pub(crate) fn for_tools() -> Trust {
        Trust {
            group: None,
            ..Trust::new(0o644, None)
        }
    }

    /// The same owner and group, accepting files of at most `mode` (for files that hold no
    /// data and have modes of their own: the root's lock file, node files).
    pub(crate) fn with_mode(&self, mode: u32) -> Trust {
        Trust { mode, ..*self }
    }

    /// The group shared with, if any.
    pub(crate) fn group(&self) -> Option<u32> {
        self.group
    }

    /// The mode of a directory that holds files of mode `file_mode`: the same permissions,
    /// with search (`x`) wherever read is granted.
    pub(crate) fn dir_mode(file_mode: u32) -> u32 {
        file_mode | ((file_mode & 0o444) >> 2)
    }

    /// Checks a directory (the root or a topic directory) that the caller opened.
    pub(crate) fn check_dir(&self, stat: &rustix::fs::Stat, path: &Path) -> Result<()> {
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Directory {
            return Err(denied(path, "it is not a directory".into()));
        }
        self.check_owner_and_writers(stat, path, "directory")
    }

    /// Checks a file (a segment, a node or lock file) that the caller opened.
    pub(crate) fn check_file(&self, stat: &rustix::fs::Stat, path: &Path) -> Result<()> {
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(denied(path, "it is not a regular file".into()));
        }
        self.check_owner_and_writers(stat, path, "file")?;
        if stat.st_nlink != 1 {
            return Err(denied(
                path,
                format!(
                    "the file has {} names (hard links); shmx only uses files it linked once",
                    stat.st_nlink
                ),
            ));
        }
        let mode = stat.st_mode & 0o777;
        if mode & !self.mode != 0 {
            return Err(denied(
                path,
                format!(
                    "the file has mode {mode:04o}, wider than this endpoint allows ({:04o}); \
                     join a shared topic with a TopicConfig whose mode (and group) include its \
                     own",
                    self.mode
                ),
            ));
        }
        Ok(())
    }

    /// Checks a mode stored in a topic's header against the caller's: the files a
    /// participant creates take the stored mode, so it must lie within the caller's.
    pub(crate) fn check_stored_mode(&self, stored: u32, path: &Path) -> Result<()> {
        if stored & !self.mode != 0 {
            return Err(denied(
                path,
                format!(
                    "the topic shares its files with mode {stored:04o}, wider than this \
                     endpoint allows ({:04o}); join it with a TopicConfig whose mode (and \
                     group) include the topic's",
                    self.mode
                ),
            ));
        }
        Ok(())
    }

    fn check_owner_and_writers(
        &self,
        stat: &rustix::fs::Stat,
        path: &Path,
        what: &str,
    ) -> Result<()> {
        let (uid, gid, mode) = (stat.st_uid, stat.st_gid, stat.st_mode & 0o7777);
        let shared = self.group == Some(gid);
        if uid != self.euid && !shared {
            return Err(denied(
                path,
                format!(
                    "the {what} belongs to uid {uid} (group {gid}), not to this process's uid \
                     {} nor to a group it shares topics with; another user controls it: \
                     remove it (as its owner or root), or use a root of your own (SHMX_ROOT)",
                    self.euid
                ),
            ));
        }
        if mode & OTHERS_WRITE != 0 {
            return Err(denied(
                path,
                format!(
                    "the {what} has mode {mode:04o}: other users may write it; `chmod o-w` it \
                     (or remove it)"
                ),
            ));
        }
        if mode & GROUP_WRITE != 0 && !shared {
            return Err(denied(
                path,
                format!(
                    "the {what} has mode {mode:04o}: group {gid} may write it, which this \
                     endpoint does not share topics with; `chmod g-w` it, or name the group in \
                     TopicConfig::group"
                ),
            ));
        }
        Ok(())
    }
}

/// A [`Error::PermissionDenied`] on `path`.
pub(crate) fn denied(path: &Path, reason: String) -> Error {
    Error::PermissionDenied {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(mode: u32, uid: u32, gid: u32, dir: bool) -> rustix::fs::Stat {
        let dir_path = std::env::temp_dir();
        let mut stat = rustix::fs::stat(&dir_path).unwrap();
        let kind = if dir { 0o040000 } else { 0o100000 };
        stat.st_mode = kind | mode;
        stat.st_uid = uid;
        stat.st_gid = gid;
        stat.st_nlink = 1;
        stat
    }

    #[test]
    fn only_the_owner_or_the_shared_group_passes_and_nobody_else_may_write() {
        let p = Path::new("/x");
        let me = Trust::new(0o600, None);
        let (uid, gid) = ids();
        let other = uid.wrapping_add(1);
        assert!(me.check_dir(&stat_of(0o700, uid, gid, true), p).is_ok());
        assert!(me.check_dir(&stat_of(0o755, uid, gid, true), p).is_ok());
        assert!(me.check_dir(&stat_of(0o700, other, gid, true), p).is_err());
        assert!(me.check_dir(&stat_of(0o777, uid, gid, true), p).is_err());
        assert!(me.check_dir(&stat_of(0o770, uid, gid, true), p).is_err());
        assert!(me.check_dir(&stat_of(0o700, uid, gid, false), p).is_err());
        let team = Trust::new(0o660, Some(4242));
        assert!(team
            .check_dir(&stat_of(0o770, other, 4242, true), p)
            .is_ok());
        assert!(team
            .check_dir(&stat_of(0o770, other, 4243, true), p)
            .is_err());
        assert!(team
            .check_dir(&stat_of(0o773, other, 4242, true), p)
            .is_err());
    }

    #[test]
    fn a_file_wider_than_the_callers_mode_is_refused() {
        let p = Path::new("/x");
        let (uid, gid) = ids();
        let me = Trust::new(0o600, None);
        assert!(me.check_file(&stat_of(0o600, uid, gid, false), p).is_ok());
        assert!(me.check_file(&stat_of(0o400, uid, gid, false), p).is_ok());
        let e = me.check_file(&stat_of(0o644, uid, gid, false), p);
        assert!(matches!(e, Err(Error::PermissionDenied { .. })), "{e:?}");
        assert!(me.check_file(&stat_of(0o600, uid, gid, true), p).is_err());
        let mut linked = stat_of(0o600, uid, gid, false);
        linked.st_nlink = 2;
        assert!(me.check_file(&linked, p).is_err(), "a hard link is refused");
        assert!(me.check_stored_mode(0o600, p).is_ok());
        assert!(me.check_stored_mode(0o666, p).is_err());
        assert!(Trust::new(0o660, None).check_stored_mode(0o640, p).is_ok());
    }

    #[test]
    fn directory_modes_follow_file_modes() {
        assert_eq!(Trust::dir_mode(0o600), 0o700);
        assert_eq!(Trust::dir_mode(0o660), 0o770);
        assert_eq!(Trust::dir_mode(0o644), 0o755);
    }
}
