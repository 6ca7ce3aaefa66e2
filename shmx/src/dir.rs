//! Directories opened once and used through their file descriptor.
//!
//! Every entry under the root is opened, created, linked and removed relative to its
//! directory's descriptor (`openat`, `mkdirat`, `linkat`, `unlinkat`), with `O_NOFOLLOW`: a
//! symbolic link in place of a topic directory or a segment is refused, naming the path, and
//! a directory renamed or replaced after it was opened and checked changes nothing, since the
//! descriptor still names the directory that was checked.

use crate::error::{Error, Result};
use crate::trust::{denied, Trust};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An open directory and the path it was opened by (for messages only).
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// How a file is opened and mapped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
}

/// The kind of a directory entry, as far as shmx cares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Dir,
    File,
    Other,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY);

/// An I/O error on `path` from a system call.
pub(crate) fn sys(path: &Path, e: Errno) -> Error {
    Error::io(path, e.into(), 0)
}

impl Dir {
    /// Wraps a directory descriptor opened (and checked) by the caller.
    pub(crate) fn new(fd: OwnedFd, path: PathBuf) -> Dir {
        Dir { fd, path }
    }

    /// The path the directory was opened by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of entry `name` (for messages).
    pub(crate) fn join(&self, name: &(impl AsRef<OsStr> + ?Sized)) -> PathBuf {
        let name = name.as_ref();
        self.path.join(name)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Another handle on the same directory (its own descriptor).
    pub(crate) fn duplicate(&self) -> Result<Dir> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| sys(&self.path, e))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// The directory's own status.
    pub(crate) fn stat(&self) -> Result<rustix::fs::Stat> {
        rustix::fs::fstat(&self.fd).map_err(|e| sys(&self.path, e))
    }

