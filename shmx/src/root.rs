//! The root directory that holds every topic, opened once per process and kept by its
//! descriptor.
//!
//! - **Where.** The path an endpoint is given (`root(..)`), else `$SHMX_ROOT`, else the
//!   defaults file's `root` (see [`defaults`](crate::defaults)), else a private per-user
//!   `/dev/shm/shmx-<uid>` on Linux (a `shmx-<uid>` folder in the temporary directory
//!   elsewhere), created `0700`.
//! - **Resolved once.** The path is made absolute and its parent directories' links are
//!   resolved when the endpoint is built; the root itself is opened with `O_NOFOLLOW` (a root
//!   that is a symbolic link is refused) and from then on used only through its descriptor.
//!   Roots are told apart by device and inode: an endpoint keeps the root it was built with
//!   whatever `chdir` comes later, and endpoints that reach one directory by different paths
//!   (relative or absolute) share one [`Root`], one node, one lock. (A relative root given to
//!   an endpoint built after a `chdir` names the directory relative to the new one.)
//! - **Checked.** Every endpoint checks the root against its [`Trust`] before it writes
//!   anything into it (see [`trust`](crate::trust)); a root another user made or may write is
//!   [`Error::PermissionDenied`](crate::Error::PermissionDenied), and nothing is written into
//!   it.
//! - **Locked.** Topic directories are created, populated and removed while holding an
//!   exclusive `flock` on `<root>/.lock`, a file of mode `0600`: no other user can take it.
//!   (In a root shared with a group it is `0660`, so the group's members can take it: they
//!   are participants, who can disturb each other anyway.) Nothing on the take or publish
//!   path waits for it (those paths only try it, and go on if it is busy), and an endpoint
//!   that goes waits for it only so long ([`LEAVING_WAIT`]) before it leaves its files to
//!   the next participant or `shmx clean`.

use crate::dir::{sys, Access, Dir};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::trust::{denied, Trust};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Name of the lock file inside the root.
const LOCK_FILE: &str = ".lock";

/// How long an endpoint (or node) that goes waits for the root lock to remove what it
/// leaves; past that it leaves it to the next participant or `shmx clean`.
pub(crate) const LEAVING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open root directory, shared by every endpoint of this process in it.
#[derive(Debug)]
pub(crate) struct Root {
    dir: Dir,
    node: Mutex<Weak<Node>>,
}

/// The roots this process has open, by device and inode.
type Roots = Mutex<HashMap<(u64, u64), Weak<Root>>>;

fn roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(Default::default)
}

/// The default root: `$SHMX_ROOT` if set and not empty, else the defaults file's `root`
/// (see [`defaults`](crate::defaults); a file that cannot be used is ignored here, and
/// endpoints fail on it before they look for a root), else [`built_in_path`].
pub(crate) fn default_path() -> PathBuf {
    if let Some(root) = std::env::var_os("SHMX_ROOT") {
        if !root.is_empty() {
            return PathBuf::from(root);
        }
    }
    match crate::defaults::Defaults::get() {
        Ok(d) => match d.file_root() {
            Some(root) => root.to_owned(),
            None => built_in_path(),
        },
        Err(_) => built_in_path(),
    }
}

/// The private per-user root: `/dev/shm/shmx-<uid>` on Linux, a `shmx-<uid>` folder in the
/// temporary directory elsewhere.
pub(crate) fn built_in_path() -> PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    if cfg!(target_os = "linux") {
        PathBuf::from(format!("/dev/shm/shmx-{uid}"))
    } else {
        std::env::temp_dir().join(format!("shmx-{uid}"))
    }
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e, 0))
}

impl Root {
    /// Opens the root at `path` (the default root if `None`), creating it `0700` if it does
    /// not exist, and checks it against `trust`.
    pub(crate) fn open(path: Option<&Path>, trust: &Trust) -> Result<Arc<Root>> {
        let given = path.map_or_else(default_path, Path::to_owned);
        Self::open_inner(Some(&given), trust, true)?
            .ok_or_else(|| Error::corrupt(given, "the root vanished while it was being opened"))
    }

