//! Liveness of processes without a daemon or heartbeats.
//!
//! Every process that has an endpoint in a root holds an exclusive lock on its own *node
//! file*, `<root>/node.<id>`, for as long as it has endpoints there. The kernel drops the lock
//! when the process dies, however it dies (`SIGKILL` included), so anyone can tell a dead
//! owner by asking whether the file is locked: locked means alive, unlocked (or no file)
//! means dead. Node ids are random 64-bit numbers, never reused, so a recycled pid can never
//! pass for the dead process. Slots record the node id of their owner.
//!
//! On Linux the lock is an open-file-description write lock (`F_OFD_SETLK`), and a peer asks
//! with `F_OFD_GETLK` for a read lock, which takes no lock and which no read lock conflicts
//! with: only a descriptor opened for writing, which only the owner can have, can make a
//! node look alive. The file has mode `0600` (`0640` with the group in a root shared with a
//! group, so that members can ask): no other user can open it at all, and a group member can
//! neither hold a dead process's node alive nor make a live one look dead. (Elsewhere the
//! lock is an exclusive `flock` and the question a non-blocking shared `flock`.)
//!
//! The file is created under a temporary name, locked, and only then linked into place, so no
//! peer ever sees an unlocked node file of a live process.

use crate::error::{Error, Result};
use crate::root::Root;
use crate::trust::Trust;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::sync::Arc;

/// This process's node in one root; shared by all its endpoints there (see
/// [`Root::node`]).
#[derive(Debug)]
pub(crate) struct Node {
    id: u64,
    root: Arc<Root>,
    /// The trust of the endpoint that made the node, for the root lock it takes to go.
    trust: Trust,
    _file: File,
}

impl Node {
    /// The node id recorded in slots.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Creates and locks a node file in `root`, of mode `0600`, or `0640` with group `shared`
    /// in a root shared with that group (with the root lock held: see [`Root::node`]).
    pub(crate) fn create(root: Arc<Root>, trust: Trust, shared: Option<u32>) -> Result<Node> {
        let dir = root.dir();
        let mode = if shared.is_some() { 0o640 } else { 0o600 };
        for _ in 0..16 {
            let id = random_id();
            let tmp = format!(".node.{id:016x}.tmp");
            let Some(file) = dir.create_file(&tmp, mode, shared)? else {
                continue;
            };
            let locked = lock::hold(&file).map_err(|e| crate::dir::sys(&dir.join(&tmp), e));
            let linked = locked.and_then(|()| dir.link(&tmp, &node_name(id)));
            dir.remove_file(&tmp);
            if linked? {
                return Ok(Node {
                    id,
                    root,
                    trust,
                    _file: file,
                });
            }
        }
        Err(Error::corrupt(root.path(), "could not find a free node id"))
    }
}

impl Drop for Node {
    /// Removes the node file; the last node to go in a root that holds nothing else removes
    /// the root's lock file too (under the lock, so nobody is opening a topic meanwhile).
    fn drop(&mut self) {
        let lock = self
            .root
            .lock_within(&self.trust, crate::root::LEAVING_WAIT);
        self.root.dir().remove_file(&node_name(self.id));
        if let Some(lock) = &lock {
            self.root.remove_lock_if_alone(lock);
        }
    }
}

fn node_name(id: u64) -> String {
    format!("node.{id:016x}")
}

/// A random 64-bit value (the std hasher's random keys over the pid and the time).
pub(crate) fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// The node file's lock: taken by its owner, asked about by everyone else.
#[cfg(target_os = "linux")]
mod lock {
    use rustix::io::Errno;
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// A `struct flock` over the whole file.
    fn whole_file(kind: libc::c_short) -> libc::flock {
        // SAFETY: `flock` is a plain C struct of integers, for which all-zero is valid.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl
    }

