//! Readiness over a file descriptor: a Unix datagram socket per subscriber that asked for one.
//!
//! A subscriber that wants a file descriptor (for `epoll`, `mio`, tokio's `AsyncFd` or a
//! [`WaitSet`](crate::WaitSet)) binds a datagram socket at `<topic>/wake.<incarnation>` (a
//! [`Listener`]); its descriptor is readable while a datagram waits. When the subscriber finds
//! nothing to take, it *arms*: it sets `event::ARMED` in its slot's `sleeping` word, issues the
//! same barrier as a futex sleeper (PROTOCOLS.md §3) and looks at its rings once more. A
//! publisher, after its pushes and that barrier, sees the bit, clears it (so only the first
//! publish after an arm pays) and sends one byte to the socket ([`Notifier`]). The argument is
//! Dekker's, as for the futex: either the subscriber's last look sees the entry, or the
//! publisher sees the bit. Publishers make no system call for subscribers that are not armed.
//! The byte may arrive late, after the subscriber took the sample and armed again (the bit is
//! cleared before the byte is sent): the subscriber's next arm consumes it before it looks at
//! the bit, so the descriptor does not stay readable with nothing to take (see
//! `SubCore::arm_with`).
//!
//! Sending never blocks and never fails loudly: the socket is non-blocking, a full receive
//! queue (`EAGAIN`: the descriptor is readable already) and a subscriber that went away
//! (`ECONNREFUSED`, `ENOENT`) are both ignored, and `MSG_NOSIGNAL` keeps `SIGPIPE` away. A
//! wake-up that could not be sent for another reason (no descriptors left, …) puts the arm
//! back, so that the next publish tries again ([`Sent::Failed`]). A dead
//! subscriber's socket file is removed by whoever reclaims its slot.
//!
//! Sockets are reached through descriptors: bound at `/proc/self/fd/<topic directory>/wake.<n>`
//! (resolved from the directory already opened and checked, never from the root's name
//! again), then opened `O_PATH | O_NOFOLLOW`, checked (a socket with one name, and for its
//! own subscriber, owned by it) and given its mode, or connected to, through
//! `/proc/self/fd/<that descriptor>`: a name swapped for a link in a directory shared with a
//! group leads nowhere else. Unix sockets are Linux-and-BSD territory; other targets do not build this module's
//! users.

use crate::dir::{sys, Dir};
use crate::error::Result;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
use std::cell::Cell;
use std::path::PathBuf;

/// Name of the socket of subscriber incarnation `inc` in its topic's directory.
pub(crate) fn socket_name(inc: u64) -> String {
    format!("wake.{inc}")
}

/// The address of entry `name` of `dir`, through the directory's descriptor (for `bind`,
/// which creates the entry).
fn address(dir: &Dir, name: &str) -> std::result::Result<SocketAddrUnix, Errno> {
    use rustix::fd::AsRawFd;
    let via_fd = format!("/proc/self/fd/{}/{name}", dir.fd().as_raw_fd());
    SocketAddrUnix::new(via_fd.as_str())
}

/// Entry `name` of `dir`, opened without following a link (`O_PATH`), if it is a socket
/// with one name owned by `owner` (any owner if `None`): what is then done through
/// `/proc/self/fd/<it>` reaches exactly that inode, whatever is renamed meanwhile.
fn open_socket(dir: &Dir, name: &str, owner: Option<u32>) -> std::result::Result<OwnedFd, Errno> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fd = rustix::fs::openat(
        dir.fd(),
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    let owned = owner.is_none_or(|uid| stat.st_uid == uid);
    if FileType::from_raw_mode(stat.st_mode) != FileType::Socket || stat.st_nlink != 1 || !owned {
        return Err(Errno::PERM);
    }
    Ok(fd)
}

/// `/proc/self/fd/<fd>`: the inode `fd` names.
fn proc_path(fd: &OwnedFd) -> String {
    use rustix::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn datagram_socket() -> std::result::Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
}

/// A subscriber's socket: readable while a wake-up waits. Removes its file when dropped.
pub(crate) struct Listener {
    fd: OwnedFd,
    /// The topic's directory (its own descriptor) and the socket's name in it.
    dir: Dir,
    name: String,
}