    /// Opens an existing root (for tools that only look); `Ok(None)` if there is none.
    pub(crate) fn open_existing(path: &Path, trust: &Trust) -> Result<Option<Arc<Root>>> {
        Self::open_inner(Some(path), trust, false)
    }

    fn open_inner(path: Option<&Path>, trust: &Trust, create: bool) -> Result<Option<Arc<Root>>> {
        let given = path.map_or_else(default_path, Path::to_owned);
        let abs = absolute(&given)?;
        // The root's own name, opened with O_NOFOLLOW below; its parents are resolved here.
        let (parent, name) = match (abs.parent(), abs.file_name().map(|n| n.to_str())) {
            (Some(parent), Some(Some(name))) => (parent.to_owned(), name.to_owned()),
            (_, Some(None)) => {
                return Err(denied(&abs, "the root's name is not UTF-8".into()));
            }
            _ => {
                // `/`, or a path ending in `..`: resolve the whole of it.
                let canon = std::fs::canonicalize(&abs).map_err(|e| Error::io(&abs, e, 0))?;
                match (canon.parent(), canon.file_name().and_then(|n| n.to_str())) {
                    (Some(p), Some(n)) => (p.to_owned(), n.to_owned()),
                    _ => return Err(denied(&canon, "the root cannot be `/`".into())),
                }
            }
        };
        if create {
            // Missing parents are made private too (`0700`).
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
            builder
                .create(&parent)
                .map_err(|e| Error::io(&parent, e, 0))?;
        }
        let parent = match std::fs::canonicalize(&parent) {
            Ok(p) => p,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&parent, e, 0)),
        };
        let parent_fd = rustix::fs::openat(
            rustix::fs::CWD,
            &parent,
            OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )
        .map_err(|e| sys(&parent, e))?;
        let parent = Dir::new(parent_fd, parent);
        if create {
            parent.create_dir(&name, 0o700, None)?;
        }
        let path = parent.join(&name);
        let fd = match rustix::fs::openat(
            parent.fd(),
            name.as_str(),
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) if is_link(&parent, &name) => {
                return Err(denied(
                    &path,
                    "the root is a symbolic link; shmx opens its root without following \
                     links: point SHMX_ROOT (or root()) at the directory itself"
                        .into(),
                ))
            }
            Err(e) => return Err(sys(&path, e)),
        };
        let dir = Dir::new(fd, path);
        let stat = dir.stat()?;
        trust.check_dir(&stat, dir.path())?;
        let key = (stat.st_dev, stat.st_ino);
        let mut roots = roots().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(root) = roots.get(&key).and_then(Weak::upgrade) {
            return Ok(Some(root));
        }
        let root = Arc::new(Root {
            dir,
            node: Mutex::new(Weak::new()),
        });
        roots.retain(|_, r| r.strong_count() > 0);
        roots.insert(key, Arc::downgrade(&root));
        Ok(Some(root))
    }

    /// The root directory.
    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Its absolute path, parents resolved (for messages and tools).
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// This process's node in this root, created and locked on first use; shared by all its
    /// endpoints here and removed with the last of them.
    ///
    /// Call with the root lock held, and release it before the node can drop (a node that
    /// goes takes the lock to remove its file).
    pub(crate) fn node(self: &Arc<Self>, trust: &Trust, _lock: &RootLock) -> Result<Arc<Node>> {
        let mut node = self.node.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = node.upgrade() {
            return Ok(n);
        }
        let shared = self.shared_group(trust)?;
        let n = Arc::new(Node::create(Arc::clone(self), *trust, shared)?);
        *node = Arc::downgrade(&n);
        Ok(n)
    }

    /// Takes the root lock, waiting for it.
    pub(crate) fn lock(&self, trust: &Trust) -> Result<RootLock> {
        loop {
            let file = self.lock_file(trust)?;
            match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(sys(&self.dir.join(LOCK_FILE), e)),
            }
            if self.is_current(&file) {
                return Ok(RootLock { _file: file });
            }
        }
    }

    /// Takes the root lock, waiting up to `wait` for it; `None` if it could not be had.
    pub(crate) fn lock_within(&self, trust: &Trust, wait: std::time::Duration) -> Option<RootLock> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_micros(100);
        loop {
            if let Some(lock) = self.try_lock(trust) {
                return Some(lock);
            }
            // A root removed under us (`rm -rf` of it): nobody will ever let go of a lock
            // there, and there is nothing left to remove.
            if std::time::Instant::now() >= deadline || self.is_removed() {
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(20));
        }
    }

    /// The group this root is shared with: its own group, when the group may write it and
    /// `trust` shares with that group (files that hold no data, the lock and node files, are
    /// then readable and writable by the group as needed).
    pub(crate) fn shared_group(&self, trust: &Trust) -> Result<Option<u32>> {
        let stat = self.dir.stat()?;
        Ok(
            (stat.st_mode & 0o020 != 0 && trust.group() == Some(stat.st_gid))
                .then_some(stat.st_gid),
        )
    }

    /// Whether the root directory was removed while open (no name links to it any more).
    fn is_removed(&self) -> bool {
        self.dir.stat().map_or(true, |s| s.st_nlink == 0)
    }

    /// Takes the root lock if nobody holds it; never waits.
    pub(crate) fn try_lock(&self, trust: &Trust) -> Option<RootLock> {
        for _ in 0..3 {
            let file = self.lock_file(trust).ok()?;
            loop {
                match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => break,
                    Err(Errno::INTR) => continue,
                    Err(_) => return None,
                }
            }
            if self.is_current(&file) {
                return Some(RootLock { _file: file });
            }
        }
        None
    }

    /// Whether `file`, just locked, is still the root's lock file: the last participant to
    /// leave removes it (see [`remove_lock_if_alone`](Self::remove_lock_if_alone)), and a
    /// process that was waiting on the removed file must lock the new one instead.
    fn is_current(&self, file: &File) -> bool {
        let (Ok(locked), Ok(Some(named))) = (rustix::fs::fstat(file), self.dir.stat_at(LOCK_FILE))
        else {
            return false;
        };
        (locked.st_dev, locked.st_ino) == (named.st_dev, named.st_ino)
    }

    /// With the lock held: removes the lock file if nothing else is left in the root, so
    /// that the last participant to leave leaves the root empty.
    pub(crate) fn remove_lock_if_alone(&self, _lock: &RootLock) {
        if let Ok(entries) = self.dir.entries() {
            if entries.len() == 1 && entries[0].0 == LOCK_FILE {
                self.dir.remove_file(LOCK_FILE);
            }
        }
    }

    /// Opens (creating it if needed) the lock file: a new open file description each time,
    /// so that two threads of this process exclude each other too.
    fn lock_file(&self, trust: &Trust) -> Result<File> {
        // Shared with the group only in a root the group may write (checked on open).
        let shared = self.shared_group(trust)?;
        let mode = if shared.is_some() { 0o660 } else { 0o600 };
        let check = trust.with_mode(mode);
        loop {
            if let Some(file) = self.dir.open_file(LOCK_FILE, Access::ReadOnly, &check)? {
                return Ok(file);
            }
            // Created in place (a temporary name could be swept away by a process that holds
            // the lock); until its mode and group are set it is only narrower than them.
            if let Some(file) = self.dir.create_file(LOCK_FILE, mode, shared)? {
                return Ok(file);
            }
        }
    }
}

/// Whether entry `name` of `dir` is a symbolic link.
fn is_link(dir: &Dir, name: &str) -> bool {
    matches!(dir.stat_at(name), Ok(Some(s))
        if rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink)
}

/// Holds the exclusive `flock` on the root's lock file while alive.
pub(crate) struct RootLock {
    _file: File,
}