    /// The status of entry `name`, not following a link; `None` if there is none.
    pub(crate) fn stat_at(
        &self,
        name: &(impl AsRef<OsStr> + ?Sized),
    ) -> Result<Option<rustix::fs::Stat>> {
        let name = name.as_ref();
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(sys(&self.join(name), e)),
        }
    }

    /// Explains a failed `O_NOFOLLOW` open of `name`: a link is refused by name.
    fn open_error(&self, name: &(impl AsRef<OsStr> + ?Sized), e: Errno) -> Error {
        let name = name.as_ref();
        let path = self.join(name);
        if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::MLINK) {
            if let Ok(Some(s)) = self.stat_at(name) {
                if rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink {
                    return denied(
                        &path,
                        "it is a symbolic link; shmx never follows links under its root: \
                         remove it"
                            .into(),
                    );
                }
            }
        }
        sys(&path, e)
    }

    /// Opens subdirectory `name` without following a link and checks it against `trust`;
    /// `Ok(None)` if it does not exist.
    pub(crate) fn open_dir(
        &self,
        name: &(impl AsRef<OsStr> + ?Sized),
        trust: &Trust,
    ) -> Result<Option<Dir>> {
        let name = name.as_ref();
        let fd = match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(name, e)),
        };
        let dir = Dir::new(fd, self.join(name));
        trust.check_dir(&dir.stat()?, dir.path())?;
        Ok(Some(dir))
    }

    /// Creates subdirectory `name` with exactly `mode` (whatever the umask) and, if given,
    /// `group`; `Ok(false)` if it exists already (then nothing is changed).
    pub(crate) fn create_dir(
        &self,
        name: &(impl AsRef<OsStr> + ?Sized),
        mode: u32,
        group: Option<u32>,
    ) -> Result<bool> {
        let name = name.as_ref();
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Ok(false),
            Err(e) => return Err(sys(&self.join(name), e)),
        }
        let path = self.join(name);
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())
            .map_err(|e| self.open_error(name, e))?;
        set_owner_and_mode(&fd, &path, mode, group)?;
        Ok(true)
    }

    /// Opens file `name` without following a link and checks it against `trust`; `Ok(None)`
    /// if it does not exist.
    pub(crate) fn open_file(
        &self,
        name: &(impl AsRef<OsStr> + ?Sized),
        access: Access,
        trust: &Trust,
    ) -> Result<Option<File>> {
        let name = name.as_ref();
        // Non-blocking: a FIFO planted where a segment should be must not hang the open (it is
        // refused by the check below); no controlling terminal from a device either.
        let flags = OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | match access {
                Access::ReadOnly => OFlags::RDONLY,
                Access::ReadWrite => OFlags::RDWR,
            };
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(name, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| sys(&self.join(name), e))?;
        if stat.st_nlink == 0 {
            // Removed since the `openat` (a publisher that left, the last participant of a
            // root): as if it were not there, rather than a file of the wrong link count.
            return Ok(None);
        }
        trust.check_file(&stat, &self.join(name))?;
        Ok(Some(File::from(fd)))
    }

    /// Creates file `name`, readable and writable, with exactly `mode` and, if given,
    /// `group`; `Ok(None)` if `name` exists already.
    pub(crate) fn create_file(
        &self,
        name: &(impl AsRef<OsStr> + ?Sized),
        mode: u32,
        group: Option<u32>,
    ) -> Result<Option<File>> {
        let name = name.as_ref();
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDWR;
        let path = self.join(name);
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => return Ok(None),
            Err(e) => return Err(sys(&path, e)),
        };
        if let Err(e) = set_owner_and_mode(&fd, &path, mode, group) {
            self.remove_file(name);
            return Err(e);
        }
        Ok(Some(File::from(fd)))
    }

    /// [`create_file`](Self::create_file) under a fresh temporary name, returned with it.
    pub(crate) fn create_temp(&self, mode: u32, group: Option<u32>) -> Result<(String, File)> {
        loop {
            let tmp = crate::segment::temp_name();
            if let Some(file) = self.create_file(&tmp, mode, group)? {
                return Ok((tmp, file));
            }
        }
    }

    /// Links existing entry `from` as `to` (both in this directory); `Ok(false)` if `to`
    /// exists already.
    pub(crate) fn link(&self, from: &str, to: &str) -> Result<bool> {
        match rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(sys(&self.join(to), e)),
        }
    }

    /// Removes file `name` if it is there (errors are ignored: removal is cleanup).
    pub(crate) fn remove_file(&self, name: &(impl AsRef<OsStr> + ?Sized)) {
        let name = name.as_ref();
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    /// Removes the empty subdirectory `name` if it is there.
    pub(crate) fn remove_dir(&self, name: &(impl AsRef<OsStr> + ?Sized)) {
        let name = name.as_ref();
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR);
    }

    /// Removes subdirectory `name` with everything in it, never following a link (a link is
    /// removed, not what it points to).
    pub(crate) fn remove_tree(&self, name: &(impl AsRef<OsStr> + ?Sized)) {
        let name = name.as_ref();
        if let Ok(fd) = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            let sub = Dir::new(fd, self.join(name));
            for (entry, kind) in sub.entries().unwrap_or_default() {
                match kind {
                    Kind::Dir => sub.remove_tree(&entry),
                    _ => sub.remove_file(&entry),
                }
            }
        }
        self.remove_dir(name);
    }

    /// The names of the entries (not `.` and `..`), with their kinds.
    pub(crate) fn entries(&self) -> Result<Vec<(OsString, Kind)>> {
        use std::os::unix::ffi::OsStrExt;
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(|e| sys(&self.path, e))?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| sys(&self.path, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                rustix::fs::FileType::Directory => Kind::Dir,
                rustix::fs::FileType::RegularFile => Kind::File,
                rustix::fs::FileType::Unknown => match self.stat_at(name) {
                    Ok(Some(s)) => match rustix::fs::FileType::from_raw_mode(s.st_mode) {
                        rustix::fs::FileType::Directory => Kind::Dir,
                        rustix::fs::FileType::RegularFile => Kind::File,
                        _ => Kind::Other,
                    },
                    _ => Kind::Other,
                },
                _ => Kind::Other,
            };
            out.push((name.to_owned(), kind));
        }
        Ok(out)
    }
}

/// Gives a freshly created file or directory exactly `mode` (the umask must not take away
/// what the user asked to share) and, if given, `group`.
fn set_owner_and_mode(fd: &OwnedFd, path: &Path, mode: u32, group: Option<u32>) -> Result<()> {
    if let Some(gid) = group {
        rustix::fs::fchown(fd, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(
            |e| match e {
                Errno::PERM => denied(
                    path,
                    format!(
                        "cannot give it group {gid}: this process is not a member of that group"
                    ),
                ),
                e => sys(path, e),
            },
        )?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| sys(path, e))
}