    fn fcntl(file: &File, cmd: libc::c_int, fl: &mut libc::flock) -> rustix::io::Result<()> {
        loop {
            // SAFETY: `file` is an open descriptor for the duration of the call and `fl` a
            // valid, exclusively borrowed `struct flock`, as F_OFD_SETLK/F_OFD_GETLK require.
            let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *mut libc::flock) };
            if rc == 0 {
                return Ok(());
            }
            match Errno::from_io_error(&std::io::Error::last_os_error()) {
                Some(Errno::INTR) => continue,
                Some(e) => return Err(e),
                None => return Err(Errno::IO),
            }
        }
    }

    /// Takes a write lock on `file` (opened for writing) for as long as it stays open.
    pub(super) fn hold(file: &File) -> rustix::io::Result<()> {
        fcntl(
            file,
            libc::F_OFD_SETLK,
            &mut whole_file(libc::F_WRLCK as libc::c_short),
        )
    }

    /// Whether someone holds a write lock on `file`; takes no lock.
    pub(super) fn is_held(file: &File) -> rustix::io::Result<bool> {
        let mut fl = whole_file(libc::F_RDLCK as libc::c_short);
        fcntl(file, libc::F_OFD_GETLK, &mut fl)?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

/// The node file's lock, where there are no open-file-description locks: `flock`.
#[cfg(not(target_os = "linux"))]
mod lock {
    use rustix::fs::FlockOperation;
    use rustix::io::Errno;
    use std::fs::File;

    fn flock(file: &File, op: FlockOperation) -> rustix::io::Result<()> {
        loop {
            match rustix::fs::flock(file, op) {
                Err(Errno::INTR) => continue,
                other => return other,
            }
        }
    }

    pub(super) fn hold(file: &File) -> rustix::io::Result<()> {
        flock(file, FlockOperation::LockExclusive)
    }

    pub(super) fn is_held(file: &File) -> rustix::io::Result<bool> {
        match flock(file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => Ok(false),
            Err(Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// Whether the process that owns node `id` in `root` is alive. A node that cannot be checked
/// (not a regular file of one name, not readable, any error) counts as alive: never reclaim
/// on a doubt.
pub(crate) fn is_alive(root: &Root, id: u64) -> bool {
    let name = node_name(id);
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let file = match rustix::fs::openat(root.dir().fd(), name.as_str(), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT) => return false,
        Err(_) => return true,
    };
    let regular = rustix::fs::fstat(&file).is_ok_and(|s| {
        rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::RegularFile
            && s.st_nlink == 1
    });
    !regular || lock::is_held(&file).unwrap_or(true)
}

/// Removes the node file of a dead process (no-op if it is alive or gone).
pub(crate) fn remove_if_dead(root: &Root, id: u64) {
    if !is_alive(root, id) {
        root.dir().remove_file(&node_name(id));
    }
}

/// Node id of a node file name.
pub(crate) fn id_of(name: &str) -> Option<u64> {
    name.strip_prefix("node.")
        .filter(|hex| hex.len() == 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

/// With the root lock held (nodes are only created under it): removes the node files of dead
/// processes in `root`, and the temporary files of nodes and segments whose creator died
/// half-way.
pub(crate) fn sweep_root(root: &Root) {
    let Ok(entries) = root.dir().entries() else {
        return;
    };
    for (name, _) in entries {
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with(".node.") && name.ends_with(".tmp") || name.starts_with(".tmp.") {
            root.dir().remove_file(&name);
        } else if let Some(id) = id_of(name) {
            remove_if_dead(root, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Trust;
    use std::path::Path;

    fn root_at(dir: &Path) -> Arc<Root> {
        Root::open(Some(dir), &Trust::new(0o600, None)).unwrap()
    }

    fn node_of(root: &Arc<Root>) -> Arc<Node> {
        let trust = Trust::new(0o600, None);
        root.node(&trust, &root.lock(&trust).unwrap()).unwrap()
    }

    #[test]
    fn a_live_node_is_alive_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let root = root_at(dir.path());
        let node = node_of(&root);
        let again = node_of(&root_at(dir.path()));
        assert_eq!(node.id(), again.id(), "one node per process and root");
        assert!(is_alive(&root, node.id()));
        assert!(!is_alive(&root, node.id() ^ 1), "an unknown node is dead");
        let mode = std::fs::metadata(dir.path().join(node_name(node.id())))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
        assert_eq!(mode.unwrap(), 0o600, "nobody else may open (and lock) it");
        let id = node.id();
        drop((node, again));
        assert!(!is_alive(&root, id));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn an_unlocked_node_file_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let root = root_at(dir.path());
        std::fs::write(dir.path().join(node_name(42)), b"").unwrap();
        assert!(!is_alive(&root, 42));
        std::fs::write(dir.path().join(".node.000000000000002b.tmp"), b"").unwrap();
        let live = node_of(&root);
        sweep_root(&root);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![".lock".to_owned(), node_name(live.id())],
            "only the live node (and the root's lock file) stays"
        );
        drop(live);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "the last node to go leaves the root empty"
        );
    }
}