impl Listener {
    /// Binds the socket of subscriber incarnation `inc` in `dir`, with file mode `mode` and,
    /// if given, group `group` (as the topic's other files).
    pub(crate) fn bind(dir: Dir, inc: u64, mode: u32, group: Option<u32>) -> Result<Listener> {
        let name = socket_name(inc);
        let path = dir.join(&name);
        let fd = datagram_socket().map_err(|e| sys(&path, e))?;
        // A file of that name is a leftover of a dead incarnation of ours: incarnations are
        // never reused, so it can go.
        dir.remove_file(&name);
        let addr = address(&dir, &name).map_err(|e| sys(&path, e))?;
        rustix::net::bind(&fd, &addr).map_err(|e| sys(&path, e))?;
        // Mode and group go to the socket just bound, reached through a descriptor of it: in
        // a directory shared with a group, another member could swap the name for a link
        // between the `bind` and a `chmod` by name.
        let me = rustix::process::geteuid().as_raw();
        let inode = open_socket(&dir, &name, Some(me)).map_err(|e| sys(&path, e))?;
        let listener = Listener { fd, dir, name };
        let at = proc_path(&inode);
        if let Some(gid) = group {
            rustix::fs::chown(at.as_str(), None, Some(rustix::fs::Gid::from_raw(gid)))
                .map_err(|e| sys(&path, e))?;
        }
        rustix::fs::chmod(at.as_str(), rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| sys(&path, e))?;
        Ok(listener)
    }

    /// Consumes every wake-up that waits (the descriptor is then not readable, until the
    /// next).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 16];
        while let Ok((..)) = rustix::net::recv(&self.fd, &mut buf, RecvFlags::DONTWAIT) {}
    }

    /// Where the socket is (for messages and tests).
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.dir.remove_file(&self.name);
    }
}

/// A publisher's way to one subscriber's socket: connected on first use, reconnected after a
/// failure.
#[derive(Default)]
pub(crate) struct Notifier {
    fd: Cell<Option<OwnedFd>>,
}

/// What became of a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// In the subscriber's queue (or the queue was full: the descriptor is readable).
    Yes,
    /// The subscriber's socket is gone (the subscriber left or died): nobody to tell.
    Gone,
    /// Not sent (out of descriptors, memory, …): the caller arms the subscriber again, so
    /// that the next publish tries again.
    Failed,
}

impl Notifier {
    /// Sends one wake-up to subscriber incarnation `inc`'s socket in `dir`. Never blocks.
    #[cold]
    pub(crate) fn notify(&self, dir: &Dir, inc: u64) -> Sent {
        let fd = match self.fd.take() {
            Some(fd) => fd,
            None => match connect(dir, inc) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::CONNREFUSED) => return Sent::Gone,
                Err(_) => return Sent::Failed,
            },
        };
        match rustix::net::send(&fd, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            // Full: the descriptor is readable already.
            Ok(_) | Err(Errno::AGAIN) => {
                self.fd.set(Some(fd));
                Sent::Yes
            }
            // The subscriber went (or its socket did): connect afresh next time.
            Err(Errno::CONNREFUSED | Errno::NOTCONN | Errno::PIPE) => Sent::Gone,
            Err(_) => Sent::Failed,
        }
    }
}

/// A socket connected to subscriber incarnation `inc`'s. Only a socket (never a link, which
/// `connect` would follow, nor a second name of another file) is connected to, through a
/// descriptor of it, so a name swapped meanwhile leads nowhere else.
fn connect(dir: &Dir, inc: u64) -> std::result::Result<OwnedFd, Errno> {
    let target = open_socket(dir, &socket_name(inc), None)?;
    let fd = datagram_socket()?;
    let addr = SocketAddrUnix::new(proc_path(&target).as_str())?;
    rustix::net::connect(&fd, &addr)?;
    Ok(fd)
}

/// Sends one wake-up to subscriber incarnation `inc`'s socket in `dir`, without keeping a
/// connection (for the rare notices of participants joining and leaving).
pub(crate) fn notify_once(dir: &Dir, inc: u64) -> Sent {
    Notifier::default().notify(dir, inc)
}
